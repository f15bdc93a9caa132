//! imap-codec as an oracle: for every LOGIN form both parsers read, they must read the same user
//! and password; what imap-codec refuses, this parser must refuse too. Two deliberate
//! leniencies stay out of these tables: raw UTF-8 inside quoted strings and bare LF line ends.

use imap_codec::decode::Decoder;
use imap_codec::imap_types::command::CommandBody;
use imap_codec::CommandCodec;

use super::{parse, CommandKind};

/// Decodes a whole message (literal data included, so no continuation is involved).
fn codec_login(message: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let (rest, command) = CommandCodec::default().decode(message).ok()?;
    if !rest.is_empty() {
        return None;
    }
    match command.body {
        CommandBody::Login { username, password } => Some((
            username.as_ref().to_vec(),
            password.declassify().as_ref().to_vec(),
        )),
        _ => None,
    }
}

fn our_login(message: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    match parse(message).ok()?.kind {
        CommandKind::Login { user, password } => {
            Some((user.into_bytes(), password.expose().to_vec()))
        }
        _ => None,
    }
}

const LOGINS: &[&[u8]] = &[
    b"a LOGIN alice secret\r\n",
    b"A001 login ALICE s3cr3t!#$&'-./:;<=>?@[^_`|~\r\n",
    b"a LOGIN alice@example.com pass]word\r\n",
    b"a LOGIN \"alice\" \"secret\"\r\n",
    b"a LOGIN \"\" \"\"\r\n",
    b"a LOGIN \"al ice\" \"with space\"\r\n",
    b"a LOGIN alice \"quote \\\" inside\"\r\n",
    b"a LOGIN alice \"back \\\\ slash\"\r\n",
    b"a LOGIN alice \"\\\\\\\"\\\\\"\r\n",
    b"a LOGIN alice \"(){%*]\"\r\n",
    b"a LOGIN {5}\r\nalice {6}\r\nsecret\r\n",
    b"a LOGIN {5+}\r\nalice {6+}\r\nsecret\r\n",
    b"a LOGIN alice {11}\r\nsp ace\"\\{1}\r\n",
    b"a LOGIN {5}\r\nalice \"mixed\"\r\n",
    b"a LOGIN \"alice\" {0}\r\n\r\n",
    b"a LOGIN alice {8+}\r\np\xc3\xa4ss\xe2\x82\xac\r\n",
    b"a LOGIN {5}\r\nj\xc3\xb6rg {4}\r\n\r\n\r\n\r\n",
    b"a LOGIN j {4}\r\nab\rc\r\n",
    b"a LOGIN j \"ctl \x01 \t\"\r\n",
    b"tag.with]chars LOGIN alice secret\r\n",
];

const NOT_LOGINS: &[&[u8]] = &[
    b"a LOGIN alice\r\n",
    b"a LOGIN alice secret extra\r\n",
    b"a LOGIN  alice secret\r\n",
    b"a LOGIN alice secret \r\n",
    b"a LOGIN alice \"unterminated\r\n",
    b"a LOGIN alice \"bad \\x escape\"\r\n",
    b"a LOGIN alice {3}\r\na\0b\r\n",
    b"a LOGIN alice {5}\r\nabc\r\n",
    b"a LOGIN al%ce secret\r\n",
    b"a LOGIN alice sec*et\r\n",
    b"a LOGIN alice (secret)\r\n",
    b"a+b LOGIN alice secret\r\n",
    b"* LOGIN alice secret\r\n",
    b"LOGIN alice secret\r\n",
    b"a LOGIN alice {-1}\r\nsecret\r\n",
];

#[test]
fn reads_logins_like_imap_codec() {
    for message in LOGINS {
        let expected = codec_login(message);
        assert!(expected.is_some(), "imap-codec refuses {message:?}");
        assert_eq!(our_login(message), expected, "{message:?}");
    }
}

#[test]
fn refuses_what_imap_codec_refuses() {
    for message in NOT_LOGINS {
        assert_eq!(codec_login(message), None, "imap-codec reads {message:?}");
        assert_eq!(our_login(message), None, "{message:?}");
    }
}
