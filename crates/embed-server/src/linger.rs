//! Closing a connection without cutting off the answers the client is still reading.
//!
//! hyper ends an HTTP/2 connection (after a graceful shutdown, for instance) as soon as the last
//! frame is in the kernel's send buffer, and then closes the socket. The client may still be
//! reading megabytes of embeddings at that moment, and it acknowledges what it reads with
//! WINDOW_UPDATE frames. Data arriving at a closed socket makes the kernel answer with a TCP
//! reset, which throws away whatever the client had not read yet: the client sees
//! `error reading a body from connection` (ConnectionReset) for a request the server did
//! answer. The fix is the classic "lingering close": send our FIN, then keep reading (and
//! discarding) until the client closes its side too, bounded by a deadline.
//!
//! Hand-written because neither tonic nor hyper offers it; it is a thin wrapper.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;
use tonic::transport::server::Connected;

/// A connection whose shutdown waits (up to `linger`) for the peer to close its side.
pub struct LingeringClose<T> {
    io: T,
    linger: Duration,
    /// Set once our FIN is sent; the peer has until then to close.
    deadline: Option<Pin<Box<Sleep>>>,
}

impl<T> LingeringClose<T> {
    pub fn new(io: T, linger: Duration) -> Self {
        Self { io, linger, deadline: None }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for LingeringClose<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncWrite for LingeringClose<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    /// Sends FIN, then drains the peer until it closes (EOF), fails, or the deadline passes;
    /// only then may the caller drop (close) the socket.
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.deadline.is_none() {
            ready!(Pin::new(&mut this.io).poll_shutdown(cx))?;
            this.deadline = Some(Box::pin(tokio::time::sleep(this.linger)));
        }
        let mut scratch = [0u8; 8192];
        loop {
            if let Some(deadline) = this.deadline.as_mut() {
                if deadline.as_mut().poll(cx).is_ready() {
                    tracing::debug!("the client did not close its side in time; closing anyway");
                    return Poll::Ready(Ok(()));
                }
            }
            let mut buf = ReadBuf::new(&mut scratch);
            match ready!(Pin::new(&mut this.io).poll_read(cx, &mut buf)) {
                Ok(()) if buf.filled().is_empty() => return Poll::Ready(Ok(())),
                Ok(()) => continue,
                // The peer reset or vanished: nothing left to protect.
                Err(_) => return Poll::Ready(Ok(())),
            }
        }
    }
}

impl<T: Connected> Connected for LingeringClose<T> {
    type ConnectInfo = T::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.io.connect_info()
    }
}
