//! After login the gateway only copies bytes: no parsing, no literal buffering.
//!
//! The copy buffers exist only while bytes flow. Mail sessions spend nearly all their life idle
//! (a printer logged in, IMAP IDLE, a mail client between polls), and two 16 KiB buffers held
//! for the whole session were over half of an idle session's memory (bench/README.md, "Gateway").
//! So each direction takes a buffer when it starts to read and gives it back as soon as a read
//! would block with nothing left to write.

mod one_way;

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{ready, Poll};

use store::Outcome;
use tokio::io::{AsyncRead, AsyncWrite};

use super::SessionEnd;
use one_way::OneWay;

/// Per-direction copy buffer while data flows. One TLS record's worth keeps throughput at the
/// direct rate.
const SPLICE_BUFFER: usize = 16 * 1024;

/// Copies both ways until each side has closed its half (the other half is shut down as
/// soon as one side finishes).
pub(crate) async fn splice<C, U>(client: &mut C, upstream: &mut U) -> SessionEnd
where
    C: AsyncRead + AsyncWrite + Unpin,
    U: AsyncRead + AsyncWrite + Unpin,
{
    match copy_both_ways(client, upstream, SPLICE_BUFFER).await {
        Ok(_) => SessionEnd {
            outcome: Outcome::Ok,
            detail: None,
        },
        // A reset after login is how many devices hang up; the session still succeeded.
        Err(e) => SessionEnd::new(Outcome::Ok, format!("connection ended: {e}")),
    }
}

/// What `tokio::io::copy_bidirectional_with_sizes` does, with buffers that are freed while
/// idle. Returns the bytes copied a to b and b to a.
async fn copy_both_ways<A, B>(a: &mut A, b: &mut B, buffer: usize) -> io::Result<(u64, u64)>
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let mut a_to_b = OneWay::new(buffer);
    let mut b_to_a = OneWay::new(buffer);
    poll_fn(|cx| {
        let a_to_b = a_to_b.poll(cx, Pin::new(&mut *a), Pin::new(&mut *b))?;
        let b_to_a = b_to_a.poll(cx, Pin::new(&mut *b), Pin::new(&mut *a))?;
        // A finished direction keeps answering Ready, so returning early here is harmless.
        let a_to_b = ready!(a_to_b);
        let b_to_a = ready!(b_to_a);
        Poll::Ready(Ok((a_to_b, b_to_a)))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn copies_both_ways_and_ends_when_both_sides_close() {
        let (mut client, mut near_client) = tokio::io::duplex(1024);
        let (mut near_upstream, mut upstream) = tokio::io::duplex(1024);
        let splice =
            tokio::spawn(
                async move { copy_both_ways(&mut near_client, &mut near_upstream, 512).await },
            );

        // More than a buffer's worth each way, so the buffer is refilled and reused.
        let big: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let to_up = big.clone();
        let writer = tokio::spawn(async move {
            client.write_all(&to_up).await.unwrap();
            client.shutdown().await.unwrap();
            let mut back = Vec::new();
            client.read_to_end(&mut back).await.unwrap();
            back
        });
        let mut got = Vec::new();
        upstream.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, big);
        upstream.write_all(b"* BYE\r\n").await.unwrap();
        upstream.shutdown().await.unwrap();
        assert_eq!(writer.await.unwrap(), b"* BYE\r\n");
        let (up, down) = splice.await.unwrap().unwrap();
        assert_eq!((up, down), (big.len() as u64, 7));
    }
}
