//! Counts the bytes that cross a stream. The tally is shared with the session's owner, so the
//! record has the counts however the session ends: an error, a timeout, or the gateway
//! dropping the session at shutdown.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Bytes that crossed a stream so far.
#[derive(Debug, Default)]
pub(crate) struct ByteTally {
    read: AtomicU64,
    written: AtomicU64,
}

impl ByteTally {
    pub(crate) fn read(&self) -> u64 {
        self.read.load(Ordering::Relaxed)
    }

    pub(crate) fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }
}

/// Wraps a stream and counts bytes read from it and written to it.
pub(crate) struct Counted<S> {
    inner: S,
    tally: Arc<ByteTally>,
}

impl<S> Counted<S> {
    /// Wraps `inner`, adding to `tally` (a stream upgraded to TLS keeps counting on it).
    pub(crate) fn new(inner: S, tally: Arc<ByteTally>) -> Self {
        Counted { inner, tally }
    }

    /// Gives the stream back with its tally, e.g. to wrap it in TLS.
    pub(crate) fn into_parts(self) -> (S, Arc<ByteTally>) {
        (self.inner, self.tally)
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
        let n = (buf.filled().len() - before) as u64;
        if n > 0 {
            self.tally.read.fetch_add(n, Ordering::Relaxed);
        }
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
            self.tally.written.fetch_add(n as u64, Ordering::Relaxed);
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
