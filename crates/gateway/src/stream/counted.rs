//! Counts the bytes that cross a stream, so the session record has them even when the
//! connection ends with an error.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Bytes that crossed a stream so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ByteCounts {
    pub read: u64,
    pub written: u64,
}

/// Wraps a stream and counts bytes read from it and written to it.
pub struct Counted<S> {
    inner: S,
    pub counts: ByteCounts,
}

impl<S> Counted<S> {
    /// Wraps `inner`, going on from `counts` (a stream upgraded to TLS keeps its tally).
    pub fn with_counts(inner: S, counts: ByteCounts) -> Self {
        Counted { inner, counts }
    }

    /// Gives the stream back with its tally, e.g. to wrap it in TLS.
    pub fn into_parts(self) -> (S, ByteCounts) {
        (self.inner, self.counts)
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        self.counts.read += (buf.filled().len() - before) as u64;
        poll
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = poll {
            self.counts.written += n as u64;
        }
        poll
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
