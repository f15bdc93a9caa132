//! Arbitrary bytes as a server's reply to a probe hello. Parsing must never panic, and
//! reading more bytes may only complete an answer: `Incomplete` may become anything, and
//! certificates still `Pending` may become a chain or an error, but nothing else may change
//! (a `Malformed` reason may name another lie than the one a shorter read saw first).
//!
//! Input layout: two bytes (big-endian) choosing where to cut the reply, then the reply.

#![no_main]

use libfuzzer_sys::fuzz_target;
use wire::{parse_server_reply, suite_name, Certificates, ReplyError, ServerReply};

type Reply = Result<ServerReply, ReplyError>;

fuzz_target!(|data: &[u8]| {
    let [high, low, ref reply @ ..] = *data else {
        return;
    };
    let cut = usize::from(u16::from_be_bytes([high, low]));
    let whole = parse_server_reply(reply);
    if let Ok(ServerReply::Hello(hello)) = &whole {
        let _ = (
            hello.version(),
            hello.is_hello_retry_request(),
            hello.signals_downgrade(),
        );
        let _ = suite_name(hello.cipher_suite);
    }
    let prefix = &reply[..cut.min(reply.len())];
    match parse_server_reply(prefix) {
        Err(ReplyError::Incomplete) => {}
        Ok(ServerReply::Hello(mut partial)) if partial.certificates == Certificates::Pending => {
            if let Ok(ServerReply::Hello(hello)) = &whole {
                partial.certificates = hello.certificates.clone();
                assert_eq!(&partial, hello);
            } else {
                assert!(whole.is_err(), "a pending hello became {whole:?}");
            }
        }
        early => assert_eq!(
            verdict(early),
            verdict(whole),
            "a prefix of {} bytes answered differently",
            prefix.len()
        ),
    }
});

fn verdict(result: Reply) -> Reply {
    result.map_err(|e| match e {
        ReplyError::Malformed(_) => ReplyError::Malformed(String::new()),
        other => other,
    })
}
