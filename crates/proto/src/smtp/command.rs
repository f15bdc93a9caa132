//! The SMTP commands a client may send before it has authenticated, parsed from one line.

use crate::Secret;

/// One command line, understood as far as the pre-auth dialogue needs.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Command {
    /// `EHLO` with the client's name (not kept: the gateway never repeats it).
    Ehlo,
    Helo,
    StartTls,
    /// `AUTH` with a mechanism (upper-cased) and its base64 initial response when one was sent
    /// (empty for `=`, RFC 4954 section 4).
    Auth {
        mechanism: String,
        initial_response: Option<Secret>,
    },
    Rset,
    Noop,
    Quit,
    Help,
    /// `MAIL`: starts a transaction, which needs an authenticated session, or a listener that
    /// relays for devices that cannot authenticate.
    Mail,
    /// VRFY, EXPN, ETRN: need an authenticated session.
    NeedsAuth,
    /// RCPT or DATA: need a mail transaction, which cannot exist before authentication.
    NeedsTransaction,
    /// `BDAT size [LAST]`: refused like DATA, but its `size` bytes follow at once and must be
    /// skipped, not read as commands (RFC 3030 section 2).
    Bdat(u64),
    Unknown,
    /// A known command with unusable arguments; the text says what is wrong.
    Malformed(&'static str),
}

/// Parses one command line (without its ending). Keywords are case-insensitive (RFC 5321
/// section 2.4).
pub(super) fn parse(line: &[u8]) -> Command {
    // A NUL or a stray CR would be cut or reinterpreted further on; no command holds one.
    if line.iter().any(|&b| b == 0 || b == b'\r') {
        return Command::Malformed("the line holds a NUL byte or a stray CR");
    }
    let (keyword, args) = match line.iter().position(|&b| b == b' ') {
        Some(space) => (&line[..space], &line[space + 1..]),
        None => (line, &[][..]),
    };
    let blank = args.iter().all(|&b| b == b' ' || b == b'\t');
    match keyword.to_ascii_uppercase().as_slice() {
        b"EHLO" if blank => Command::Malformed("Syntax: EHLO hostname"),
        b"EHLO" => Command::Ehlo,
        b"HELO" if blank => Command::Malformed("Syntax: HELO hostname"),
        b"HELO" => Command::Helo,
        b"STARTTLS" if blank => Command::StartTls,
        b"STARTTLS" => Command::Malformed("Syntax: STARTTLS takes no arguments"),
        b"AUTH" => auth(args),
        b"RSET" if blank => Command::Rset,
        b"RSET" => Command::Malformed("Syntax: RSET takes no arguments"),
        b"NOOP" => Command::Noop,
        b"QUIT" if blank => Command::Quit,
        b"QUIT" => Command::Malformed("Syntax: QUIT takes no arguments"),
        b"HELP" => Command::Help,
        b"MAIL" => Command::Mail,
        b"VRFY" | b"EXPN" | b"ETRN" => Command::NeedsAuth,
        b"RCPT" | b"DATA" => Command::NeedsTransaction,
        b"BDAT" => bdat(args),
        _ => Command::Unknown,
    }
}

fn auth(args: &[u8]) -> Command {
    let mut words = args.split(|&b| b == b' ').filter(|w| !w.is_empty());
    let (Some(mechanism), initial, None) = (words.next(), words.next(), words.next()) else {
        return Command::Malformed("Syntax: AUTH mechanism [initial-response]");
    };
    let Ok(mechanism) = std::str::from_utf8(mechanism) else {
        return Command::Malformed("Syntax: the mechanism name is not UTF-8");
    };
    Command::Auth {
        mechanism: mechanism.to_ascii_uppercase(),
        initial_response: initial.map(|response| match response {
            b"=" => Secret::new(Vec::new()),
            _ => Secret::new(response),
        }),
    }
}

fn bdat(args: &[u8]) -> Command {
    let size = args
        .split(|&b| b == b' ')
        .find(|w| !w.is_empty())
        .and_then(|size| std::str::from_utf8(size).ok()?.parse().ok());
    match size {
        Some(size) => Command::Bdat(size),
        None => Command::Malformed("Syntax: BDAT size [LAST]"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(mechanism: &str, initial: Option<&[u8]>) -> Command {
        Command::Auth {
            mechanism: mechanism.into(),
            initial_response: initial.map(Secret::new),
        }
    }

    #[test]
    fn keywords_are_case_insensitive() {
        assert_eq!(parse(b"ehlo printer.local"), Command::Ehlo);
        assert_eq!(parse(b"Helo [10.0.0.9]"), Command::Helo);
        assert_eq!(parse(b"starttls"), Command::StartTls);
        assert_eq!(parse(b"auth login"), auth("LOGIN", None));
        assert_eq!(parse(b"rset"), Command::Rset);
        assert_eq!(parse(b"noop anything"), Command::Noop);
        assert_eq!(parse(b"quit"), Command::Quit);
        assert_eq!(parse(b"help me"), Command::Help);
    }

    #[test]
    fn hello_needs_a_name_and_starttls_none() {
        assert_eq!(parse(b"EHLO"), Command::Malformed("Syntax: EHLO hostname"));
        assert_eq!(
            parse(b"HELO  "),
            Command::Malformed("Syntax: HELO hostname")
        );
        assert_eq!(parse(b"STARTTLS "), Command::StartTls);
        assert_eq!(
            parse(b"STARTTLS now"),
            Command::Malformed("Syntax: STARTTLS takes no arguments")
        );
    }

    #[test]
    fn auth_forms() {
        assert_eq!(
            parse(b"AUTH PLAIN AGJvYgBwdw=="),
            auth("PLAIN", Some(b"AGJvYgBwdw=="))
        );
        assert_eq!(parse(b"AUTH PLAIN ="), auth("PLAIN", Some(b"")));
        assert_eq!(parse(b"AUTH  LOGIN  Ym9i "), auth("LOGIN", Some(b"Ym9i")));
        assert_eq!(parse(b"AUTH CRAM-MD5"), auth("CRAM-MD5", None));
        let syntax = Command::Malformed("Syntax: AUTH mechanism [initial-response]");
        assert_eq!(parse(b"AUTH"), syntax);
        assert_eq!(parse(b"AUTH PLAIN a b"), syntax);
        assert_eq!(
            parse(b"AUTH \xff"),
            Command::Malformed("Syntax: the mechanism name is not UTF-8")
        );
    }

    #[test]
    fn transaction_commands_and_bdat_sizes() {
        assert_eq!(parse(b"MAIL FROM:<a@b>"), Command::Mail);
        assert_eq!(parse(b"mail from:<a@b>"), Command::Mail);
        assert_eq!(parse(b"vrfy root"), Command::NeedsAuth);
        assert_eq!(parse(b"RCPT TO:<a@b>"), Command::NeedsTransaction);
        assert_eq!(parse(b"DATA"), Command::NeedsTransaction);
        assert_eq!(parse(b"BDAT 100 LAST"), Command::Bdat(100));
        assert_eq!(parse(b"BDAT 0"), Command::Bdat(0));
        assert_eq!(
            parse(b"BDAT x"),
            Command::Malformed("Syntax: BDAT size [LAST]")
        );
        assert_eq!(
            parse(b"BDAT"),
            Command::Malformed("Syntax: BDAT size [LAST]")
        );
        assert_eq!(parse(b"XYZZY"), Command::Unknown);
        assert_eq!(parse(b""), Command::Unknown);
    }

    #[test]
    fn refuses_nul_and_stray_cr() {
        let why = Command::Malformed("the line holds a NUL byte or a stray CR");
        assert_eq!(parse(b"AUTH PLAIN a\0b"), why);
        assert_eq!(parse(b"NOOP\r"), why);
    }

    #[test]
    fn debug_output_hides_initial_responses() {
        let shown = format!("{:?}", parse(b"AUTH PLAIN AGJvYgBodW50ZXIy"));
        assert!(!shown.contains("AGJvYgBodW50ZXIy"), "{shown}");
    }
}
