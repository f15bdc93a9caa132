//! A stream that first replays bytes already read from it. The gateway reads a client's
//! ClientHello itself (to record what the client offered) and then hands the same bytes to
//! OpenSSL.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};

/// Wraps `inner`, serving `replay` before reading from it.
pub struct Rewind<S> {
    replay: Vec<u8>,
    pos: usize,
    inner: S,
}

impl<S> Rewind<S> {
    pub fn new(inner: S) -> Self {
        Rewind {
            replay: Vec::new(),
            pos: 0,
            inner,
        }
    }

    /// Queues `bytes` to be read again before anything new from the socket.
    pub fn rewind(&mut self, bytes: Vec<u8>) {
        let mut pending = self.replay.split_off(self.pos);
        if pending.is_empty() {
            self.replay = bytes;
        } else {
            let mut joined = bytes;
            joined.append(&mut pending);
            self.replay = joined;
        }
        self.pos = 0;
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Rewind<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.pos < this.replay.len() {
            let n = buf.remaining().min(this.replay.len() - this.pos);
            buf.put_slice(&this.replay[this.pos..this.pos + n]);
            this.pos += n;
            if this.pos == this.replay.len() {
                // Free the replay buffer as soon as it is spent: sessions live for hours.
                this.replay = Vec::new();
                this.pos = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

writes_pass_through!(Rewind);

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn replays_before_reading_on() {
        let (mut far, near) = tokio::io::duplex(64);
        let mut stream = Rewind::new(near);
        stream.rewind(b"hello ".to_vec());
        tokio::io::AsyncWriteExt::write_all(&mut far, b"world")
            .await
            .unwrap();
        drop(far);
        let mut all = Vec::new();
        stream.read_to_end(&mut all).await.unwrap();
        assert_eq!(all, b"hello world");
    }

    #[tokio::test]
    async fn a_second_rewind_goes_before_unread_bytes() {
        let (_far, near) = tokio::io::duplex(64);
        let mut stream = Rewind::new(near);
        stream.rewind(b"cd".to_vec());
        stream.rewind(b"ab".to_vec());
        let mut four = [0u8; 4];
        stream.read_exact(&mut four).await.unwrap();
        assert_eq!(&four, b"abcd");
    }
}
