//! The POP3 commands a client may send before login, parsed from one line.

use crate::Secret;

/// One command line, understood as far as the pre-auth dialogue needs.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Command {
    Capa,
    Stls,
    Quit,
    User(String),
    /// `PASS`: everything after the single space, spaces included (RFC 1939 section 7).
    Pass(Secret),
    /// Bare `AUTH`: list the mechanisms (the pre-RFC 5034 form some clients still send).
    AuthList,
    /// `AUTH` with a mechanism (upper-cased) and its base64 initial response when one was sent
    /// (empty for `=`, RFC 5034 section 4).
    Auth {
        mechanism: String,
        initial_response: Option<Secret>,
    },
    /// A TRANSACTION-state command, valid only after login.
    AfterLogin,
    Apop,
    Unknown,
    /// A known command with unusable arguments; the text says what is wrong.
    Malformed(&'static str),
}

/// Parses one command line (without its ending). Keywords are case-insensitive (RFC 1939
/// section 3).
pub(super) fn parse(line: &[u8]) -> Command {
    // A NUL or a stray CR would be cut or reinterpreted by the upstream, so the command could
    // not be forwarded as the client meant it.
    if line.iter().any(|&b| b == 0 || b == b'\r') {
        return Command::Malformed("the line holds a NUL byte or a stray CR");
    }
    let (keyword, args) = match line.iter().position(|&b| b == b' ') {
        Some(space) => (&line[..space], Some(&line[space + 1..])),
        None => (line, None),
    };
    match keyword.to_ascii_uppercase().as_slice() {
        b"CAPA" => without_args(args, Command::Capa),
        b"STLS" => without_args(args, Command::Stls),
        b"QUIT" => without_args(args, Command::Quit),
        b"USER" => user(args),
        b"PASS" => match args {
            Some(password) if !password.is_empty() => Command::Pass(Secret::new(password)),
            _ => Command::Malformed("PASS needs a password"),
        },
        b"AUTH" => auth(args),
        b"NOOP" | b"STAT" | b"LIST" | b"RETR" | b"DELE" | b"RSET" | b"TOP" | b"UIDL" | b"LAST" => {
            Command::AfterLogin
        }
        b"APOP" => Command::Apop,
        _ => Command::Unknown,
    }
}

/// Trailing blanks are tolerated: some clients pad argument-less commands.
fn without_args(args: Option<&[u8]>, command: Command) -> Command {
    match args {
        Some(args) if args.iter().any(|&b| b != b' ' && b != b'\t') => {
            Command::Malformed("this command takes no arguments")
        }
        _ => command,
    }
}

fn user(args: Option<&[u8]>) -> Command {
    match args {
        Some(name) if !name.is_empty() => match String::from_utf8(name.to_vec()) {
            Ok(name) => Command::User(name),
            Err(_) => Command::Malformed("the user name is not UTF-8"),
        },
        _ => Command::Malformed("USER needs a name"),
    }
}

fn auth(args: Option<&[u8]>) -> Command {
    let Some(args) = args.filter(|a| !a.is_empty()) else {
        return Command::AuthList;
    };
    let (mechanism, initial) = match args.iter().position(|&b| b == b' ') {
        Some(space) => (&args[..space], &args[space + 1..]),
        None => (args, &[][..]),
    };
    let Ok(mechanism) = std::str::from_utf8(mechanism) else {
        return Command::Malformed("the mechanism name is not UTF-8");
    };
    let initial_response = match initial {
        [] => None,
        b"=" => Some(Secret::new(Vec::new())),
        _ if initial.contains(&b' ') => {
            return Command::Malformed("AUTH takes a mechanism and a single initial response")
        }
        _ => Some(Secret::new(initial)),
    };
    Command::Auth {
        mechanism: mechanism.to_ascii_uppercase(),
        initial_response,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_are_case_insensitive() {
        assert_eq!(parse(b"capa"), Command::Capa);
        assert_eq!(parse(b"StLs"), Command::Stls);
        assert_eq!(parse(b"quit"), Command::Quit);
        assert_eq!(parse(b"user bob"), Command::User("bob".into()));
        assert_eq!(parse(b"auth plain"), auth("PLAIN", None));
    }

    #[test]
    fn pass_keeps_every_byte_after_the_single_space() {
        let line = "PASS  s p\"a\\ss ü ".as_bytes();
        assert_eq!(parse(line), Command::Pass(Secret::new(&line[5..])));
        assert_eq!(parse(b"PASS"), Command::Malformed("PASS needs a password"));
        assert_eq!(parse(b"PASS "), Command::Malformed("PASS needs a password"));
    }

    #[test]
    fn user_needs_a_utf8_name() {
        assert_eq!(parse(b"USER"), Command::Malformed("USER needs a name"));
        assert_eq!(
            parse(b"USER \xff"),
            Command::Malformed("the user name is not UTF-8")
        );
        assert_eq!(parse(b"USER DOM\\b b"), Command::User("DOM\\b b".into()));
    }

    fn auth(mechanism: &str, initial: Option<&[u8]>) -> Command {
        Command::Auth {
            mechanism: mechanism.into(),
            initial_response: initial.map(Secret::new),
        }
    }

    #[test]
    fn auth_forms() {
        assert_eq!(parse(b"AUTH"), Command::AuthList);
        assert_eq!(parse(b"AUTH "), Command::AuthList);
        assert_eq!(parse(b"AUTH PLAIN "), auth("PLAIN", None));
        assert_eq!(
            parse(b"AUTH PLAIN AGJvYgBwdw=="),
            auth("PLAIN", Some(b"AGJvYgBwdw=="))
        );
        assert_eq!(parse(b"AUTH login ="), auth("LOGIN", Some(b"")));
        assert_eq!(
            parse(b"AUTH PLAIN a b"),
            Command::Malformed("AUTH takes a mechanism and a single initial response")
        );
        assert_eq!(parse(b"AUTH LOGIN"), auth("LOGIN", None));
        assert_eq!(parse(b"AUTH CRAM-MD5"), auth("CRAM-MD5", None));
        assert_eq!(
            parse(b"AUTH \xff"),
            Command::Malformed("the mechanism name is not UTF-8")
        );
    }

    #[test]
    fn argument_less_commands_tolerate_padding_only() {
        assert_eq!(parse(b"CAPA "), Command::Capa);
        assert_eq!(
            parse(b"QUIT x"),
            Command::Malformed("this command takes no arguments")
        );
    }

    #[test]
    fn refuses_nul_and_stray_cr() {
        let why = Command::Malformed("the line holds a NUL byte or a stray CR");
        assert_eq!(parse(b"PASS a\0b"), why);
        assert_eq!(parse(b"PASS a\rb"), why);
    }

    #[test]
    fn transaction_and_unknown_commands() {
        for line in [
            &b"NOOP"[..],
            b"STAT",
            b"LIST 1",
            b"RETR 1",
            b"UIDL",
            b"TOP 1 0",
            b"last",
        ] {
            assert_eq!(parse(line), Command::AfterLogin);
        }
        assert_eq!(
            parse(b"APOP bob c4c9334bac560ecc979e58001b3e22fb"),
            Command::Apop
        );
        assert_eq!(parse(b"EHLO x"), Command::Unknown);
        assert_eq!(parse(b""), Command::Unknown);
    }

    #[test]
    fn debug_output_hides_passwords() {
        let shown = format!("{:?}", parse(b"PASS hunter2"));
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
