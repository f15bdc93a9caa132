//! The server responses the upstream login has to tell apart: status responses (tagged or not),
//! CAPABILITY data and continuation requests. Other untagged data is recognised only as such.

use super::grammar::{is_atom_char, Reader};

/// One response line from the upstream.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Response {
    /// `+ ...`, with the text after `+ `: empty for a plain go-ahead, a base64 challenge
    /// in a SASL exchange (a bearer exchange's failure status).
    Continue(Vec<u8>),
    /// `tag OK|NO|BAD text` or `* OK|NO|BAD|PREAUTH|BYE text`.
    Status {
        tag: Option<String>,
        status: Status,
        /// Everything after the status word, response code included.
        text: String,
        /// The names of a `[CAPABILITY ...]` response code, if there is one.
        capabilities: Option<Vec<String>>,
    },
    /// `* CAPABILITY ...`, names upper-cased.
    Capability(Vec<String>),
    /// Any other untagged response (`* ID ...`, `* ENABLED`, ...).
    OtherData,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Status {
    Ok,
    No,
    Bad,
    PreAuth,
    Bye,
}

/// Reads one line (ending included); `None` when it is no IMAP server response.
pub(super) fn parse(line: &[u8]) -> Option<Response> {
    let mut reader = Reader::new(line);
    if reader.eat(b'+') {
        reader.eat(b' ');
        return Some(Response::Continue(reader.rest_of_line().to_vec()));
    }
    let tag = match reader.eat(b'*') {
        true => None,
        false => Some(reader.tag()?.to_owned()),
    };
    reader.sp()?;
    let word = reader.atom()?.to_ascii_uppercase();
    let status = match (&word[..], &tag) {
        (b"OK", _) => Status::Ok,
        (b"NO", _) => Status::No,
        (b"BAD", _) => Status::Bad,
        (b"PREAUTH", None) => Status::PreAuth,
        (b"BYE", None) => Status::Bye,
        (b"CAPABILITY", None) => {
            reader.eat(b' ');
            return Some(Response::Capability(names(reader.rest_of_line())));
        }
        (_, None) => return Some(Response::OtherData),
        (_, Some(_)) => return None,
    };
    // Some servers send a bare `tag OK`; RFC 3501 wants text, but nothing is lost without it.
    reader.eat(b' ');
    let text = reader.rest_of_line();
    let capabilities = capability_code(text);
    Some(Response::Status {
        tag,
        status,
        text: String::from_utf8_lossy(text).into_owned(),
        capabilities,
    })
}

/// The names in a leading `[CAPABILITY a b c]` response code.
fn capability_code(text: &[u8]) -> Option<Vec<String>> {
    let mut reader = Reader::new(text);
    reader.expect(b'[')?;
    if !reader.keyword(b"CAPABILITY") {
        return None;
    }
    let inside = reader.rest_of_line();
    let end = inside.iter().position(|&b| b == b']')?;
    Some(names(&inside[..end]))
}

/// Space-separated capability names, upper-cased; anything that is not an atom is skipped.
fn names(list: &[u8]) -> Vec<String> {
    list.split(|&b| b == b' ')
        .filter(|name| !name.is_empty() && name.iter().all(|&b| is_atom_char(b)))
        .map(|name| String::from_utf8_lossy(name).to_ascii_uppercase())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn reads_greetings() {
        assert_eq!(
            parse(b"* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN] Dovecot ready.\r\n"),
            Some(Response::Status {
                tag: None,
                status: Status::Ok,
                text: "[CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN] Dovecot ready.".into(),
                capabilities: Some(caps(&["IMAP4REV1", "SASL-IR", "AUTH=PLAIN"])),
            })
        );
        let exchange = b"* OK The Microsoft Exchange IMAP4 service is ready. [TQBOADIA]\r\n";
        assert!(matches!(
            parse(exchange),
            Some(Response::Status {
                tag: None,
                status: Status::Ok,
                capabilities: None,
                ..
            })
        ));
        assert!(matches!(
            parse(b"* PREAUTH hi\r\n"),
            Some(Response::Status {
                status: Status::PreAuth,
                ..
            })
        ));
    }

    #[test]
    fn reads_tagged_and_untagged_lines() {
        assert_eq!(
            parse(b"* CAPABILITY IMAP4 imap4rev1 AUTH=PLAIN\r\n"),
            Some(Response::Capability(caps(&[
                "IMAP4",
                "IMAP4REV1",
                "AUTH=PLAIN"
            ])))
        );
        assert_eq!(
            parse(b"m1 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"),
            Some(Response::Status {
                tag: Some("m1".into()),
                status: Status::No,
                text: "[AUTHENTICATIONFAILED] Authentication failed.".into(),
                capabilities: None,
            })
        );
        assert_eq!(
            parse(b"+ AGJvYg==\r\n"),
            Some(Response::Continue(b"AGJvYg==".to_vec()))
        );
        assert_eq!(parse(b"+\r\n"), Some(Response::Continue(vec![])));
        assert_eq!(parse(b"+ \r\n"), Some(Response::Continue(vec![])));
        assert_eq!(parse(b"* ID NIL\r\n"), Some(Response::OtherData));
        assert_eq!(parse(b"m1 BYE x\r\n"), None);
        assert_eq!(parse(b"m1\r\n"), None);
        assert_eq!(parse(b"\r\n"), None);
    }
}
