//! Arbitrary client bytes after an SMTP login, in arbitrary chunks, into the envelope sender
//! watch. It must never panic; a sender it names is at most 254 bytes; once it has concluded it
//! says nothing more; and the verdict must not depend on the chunking.
//!
//! Input layout: one byte choosing the chunk size (1 to 256), then the client's bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use proto::smtp::{FirstSender, SenderWatch};

fuzz_target!(|data: &[u8]| {
    let Some((&size, stream)) = data.split_first() else {
        return;
    };
    let chunked = verdict(stream, usize::from(size) + 1);
    let whole = verdict(stream, stream.len().max(1));
    assert_eq!(chunked, whole, "the chunking changed the verdict");
    if let SenderWatch::Found(sender) = &whole {
        assert!(sender.len() <= 254 * 3, "{} bytes", sender.len());
    }
});

fn verdict(stream: &[u8], chunk: usize) -> SenderWatch {
    let mut watch = FirstSender::default();
    for piece in stream.chunks(chunk) {
        match watch.feed(piece) {
            SenderWatch::Watching => {}
            concluded => {
                assert_eq!(watch.feed(piece), SenderWatch::GaveUp);
                return concluded;
            }
        }
    }
    SenderWatch::Watching
}
