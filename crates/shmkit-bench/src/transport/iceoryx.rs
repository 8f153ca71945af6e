//! iceoryx2 publish-subscribe (cargo feature `iceoryx2`), the speed reference.
//!
//! Two `[u8]` publish-subscribe services, one per direction, named
//! `shmkit-bench/<pid>/<n>/{a,b}`; each process opens both with its own node. Samples
//! are loaned, filled from the message (`loan_slice_uninit` + `write_from_slice`) and
//! sent; the receiver copies the payload out, as every other transport here does.
//! Streams must not lose messages, so the services have no safe overflow and publishers
//! retry until delivered.
//!
//! Two variants: `iceoryx2-poll` busy-polls `receive()`; `iceoryx2-event` pairs each
//! direction with an event service, notifies after each send, and waits on the
//! listener when nothing is there. A sample sent before the other side's subscriber
//! exists would be lost, so the peer announces itself with one message first and the
//! leading side waits for it before its first send.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use iceoryx2::port::listener::Listener;
use iceoryx2::port::notifier::Notifier;
use iceoryx2::port::publisher::Publisher;
use iceoryx2::port::subscriber::Subscriber;
use iceoryx2::prelude::*;

use super::{aborted, wait_error, Endpoint, PeerSpec, Setup};
use crate::{BenchError, Result};

/// Spins between two checks of the deadline and the abort flag.
const CHECK_EVERY: u32 = 1 << 10;
/// How long one listener wait lasts before the deadline is checked again.
const SLICE: Duration = Duration::from_millis(100);
/// Samples a subscriber can hold before the publisher has to wait.
const BUFFER: usize = 64;

fn err(what: &str, e: impl std::fmt::Debug) -> BenchError {
    BenchError::Peer(format!("iceoryx2: {what}: {e:?}"))
}

type Pub = Publisher<ipc::Service, [u8], ()>;
type Sub = Subscriber<ipc::Service, [u8], ()>;

struct IceEnd {
    // Ports before the node: they are dropped first.
    publisher: Pub,
    subscriber: Sub,
    events: Option<(Notifier<ipc::Service>, Listener<ipc::Service>)>,
    /// The leading side has not yet seen the peer's hello.
    awaiting_hello: bool,
    _node: Node<ipc::Service>,
}

fn service_name(s: &str) -> Result<ServiceName> {
    ServiceName::new(s).map_err(|e| err(&format!("service name {s}"), e))
}

impl IceEnd {
    fn open(rx: &str, tx: &str, max: usize, event: bool, lead: bool) -> Result<IceEnd> {
        // Without a config file iceoryx2 warns on every node; errors are enough here.
        set_log_level(LogLevel::Error);
        let node = NodeBuilder::new()
            .signal_handling_mode(SignalHandlingMode::Disabled)
            .create::<ipc::Service>()
            .map_err(|e| err("creating the node", e))?;
        let pubsub = |name: &str| {
            node.service_builder(&service_name(name)?)
                .publish_subscribe::<[u8]>()
                .enable_safe_overflow(false)
                .subscriber_max_buffer_size(BUFFER)
                .history_size(0)
                .max_publishers(1)
                .max_subscribers(1)
                .open_or_create()
                .map_err(|e| err(&format!("service {name}"), e))
        };
        let tx_service = pubsub(tx)?;
        let rx_service = pubsub(rx)?;
        let publisher = tx_service
            .publisher_builder()
            .initial_max_slice_len(max)
            .backpressure_strategy(BackpressureStrategy::RetryUntilDelivered)
            .create()
            .map_err(|e| err("creating the publisher", e))?;
        let subscriber = rx_service
            .subscriber_builder()
            .buffer_size(BUFFER)
            .create()
            .map_err(|e| err("creating the subscriber", e))?;
        let events = if event {
            let ev = |name: &str| {
                node.service_builder(&service_name(&format!("{name}/event"))?)
                    .event()
                    .open_or_create()
                    .map_err(|e| err(&format!("event service {name}"), e))
            };
            let notifier = ev(tx)?
                .notifier_builder()
                .create()
                .map_err(|e| err("creating the notifier", e))?;
            let listener = ev(rx)?
                .listener_builder()
                .create()
                .map_err(|e| err("creating the listener", e))?;
            Some((notifier, listener))
        } else {
            None
        };
        Ok(IceEnd {
            publisher,
            subscriber,
            events,
            awaiting_hello: lead,
            _node: node,
        })
    }

    fn send_raw(&mut self, msg: &[u8]) -> Result<()> {
        let sample = self
            .publisher
            .loan_slice_uninit(msg.len())
            .map_err(|e| err("loan", e))?;
        sample
            .write_from_slice(msg)
            .send()
            .map_err(|e| err("send", e))?;
        if let Some((n, _)) = &self.events {
            n.notify().map_err(|e| err("notify", e))?;
        }
        Ok(())
    }

    fn recv_raw(&mut self, buf: &mut [u8], deadline: Instant) -> Result<()> {
        let mut spins: u32 = 0;
        let mut last_look = false;
        loop {
            if let Some(sample) = self.subscriber.receive().map_err(|e| err("receive", e))? {
                let p = sample.payload();
                if p.len() != buf.len() {
                    return Err(BenchError::Peer(format!(
                        "iceoryx2: sample of {} bytes where {} were expected",
                        p.len(),
                        buf.len()
                    )));
                }
                buf.copy_from_slice(p);
                return Ok(());
            }
            if last_look {
                return Err(wait_error("iceoryx2: waiting for a sample", deadline));
            }
            if let Some((_, l)) = &self.events {
                l.timed_wait(|_| {}, SLICE)
                    .map_err(|e| err("listener wait", e))?;
                last_look = aborted() || Instant::now() >= deadline;
                continue;
            }
            spins = spins.wrapping_add(1);
            if spins % CHECK_EVERY == 0 {
                // The peer's last sample went out before it exited: look once more.
                last_look = aborted() || Instant::now() >= deadline;
            }
            std::hint::spin_loop();
        }
    }
}

impl Endpoint for IceEnd {
    fn send(&mut self, msg: &[u8], deadline: Instant) -> Result<()> {
        if self.awaiting_hello {
            let mut hello = [0u8; 8];
            self.recv_raw(&mut hello, deadline)?;
            self.awaiting_hello = false;
        }
        self.send_raw(msg)
    }

    fn recv(&mut self, buf: &mut [u8], deadline: Instant) -> Result<()> {
        self.recv_raw(buf, deadline)
    }
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// Creates the services and the leading side's ports.
pub fn setup(max: usize, event: bool) -> Result<Setup> {
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let base = format!("shmkit-bench/{}/{n}", std::process::id());
    let to_peer = format!("{base}/a");
    let to_lead = format!("{base}/b");
    let local = IceEnd::open(&to_lead, &to_peer, max, event, true)?;
    Ok(Setup {
        local: Box::new(local),
        peer: PeerSpec::Iceoryx {
            rx: to_peer,
            tx: to_lead,
            max,
            event,
        },
        inherit: Vec::new(),
    })
}

/// Opens the peer's ports and says hello.
pub fn open(rx: &str, tx: &str, max: usize, event: bool) -> Result<Box<dyn Endpoint>> {
    let mut end = IceEnd::open(rx, tx, max, event, false)?;
    end.send_raw(&[0u8; 8])?;
    Ok(Box::new(end))
}
