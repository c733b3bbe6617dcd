//! A TCP stream with bytes already read put back in front: how a connection moves from
//! the lookup path (`lookup_connection`) to hyper without losing what was received. Bytes
//! received and sent count as activity (`idle`).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::idle::Activity;

pub(super) struct RewoundStream {
    /// Received but not yet consumed; read before the socket.
    prefix: BytesMut,
    inner: TcpStream,
    activity: Option<Arc<Activity>>,
}

impl RewoundStream {
    pub(super) fn new(prefix: BytesMut, inner: TcpStream) -> RewoundStream {
        RewoundStream { prefix, inner, activity: None }
    }

    /// Reports every byte received or sent to `activity`.
    pub(super) fn tracked(mut self, activity: Arc<Activity>) -> RewoundStream {
        self.activity = Some(activity);
        self
    }

    fn touch(&self) {
        if let Some(a) = &self.activity {
            a.touch();
        }
    }
}

impl AsyncRead for RewoundStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.prefix.is_empty() {
            let n = this.prefix.len().min(buf.remaining());
            buf.put_slice(&this.prefix[..n]);
            this.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.touch();
        }
        r
    }
}

impl AsyncWrite for RewoundStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            this.touch();
        }
        r
    }

    fn poll_write_vectored(self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            this.touch();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn bytes_put_back_are_read_before_the_socket() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = tokio::spawn(async move {
            let mut c = TcpStream::connect(addr).await.unwrap();
            c.write_all(b" world").await.unwrap();
            let mut echoed = String::new();
            c.read_to_string(&mut echoed).await.unwrap();
            echoed
        });
        let (server, _) = listener.accept().await.unwrap();
        let mut s = RewoundStream::new(BytesMut::from(&b"hello"[..]), server);
        let mut got = vec![0u8; 11];
        s.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"hello world");
        s.write_all(b"ok").await.unwrap();
        s.shutdown().await.unwrap();
        drop(s);
        assert_eq!(client.await.unwrap(), "ok");
    }
}
