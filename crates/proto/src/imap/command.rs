//! The commands a client may send before login, parsed from one framed message. Anything not
//! understood exactly is a [`Rejection`], so a half-parsed LOGIN never reaches the upstream.

use super::grammar::Reader;
use crate::Secret;

/// RFC 2971 section 3.3: at most 30 field-value pairs, field names of at most 30 octets and
/// values of at most 1024. Beyond these the command is refused whole and nothing of it kept.
const MAX_ID_FIELDS: usize = 30;
const MAX_ID_NAME_BYTES: usize = 30;
const MAX_ID_VALUE_BYTES: usize = 1024;

/// A tagged command.
#[derive(Debug)]
pub(super) struct Command {
    pub(super) tag: String,
    pub(super) kind: CommandKind,
}

/// What a pre-login command asks for.
#[derive(Debug)]
pub(super) enum CommandKind {
    Capability,
    Noop,
    Logout,
    StartTls,
    /// RFC 2971 ID: field names and values (`None` for NIL).
    Id(Vec<(String, Option<String>)>),
    /// LOGIN's arguments as sent; the session decides whether they make [`crate::Credentials`].
    Login {
        user: String,
        password: Secret,
    },
    Authenticate {
        /// Upper-cased mechanism name.
        mechanism: String,
        /// The SASL-IR initial response as sent (base64), empty for `=`.
        initial_response: Option<Secret>,
    },
    /// Any other command; its arguments are not looked at.
    Other,
}

/// A message that is not a well-formed pre-login command; answered with BAD.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Rejection {
    /// `None` when not even the tag could be read (the reply is then untagged).
    pub(super) tag: Option<String>,
    pub(super) reason: &'static str,
}

/// The tag a message starts with, if it starts with a valid one.
pub(super) fn tag_of(message: &[u8]) -> Option<String> {
    let mut reader = Reader::new(message);
    let tag = reader.tag()?;
    reader.sp()?;
    Some(tag.to_owned())
}

pub(super) fn parse(message: &[u8]) -> Result<Command, Rejection> {
    let mut reader = Reader::new(message);
    let tag = tag_of(message).ok_or(Rejection {
        tag: None,
        reason: "Expected a tag and a command",
    })?;
    let reject = |reason| Rejection {
        tag: Some(tag.clone()),
        reason,
    };
    reader.tag();
    reader.sp();
    let name = reader.atom().ok_or(reject("Expected a command name"))?;
    let name = name.to_ascii_uppercase();
    let kind = match &name[..] {
        b"CAPABILITY" => no_arguments(&mut reader, CommandKind::Capability),
        b"NOOP" => no_arguments(&mut reader, CommandKind::Noop),
        b"LOGOUT" => no_arguments(&mut reader, CommandKind::Logout),
        b"STARTTLS" => no_arguments(&mut reader, CommandKind::StartTls),
        b"ID" => id(&mut reader),
        b"LOGIN" => login(&mut reader),
        b"AUTHENTICATE" => authenticate(&mut reader)
            .ok_or("AUTHENTICATE expects a mechanism and an optional base64 initial response"),
        _ => Ok(CommandKind::Other),
    };
    match kind {
        Ok(kind) => Ok(Command { tag, kind }),
        Err(reason) => Err(reject(reason)),
    }
}

fn no_arguments(reader: &mut Reader, kind: CommandKind) -> Result<CommandKind, &'static str> {
    reader
        .finish()
        .map(|()| kind)
        .ok_or("This command takes no arguments")
}

/// `"ID" SP ("(" [string SP nstring *(SP string SP nstring)] ")" / NIL)`, within the limits
/// of RFC 2971 section 3.3.
fn id(reader: &mut Reader) -> Result<CommandKind, &'static str> {
    let shape = "ID expects a parenthesised list of pairs or NIL";
    reader.sp().ok_or(shape)?;
    let mut pairs = Vec::new();
    if !reader.keyword(b"NIL") {
        reader.expect(b'(').ok_or(shape)?;
        while !reader.eat(b')') {
            if pairs.len() == MAX_ID_FIELDS {
                return Err("ID takes at most 30 field-value pairs (RFC 2971)");
            }
            if !pairs.is_empty() {
                reader.sp().ok_or(shape)?;
            }
            let field = lossy(reader.string().ok_or(shape)?);
            reader.sp().ok_or(shape)?;
            let value = reader.nstring().ok_or(shape)?.map(lossy);
            // Measured as kept: a byte that is not UTF-8 is kept as U+FFFD, three octets.
            if field.len() > MAX_ID_NAME_BYTES {
                return Err("ID field names are at most 30 octets long (RFC 2971)");
            }
            if value.as_ref().is_some_and(|v| v.len() > MAX_ID_VALUE_BYTES) {
                return Err("ID values are at most 1024 octets long (RFC 2971)");
            }
            pairs.push((field, value));
        }
    }
    reader.finish().ok_or(shape)?;
    Ok(CommandKind::Id(pairs))
}

fn lossy(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// `"LOGIN" SP astring SP astring`
fn login(reader: &mut Reader) -> Result<CommandKind, &'static str> {
    let shape = "LOGIN expects a user name and a password";
    let mut argument = || {
        reader.sp()?;
        reader.astring()
    };
    let user = argument().ok_or(shape)?;
    let password = argument().ok_or(shape)?;
    reader.finish().ok_or(shape)?;
    let user = String::from_utf8(user).map_err(|_| "The user name is not UTF-8")?;
    Ok(CommandKind::Login {
        user,
        password: Secret::new(password),
    })
}

/// `"AUTHENTICATE" SP auth-type [SP (base64 / "=")]` (RFC 4959)
fn authenticate(reader: &mut Reader) -> Option<CommandKind> {
    reader.sp()?;
    let mechanism = String::from_utf8(reader.atom()?.to_ascii_uppercase()).ok()?;
    let initial_response = match reader.eat(b' ') {
        true => {
            let b64 = reader
                .take_while1(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))?;
            Some(Secret::new(match b64 {
                b"=" => &[][..],
                b64 => b64,
            }))
        }
        false => None,
    };
    reader.finish()?;
    Some(CommandKind::Authenticate {
        mechanism,
        initial_response,
    })
}

#[cfg(test)]
mod oracle;

#[cfg(test)]
mod tests {
    use super::*;

    fn login_of(message: &[u8]) -> Option<(String, Vec<u8>)> {
        match parse(message).ok()?.kind {
            CommandKind::Login { user, password } => Some((user, password.expose().to_vec())),
            _ => None,
        }
    }

    #[test]
    fn reads_logins() {
        let cases: &[(&[u8], &str, &[u8])] = &[
            (b"a LOGIN alice secret\r\n", "alice", b"secret"),
            (
                b"a login \"al ice\" \"p \\\"q\\\\\"\r\n",
                "al ice",
                b"p \"q\\",
            ),
            (b"a LOGIN {5}\r\nalice {3+}\r\np w\r\n", "alice", b"p w"),
            (b"a LOGIN \"\" \"\"\n", "", b""),
            (
                "a LOGIN \"jörg\" \"pässwörd\"\r\n".as_bytes(),
                "jörg",
                "pässwörd".as_bytes(),
            ),
        ];
        for (message, user, password) in cases {
            assert_eq!(
                login_of(message),
                Some((user.to_string(), password.to_vec())),
                "{message:?}"
            );
        }
    }

    #[test]
    fn rejects_malformed_logins_with_their_tag() {
        for message in [
            &b"a LOGIN alice\r\n"[..],
            b"a LOGIN alice secret extra\r\n",
            b"a LOGIN alice  secret\r\n",
            b"a LOGIN alice secret \r\n",
            b"a LOGIN alice \"open\r\n",
            b"a LOGIN alice {3}\r\na\0b\r\n",
            b"a LOGIN {2}\r\n\xff\xfe pw\r\n",
            b"a LOGIN al(ice pw\r\n",
        ] {
            let rejection = parse(message).unwrap_err();
            assert_eq!(rejection.tag.as_deref(), Some("a"), "{message:?}");
        }
    }

    #[test]
    fn rejects_messages_without_a_tag() {
        for message in [
            &b"\r\n"[..],
            b" NOOP\r\n",
            b"a+b NOOP\r\n",
            b"a\r\n",
            b"*x NOOP\r\n",
        ] {
            assert_eq!(parse(message).unwrap_err().tag, None, "{message:?}");
        }
        assert_eq!(
            parse(b"a \r\n").unwrap_err(),
            Rejection {
                tag: Some("a".into()),
                reason: "Expected a command name"
            }
        );
    }

    #[test]
    fn reads_id_lists() {
        let id = |message: &[u8]| match parse(message).map(|c| c.kind) {
            Ok(CommandKind::Id(pairs)) => Some(pairs),
            _ => None,
        };
        assert_eq!(id(b"a ID NIL\r\n"), Some(vec![]));
        assert_eq!(id(b"a ID ()\r\n"), Some(vec![]));
        assert_eq!(
            id(b"a ID (\"name\" \"HP\" \"version\" NIL \"os\" {5}\r\nlinux)\r\n"),
            Some(vec![
                ("name".into(), Some("HP".into())),
                ("version".into(), None),
                ("os".into(), Some("linux".into())),
            ])
        );
        assert_eq!(id(b"a ID (\"name\")\r\n"), None);
        assert_eq!(id(b"a ID (\"a\" \"b\" )\r\n"), None);
        assert_eq!(id(b"a ID\r\n"), None);
    }

    #[test]
    fn id_within_rfc_2971_limits_is_read_and_beyond_them_refused() {
        let id_command = |pairs, name_len, value_len| {
            crate::testing::id_command("a", pairs, name_len, value_len).into_bytes()
        };
        let pairs = |message: &[u8]| match parse(message).map(|c| c.kind) {
            Ok(CommandKind::Id(pairs)) => Ok(pairs.len()),
            Ok(other) => panic!("{other:?}"),
            Err(rejection) => Err(rejection.reason),
        };
        assert_eq!(pairs(&id_command(30, 30, 1024)), Ok(30));
        assert_eq!(
            pairs(&id_command(31, 3, 1)),
            Err("ID takes at most 30 field-value pairs (RFC 2971)")
        );
        assert_eq!(
            pairs(&id_command(1, 31, 1)),
            Err("ID field names are at most 30 octets long (RFC 2971)")
        );
        assert_eq!(
            pairs(&id_command(1, 3, 1025)),
            Err("ID values are at most 1024 octets long (RFC 2971)")
        );
        // Counted in octets, not characters: 513 two-octet characters are 1026 octets.
        let wide = format!("a ID (\"name\" {{1026}}\r\n{})\r\n", "ü".repeat(513));
        assert_eq!(
            pairs(wide.as_bytes()),
            Err("ID values are at most 1024 octets long (RFC 2971)")
        );
        // Eleven bytes that are not UTF-8 would be kept as 33 octets of U+FFFD.
        let mangled = b"a ID (\"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\" NIL)\r\n";
        assert_eq!(
            pairs(mangled),
            Err("ID field names are at most 30 octets long (RFC 2971)")
        );
    }

    #[test]
    fn reads_authenticate() {
        let auth = |message: &[u8]| match parse(message).map(|c| c.kind) {
            Ok(CommandKind::Authenticate {
                mechanism,
                initial_response,
            }) => Some((mechanism, initial_response.map(|s| s.expose().to_vec()))),
            _ => None,
        };
        assert_eq!(
            auth(b"a authenticate plain\r\n"),
            Some(("PLAIN".into(), None))
        );
        assert_eq!(
            auth(b"a AUTHENTICATE PLAIN AGJvYgBwdw==\r\n"),
            Some(("PLAIN".into(), Some(b"AGJvYgBwdw==".to_vec())))
        );
        assert_eq!(
            auth(b"a AUTHENTICATE PLAIN =\r\n"),
            Some(("PLAIN".into(), Some(vec![])))
        );
        assert_eq!(auth(b"a AUTHENTICATE PLAIN \r\n"), None);
        assert_eq!(auth(b"a AUTHENTICATE\r\n"), None);
    }

    #[test]
    fn other_commands_keep_their_tag() {
        let command = parse(b"x1 select INBOX\r\n").unwrap();
        assert_eq!(command.tag, "x1");
        assert!(matches!(command.kind, CommandKind::Other));
        assert!(matches!(
            parse(b"t noop\r\n").unwrap().kind,
            CommandKind::Noop
        ));
        assert_eq!(
            parse(b"t NOOP now\r\n").unwrap_err().reason,
            "This command takes no arguments"
        );
    }
}
