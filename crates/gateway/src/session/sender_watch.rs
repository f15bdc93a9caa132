//! The envelope sender of an SMTP session's first transaction, read on its way upstream.
//!
//! Counting the messages submitted as well would mean following every transaction to its end:
//! DATA's end depends on the upstream's 354 (a refused DATA is followed by commands, not a
//! message), and BDAT's on chunk sizes, so both directions would be parsed for the whole
//! session, message bodies included. The splice stays a plain copy instead: only the first
//! few command lines after login are read, and after the first MAIL FROM nothing is.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use proto::smtp::{FirstSender, SenderWatch};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::facts::{Fact, Facts};

/// Feeds `bytes` the client sent upstream to the watch, noting the sender once it is found;
/// the watch is dropped as soon as it has concluded.
pub(super) fn watch_sender(watch: &mut Option<FirstSender>, facts: &mut Facts<'_>, bytes: &[u8]) {
    let Some(sender) = watch.as_mut() else {
        return;
    };
    if bytes.is_empty() {
        return;
    }
    match sender.feed(bytes) {
        SenderWatch::Watching => {}
        SenderWatch::Found(address) => {
            facts.note(Fact::EnvelopeSender(address));
            *watch = None;
        }
        SenderWatch::GaveUp => *watch = None,
    }
}

/// The client stream during the splice, showing what it reads to the sender watch while that
/// watches; then a plain pass-through (one `None` check per read).
pub(super) struct WatchedClient<'s, 'f, 'r, C> {
    pub client: &'s mut C,
    pub watch: Option<FirstSender>,
    pub facts: &'f mut Facts<'r>,
}

impl<C: AsyncRead + Unpin> AsyncRead for WatchedClient<'_, '_, '_, C> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        ready!(Pin::new(&mut *this.client).poll_read(cx, buf))?;
        watch_sender(&mut this.watch, this.facts, &buf.filled()[before..]);
        Poll::Ready(Ok(()))
    }
}

impl<C: AsyncWrite + Unpin> AsyncWrite for WatchedClient<'_, '_, '_, C> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.get_mut().client).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.get_mut().client).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.get_mut().client).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.get_mut().client).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.client.is_write_vectored()
    }
}
