//! What an SMTP session's record learns from the bytes copied after login: the envelope sender
//! of its first transaction, and the number of messages the upstream accepted.
//!
//! The sender is read from the first few command lines only. The count reads both directions
//! for the whole session (commands, and replies, to match each reply to what it answers), but
//! keeps no message: bodies are only searched for their ending line and BDAT chunks are
//! skipped by their size (see `proto::smtp::AcceptedMessages`). IMAP and POP3 sessions have no
//! watch, and their copy is a plain one.

use std::io;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{ready, Context, Poll};

use proto::smtp::{AcceptedMessages, FirstSender, SenderWatch};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::facts::{Fact, Facts};

/// The watches of one SMTP session after its login.
pub(crate) struct SubmissionWatch {
    /// Dropped once it has concluded.
    sender: Option<FirstSender>,
    messages: AcceptedMessages,
}

impl SubmissionWatch {
    pub(crate) fn new() -> Self {
        SubmissionWatch {
            sender: Some(FirstSender::default()),
            messages: AcceptedMessages::default(),
        }
    }
}

/// Which way bytes go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Direction {
    /// From the client, to the upstream.
    Upstream,
    /// From the upstream, to the client.
    ToClient,
}

/// A session's watch (`None` for protocols without one) and the facts it reports to, shared by
/// both directions of the splice.
pub(super) struct Watched<'f, 'r> {
    watch: Option<SubmissionWatch>,
    facts: &'f mut Facts<'r>,
}

impl<'f, 'r> Watched<'f, 'r> {
    /// Starts watching; a session with a watch has submitted no message yet.
    pub(super) fn new(watch: Option<SubmissionWatch>, facts: &'f mut Facts<'r>) -> Self {
        if watch.is_some() {
            facts.note(Fact::MessagesSubmitted(0));
        }
        Watched { watch, facts }
    }

    /// Shows the watch bytes going one `direction`, noting what they teach as soon as it is
    /// known, so a session cut short by a shutdown still records it.
    pub(super) fn saw(&mut self, direction: Direction, bytes: &[u8]) {
        let Some(watch) = self.watch.as_mut() else {
            return;
        };
        if bytes.is_empty() {
            return;
        }
        let before = watch.messages.accepted();
        match direction {
            Direction::Upstream => {
                watch.messages.from_client(bytes);
                if let Some(sender) = watch.sender.as_mut() {
                    match sender.feed(bytes) {
                        SenderWatch::Watching => {}
                        SenderWatch::Found(address) => {
                            self.facts.note(Fact::EnvelopeSender(address));
                            watch.sender = None;
                        }
                        SenderWatch::GaveUp => watch.sender = None,
                    }
                }
            }
            Direction::ToClient => watch.messages.from_upstream(bytes),
        }
        let after = watch.messages.accepted();
        if after != before {
            self.facts.note(Fact::MessagesSubmitted(after));
        }
    }
}

/// One side of the splice, showing what is read from it to the session's watch.
pub(super) struct WatchedStream<'s, 'w, 'f, 'r, S> {
    pub stream: &'s mut S,
    /// The direction of the bytes read from `stream`.
    pub direction: Direction,
    pub watched: &'w Mutex<Watched<'f, 'r>>,
}

impl<S: AsyncRead + Unpin> AsyncRead for WatchedStream<'_, '_, '_, '_, S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        ready!(Pin::new(&mut *this.stream).poll_read(cx, buf))?;
        // The two directions are polled by one task, so the lock is never contended.
        this.watched
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .saw(this.direction, &buf.filled()[before..]);
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WatchedStream<'_, '_, '_, '_, S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.get_mut().stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}
