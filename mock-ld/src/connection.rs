//! Connections a handler can close without answering (the `eventsClosed` fault). axum and
//! hyper give a handler no way to drop its connection, only to answer; so each accepted
//! TCP stream is wrapped here, and a [`Closer`] in every request's extensions (as axum's
//! `ConnectInfo`) cuts it: hyper's next write (the answer) or read on it fails, hyper drops
//! the connection, and the client reads no status line, only the connection closing.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// A TCP listener whose connections can be cut ([`Closer`]).
pub struct Listener(pub TcpListener);

/// One accepted connection, and whether it was cut.
pub struct Connection {
    stream: TcpStream,
    cut: Arc<AtomicBool>,
}

/// Cuts the connection a request came on.
#[derive(Clone, Debug)]
pub struct Closer(Arc<AtomicBool>);

impl Closer {
    /// Cuts the connection: nothing more is read from it or written to it.
    pub fn close(&self) {
        self.0.store(true, Ordering::Release);
    }
}

impl axum::serve::Listener for Listener {
    type Io = Connection;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Connection, SocketAddr) {
        // axum's own accept for TCP, which retries (and logs) accept errors.
        let (stream, addr) = axum::serve::Listener::accept(&mut self.0).await;
        let connection = Connection {
            stream,
            cut: Arc::default(),
        };
        (connection, addr)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

impl Connected<IncomingStream<'_, Listener>> for Closer {
    fn connect_info(stream: IncomingStream<'_, Listener>) -> Self {
        Closer(stream.io().cut.clone())
    }
}

impl Connection {
    /// An error once the connection was cut, which ends hyper's use of it.
    fn check(&self) -> io::Result<()> {
        if self.cut.load(Ordering::Acquire) {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "closed without an answer (eventsClosed fault)",
            ));
        }
        Ok(())
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.check()?;
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.check()?;
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.check()?;
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.check()?;
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
