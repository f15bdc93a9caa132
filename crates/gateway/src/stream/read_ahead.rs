//! Large reads from the upstream socket for rustls, which asks for 4 KiB at a time: about five
//! `recvfrom` calls per 16 KiB record. Reading ahead up to 64 KiB into a pooled buffer cuts that
//! to one call per several records in a bulk FETCH. The buffer goes back to the pool as soon as
//! it is drained, so an idle session holds none. A client that stops reading in the middle of a
//! transfer holds one (up to 64 KiB of bytes that would otherwise wait in the kernel's socket
//! buffer) until it reads on or the session ends.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};

use crate::buffer_pool::{give_back, take_buffer};

/// The most one read from the socket takes.
const READ_AHEAD: usize = 64 * 1024;

/// Wraps `inner`, reading from it in large chunks and serving small reads from the chunk.
pub(crate) struct ReadAhead<S> {
    inner: S,
    /// `None` while nothing is buffered.
    buf: Option<Box<[u8]>>,
    /// Bytes `pos..cap` of `buf` are read from the socket and not yet served.
    pos: usize,
    cap: usize,
}

impl<S> ReadAhead<S> {
    pub(crate) fn new(inner: S) -> Self {
        ReadAhead {
            inner,
            buf: None,
            pos: 0,
            cap: 0,
        }
    }
}

impl<S: AsyncRead + Unpin> ReadAhead<S> {
    /// Fills a pooled buffer from the socket; the buffer goes straight back unless bytes came.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut buf = take_buffer(READ_AHEAD);
        let mut read_buf = ReadBuf::new(&mut buf);
        let result = Pin::new(&mut self.inner).poll_read(cx, &mut read_buf);
        let filled = read_buf.filled().len();
        if matches!(result, Poll::Ready(Ok(()))) && filled > 0 {
            self.buf = Some(buf);
            self.pos = 0;
            self.cap = filled;
        } else {
            give_back(buf);
        }
        result
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ReadAhead<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if out.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        if this.buf.is_none() {
            if out.remaining() >= READ_AHEAD {
                return Pin::new(&mut this.inner).poll_read(cx, out);
            }
            std::task::ready!(this.poll_fill(cx))?;
        }
        let Some(buf) = this.buf.as_deref() else {
            return Poll::Ready(Ok(())); // end of stream
        };
        let n = out.remaining().min(this.cap - this.pos);
        out.put_slice(&buf[this.pos..this.pos + n]);
        this.pos += n;
        if this.pos == this.cap {
            if let Some(drained) = this.buf.take() {
                give_back(drained);
            }
        }
        Poll::Ready(Ok(()))
    }
}

writes_pass_through!(ReadAhead);

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn small_reads_see_every_byte_in_order_and_idle_holds_no_buffer() {
        let (near, mut far) = tokio::io::duplex(256 * 1024);
        let mut stream = ReadAhead::new(near);
        let sent: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
        far.write_all(&sent).await.unwrap();

        let mut got = Vec::new();
        let mut chunk = [0u8; 4096];
        while got.len() < sent.len() {
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0);
            got.extend_from_slice(&chunk[..n]);
        }
        assert_eq!(got, sent);
        assert!(stream.buf.is_none(), "a drained read-ahead holds no buffer");

        // Writes pass through; end of stream reads as 0.
        stream.write_all(b"a1 LOGOUT\r\n").await.unwrap();
        let mut echoed = [0u8; 11];
        far.read_exact(&mut echoed).await.unwrap();
        assert_eq!(&echoed, b"a1 LOGOUT\r\n");
        drop(far);
        assert_eq!(stream.read(&mut chunk).await.unwrap(), 0);
    }

    /// A socket that hands out as much of `data` as each read has room for, and records the
    /// room each read was given.
    struct CountingSocket {
        data: Vec<u8>,
        reads: Vec<usize>,
    }

    impl AsyncRead for CountingSocket {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            out: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let room = out.remaining();
            self.reads.push(room);
            let n = room.min(self.data.len());
            let taken: Vec<u8> = self.data.drain(..n).collect();
            out.put_slice(&taken);
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn four_kib_reads_become_one_large_socket_read() {
        let data: Vec<u8> = (0..40_000u32).map(|i| (i % 241) as u8).collect();
        let socket = CountingSocket {
            data: data.clone(),
            reads: Vec::new(),
        };
        let mut stream = ReadAhead::new(socket);
        let mut got = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = stream.read(&mut chunk).await.unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&chunk[..n]);
        }
        assert_eq!(got, data);
        // One read took all 40,000 bytes with 64 KiB of room; one more saw the end.
        assert_eq!(stream.inner.reads, vec![READ_AHEAD, READ_AHEAD]);
        assert_eq!(
            stream.read(&mut []).await.unwrap(),
            0,
            "an empty read is answered at once"
        );
        assert_eq!(stream.inner.reads.len(), 2);
    }

    #[tokio::test]
    async fn large_reads_go_straight_to_the_socket() {
        let socket = CountingSocket {
            data: b"* OK ready\r\n".to_vec(),
            reads: Vec::new(),
        };
        let mut stream = ReadAhead::new(socket);
        let mut big = vec![0u8; 2 * READ_AHEAD];
        let n = stream.read(&mut big).await.unwrap();
        assert_eq!(&big[..n], b"* OK ready\r\n");
        // The socket saw the caller's whole buffer, not the read-ahead's.
        assert_eq!(stream.inner.reads, vec![2 * READ_AHEAD]);
        assert!(stream.buf.is_none());
    }
}
