//! The byte stream under a connection: a TCP or unix socket, optionally in
//! TLS, watched where the protocol is in clear text (above TLS, or on a
//! plain socket).
//!
//! The watch follows the backend's message framing to learn two things no
//! driver API gives: the process id the server announced (BackendKeyData:
//! a connection pooler announces its own, which is how a pooler is noticed)
//! and whether the server owes an answer (a request was written and its
//! ReadyForQuery has not come). With an answer timeout, a server that owes
//! an answer and sends nothing for that long ends the connection with an
//! error: a stalled server or pooler never hangs strata, even where TCP
//! keepalives cannot tell (the peer's kernel still acknowledges).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};
use tokio::time::{Instant, Sleep};
use tokio_postgres::tls::{ChannelBinding, TlsConnect, TlsStream};

/// A connected socket.
pub enum RawSocket {
    Tcp(TcpStream),
    Unix(UnixStream),
}

macro_rules! delegate {
    ($self:ident, $s:ident => $e:expr) => {
        match $self.get_mut() {
            RawSocket::Tcp($s) => $e,
            RawSocket::Unix($s) => $e,
        }
    };
}

impl AsyncRead for RawSocket {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        delegate!(self, s => Pin::new(s).poll_read(cx, buf))
    }
}

impl AsyncWrite for RawSocket {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        delegate!(self, s => Pin::new(s).poll_write(cx, buf))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, s => Pin::new(s).poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, s => Pin::new(s).poll_shutdown(cx))
    }
}

/// What the watch learned, shared with whoever opened the connection.
#[derive(Debug, Default)]
pub struct Observed {
    /// The process id of BackendKeyData (0 until it came).
    key_pid: AtomicI32,
}

impl Observed {
    pub fn key_pid(&self) -> Option<i32> {
        Some(self.key_pid.load(Ordering::SeqCst)).filter(|p| *p != 0)
    }
}

/// Settings of one watch.
#[derive(Clone, Debug)]
pub struct Watch {
    pub answer_timeout: Option<Duration>,
    pub observed: Arc<Observed>,
}

/// Backend message framing: a type byte, a 4-byte length (counting itself),
/// the body.
#[derive(Default)]
struct Framing {
    header: [u8; 5],
    have: usize,
    body_left: usize,
    key: Vec<u8>,
}

impl Framing {
    /// Feeds bytes read; calls `done` with the type of each complete message.
    fn feed(&mut self, mut data: &[u8], done: &mut impl FnMut(u8, &[u8])) {
        while !data.is_empty() {
            if self.have < 5 {
                let n = (5 - self.have).min(data.len());
                self.header[self.have..self.have + n].copy_from_slice(&data[..n]);
                self.have += n;
                data = &data[n..];
                if self.have < 5 {
                    return;
                }
                let len = u32::from_be_bytes([self.header[1], self.header[2], self.header[3], self.header[4]]) as usize;
                self.body_left = len.saturating_sub(4);
                self.key.clear();
            }
            let n = self.body_left.min(data.len());
            if self.header[0] == b'K' && self.key.len() < 4 {
                let take = n.min(4 - self.key.len());
                self.key.extend_from_slice(&data[..take]);
            }
            self.body_left -= n;
            data = &data[n..];
            if self.body_left == 0 {
                done(self.header[0], &self.key);
                self.have = 0;
            }
        }
    }
}

struct Watcher {
    /// The first byte read answers an SSLRequest: "S" (TLS follows: this
    /// watch stops, the one above TLS takes over) or "N" (clear text goes on).
    ssl_answer: bool,
    off: bool,
    limit: Option<Duration>,
    /// A request was written and its ReadyForQuery has not come.
    owed: bool,
    sleep: Option<Pin<Box<Sleep>>>,
    framing: Framing,
    observed: Arc<Observed>,
}

impl Watcher {
    fn new(w: Watch) -> Watcher {
        Watcher {
            ssl_answer: false,
            off: false,
            limit: w.answer_timeout,
            owed: false,
            sleep: None,
            framing: Framing::default(),
            observed: w.observed,
        }
    }

    fn read(&mut self, mut data: &[u8]) {
        if self.off {
            return;
        }
        if self.ssl_answer && !data.is_empty() {
            self.ssl_answer = false;
            if data[0] == b'S' {
                self.off = true;
                self.owed = false;
                self.sleep = None;
                return;
            }
            data = &data[1..];
        }
        let (observed, mut ready) = (&self.observed, false);
        self.framing.feed(data, &mut |kind, body| match kind {
            b'Z' => ready = true,
            b'K' if body.len() == 4 => observed
                .key_pid
                .store(i32::from_be_bytes([body[0], body[1], body[2], body[3]]), Ordering::SeqCst),
            _ => {}
        });
        if ready && self.framing.have == 0 {
            self.owed = false;
            self.sleep = None;
        } else if let (true, Some(limit), Some(sleep)) = (self.owed, self.limit, self.sleep.as_mut()) {
            // The server is talking: the silence starts again.
            sleep.as_mut().reset(Instant::now() + limit);
        }
    }

    fn wrote(&mut self, cx: &mut Context<'_>) {
        if self.owed || self.off {
            return;
        }
        self.owed = true;
        if let Some(limit) = self.limit {
            let mut sleep = Box::pin(tokio::time::sleep(limit));
            // Registers the timer with this task, which may not read again.
            let _ = sleep.as_mut().poll(cx);
            self.sleep = Some(sleep);
        }
    }

    /// Whether the server has owed an answer for longer than the limit.
    fn expired(&mut self, cx: &mut Context<'_>) -> Option<Duration> {
        let limit = self.limit.filter(|_| !self.off)?;
        let sleep = self.sleep.as_mut().filter(|_| self.owed)?;
        sleep.as_mut().poll(cx).is_ready().then_some(limit)
    }
}

/// A stream, watched or passed through.
pub struct Watched<S> {
    inner: S,
    watcher: Option<Watcher>,
}

impl<S> Watched<S> {
    pub fn new(inner: S, watch: Option<Watch>) -> Watched<S> {
        Watched {
            inner,
            watcher: watch.map(Watcher::new),
        }
    }

    /// The socket of a TLS attempt: watched only if the server declines TLS
    /// (`prefer` then goes on in clear text). With direct TLS negotiation
    /// there is no SSLRequest: never watched.
    pub fn expecting_ssl_answer(mut self, watch: Watch, direct: bool) -> Watched<S> {
        if !direct {
            let mut w = Watcher::new(watch);
            w.ssl_answer = true;
            self.watcher = Some(w);
        }
        self
    }
}

/// The error of a server that owes an answer and stays silent.
pub fn stalled(limit: Duration) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!(
            "the server sent nothing for {} while strata waited for its answer (answer timeout: statement_timeout plus a margin); \
             the server or a proxy in between stalled",
            humanize(limit)
        ),
    )
}

pub fn humanize(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if let Some(w) = &mut this.watcher {
                    w.read(&buf.filled()[before..]);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => match this.watcher.as_mut().and_then(|w| w.expired(cx)) {
                Some(limit) => Poll::Ready(Err(stalled(limit))),
                None => Poll::Pending,
            },
            other => other,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let (Poll::Ready(Ok(n)), Some(w)) = (&r, this.watcher.as_mut()) {
            if *n > 0 {
                w.wrote(cx);
            }
        }
        r
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

impl<S: TlsStream + Unpin> TlsStream for Watched<S> {
    fn channel_binding(&self) -> ChannelBinding {
        self.inner.channel_binding()
    }
}

/// A TLS connector whose stream is watched above TLS.
pub struct WatchedTls<C> {
    pub inner: C,
    pub watch: Watch,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, C> TlsConnect<S> for WatchedTls<C>
where
    C: TlsConnect<S>,
    C::Future: Send + 'static,
    C::Stream: Unpin,
{
    type Stream = Watched<C::Stream>;
    type Error = C::Error;
    type Future = BoxFuture<Result<Watched<C::Stream>, C::Error>>;

    fn connect(self, stream: S) -> Self::Future {
        let connecting = self.inner.connect(stream);
        let watch = self.watch;
        Box::pin(async move { connecting.await.map(|s| Watched::new(s, Some(watch))) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![kind];
        m.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
        m.extend_from_slice(body);
        m
    }

    #[test]
    fn framing_finds_messages_across_reads() {
        let mut bytes = message(b'R', &[0, 0, 0, 0]);
        bytes.extend(message(b'K', &[0, 0, 0x30, 0x39, 9, 9, 9, 9]));
        bytes.extend(message(b'Z', b"I"));
        let mut seen = Vec::new();
        let mut f = Framing::default();
        for chunk in bytes.chunks(3) {
            f.feed(chunk, &mut |k, body| seen.push((k, body.to_vec())));
        }
        assert_eq!(seen, vec![(b'R', vec![]), (b'K', vec![0, 0, 0x30, 0x39]), (b'Z', vec![])]);
    }

    #[tokio::test]
    async fn a_silent_server_fails_the_read_after_the_limit() {
        let (client, mut server) = tokio::io::duplex(64);
        let observed = Arc::new(Observed::default());
        let mut w = Watched::new(
            client,
            Some(Watch {
                answer_timeout: Some(Duration::from_millis(100)),
                observed: observed.clone(),
            }),
        );
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        // Answered requests never time out, however long the idle time after.
        w.write_all(b"Q").await.unwrap();
        server.write_all(&message(b'K', &[0, 0, 0, 7, 1, 2, 3, 4])).await.unwrap();
        server.write_all(&message(b'Z', b"I")).await.unwrap();
        let mut buf = [0u8; 64];
        let mut got = 0;
        while got < 19 {
            got += w.read(&mut buf).await.unwrap();
        }
        assert_eq!(observed.key_pid(), Some(7));
        let idle = tokio::time::timeout(Duration::from_millis(250), w.read(&mut buf)).await;
        assert!(idle.is_err(), "an idle connection is not a stall");
        w.write_all(b"Q").await.unwrap();
        let started = std::time::Instant::now();
        let err = w.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= Duration::from_millis(90), "{:?}", started.elapsed());
        assert!(err.to_string().contains("sent nothing for 100ms"), "{err}");
    }
}
