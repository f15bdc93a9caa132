//! Arbitrary server bytes, in arbitrary chunks, into the scanner's STARTTLS dialogues. They
//! must never panic, never send before a reply is read whole (one command in flight), and
//! hand back as leftover only bytes the server sent.
//!
//! Input layout: one byte choosing the protocol, then chunks, each a length byte and bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use proto::starttls::{Action, Dialogue, Protocol};

fuzz_target!(|data: &[u8]| {
    let Some((&choice, mut rest)) = data.split_first() else {
        return;
    };
    let protocol = match choice % 3 {
        0 => Protocol::Imap,
        1 => Protocol::Pop3,
        _ => Protocol::Smtp,
    };
    let mut dialogue = Dialogue::new(protocol, "fuzz.example");
    let mut fed = Vec::new();
    loop {
        match dialogue.step() {
            Ok(Action::Send(bytes)) => {
                assert!(bytes.ends_with(b"\r\n"));
                assert_eq!(
                    bytes.iter().filter(|&&b| b == b'\n').count(),
                    1,
                    "one command"
                );
            }
            Ok(Action::Read) => {
                let Some((&len, tail)) = rest.split_first() else {
                    return;
                };
                let n = usize::from(len).min(tail.len());
                dialogue.receive(&tail[..n]);
                fed.extend_from_slice(&tail[..n]);
                rest = &tail[n..];
            }
            Ok(Action::StartTls { leftover }) => {
                assert!(fed.ends_with(&leftover));
                assert_eq!(dialogue.goodbye(), None);
                return;
            }
            Err(e) => {
                // Errors stick: asking again gives the same one.
                assert_eq!(dialogue.step(), Err(e));
                return;
            }
        }
    }
});
