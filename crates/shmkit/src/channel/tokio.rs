//! Awaiting channel messages from a tokio runtime without blocking its workers.
//!
//! [`AsyncReceiver`] and [`AsyncSender`] wrap a blocking receiving or sending endpoint
//! of any channel kind: SPSC ([`Receiver`], [`Sender`]), MPSC ([`mpsc::Receiver`],
//! [`mpsc::Sender`]) and broadcast ([`broadcast::Subscriber`],
//! [`broadcast::Publisher`]); see [`ReceiveEnd`] and [`SendEnd`]. [`AsyncClient`] and
//! [`AsyncServer`] do the same for the two ends of a request-reply channel
//! ([`rpc::Client`], [`rpc::Server`]).
//! The channel's wake-ups are futexes in shared memory, which an async reactor cannot
//! watch, so the wrappers do the simplest thing that never blocks a runtime worker:
//!
//! - **Fast path, no thread hop.** Every call first tries the non-blocking
//!   `try_recv` / `try_send` of the endpoint inline, on the calling task. When a
//!   message is waiting (or there is room), the call completes on its first poll at the
//!   cost of the plain `try_` call.
//! - **Slow path, one blocking-pool thread per waiting endpoint.** Otherwise the
//!   endpoint is moved into [`tokio::task::spawn_blocking`], which waits on the futex in
//!   slices of [`SLICE`] and hands the endpoint back with the result. The waiting task
//!   only awaits the join handle, so other tasks keep running, even on a
//!   current-thread runtime. Each slow-path call costs a hand-off to the blocking pool
//!   and back (a few microseconds, more when the pool has to start a thread) and holds
//!   one blocking thread for as long as it waits; tokio caps that pool (512 threads by
//!   default), so thousands of endpoints waiting at once are not what this is for.
//! - **Cancellation.** Dropping a `recv`/`send` future while it waits does not lose the
//!   endpoint or a message: the blocking wait notices within one [`SLICE`] and ends,
//!   and the endpoint stays with the wrapper. A message that arrived meanwhile is
//!   returned by the next `recv`; a send that completed meanwhile stays sent (the next
//!   `send` does not repeat it), one that did not is dropped.
//!
//! Only available with the `tokio` cargo feature. The wrappers need a tokio runtime
//! with the blocking pool (any runtime from `tokio::runtime::Builder` has one).
//!
//! ```no_run
//! # async fn demo() -> shmkit::Result<()> {
//! use shmkit::channel::{tokio::AsyncReceiver, Receiver};
//! let mut rx = AsyncReceiver::new(Receiver::open("/jobs")?);
//! while let Ok(msg) = rx.recv().await {
//!     println!("{}", String::from_utf8_lossy(&msg));
//! }
//! # Ok(()) }
//! ```

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ::tokio::task::JoinHandle;

use super::{broadcast, mpsc, rpc, ChannelError, Receiver, Sender};

/// A receiving endpoint that [`AsyncReceiver`] can wrap: its non-blocking and timed
/// receives.
pub trait ReceiveEnd: Send + 'static {
    /// The next message if there is one now (`Empty` if not).
    fn try_recv(&mut self) -> Result<Vec<u8>, ChannelError>;
    /// The next message, waiting at most `timeout` (`Timeout` if none came).
    fn recv_timeout(&mut self, timeout: Duration) -> Result<Vec<u8>, ChannelError>;
}

/// A sending endpoint that [`AsyncSender`] can wrap: its non-blocking and timed sends.
pub trait SendEnd: Send + 'static {
    /// Sends `data` if there is room now (`Full` if not).
    fn try_send(&mut self, data: &[u8]) -> Result<(), ChannelError>;
    /// Sends `data`, waiting at most `timeout` for room (`Timeout` if none came).
    fn send_timeout(&mut self, data: &[u8], timeout: Duration) -> Result<(), ChannelError>;
}

macro_rules! receive_end {
    ($($t:ty),*) => {$(
        impl ReceiveEnd for $t {
            fn try_recv(&mut self) -> Result<Vec<u8>, ChannelError> {
                <$t>::try_recv(self)
            }
            fn recv_timeout(&mut self, timeout: Duration) -> Result<Vec<u8>, ChannelError> {
                <$t>::recv_timeout(self, timeout)
            }
        }
    )*};
}

macro_rules! send_end {
    ($($t:ty),*) => {$(
        impl SendEnd for $t {
            fn try_send(&mut self, data: &[u8]) -> Result<(), ChannelError> {
                <$t>::try_send(self, data)
            }
            fn send_timeout(&mut self, data: &[u8], timeout: Duration) -> Result<(), ChannelError> {
                <$t>::send_timeout(self, data, timeout)
            }
        }
    )*};
}

receive_end!(Receiver, mpsc::Receiver, broadcast::Subscriber);
send_end!(Sender, mpsc::Sender, broadcast::Publisher);

/// How long one blocking wait lasts before it checks whether its future was dropped.
pub const SLICE: Duration = Duration::from_millis(50);

/// An endpoint that is either here (idle) or inside a blocking task (in flight).
struct Slot<E, R> {
    idle: Option<E>,
    pending: Option<Pending<E, R>>,
}

/// A blocking task that holds the endpoint, and the flag that tells it to give up.
struct Pending<E, R> {
    handle: JoinHandle<(E, Result<R, ChannelError>)>,
    abandoned: Arc<AtomicBool>,
}

/// Sets the flag when the future owning it is dropped (completed or cancelled).
struct AbandonOnDrop(Arc<AtomicBool>);

impl Drop for AbandonOnDrop {
    fn drop(&mut self) {
        // Relaxed: the flag carries no data; the blocking task re-reads it each slice.
        self.0.store(true, Ordering::Relaxed);
    }
}

impl<E: Send + 'static, R: Send + 'static> Slot<E, R> {
    fn new(endpoint: E) -> Self {
        Slot {
            idle: Some(endpoint),
            pending: None,
        }
    }

    /// Gets the endpoint back from a task left behind by a dropped future. Returns the
    /// task's result if it must be reported (a message it received).
    async fn settle(
        &mut self,
        keep: impl Fn(&Result<R, ChannelError>) -> bool,
    ) -> Option<Result<R, ChannelError>> {
        let pending = self.pending.take()?;
        // Relaxed, see AbandonOnDrop; the result itself travels through the join handle,
        // which synchronises.
        pending.abandoned.store(true, Ordering::Relaxed);
        match pending.handle.await {
            Ok((endpoint, result)) => {
                self.idle = Some(endpoint);
                keep(&result).then_some(result)
            }
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // The runtime is shutting down and dropped the task with the endpoint.
            Err(_) => None,
        }
    }

    /// Runs `wait(endpoint, slice)` on the blocking pool until it gives something other
    /// than `Timeout`, the deadline passes or the caller's future is dropped.
    async fn wait(
        &mut self,
        deadline: Option<Instant>,
        wait: impl Fn(&mut E, Duration) -> Result<R, ChannelError> + Send + 'static,
    ) -> Result<R, ChannelError> {
        let Some(mut endpoint) = self.idle.take() else {
            return Err(ChannelError::Disconnected);
        };
        let abandoned = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&abandoned);
        let handle = ::tokio::task::spawn_blocking(move || loop {
            let slice = match deadline {
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => left.min(SLICE),
                    _ => return (endpoint, Err(ChannelError::Timeout)),
                },
                None => SLICE,
            };
            match wait(&mut endpoint, slice) {
                Err(ChannelError::Timeout) if !flag.load(Ordering::Relaxed) => continue,
                result => return (endpoint, result),
            }
        });
        self.pending = Some(Pending {
            handle,
            abandoned: Arc::clone(&abandoned),
        });
        let _guard = AbandonOnDrop(abandoned);
        let pending = self.pending.as_mut().expect("just set");
        let joined = (&mut pending.handle).await;
        self.pending = None;
        match joined {
            Ok((endpoint, result)) => {
                self.idle = Some(endpoint);
                result
            }
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Err(ChannelError::Disconnected),
        }
    }
}

/// A receiving endpoint (by default an SPSC [`Receiver`]) whose receives are awaited
/// (see the [module docs](self) for the cost model).
pub struct AsyncReceiver<R: ReceiveEnd = Receiver> {
    slot: Slot<R, Vec<u8>>,
}

impl<R: ReceiveEnd> AsyncReceiver<R> {
    /// Wraps `receiver`.
    pub fn new(receiver: R) -> Self {
        AsyncReceiver {
            slot: Slot::new(receiver),
        }
    }

    /// Gives the receiver back, waiting for a blocking wait left by a dropped future to
    /// end first. `None` if the runtime dropped it while shutting down. A message such a
    /// wait received is returned with it.
    pub async fn into_inner(mut self) -> (Option<R>, Option<Vec<u8>>) {
        let kept = self.slot.settle(|r| r.is_ok()).await;
        (self.slot.idle.take(), kept.and_then(|r| r.ok()))
    }

    /// Receives the next message, waiting as long as it takes. Errors as the endpoint's
    /// blocking receive ([`Receiver::recv`]: `Disconnected`/`PeerDied` after the last
    /// message; a broadcast subscriber also `Lagged`).
    pub async fn recv(&mut self) -> Result<Vec<u8>, ChannelError> {
        self.recv_until(None).await
    }

    /// Like [`AsyncReceiver::recv`], but gives [`ChannelError::Timeout`] once `timeout`
    /// has passed.
    pub async fn recv_timeout(&mut self, timeout: Duration) -> Result<Vec<u8>, ChannelError> {
        self.recv_until(Instant::now().checked_add(timeout)).await
    }

    async fn recv_until(&mut self, deadline: Option<Instant>) -> Result<Vec<u8>, ChannelError> {
        // A message (or the end) seen by a wait whose future was dropped comes first.
        if let Some(result) = self
            .slot
            .settle(|r| !matches!(r, Err(ChannelError::Timeout)))
            .await
        {
            return result;
        }
        let Some(rx) = self.slot.idle.as_mut() else {
            return Err(ChannelError::Disconnected);
        };
        match rx.try_recv() {
            Err(ChannelError::Empty) => {}
            done => return done,
        }
        self.slot
            .wait(deadline, |rx: &mut R, slice| rx.recv_timeout(slice))
            .await
    }
}

impl<R: ReceiveEnd + std::fmt::Debug> std::fmt::Debug for AsyncReceiver<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncReceiver")
            .field("receiver", &self.slot.idle)
            .field("waiting", &self.slot.pending.is_some())
            .finish()
    }
}

/// A sending endpoint (by default an SPSC [`Sender`]) whose sends are awaited (see the
/// [module docs](self) for the cost model).
pub struct AsyncSender<S: SendEnd = Sender> {
    slot: Slot<S, ()>,
}

impl<S: SendEnd> AsyncSender<S> {
    /// Wraps `sender`.
    pub fn new(sender: S) -> Self {
        AsyncSender {
            slot: Slot::new(sender),
        }
    }

    /// Gives the sender back, waiting for a blocking wait left by a dropped future to
    /// end first. `None` if the runtime dropped it while shutting down.
    pub async fn into_inner(mut self) -> Option<S> {
        self.slot.settle(|_| false).await;
        self.slot.idle.take()
    }

    /// Sends `data`, waiting for room as long as it takes. Errors as the endpoint's
    /// blocking send ([`Sender::send`]: `TooLarge`, `Disconnected`, `PeerDied`). When the ring is full, `data` is copied
    /// once so that a blocking-pool thread can finish the send.
    pub async fn send(&mut self, data: &[u8]) -> Result<(), ChannelError> {
        self.send_until(data, None).await
    }

    /// Like [`AsyncSender::send`], but gives [`ChannelError::Timeout`] (and does not
    /// send) once `timeout` has passed without room.
    pub async fn send_timeout(
        &mut self,
        data: &[u8],
        timeout: Duration,
    ) -> Result<(), ChannelError> {
        self.send_until(data, Instant::now().checked_add(timeout))
            .await
    }

    async fn send_until(
        &mut self,
        data: &[u8],
        deadline: Option<Instant>,
    ) -> Result<(), ChannelError> {
        // A send left by a dropped future either happened or was given up; neither is
        // reported to this, unrelated, send.
        self.slot.settle(|_| false).await;
        let Some(tx) = self.slot.idle.as_mut() else {
            return Err(ChannelError::Disconnected);
        };
        match tx.try_send(data) {
            Err(ChannelError::Full) => {}
            done => return done,
        }
        let owned = data.to_vec();
        self.slot
            .wait(deadline, move |tx: &mut S, slice| {
                tx.send_timeout(&owned, slice)
            })
            .await
    }
}

impl<S: SendEnd + std::fmt::Debug> std::fmt::Debug for AsyncSender<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncSender")
            .field("sender", &self.slot.idle)
            .field("waiting", &self.slot.pending.is_some())
            .finish()
    }
}

/// The client of a request-reply channel ([`rpc::Client`]) whose calls are awaited (see
/// the [module docs](self) for the cost model): the request goes out inline when it
/// can, and the reply is taken inline when it is already there.
///
/// A call whose future is dropped leaves its request out; the next call drops that
/// request's answer when it comes, as [`rpc::Client::call_timeout`] does after a
/// timeout.
pub struct AsyncClient {
    slot: Slot<rpc::Client, Vec<u8>>,
}

impl AsyncClient {
    /// Wraps `client`.
    pub fn new(client: rpc::Client) -> Self {
        AsyncClient {
            slot: Slot::new(client),
        }
    }

    /// Gives the client back, waiting for a blocking wait left by a dropped future to
    /// end first. `None` if the runtime dropped it while shutting down.
    pub async fn into_inner(mut self) -> Option<rpc::Client> {
        self.slot.settle(|_| false).await;
        self.slot.idle.take()
    }

    /// Sends `request` and awaits the reply, as long as the server lives (or has not
    /// come yet). Errors as [`rpc::Client::call`]'s.
    pub async fn call(&mut self, request: &[u8]) -> Result<Vec<u8>, ChannelError> {
        self.call_until(request, None).await
    }

    /// Like [`AsyncClient::call`], but gives [`ChannelError::Timeout`] once `timeout`
    /// has passed (the request may be out then: its answer is dropped later).
    pub async fn call_timeout(
        &mut self,
        request: &[u8],
        timeout: Duration,
    ) -> Result<Vec<u8>, ChannelError> {
        self.call_until(request, Instant::now().checked_add(timeout))
            .await
    }

    async fn call_until(
        &mut self,
        request: &[u8],
        deadline: Option<Instant>,
    ) -> Result<Vec<u8>, ChannelError> {
        // What a call left by a dropped future got is not this call's business.
        self.slot.settle(|_| false).await;
        let Some(client) = self.slot.idle.as_mut() else {
            return Err(ChannelError::Disconnected);
        };
        match client.send_request(request) {
            Ok(()) => {}
            // An earlier request's answer is awaited first, off the runtime.
            Err(ChannelError::Full) => {
                let owned = request.to_vec();
                self.slot
                    .wait(deadline, move |c: &mut rpc::Client, slice| {
                        c.send_request_timeout(&owned, slice).map(|()| Vec::new())
                    })
                    .await?;
            }
            Err(e) => return Err(e),
        }
        let Some(client) = self.slot.idle.as_mut() else {
            return Err(ChannelError::Disconnected);
        };
        match client.try_reply() {
            Ok(reply) => return Ok(reply.to_vec()),
            Err(ChannelError::Empty) => {}
            Err(e) => return Err(e),
        }
        self.slot
            .wait(deadline, |c: &mut rpc::Client, slice| {
                c.reply_timeout(slice).map(|r| r.to_vec())
            })
            .await
    }
}

impl std::fmt::Debug for AsyncClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncClient")
            .field("client", &self.slot.idle)
            .field("waiting", &self.slot.pending.is_some())
            .finish()
    }
}

/// The server of a request-reply channel ([`rpc::Server`]) whose requests are awaited
/// (see the [module docs](self) for the cost model). The request is handed out in
/// place, as by [`rpc::Server::recv`], and answered with [`rpc::Request::reply`],
/// which never waits.
pub struct AsyncServer {
    slot: Slot<rpc::Server, ()>,
}

impl AsyncServer {
    /// Wraps `server`.
    pub fn new(server: rpc::Server) -> Self {
        AsyncServer {
            slot: Slot::new(server),
        }
    }

    /// Gives the server back, waiting for a blocking wait left by a dropped future to
    /// end first. `None` if the runtime dropped it while shutting down.
    pub async fn into_inner(mut self) -> Option<rpc::Server> {
        self.slot.settle(|_| false).await;
        self.slot.idle.take()
    }

    /// Awaits the next request. Errors as [`rpc::Server::recv`]'s (`Disconnected` or
    /// `PeerDied` once when the client has gone).
    pub async fn recv(&mut self) -> Result<rpc::Request<'_>, ChannelError> {
        self.recv_until(None).await
    }

    /// Like [`AsyncServer::recv`], but gives [`ChannelError::Timeout`] once `timeout`
    /// has passed.
    pub async fn recv_timeout(
        &mut self,
        timeout: Duration,
    ) -> Result<rpc::Request<'_>, ChannelError> {
        self.recv_until(Instant::now().checked_add(timeout)).await
    }

    async fn recv_until(
        &mut self,
        deadline: Option<Instant>,
    ) -> Result<rpc::Request<'_>, ChannelError> {
        // The end of the client, seen by a wait whose future was dropped, comes first;
        // a request it saw is still there.
        if let Some(Err(e)) = self
            .slot
            .settle(|r| !matches!(r, Ok(()) | Err(ChannelError::Timeout)))
            .await
        {
            return Err(e);
        }
        let Some(server) = self.slot.idle.as_mut() else {
            return Err(ChannelError::Disconnected);
        };
        if !server.ready_now()? {
            self.slot
                .wait(deadline, |s: &mut rpc::Server, slice| s.wait_timeout(slice))
                .await?;
        }
        match self.slot.idle.as_mut() {
            Some(server) => server.try_recv(),
            None => Err(ChannelError::Disconnected),
        }
    }
}

impl std::fmt::Debug for AsyncServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncServer")
            .field("server", &self.slot.idle)
            .field("waiting", &self.slot.pending.is_some())
            .finish()
    }
}

#[cfg(all(test, feature = "tokio"))]
mod tests {
    use super::*;
    use crate::channel::{self, Options};
    use std::sync::atomic::AtomicUsize;

    /// Removes the channel it names on drop, even on panic.
    struct Guard(String);

    impl Drop for Guard {
        fn drop(&mut self) {
            let _ = channel::remove(&self.0);
        }
    }

    fn new_channel(tag: &str) -> Guard {
        new_kind(tag, channel::Kind::Spsc)
    }

    fn current_thread() -> ::tokio::runtime::Runtime {
        ::tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
    }

    fn multi_thread() -> ::tokio::runtime::Runtime {
        ::tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .expect("runtime")
    }

    /// Polls `fut` once and gives what it returned.
    async fn poll_once<F: std::future::Future>(
        mut fut: std::pin::Pin<&mut F>,
    ) -> std::task::Poll<F::Output> {
        std::future::poll_fn(|cx| std::task::Poll::Ready(fut.as_mut().poll(cx))).await
    }

    fn message_from_std_thread(rt: ::tokio::runtime::Runtime) {
        let ch = new_channel("std");
        let mut rx = AsyncReceiver::new(Receiver::open(&ch.0).expect("rx"));
        let mut tx = Sender::open(&ch.0).expect("tx");
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            ready_rx
                .recv_timeout(Duration::from_secs(10))
                .expect("go signal");
            tx.send(b"from a thread").expect("send");
        });
        let got = rt.block_on(async {
            let mut fut = std::pin::pin!(rx.recv_timeout(Duration::from_secs(10)));
            // Pending: the receive is now waiting on the blocking pool; only then does
            // the thread send.
            assert!(poll_once(fut.as_mut()).await.is_pending());
            ready_tx.send(()).expect("signal");
            fut.await
        });
        thread.join().expect("thread");
        assert_eq!(got.as_deref(), Ok(&b"from a thread"[..]));
        // The sender (moved into the thread) is gone now.
        assert_eq!(
            rt.block_on(rx.recv_timeout(Duration::from_secs(10))),
            Err(ChannelError::Disconnected)
        );
    }

    fn new_kind(tag: &str, kind: channel::Kind) -> Guard {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let name = format!("/shmkit_test_{}_{n}_tokio_{tag}", std::process::id());
        let guard = Guard(name);
        channel::create(
            &guard.0,
            &Options {
                capacity: 4096,
                max_message: 256,
                kind,
                ..Options::default()
            },
        )
        .expect("create");
        guard
    }

    /// A receive of any kind waits on the blocking pool, gets what another task sends
    /// through the matching async sender (on a current-thread runtime, so a blocked
    /// worker would hang it), then the end of the stream.
    fn any_kind_round<R: ReceiveEnd, S: SendEnd>(mut rx: AsyncReceiver<R>, tx: S) {
        let rt = current_thread();
        let mut tx = AsyncSender::new(tx);
        let got = rt.block_on(async {
            let (first, other) = {
                let mut fut = std::pin::pin!(rx.recv_timeout(Duration::from_secs(10)));
                assert!(poll_once(fut.as_mut()).await.is_pending());
                let other = ::tokio::spawn(async move {
                    for m in [&b"one"[..], b"two"] {
                        tx.send(m).await.expect("send");
                    }
                    tx
                });
                (fut.await, other)
            };
            let second = rx.recv_timeout(Duration::from_secs(10)).await;
            drop(other.await.expect("other task"));
            (first, second)
        });
        assert_eq!(got.0.as_deref(), Ok(&b"one"[..]));
        assert_eq!(got.1.as_deref(), Ok(&b"two"[..]));
        assert_eq!(
            rt.block_on(rx.recv_timeout(Duration::from_secs(10))),
            Err(ChannelError::Disconnected)
        );
    }

    #[test]
    fn tokio_wraps_mpsc_and_broadcast_endpoints() {
        let ch = new_kind("mpsc", channel::Kind::Mpsc { lanes: 2 });
        let rx = AsyncReceiver::new(mpsc::Receiver::open(&ch.0).expect("mpsc rx"));
        any_kind_round(rx, mpsc::Sender::open(&ch.0).expect("mpsc tx"));

        let ch = new_kind(
            "bcast",
            channel::Kind::Broadcast {
                subscribers: 2,
                mode: broadcast::Mode::Backpressure,
            },
        );
        let sub = AsyncReceiver::new(broadcast::Subscriber::open(&ch.0).expect("subscriber"));
        any_kind_round(sub, broadcast::Publisher::open(&ch.0).expect("publisher"));
    }

    #[test]
    fn tokio_recv_gets_a_message_sent_later_by_a_thread() {
        message_from_std_thread(current_thread());
        message_from_std_thread(multi_thread());
    }

    #[test]
    fn tokio_recv_leaves_a_current_thread_runtime_free() {
        let ch = new_channel("free");
        let rt = current_thread();
        let mut rx = AsyncReceiver::new(Receiver::open(&ch.0).expect("rx"));
        let mut tx = AsyncSender::new(Sender::open(&ch.0).expect("tx"));
        let got = rt.block_on(async {
            // On a current-thread runtime this task can only run while the main future
            // is suspended: if `recv` blocked the one worker thread, the message would
            // never be sent and `recv` would time out.
            let other = ::tokio::spawn(async move {
                tx.send(b"from another task").await.expect("send");
                tx
            });
            let got = rx.recv_timeout(Duration::from_secs(10)).await;
            let tx = other.await.expect("other task");
            drop(tx);
            got
        });
        assert_eq!(got.as_deref(), Ok(&b"from another task"[..]));
        assert_eq!(
            rt.block_on(rx.recv_timeout(Duration::from_secs(10))),
            Err(ChannelError::Disconnected)
        );
    }

    #[test]
    fn tokio_recv_timeout_and_disconnect() {
        for rt in [current_thread(), multi_thread()] {
            let ch = new_channel("timeout");
            let mut rx = AsyncReceiver::new(Receiver::open(&ch.0).expect("rx"));
            let tx = Sender::open(&ch.0).expect("tx");
            let start = Instant::now();
            let got = rt.block_on(rx.recv_timeout(Duration::from_millis(120)));
            assert_eq!(got, Err(ChannelError::Timeout));
            assert!(start.elapsed() >= Duration::from_millis(120));
            drop(tx);
            let got = rt.block_on(rx.recv_timeout(Duration::from_secs(10)));
            assert_eq!(got, Err(ChannelError::Disconnected));
        }
    }

    #[test]
    fn tokio_send_waits_for_room() {
        let ch = new_channel("room");
        let rt = multi_thread();
        let mut rx = AsyncReceiver::new(Receiver::open(&ch.0).expect("rx"));
        let mut tx = AsyncSender::new(Sender::open(&ch.0).expect("tx"));
        rt.block_on(async {
            // Fill the ring, then one more send must wait until the receiver drains.
            let mut sent = 0usize;
            while tx
                .slot
                .idle
                .as_mut()
                .expect("tx")
                .try_send(&[7; 200])
                .is_ok()
            {
                sent += 1;
            }
            assert!(sent > 0);
            let more = ::tokio::spawn(async move {
                tx.send(&[8; 200]).await.expect("send after room");
            });
            for _ in 0..sent {
                assert_eq!(rx.recv().await.expect("recv"), vec![7; 200]);
            }
            assert_eq!(rx.recv().await.expect("recv"), vec![8; 200]);
            more.await.expect("sender task");
        });
    }

    #[test]
    fn tokio_dropped_recv_keeps_the_endpoint_and_the_message() {
        let ch = new_channel("dropped");
        for rt in [current_thread(), multi_thread()] {
            let mut rx = AsyncReceiver::new(Receiver::open(&ch.0).expect("rx"));
            let mut tx = Sender::open(&ch.0).expect("tx");
            rt.block_on(async {
                {
                    let mut fut = std::pin::pin!(rx.recv());
                    assert!(poll_once(fut.as_mut()).await.is_pending());
                } // dropped while its blocking wait holds the receiver
                tx.send(b"after the drop").expect("send");
                assert_eq!(
                    rx.recv_timeout(Duration::from_secs(10)).await.as_deref(),
                    Ok(&b"after the drop"[..])
                );
                drop(tx);
                assert_eq!(
                    rx.recv_timeout(Duration::from_secs(10)).await,
                    Err(ChannelError::Disconnected)
                );
            });
            let (back, extra) = rt.block_on(rx.into_inner());
            assert!(back.is_some());
            assert_eq!(extra, None);
        }
    }

    /// Calls and requests awaited on a current-thread runtime (a blocked worker would
    /// hang it): an async client against an async server in another task, every reply
    /// right; then the server is told the client closed.
    #[test]
    fn async_client_and_server_on_one_thread() {
        let ch = new_kind("rpc", channel::Kind::Rpc);
        let mut server = AsyncServer::new(rpc::Server::open(&ch.0).expect("server"));
        let mut client = AsyncClient::new(rpc::Client::open(&ch.0).expect("client"));
        let rt = current_thread();
        let served = rt.block_on(async move {
            let serving = ::tokio::spawn(async move {
                let mut n = 0u32;
                loop {
                    match server.recv_timeout(Duration::from_secs(10)).await {
                        Ok(req) => {
                            let mut v = req.to_vec();
                            v.reverse();
                            req.reply(&v).expect("reply");
                            n += 1;
                        }
                        Err(ChannelError::Disconnected) => return Ok(n),
                        Err(e) => return Err(e),
                    }
                }
            });
            for i in 0..200u32 {
                let req = format!("call {i}");
                let reply = client
                    .call_timeout(req.as_bytes(), Duration::from_secs(10))
                    .await
                    .expect("call");
                let mut want = req.into_bytes();
                want.reverse();
                assert_eq!(reply, want, "call {i}");
            }
            drop(client.into_inner().await);
            serving.await.expect("server task")
        });
        assert_eq!(served, Ok(200));
    }

    /// A call whose future is dropped while it waits leaves its request out; the next
    /// call drops that answer and gets its own.
    #[test]
    fn a_dropped_call_does_not_confuse_the_next() {
        let ch = new_kind("rpc_drop", channel::Kind::Rpc);
        let mut server = rpc::Server::open(&ch.0).expect("server");
        let mut client = AsyncClient::new(rpc::Client::open(&ch.0).expect("client"));
        let rt = multi_thread();
        rt.block_on(async {
            let mut fut = std::pin::pin!(client.call(b"first"));
            assert!(poll_once(fut.as_mut()).await.is_pending());
        });
        let (go, wait) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let first = server
                .recv_timeout(Duration::from_secs(10))
                .map(|r| {
                    let v = r.to_vec();
                    r.reply(b"FIRST").map(|()| v)
                })
                .expect("first request");
            wait.recv_timeout(Duration::from_secs(10)).expect("go");
            let second = server
                .recv_timeout(Duration::from_secs(10))
                .map(|r| {
                    let v = r.to_vec();
                    r.reply(b"SECOND").map(|()| v)
                })
                .expect("second request");
            (first, second)
        });
        let reply = rt.block_on(async {
            go.send(()).expect("go");
            client
                .call_timeout(b"second", Duration::from_secs(10))
                .await
        });
        assert_eq!(reply.as_deref(), Ok(&b"SECOND"[..]));
        let (first, second) = thread.join().expect("server thread");
        assert_eq!(first.as_deref(), Ok(&b"first"[..]));
        assert_eq!(second.as_deref(), Ok(&b"second"[..]));
    }
}
