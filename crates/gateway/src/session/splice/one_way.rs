//! One direction of the splice: read into a buffer taken from the pool, write it on, give the
//! buffer back when the reader has nothing more for now, and at EOF shut the writer down.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::buffer_pool::{give_back, take_buffer};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Copying,
    ShuttingDown,
    Done,
}

/// One direction: read into the buffer, write it out, and at EOF shut the writer down.
pub(super) struct OneWay {
    /// `None` while idle: nothing buffered and the last read would have blocked.
    buf: Option<Box<[u8]>>,
    size: usize,
    /// Bytes `pos..cap` of `buf` are read and not yet written.
    pos: usize,
    cap: usize,
    copied: u64,
    read_done: bool,
    need_flush: bool,
    phase: Phase,
}

impl OneWay {
    pub(super) fn new(size: usize) -> Self {
        OneWay {
            buf: None,
            size,
            pos: 0,
            cap: 0,
            copied: 0,
            read_done: false,
            need_flush: false,
            phase: Phase::Copying,
        }
    }

    pub(super) fn poll<R, W>(
        &mut self,
        cx: &mut Context<'_>,
        mut reader: Pin<&mut R>,
        mut writer: Pin<&mut W>,
    ) -> Poll<io::Result<u64>>
    where
        R: AsyncRead + ?Sized,
        W: AsyncWrite + ?Sized,
    {
        loop {
            match self.phase {
                Phase::Copying => {
                    ready!(self.poll_copy(cx, reader.as_mut(), writer.as_mut()))?;
                    if let Some(buf) = self.buf.take() {
                        give_back(buf);
                    }
                    self.phase = Phase::ShuttingDown;
                }
                Phase::ShuttingDown => {
                    ready!(writer.as_mut().poll_shutdown(cx))?;
                    self.phase = Phase::Done;
                }
                Phase::Done => return Poll::Ready(Ok(self.copied)),
            }
        }
    }

    /// Copies until the reader's EOF has been written out and flushed.
    fn poll_copy<R, W>(
        &mut self,
        cx: &mut Context<'_>,
        mut reader: Pin<&mut R>,
        mut writer: Pin<&mut W>,
    ) -> Poll<io::Result<()>>
    where
        R: AsyncRead + ?Sized,
        W: AsyncWrite + ?Sized,
    {
        // A fast peer must not keep this task on its worker forever: take part in tokio's
        // cooperative budget, as tokio's own copy does.
        let coop = ready!(tokio::task::coop::poll_proceed(cx));
        loop {
            if !self.read_done && self.cap < self.size {
                match self.poll_fill(cx, reader.as_mut()) {
                    Poll::Ready(Ok(())) => coop.made_progress(),
                    Poll::Ready(Err(e)) => {
                        coop.made_progress();
                        return Poll::Ready(Err(e));
                    }
                    Poll::Pending if self.pos == self.cap => {
                        // Nothing to read and nothing to write: idle. The buffer goes back
                        // before the writer is flushed, which needs none of it.
                        self.release();
                        if self.need_flush {
                            ready!(writer.as_mut().poll_flush(cx))?;
                            coop.made_progress();
                            self.need_flush = false;
                        }
                        return Poll::Pending;
                    }
                    // Bytes are waiting to be written: write them while the reader waits.
                    Poll::Pending => {}
                }
            }

            while self.pos < self.cap {
                let n = ready!(self.poll_write_buf(cx, reader.as_mut(), writer.as_mut()))?;
                coop.made_progress();
                if n == 0 {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "write zero byte into writer",
                    )));
                }
                self.pos += n;
                self.copied += n as u64;
                self.need_flush = true;
            }
            self.pos = 0;
            self.cap = 0;

            if self.read_done {
                ready!(writer.as_mut().poll_flush(cx))?;
                coop.made_progress();
                return Poll::Ready(Ok(()));
            }
        }
    }

    /// Reads once into the free end of the buffer, allocating the buffer if it was released.
    fn poll_fill<R>(
        &mut self,
        cx: &mut Context<'_>,
        mut reader: Pin<&mut R>,
    ) -> Poll<io::Result<()>>
    where
        R: AsyncRead + ?Sized,
    {
        let size = self.size;
        let buf = self.buf.get_or_insert_with(|| take_buffer(size));
        let mut read_buf = ReadBuf::new(buf);
        read_buf.set_filled(self.cap);
        let result = loop {
            match reader.as_mut().poll_read(cx, &mut read_buf) {
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        if let Poll::Ready(Ok(())) = result {
            let filled = read_buf.filled().len();
            self.read_done = filled == self.cap;
            self.cap = filled;
        }
        result
    }

    /// Writes from the buffer; while the writer is blocked, tops the buffer up from the reader
    /// so the next write is larger.
    fn poll_write_buf<R, W>(
        &mut self,
        cx: &mut Context<'_>,
        mut reader: Pin<&mut R>,
        mut writer: Pin<&mut W>,
    ) -> Poll<io::Result<usize>>
    where
        R: AsyncRead + ?Sized,
        W: AsyncWrite + ?Sized,
    {
        loop {
            let buf = self
                .buf
                .as_deref()
                .expect("bytes to write live in the buffer");
            match writer.as_mut().poll_write(cx, &buf[self.pos..self.cap]) {
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
                Poll::Pending => {
                    if !self.read_done && self.cap < self.size {
                        ready!(self.poll_fill(cx, reader.as_mut()))?;
                    }
                    return Poll::Pending;
                }
                other => return other,
            }
        }
    }

    fn release(&mut self) {
        debug_assert_eq!(self.pos, self.cap, "only an empty buffer is released");
        if let Some(buf) = self.buf.take() {
            give_back(buf);
        }
        self.pos = 0;
        self.cap = 0;
    }

    #[cfg(test)]
    fn holds_buffer(&self) -> bool {
        self.buf.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::splice::SPLICE_BUFFER;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Polls `way` once by hand, as the runtime would after a wake-up.
    fn poll_once(
        way: &mut OneWay,
        from: &mut tokio::io::DuplexStream,
        to: &mut tokio::io::DuplexStream,
    ) -> Poll<io::Result<u64>> {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        way.poll(&mut cx, Pin::new(from), Pin::new(to))
    }

    #[tokio::test]
    async fn an_idle_direction_holds_no_buffer() {
        let (mut far, mut near) = tokio::io::duplex(64);
        let (mut sink_near, mut sink_far) = tokio::io::duplex(64);
        let mut way = OneWay::new(SPLICE_BUFFER);

        assert!(poll_once(&mut way, &mut near, &mut sink_near).is_pending());
        assert!(!way.holds_buffer(), "nothing to read: no buffer");

        far.write_all(b"a NOOP\r\n").await.unwrap();
        assert!(poll_once(&mut way, &mut near, &mut sink_near).is_pending());
        assert!(!way.holds_buffer(), "everything passed on: buffer released");
        let mut line = [0u8; 8];
        sink_far.read_exact(&mut line).await.unwrap();
        assert_eq!(&line, b"a NOOP\r\n");

        drop(far);
        assert!(poll_once(&mut way, &mut near, &mut sink_near).is_ready());
        assert!(!way.holds_buffer());
    }
}
