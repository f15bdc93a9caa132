//! Dovecot's login processes' lines (`imap-login`, `pop3-login`, `submission-login`): logins,
//! failed logins and refused handshakes, with the TLS version where the log has it.
//!
//! Dovecot writes these as `login_log_format` (`%$: %s`): a message, then the elements of
//! `login_log_format_elements`. Its default has no TLS version; `%k` adds one (Dovecot 2.3,
//! `%{ssl_security}` in 2.4), e.g.
//! `login_log_format_elements = user=<%u> method=%m rip=%r lip=%l mpid=%e %c %k session=<%{session}>`:
//!
//! ```text
//! imap-login: Info: Login: user=<alice>, method=PLAIN, rip=192.0.2.7, lip=192.0.2.1, mpid=7008, TLS, TLSv1.2 with cipher ECDHE-RSA-AES256-GCM-SHA384 (256/256 bits), session=<1/dQPbRhwtp/AAAB>
//! imap-login: Info: Disconnected: Connection closed: SSL_accept() failed: error:0A000102:SSL routines::unsupported protocol (no auth attempts in 0 secs): user=<>, rip=192.0.2.8, lip=192.0.2.1, TLS handshaking: SSL_accept() failed: error:0A000102:SSL routines::unsupported protocol, session=<ixpwPbRh0Np/AAAB>
//! ```
//!
//! `rip=` is required; `user=<...>` marks where the elements start. A login without `TLS`
//! among the elements (Dovecot writes `secured` for a trusted network) used no TLS.

use std::net::IpAddr;

use store::{Outcome, Source};
use wire::TlsVersion;

use crate::evidence::{
    bounded, is_version_refusal, negotiated_tls, offered_at_most, offered_below, openssl_reason,
    sighting,
};
use crate::{Evidence, LineKind, LogClock, LogReader};
use store::EvidenceDigester;

/// The listener name records from Dovecot logs carry.
pub const DOVECOT_LISTENER: &str = "dovecot-log";

/// The login services read, with the protocol each serves.
const SERVICES: [(&str, &str); 3] = [
    ("imap-login: ", "imap"),
    ("pop3-login: ", "pop3"),
    ("submission-login: ", "smtp"),
];

/// Dovecot's log levels as its own log file writes them (syslog carries them out of band).
const LEVELS: [&str; 6] = [
    "Info: ",
    "Warning: ",
    "Error: ",
    "Debug: ",
    "Fatal: ",
    "Panic: ",
];

/// Reads a Dovecot log (its own `log_path` file, syslog or journald output).
#[derive(Debug)]
pub struct DovecotLog {
    clock: LogClock,
    floor: TlsVersion,
    digests: EvidenceDigester,
}

impl DovecotLog {
    /// A reader whose year-less stamps are read by `clock`; `floor` is the server's lowest
    /// TLS version (`ssl_min_protocol`), what a client refused for its version offered less
    /// than.
    pub fn new(clock: LogClock, floor: TlsVersion) -> DovecotLog {
        DovecotLog {
            clock,
            floor,
            digests: EvidenceDigester::new("dovecot"),
        }
    }
}

impl LogReader for DovecotLog {
    fn read_line(&mut self, line: &[u8], out: &mut Vec<Evidence>) -> LineKind {
        let text = String::from_utf8_lossy(line);
        let Some((at, rest)) = self.clock.read(&text) else {
            return LineKind::NotUnderstood;
        };
        let Some((protocol, message)) = login_message(rest) else {
            return LineKind::Other;
        };
        let Some(login) = LoginLine::parse(message) else {
            // A login process's line without the elements, e.g. a warning.
            return if message.contains("rip=") {
                LineKind::NotUnderstood
            } else {
                LineKind::Other
            };
        };
        let Some(client_addr) = login.remote else {
            return LineKind::NotUnderstood;
        };
        let mut record = sighting(
            Source::DovecotLog,
            at,
            DOVECOT_LISTENER,
            protocol,
            client_addr,
        );
        record.upstream = login.local.unwrap_or_default();
        record.login = login.user.filter(|u| !u.is_empty()).map(|u| bounded(&u));
        if let Some((version, cipher)) = login.tls {
            record.tls_version = Some(version);
            record.tls_cipher = Some(cipher);
            record.offered_max_tls = offered_at_most(version);
        }
        if login.head.starts_with("Login") {
            record.outcome = Outcome::Ok;
        } else if let Some(failure) = &login.handshake_failure {
            record.outcome = Outcome::ClientTlsFailed;
            let reason = openssl_reason(failure);
            if reason.is_some_and(is_version_refusal) {
                record.offered_max_tls = offered_below(self.floor);
            }
            record.detail = Some(bounded(reason.unwrap_or(failure)));
            // The handshake never finished: no user name, whatever the elements say.
            record.login = None;
        } else if login.head.contains("auth failed") || login.head.contains("plaintext auth") {
            record.outcome = Outcome::AuthFailed;
            record.detail = Some(bounded(login.head));
        } else if record.tls_version.is_some() {
            // A handshake, then no login: still a client and its TLS version.
            record.outcome = Outcome::ClientClosed;
            record.detail = Some(bounded(login.head));
        } else {
            // A connection that neither logged in nor spoke TLS tells nothing of the client.
            return LineKind::Used;
        }
        let digest = self.digests.digest(at, [text.as_ref()]);
        out.push(Evidence { digest, record });
        LineKind::Used
    }
}

/// The protocol and the message of a login process's line, level prefix removed.
fn login_message(rest: &str) -> Option<(&'static str, &str)> {
    SERVICES.iter().find_map(|(service, protocol)| {
        let at = rest.find(service)?;
        // `imap-login: ` as its own word: the line's program, not text inside a message.
        if at > 0 && !rest[..at].ends_with(' ') {
            return None;
        }
        let mut message = &rest[at + service.len()..];
        if let Some(level) = LEVELS.iter().find(|l| message.starts_with(**l)) {
            message = &message[level.len()..];
        }
        Some((*protocol, message))
    })
}

/// The parts of one login line this reader uses.
#[derive(Debug, Default, PartialEq)]
struct LoginLine<'a> {
    /// The message before the elements: `Login`, `Disconnected (auth failed, ...)`.
    head: &'a str,
    user: Option<String>,
    remote: Option<IpAddr>,
    local: Option<String>,
    tls: Option<(TlsVersion, String)>,
    handshake_failure: Option<String>,
}

impl<'a> LoginLine<'a> {
    fn parse(message: &'a str) -> Option<LoginLine<'a>> {
        let (head, elements) = if let Some(rest) = message.strip_prefix("Login: ") {
            ("Login", rest)
        } else {
            let at = message.find(": user=<")?;
            (&message[..at], &message[at + 2..])
        };
        let mut line = LoginLine {
            head,
            ..LoginLine::default()
        };
        for element in Elements(elements) {
            if let Some(user) = element
                .strip_prefix("user=<")
                .and_then(|u| u.strip_suffix('>'))
            {
                line.user = Some(user.to_string());
            } else if let Some(remote) = element.strip_prefix("rip=") {
                line.remote = remote.parse().ok();
            } else if let Some(local) = element.strip_prefix("lip=") {
                line.local = Some(bounded(local));
            } else if let Some(failure) = element.strip_prefix("TLS handshaking: ") {
                line.handshake_failure = Some(failure.to_string());
            } else if let Some(tls) = negotiated_tls(element) {
                line.tls = Some(tls);
            }
        }
        if line.handshake_failure.is_none() && head.contains("SSL_accept() failed: ") {
            line.handshake_failure = head
                .split_once("SSL_accept() failed: ")
                .map(|(_, why)| why.split(" (").next().unwrap_or(why).to_string());
        }
        Some(line)
    }
}

/// The `, `-separated elements of a login line. `user=<...>` may hold `, ` itself (a user name
/// is the client's text), so it runs to a `>` that ends the element.
struct Elements<'a>(&'a str);

impl<'a> Iterator for Elements<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        if self.0.is_empty() {
            return None;
        }
        let end = if self.0.starts_with("user=<") || self.0.starts_with("session=<") {
            self.0.find(">, ").map(|at| at + 1)
        } else {
            self.0.find(", ")
        };
        let (element, rest) = match end {
            Some(end) => (
                &self.0[..end],
                self.0[end..].strip_prefix(", ").unwrap_or(""),
            ),
            None => (self.0, ""),
        };
        self.0 = rest;
        Some(element)
    }
}

#[cfg(test)]
mod tests {
    use time::UtcOffset;

    use super::*;

    fn read(lines: &[&str]) -> (Vec<LineKind>, Vec<Evidence>) {
        let mut reader = DovecotLog::new(LogClock::new(2026, UtcOffset::UTC), TlsVersion::Tls12);
        let mut out = Vec::new();
        let kinds = lines
            .iter()
            .map(|l| reader.read_line(l.as_bytes(), &mut out))
            .collect();
        (kinds, out)
    }

    #[test]
    fn a_tls_login_gives_version_cipher_user_and_addresses() {
        let (kinds, out) = read(&["Dec 03 05:43:30 imap-login: Info: Login: user=<alice>, method=PLAIN, rip=192.0.2.7, lip=192.0.2.1, mpid=7008, TLS, TLSv1 with cipher ECDHE-RSA-AES256-SHA (256/256 bits), session=<1/dQPbRhwtp/AAAB>"]);
        assert_eq!(kinds, [LineKind::Used]);
        let record = &out[0].record;
        assert_eq!(record.source, Source::DovecotLog);
        assert_eq!(record.protocol, "imap");
        assert_eq!(record.client_addr, "192.0.2.7".parse::<IpAddr>().unwrap());
        assert_eq!(record.upstream, "192.0.2.1");
        assert_eq!(record.login.as_deref(), Some("alice"));
        assert_eq!(record.tls_version, Some(TlsVersion::Tls10));
        assert_eq!(record.offered_max_tls, Some(TlsVersion::Tls10));
        assert_eq!(record.tls_cipher.as_deref(), Some("ECDHE-RSA-AES256-SHA"));
        assert_eq!(record.outcome, Outcome::Ok);
    }

    #[test]
    fn syslog_and_journald_forms_read_alike() {
        let (kinds, out) = read(&[
            "Dec  3 05:43:30 mail dovecot: pop3-login: Login: user=<bob>, method=PLAIN, rip=2001:db8::7, lip=2001:db8::1, mpid=1, TLS, TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits), session=<x>",
            "2026-12-03T05:43:30.123456+00:00 mail dovecot[812]: imap-login: Login: user=<bob>, method=PLAIN, rip=192.0.2.9, lip=192.0.2.1, mpid=2, secured, session=<y>",
        ]);
        assert_eq!(kinds, [LineKind::Used, LineKind::Used]);
        assert_eq!(out[0].record.protocol, "pop3");
        assert_eq!(out[0].record.tls_version, Some(TlsVersion::Tls13));
        assert_eq!(out[0].record.offered_max_tls, None);
        assert_eq!(out[1].record.tls_version, None, "secured is not TLS");
        assert_eq!(out[1].record.login.as_deref(), Some("bob"));
    }

    #[test]
    fn refused_handshakes_name_the_reason_and_what_the_client_offered() {
        let (_, out) = read(&[
            "Dec 03 05:43:33 imap-login: Info: Disconnected: Connection closed: SSL_accept() failed: error:0A000102:SSL routines::unsupported protocol (no auth attempts in 0 secs): user=<>, rip=192.0.2.8, lip=192.0.2.1, TLS handshaking: SSL_accept() failed: error:0A000102:SSL routines::unsupported protocol, session=<ixpw>",
            "Dec 03 05:43:34 imap-login: Info: Disconnected: Connection closed: SSL_accept() failed: error:0A0000C1:SSL routines::no shared cipher (no auth attempts in 0 secs): user=<>, rip=192.0.2.8, lip=192.0.2.1, TLS handshaking: SSL_accept() failed: error:0A0000C1:SSL routines::no shared cipher, session=<PW9>",
            "Dec 03 05:43:35 imap-login: Disconnected (no auth attempts in 0 secs): user=<>, rip=192.0.2.8, lip=192.0.2.1, TLS handshaking: SSL_accept() failed: error:1417102B:SSL routines:tls_process_client_hello:version too low, session=<q>",
        ]);
        assert_eq!(out.len(), 3);
        assert_eq!(out[0].record.outcome, Outcome::ClientTlsFailed);
        assert_eq!(
            out[0].record.detail.as_deref(),
            Some("unsupported protocol")
        );
        assert_eq!(out[0].record.offered_max_tls, Some(TlsVersion::Tls11));
        assert_eq!(out[1].record.detail.as_deref(), Some("no shared cipher"));
        assert_eq!(out[1].record.offered_max_tls, None);
        assert_eq!(out[2].record.detail.as_deref(), Some("version too low"));
        assert_eq!(out[2].record.login, None);
    }

    #[test]
    fn failed_logins_and_plaintext_logins() {
        let (_, out) = read(&[
            "Dec 03 05:43:31 imap-login: Info: Disconnected: Aborted login by logging out (auth failed, 1 attempts in 0 secs): user=<alice>, method=PLAIN, rip=127.0.0.1, lip=127.0.0.1, TLS, TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits), session=<U6hY>",
            "Dec 03 05:43:39 pop3-login: Info: Login: user=<alice>, method=PLAIN, rip=127.0.0.1, lip=127.0.0.1, mpid=7823, secured, session=<ZwfW>",
            "Dec 03 05:43:40 imap-login: Info: Disconnected (tried to use disallowed plaintext auth): user=<>, rip=192.0.2.4, lip=192.0.2.1, session=<a>",
        ]);
        assert_eq!(out[0].record.outcome, Outcome::AuthFailed);
        assert_eq!(out[0].record.login.as_deref(), Some("alice"));
        assert_eq!(out[1].record.tls_version, None);
        assert_eq!(out[1].record.outcome, Outcome::Ok);
        assert_eq!(out[2].record.outcome, Outcome::AuthFailed);
        assert_eq!(out[2].record.login, None);
    }

    #[test]
    fn other_lines_and_broken_lines_are_told_apart() {
        let (kinds, out) = read(&[
            "Dec 03 05:43:30 master: Info: Dovecot v2.3.19.1 starting up for imap, pop3",
            "Dec 03 05:43:30 imap(alice)<7008><1/dQ>: Info: Disconnected: Logged out in=8 out=468",
            "Dec 03 05:43:30 imap-login: Info: Disconnected: Aborted login by logging out (no auth attempts in 0 secs): user=<>, rip=127.0.0.1, lip=127.0.0.1, secured, session=<G>",
            "garbage",
            "Dec 03 05:43:30 imap-login: Info: Login: user=<alice>, method=PLAIN, rip=not-an-address, TLS",
            "Dec 03 05:43:30 imap-login: Info: Login: user=<a, b>, rip=192.0.2.1, secured, session=<z>",
        ]);
        assert_eq!(
            kinds,
            [
                LineKind::Other,
                LineKind::Other,
                LineKind::Used,
                LineKind::NotUnderstood,
                LineKind::NotUnderstood,
                LineKind::Used,
            ]
        );
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].record.login.as_deref(), Some("a, b"));
    }

    #[test]
    fn the_same_lines_read_again_give_the_same_digests() {
        let lines = [
            "Dec 03 05:43:39 pop3-login: Info: Login: user=<alice>, method=PLAIN, rip=127.0.0.1, lip=127.0.0.1, mpid=7823, secured, session=<ZwfW>",
            "Dec 03 05:43:39 pop3-login: Info: Login: user=<alice>, method=PLAIN, rip=127.0.0.1, lip=127.0.0.1, mpid=7823, secured, session=<ZwfW>",
        ];
        let (_, first) = read(&lines);
        let (_, second) = read(&lines);
        assert_eq!(first, second);
        assert_ne!(first[0].digest, first[1].digest);
    }
}
