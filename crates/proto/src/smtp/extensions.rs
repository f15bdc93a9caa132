//! The service extensions a submission server advertises in its EHLO reply that change what a
//! client may send in a mail transaction, as the gateway passes them from upstream to client.

/// The EHLO keywords of the upstream that the client is shown unchanged, because after the
/// hand-over the client talks to the upstream and must not use what it does not honour.
/// STARTTLS and AUTH are not here: they describe the gateway's own listener.
///
/// The default offers none of them: plain RFC 5321 SMTP, which every server honours; use it
/// until an upstream's EHLO has been read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct SmtpExtensions {
    /// SIZE (RFC 1870): `Some(n)` with the fixed message size limit in bytes, `Some(0)` when
    /// the server declares none; `None` when SIZE is not offered.
    pub size: Option<u64>,
    /// 8BITMIME (RFC 6152).
    pub eight_bit_mime: bool,
    /// SMTPUTF8 (RFC 6531).
    pub smtputf8: bool,
    /// PIPELINING (RFC 2920).
    pub pipelining: bool,
    /// CHUNKING, the BDAT command (RFC 3030).
    pub chunking: bool,
    /// DSN, delivery status notifications (RFC 3461).
    pub dsn: bool,
    /// ENHANCEDSTATUSCODES (RFC 2034).
    pub enhanced_status_codes: bool,
}

impl SmtpExtensions {
    /// The extensions among EHLO reply lines (as text after the reply code, greeting line
    /// excluded). Keywords are matched without regard to case; unknown ones are skipped, and a
    /// SIZE whose value is not a number counts as not offered.
    pub fn from_ehlo_lines<'a>(lines: impl IntoIterator<Item = &'a str>) -> SmtpExtensions {
        let mut extensions = SmtpExtensions::default();
        for line in lines {
            let mut words = line.split_ascii_whitespace();
            let Some(keyword) = words.next() else {
                continue;
            };
            match keyword.to_ascii_uppercase().as_str() {
                "SIZE" => match words.next() {
                    None => extensions.size = Some(0),
                    Some(limit) => extensions.size = limit.parse().ok(),
                },
                "8BITMIME" => extensions.eight_bit_mime = true,
                "SMTPUTF8" => extensions.smtputf8 = true,
                "PIPELINING" => extensions.pipelining = true,
                "CHUNKING" => extensions.chunking = true,
                "DSN" => extensions.dsn = true,
                "ENHANCEDSTATUSCODES" => extensions.enhanced_status_codes = true,
                _ => {}
            }
        }
        extensions
    }

    /// The EHLO lines that advertise these extensions, in the order Postfix lists them.
    pub fn ehlo_lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if self.pipelining {
            lines.push("PIPELINING".to_string());
        }
        match self.size {
            Some(0) => lines.push("SIZE".to_string()),
            Some(limit) => lines.push(format!("SIZE {limit}")),
            None => {}
        }
        let flags = [
            (self.enhanced_status_codes, "ENHANCEDSTATUSCODES"),
            (self.eight_bit_mime, "8BITMIME"),
            (self.dsn, "DSN"),
            (self.smtputf8, "SMTPUTF8"),
            (self.chunking, "CHUNKING"),
        ];
        lines.extend(
            flags
                .into_iter()
                .filter(|(offered, _)| *offered)
                .map(|(_, keyword)| keyword.to_string()),
        );
        lines
    }
}

/// What Exchange Online advertises after STARTTLS (research/smtp.md): every extension the
/// gateway passes on, SIZE 150 MiB.
#[cfg(test)]
pub(super) const EXCHANGE_ONLINE: SmtpExtensions = SmtpExtensions {
    size: Some(157_286_400),
    eight_bit_mime: true,
    smtputf8: true,
    pipelining: true,
    chunking: true,
    dsn: true,
    enhanced_status_codes: true,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_exchange_online_and_postfix_lists() {
        // Exchange Online after STARTTLS (research/smtp.md), BINARYMIME and AUTH ignored.
        let exchange = [
            "SIZE 157286400",
            "PIPELINING",
            "DSN",
            "ENHANCEDSTATUSCODES",
            "AUTH LOGIN XOAUTH2",
            "8BITMIME",
            "BINARYMIME",
            "CHUNKING",
            "SMTPUTF8",
        ];
        assert_eq!(SmtpExtensions::from_ehlo_lines(exchange), EXCHANGE_ONLINE);
        let postfix = [
            "pipelining",
            "SIZE 10240000",
            "ETRN",
            "AUTH PLAIN LOGIN",
            "8BITMIME",
        ];
        assert_eq!(
            SmtpExtensions::from_ehlo_lines(postfix),
            SmtpExtensions {
                size: Some(10_240_000),
                eight_bit_mime: true,
                pipelining: true,
                ..SmtpExtensions::default()
            }
        );
    }

    #[test]
    fn size_without_a_limit_and_with_garbage() {
        assert_eq!(SmtpExtensions::from_ehlo_lines(["SIZE"]).size, Some(0));
        assert_eq!(SmtpExtensions::from_ehlo_lines(["SIZE lots"]).size, None);
        assert_eq!(
            SmtpExtensions::from_ehlo_lines(["", " "]),
            SmtpExtensions::default()
        );
    }

    #[test]
    fn advertises_what_it_read() {
        let lines = [
            "SIZE 100",
            "CHUNKING",
            "8BITMIME",
            "PIPELINING",
            "DSN",
            "SMTPUTF8",
        ];
        let extensions = SmtpExtensions::from_ehlo_lines(lines);
        assert_eq!(
            extensions.ehlo_lines(),
            [
                "PIPELINING",
                "SIZE 100",
                "8BITMIME",
                "DSN",
                "SMTPUTF8",
                "CHUNKING"
            ]
        );
        let read_back = extensions.ehlo_lines();
        assert_eq!(
            SmtpExtensions::from_ehlo_lines(read_back.iter().map(String::as_str)),
            extensions
        );
        let no_limit = SmtpExtensions {
            size: Some(0),
            ..SmtpExtensions::default()
        };
        assert_eq!(no_limit.ehlo_lines(), ["SIZE"]);
        assert!(SmtpExtensions::default().ehlo_lines().is_empty());
    }
}
