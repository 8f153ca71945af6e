//! The request-reply channel: one [`Client`] calls, one [`Server`] answers, and a request
//! and its reply share one slot, so that a small call moves a single cache line to the
//! server and back, the least any round trip between two cores can cost.
//!
//! ```text
//! offset  size   contents
//!      0    64   shmkit::header (kind CHANNEL_RPC, version LAYOUT_VERSION)
//!     64    64   config: max_message u32 | zero u32 | slot_size u64 | zero
//!    128   128   client endpoint: owner u64 | epoch u32
//!    256   128   server endpoint: owner u64 | epoch u32
//!    384   128   client sleep word: AtomicU32, 1 while the client sleeps (futex) |
//!                client CPU hint u32 (`wait::note_cpu`)
//!    512   128   server sleep word: AtomicU32, 1 while the server sleeps (futex) |
//!                server CPU hint u32
//!    640   384   zero
//!   1024  16+N   the slot: turn u64 | tag u32 | len u32 | payload (N = slot_size)
//! ```
//!
//! # Protocol
//!
//! The slot's `turn` word counts hand-overs: even, the slot is the client's (idle, or
//! holding the reply to the last call); odd, the server's (holding a request). The
//! client writes a request's bytes and its tag-and-length word, then stores `turn + 1`
//! (Release); the server, seeing that value (Acquire), reads the request, writes the
//! reply over it and stores `turn + 2` (Release). Each side knows the only two values
//! it may find: its own last store (nothing new yet) or the other side's next one.
//! Anything else is garbage written by a buggy or hostile process and yields
//! [`ChannelError::Corrupt`]; every length is checked against the slot before use.
//! The first 48 bytes of a payload share the `turn` word's cache line.
//!
//! Waiting spins on the `turn` word, then sleeps on the waiter's own sleep word with
//! the Dekker pattern of [`super::wait`]: the side that stores `turn` runs a fence and
//! makes a wake-up system call only if the other side sleeps. The client looks at the
//! server's sleep word right after its request; the server looks at the client's at
//! its next receive or when it drops, not right after its reply (which cost 30 ns of
//! an 8-byte call on the development VM). A client sleeping for an answer looks again
//! every [`REPLY_SLICE`], which bounds what a server that answers and then does
//! something else for a while can delay it.
//!
//! # Crashes
//!
//! - A client killed while writing a request leaves `turn` even: the server never sees
//!   the half-written bytes. A new client takes the dead one's endpoint and goes on.
//! - A client killed after storing its request leaves it pending; the server answers it
//!   (the reply is dropped), and a new client's first call waits for that answer.
//! - A server killed while handling a request: the waiting client gets
//!   [`ChannelError::PeerDied`]. The request stays pending, and a restarted server
//!   answers it; the client's next call waits for that answer before sending. A server
//!   killed while writing its reply over the request leaves the slot marked
//!   [`TAG_ANSWERING`]: the restarted server answers that request as unanswered
//!   instead of receiving its torn bytes.
//! - A new client may send before the server has noticed that the old one left: the
//!   server then receives the new request without a `Disconnected` first.
//! - A [`Request`] dropped without a reply (a panic in the handler, say) answers with
//!   no payload: the client gets [`ChannelError::Unanswered`].

use std::ops::Deref;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use super::liveness;
use super::multi::{Obj, RingView, Watch};
use super::wait::{self, block_on_sliced, Check, Patience, DEFAULT_SPIN, LIVENESS_SLICE};
use super::{ChannelError, EndpointInfo};
use crate::error::{Error, ErrorKind, Result};
use crate::header::{self, ObjectKind, HEADER_SIZE};
use crate::region::{Region, RegionExt};

/// The version of this layout, checked at open.
pub const LAYOUT_VERSION: u16 = 1;
/// Offset of the config block.
pub const CONFIG_OFFSET: usize = HEADER_SIZE;
/// Offset of the client endpoint.
pub const CLIENT_OFFSET: usize = 128;
/// Offset of the server endpoint.
pub const SERVER_OFFSET: usize = 256;
/// Offset of the client's sleep word.
pub const CLIENT_SLEEP_OFFSET: usize = 384;
/// Offset of the server's sleep word.
pub const SERVER_SLEEP_OFFSET: usize = 512;
/// Offset of the slot.
pub const SLOT_OFFSET: usize = 1024;
/// Bytes of the slot before its payload: `turn`, then tag and length.
pub const SLOT_HEADER: usize = 16;
/// Tag of a request.
pub const TAG_REQUEST: u32 = u32::from_le_bytes(*b"REQ\0");
/// Tag of a reply.
pub const TAG_REPLY: u32 = u32::from_le_bytes(*b"REP\0");
/// Tag of the answer to a request dropped without a reply.
pub const TAG_UNANSWERED: u32 = u32::from_le_bytes(*b"NOR\0");
/// Tag the server stores before it writes a reply over the request: a server killed
/// in that copy leaves it, so a restarted one knows the request is torn.
pub const TAG_ANSWERING: u32 = u32::from_le_bytes(*b"ANS\0");
/// The longest a client waiting for an answer sleeps before it looks again: the bound
/// on how late a server that answers and then neither receives again nor drops can
/// leave a client that had gone to sleep (the server looks at the client's sleep word
/// at its next receive, see [`Server`]).
pub const REPLY_SLICE: Duration = Duration::from_millis(1);
/// The largest `max_message` (1 GiB).
pub const MAX_MESSAGE: u64 = 1 << 30;

const TURN: usize = SLOT_OFFSET;
const TAG_LEN: usize = SLOT_OFFSET + 8;
const PAYLOAD: usize = SLOT_OFFSET + SLOT_HEADER;

/// The config block at [`CONFIG_OFFSET`].
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct Config {
    /// The largest request or reply.
    pub max_message: u32,
    /// Zero.
    pub reserved0: u32,
    /// Payload bytes of the slot: `max_message` rounded up to 64.
    pub slot_size: u64,
    /// Zero.
    pub reserved: [u64; 6],
}

const _: () = assert!(std::mem::size_of::<Config>() == 64);

/// The payload bytes of a slot for messages of at most `max_message` bytes.
fn slot_size(max_message: u32) -> u64 {
    (max_message as u64).div_ceil(64).max(1) * 64
}

/// Total bytes of an object whose slot holds `slot_size` payload bytes.
fn total_size(slot_size: u64) -> u64 {
    (PAYLOAD as u64 + slot_size).div_ceil(4096) * 4096
}

/// Creates the request-reply channel `name` for requests and replies of at most
/// `max_message` bytes (1 to 1 GiB), with permission bits `mode`.
pub fn create(name: &str, max_message: u64, mode: u32) -> Result<()> {
    let object = crate::posix::ShmName::new(name)?.to_string();
    if max_message == 0 || max_message > MAX_MESSAGE {
        return Err(Error::invalid(
            "create",
            &object,
            format!("a message limit of {max_message} bytes is not between 1 and {MAX_MESSAGE}"),
        ));
    }
    let max = max_message as u32;
    Obj::create(name, total_size(slot_size(max)), mode, |map| init(map, max))
}

/// Lays out a request-reply object in `region` (not yet published).
pub(crate) fn init(region: &(impl Region + ?Sized), max_message: u32) -> Result<()> {
    let slot = slot_size(max_message);
    header::init(
        region,
        header::Layout {
            kind: ObjectKind::CHANNEL_RPC,
            version: LAYOUT_VERSION,
            header_size: (SLOT_OFFSET - HEADER_SIZE) as u32,
            total_size: total_size(slot),
        },
    )?;
    region.write(
        CONFIG_OFFSET,
        &Config {
            max_message,
            reserved0: 0,
            slot_size: slot,
            reserved: [0; 6],
        },
    )
}

/// Validates a request-reply object's header and config; returns its message limit.
pub fn validate(region: &(impl Region + ?Sized)) -> Result<u32> {
    let h = header::validate(region, ObjectKind::CHANNEL_RPC, LAYOUT_VERSION)?;
    validate_config(region, &h)
}

fn validate_config(region: &(impl Region + ?Sized), h: &header::Header) -> Result<u32> {
    let name = region.object_name();
    let bad = |why: String| Error::corrupt("open", &name, why);
    if h.header_size != (SLOT_OFFSET - HEADER_SIZE) as u32 {
        return Err(bad(format!(
            "request-reply header size {} is wrong",
            h.header_size
        )));
    }
    let cfg: Config = region.read(CONFIG_OFFSET)?;
    if cfg.max_message == 0 || cfg.max_message as u64 > MAX_MESSAGE {
        return Err(bad(format!(
            "message limit {} is out of range",
            cfg.max_message
        )));
    }
    if cfg.slot_size != slot_size(cfg.max_message) {
        return Err(bad(format!(
            "slot size {} does not fit the message limit {}",
            cfg.slot_size, cfg.max_message
        )));
    }
    let total = total_size(cfg.slot_size);
    if h.total_size != total || total > region.len() as u64 {
        return Err(bad(format!(
            "a {}-byte slot does not match the object size {} (mapping {})",
            cfg.slot_size,
            h.total_size,
            region.len()
        )));
    }
    Ok(cfg.max_message)
}

/// A mapped, validated request-reply object.
struct Chan {
    obj: Obj,
    max: u32,
}

/// Which end a [`Chan`] is opened as.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Client,
    Server,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Client => "client",
            Role::Server => "server",
        }
    }
    fn endpoint(self) -> usize {
        match self {
            Role::Client => CLIENT_OFFSET,
            Role::Server => SERVER_OFFSET,
        }
    }
    fn peer(self) -> Role {
        match self {
            Role::Client => Role::Server,
            Role::Server => Role::Client,
        }
    }
    fn sleep_word(self) -> usize {
        match self {
            Role::Client => CLIENT_SLEEP_OFFSET,
            Role::Server => SERVER_SLEEP_OFFSET,
        }
    }
}

/// What one look at `turn` found ([`look_at`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Look {
    /// Still `mine`: nothing new.
    Nothing,
    /// The other side's next value: the slot is ours.
    Next,
}

/// Classifies the value `t` of `turn` for a side that last stored or saw `mine` and
/// waits for `next`: any third value is garbage.
#[inline(always)]
pub(crate) fn look_at(t: u64, mine: u64, next: u64) -> std::result::Result<Look, ChannelError> {
    if t == next {
        Ok(Look::Next)
    } else if t == mine {
        Ok(Look::Nothing)
    } else {
        Err(ChannelError::Corrupt(
            "the slot's turn word holds neither side's value",
        ))
    }
}

/// The length of the answer whose tag-and-length word is `w`, for a client of a
/// channel with limit `max`.
#[inline(always)]
pub(crate) fn decode_answer(w: u64, max: u32) -> std::result::Result<u32, ChannelError> {
    let (tag, len) = ((w >> 32) as u32, w as u32);
    match tag {
        TAG_REPLY if len <= max => Ok(len),
        TAG_REPLY => Err(ChannelError::Corrupt(
            "a reply is longer than the channel's message limit",
        )),
        TAG_UNANSWERED => Err(ChannelError::Unanswered),
        _ => Err(ChannelError::Corrupt("the slot holds an unknown tag")),
    }
}

/// The length of the request whose tag-and-length word is `w`, for a server of a
/// channel with limit `max`; the reason it is garbage otherwise.
#[inline(always)]
pub(crate) fn decode_request(w: u64, max: u32) -> std::result::Result<u32, &'static str> {
    let (tag, len) = ((w >> 32) as u32, w as u32);
    match tag {
        TAG_REQUEST if len <= max => Ok(len),
        TAG_REQUEST => Err("a request is longer than the channel's message limit"),
        _ => Err("the slot holds an unknown tag"),
    }
}

impl Chan {
    #[inline(always)]
    fn turn(&self) -> &AtomicU64 {
        self.obj.word64(TURN)
    }

    #[inline(always)]
    fn slot(&self) -> RingView<'_> {
        self.obj.ring(
            SLOT_OFFSET,
            self.obj.map().len() as u64 - SLOT_OFFSET as u64,
        )
    }

    /// One look at `turn` by a side that last stored or saw `mine` and waits for
    /// `next` ([`look_at`]).
    #[inline(always)]
    fn look(&self, mine: u64, next: u64) -> std::result::Result<Look, ChannelError> {
        // SYNC: Acquire pairs with the other side's Release store of `turn` in
        // `publish`: the bytes it wrote into the slot before are visible.
        look_at(self.turn().load(Ordering::Acquire), mine, next)
    }

    /// The slot's tag-and-length word.
    #[inline(always)]
    fn tag_len(&self) -> u64 {
        // Relaxed: ordered after the Acquire load of `turn` that handed us the slot.
        self.obj.word64(TAG_LEN).load(Ordering::Relaxed)
    }

    /// Writes the tag-and-length word and hands the slot over by storing `turn`, then
    /// runs the publishing side's barrier; the caller looks at the other side's sleep
    /// word ([`Chan::wake_peer`]) at once (the client) or at its next receive (the
    /// server).
    #[inline(always)]
    fn publish(&self, tag: u32, len: u32, turn: u64) {
        self.obj
            .word64(TAG_LEN)
            .store((tag as u64) << 32 | len as u64, Ordering::Relaxed);
        // SYNC: Release pairs with the Acquire load in `look`: the payload and the
        // tag-and-length word are visible to the side that sees this value. (The
        // sleep-word load that follows, now or later, is ordered by the barrier.)
        self.turn().store(turn, Ordering::Release);
        wait::fast_barrier();
    }

    /// Wakes `peer` if it sleeps; after [`Chan::publish`] (any time after).
    #[inline(always)]
    fn wake_peer(&self, peer: Role) {
        let mine = || self.cpu_hint(peer.peer());
        wait::wake_if_asleep(self.obj.word32(peer.sleep_word()), mine);
    }

    /// `role`'s CPU hint, next to its sleep word ([`wait::note_cpu`]).
    #[inline]
    fn cpu_hint(&self, role: Role) -> &AtomicU32 {
        self.obj.word32(role.sleep_word() + wait::CPU_HINT_DELTA)
    }

    /// Copies `data` into the payload.
    #[inline(always)]
    fn write_payload(&self, data: &[u8]) {
        self.slot().copy_in(SLOT_HEADER as u64, data);
    }

    /// The payload's first `len` bytes (checked against the limit by the caller).
    #[inline(always)]
    fn payload(&self, len: u32) -> &[u8] {
        match self.slot().ptr(SLOT_HEADER as u64, len as usize) {
            // SAFETY: in range (ptr checks against the mapping); the slot is this side's
            // by protocol until it stores `turn`, which needs `&mut` of its end while
            // this borrow of it lives. A hostile process may still change the bytes
            // (documented: validate what you read).
            Some(p) => unsafe { std::slice::from_raw_parts(p, len as usize) },
            None => &[],
        }
    }

    /// Waits until `turn` moves from `mine` to `next`, watching the peer through
    /// `watch`: spins up to `spin` polls, then sleeps on `me`'s sleep word.
    fn wait_turn(
        &self,
        me: Role,
        watch: &mut Watch,
        mine: u64,
        next: u64,
        spin: u32,
        patience: Patience,
    ) -> std::result::Result<(), ChannelError> {
        let peer = self.obj.endpoint(me.peer().endpoint());
        let mut poll = |how: Check| -> std::result::Result<Option<()>, ChannelError> {
            if let Look::Next = self.look(mine, next)? {
                return Ok(Some(()));
            }
            match watch.gone(&peer, how) {
                None => Ok(None),
                // The peer's last store of `turn` happened before it left: look again.
                Some(e) => match self.look(mine, next)? {
                    Look::Next => Ok(Some(())),
                    Look::Nothing => {
                        watch.reported(&peer);
                        Err(e)
                    }
                },
            }
        };
        match patience.waiting() {
            None => poll(Check::Normal)?.ok_or(ChannelError::Empty),
            Some(patience) => {
                let (spin, first) =
                    wait::budget(self.cpu_hint(me), [self.cpu_hint(me.peer())], spin);
                let spins = if patience == Patience::For(Duration::ZERO) {
                    0
                } else {
                    spin
                };
                // Spin on `turn` alone: one load per poll.
                for _ in 0..spins {
                    if let Look::Next = self.look(mine, next)? {
                        return Ok(());
                    }
                    std::hint::spin_loop();
                }
                let slice = match me {
                    Role::Client => REPLY_SLICE,
                    Role::Server => LIVENESS_SLICE,
                };
                block_on_sliced(
                    self.obj.word32(me.sleep_word()),
                    0,
                    first,
                    patience,
                    slice,
                    poll,
                )
            }
        }
    }
}

/// What a [`Client`] and a [`Server`] hold alike: the mapped channel, the claimed
/// endpoint, a watch on the peer's, the last `turn` value seen on this side's turn and
/// the spin budget. Dropping it gives the endpoint up and wakes the peer.
struct End {
    ch: Chan,
    role: Role,
    me: u64,
    watch: Watch,
    /// The last even `turn` value.
    turn: u64,
    spin: u32,
}

impl End {
    /// Opens `name`, checks it and claims the `role` endpoint; returns the end and the
    /// `turn` word's value at open.
    fn open(name: &str, role: Role) -> Result<(End, u64)> {
        let (obj, h) = Obj::open(name, ObjectKind::CHANNEL_RPC, LAYOUT_VERSION)?;
        let max = validate_config(obj.map(), &h)?;
        let ch = Chan { obj, max };
        let me = liveness::me();
        if let Err(pid) = ch.obj.endpoint(role.endpoint()).claim(me) {
            return Err(Error::new(
                ErrorKind::AlreadyExists,
                "open",
                &ch.obj.name,
                format!("the channel already has a live {} (pid {pid})", role.name()),
            ));
        }
        wait::note_cpu(ch.cpu_hint(role));
        let watch = Watch::new(&ch.obj.endpoint(role.peer().endpoint()));
        // SYNC: Acquire pairs with the Release stores of `turn` by earlier holders of
        // either end: what they wrote into the slot before is visible.
        let t = ch.turn().load(Ordering::Acquire);
        let end = End {
            ch,
            role,
            me,
            watch,
            turn: t & !1,
            spin: DEFAULT_SPIN,
        };
        Ok((end, t))
    }

    /// Waits until `turn` moves from `mine` to `next` (at once if it has).
    #[inline(always)]
    fn wait_for(
        &mut self,
        mine: u64,
        next: u64,
        patience: Patience,
    ) -> std::result::Result<(), ChannelError> {
        if let Look::Nothing = self.ch.look(mine, next)? {
            self.ch
                .wait_turn(self.role, &mut self.watch, mine, next, self.spin, patience)?;
        }
        Ok(())
    }

    /// Whether the other end is held by a live process (slow: reads /proc).
    fn peer_alive(&self) -> bool {
        matches!(
            self.ch.obj.endpoint(self.role.peer().endpoint()).holder(),
            Some((_, true))
        )
    }
}

impl Drop for End {
    fn drop(&mut self) {
        self.ch.obj.endpoint(self.role.endpoint()).release(self.me);
        wait::wake(self.ch.obj.word32(self.role.peer().sleep_word()));
    }
}

/// The calling end of a request-reply channel. One per channel at a time.
///
/// ```no_run
/// # fn main() -> shmkit::Result<()> {
/// use shmkit::channel::rpc::{self, Client, Server};
/// rpc::create("/adder", 64, 0o600)?;
/// // in the server process
/// let mut server = Server::open("/adder")?;
/// std::thread::spawn(move || {
///     while let Ok(req) = server.recv() {
///         let n = u64::from_le_bytes(req[..8].try_into().unwrap_or([0; 8]));
///         let _ = req.reply(&(n + 1).to_le_bytes());
///     }
/// });
/// // in the client process
/// let mut client = Client::open("/adder")?;
/// let reply = client.call(&41u64.to_le_bytes()).unwrap();
/// assert_eq!(&*reply, &42u64.to_le_bytes());
/// # drop(reply); drop(client); rpc::remove("/adder")?;
/// # Ok(()) }
/// ```
pub struct Client {
    /// `end.turn` is the last even `turn` value: the slot is ours while `turn` holds it.
    end: End,
    /// A request (ours, or a dead client's) is waiting for its answer at `turn + 1`.
    pending: bool,
}

impl Client {
    /// Opens the request-reply channel `name` and claims its client end. Fails with
    /// [`ErrorKind::AlreadyExists`] while another live process holds it; the end of a
    /// dead client is taken over (a request it left pending is answered first).
    pub fn open(name: &str) -> Result<Client> {
        let (end, t) = End::open(name, Role::Client)?;
        Ok(Client {
            end,
            pending: t & 1 == 1,
        })
    }

    /// Sets how many times a waiting call polls before it sleeps (default 2000).
    /// A call whose peer last ran on this thread's CPU sleeps without polling: the
    /// peer could not run while it polled.
    pub fn set_spin(&mut self, polls: u32) {
        self.end.spin = polls;
    }

    /// The largest request or reply.
    pub fn max_message(&self) -> usize {
        self.end.ch.max as usize
    }

    /// The channel's object name (`/name`).
    pub fn name(&self) -> &str {
        &self.end.ch.obj.name
    }

    /// Waits for the answer at `turn + 2` (the request at `turn + 1` is out).
    #[inline(always)]
    fn answer(&mut self, patience: Patience) -> std::result::Result<u32, ChannelError> {
        let (mine, next) = (self.end.turn.wrapping_add(1), self.end.turn.wrapping_add(2));
        self.end.wait_for(mine, next, patience)?;
        self.end.turn = next;
        self.pending = false;
        decode_answer(self.end.ch.tag_len(), self.end.ch.max)
    }

    /// Sends `request` once the answer to an earlier request still out (if any) has
    /// come and been dropped; returns what is left of `patience`.
    fn send(
        &mut self,
        request: &[u8],
        mut patience: Patience,
    ) -> std::result::Result<Patience, ChannelError> {
        if request.len() > self.end.ch.max as usize {
            return Err(ChannelError::TooLarge {
                len: request.len(),
                max: self.end.ch.max as usize,
            });
        }
        if self.pending {
            // An earlier request (a call that gave up, or a dead client's) is still out:
            // its answer comes first and is dropped. A timeout covers both waits.
            let start = std::time::Instant::now();
            match self.answer(patience) {
                Ok(_) | Err(ChannelError::Unanswered) => {}
                Err(e) => return Err(e),
            }
            if let Patience::For(d) = patience {
                patience = Patience::For(d.saturating_sub(start.elapsed()));
            }
        }
        self.end.ch.write_payload(request);
        self.pending = true;
        self.end.ch.publish(
            TAG_REQUEST,
            request.len() as u32,
            self.end.turn.wrapping_add(1),
        );
        self.end.ch.wake_peer(Role::Server);
        Ok(patience)
    }

    fn exchange(
        &mut self,
        request: &[u8],
        patience: Patience,
    ) -> std::result::Result<Reply<'_>, ChannelError> {
        let patience = self.send(request, patience)?;
        let len = self.answer(patience)?;
        Ok(Reply { client: self, len })
    }

    /// The answer to the request out, waiting as `patience` allows; `Empty` at once if
    /// no request is out.
    fn take_reply(&mut self, patience: Patience) -> std::result::Result<Reply<'_>, ChannelError> {
        if !self.pending {
            return Err(ChannelError::Empty);
        }
        let len = self.answer(patience)?;
        Ok(Reply { client: self, len })
    }

    /// Sends `request` without waiting for its reply (collect it with
    /// [`Client::try_reply`], [`Client::reply_timeout`] or [`Client::reply`]), if it
    /// can go now: [`ChannelError::Full`] while the answer to an earlier request is
    /// still awaited. A request left out that way is dropped once its answer comes.
    pub fn send_request(&mut self, request: &[u8]) -> std::result::Result<(), ChannelError> {
        match self.send(request, Patience::Now) {
            Ok(_) => Ok(()),
            Err(ChannelError::Empty) => Err(ChannelError::Full),
            Err(e) => Err(e),
        }
    }

    /// As [`Client::send_request`], waiting at most `timeout` for the answer to an
    /// earlier request.
    pub fn send_request_timeout(
        &mut self,
        request: &[u8],
        timeout: Duration,
    ) -> std::result::Result<(), ChannelError> {
        self.send(request, Patience::For(timeout)).map(|_| ())
    }

    /// The reply to the request sent, if it is there now ([`ChannelError::Empty`] if
    /// not, or if no request is out).
    pub fn try_reply(&mut self) -> std::result::Result<Reply<'_>, ChannelError> {
        self.take_reply(Patience::Now)
    }

    /// The reply to the request sent, waiting at most `timeout` (at once
    /// [`ChannelError::Empty`] if no request is out).
    pub fn reply_timeout(
        &mut self,
        timeout: Duration,
    ) -> std::result::Result<Reply<'_>, ChannelError> {
        self.take_reply(Patience::For(timeout))
    }

    /// The reply to the request sent, waiting as long as the server lives (at once
    /// [`ChannelError::Empty`] if no request is out).
    pub fn reply(&mut self) -> std::result::Result<Reply<'_>, ChannelError> {
        self.take_reply(Patience::Forever)
    }

    /// Sends `request` and waits for the reply as long as the server lives (or has not
    /// come yet). The reply is borrowed in place until the [`Reply`] drops.
    ///
    /// If the server dies meanwhile: [`ChannelError::PeerDied`]; the request stays out,
    /// a restarted server answers it, and the next call waits for that answer first.
    #[inline]
    pub fn call(&mut self, request: &[u8]) -> std::result::Result<Reply<'_>, ChannelError> {
        self.exchange(request, Patience::Forever)
    }

    /// As [`Client::call`], waiting at most `timeout` in all. On
    /// [`ChannelError::Timeout`] the request stays out; the next call waits for its
    /// answer (and drops it) first.
    #[inline]
    pub fn call_timeout(
        &mut self,
        request: &[u8],
        timeout: Duration,
    ) -> std::result::Result<Reply<'_>, ChannelError> {
        self.exchange(request, Patience::For(timeout))
    }

    /// Calls with a plain-old-data request and reply ([`ChannelError::WrongSize`] if the
    /// reply has another size).
    pub fn call_value<Q: bytemuck::NoUninit, R: bytemuck::AnyBitPattern>(
        &mut self,
        request: &Q,
    ) -> std::result::Result<R, ChannelError> {
        let reply = self.call(bytemuck::bytes_of(request))?;
        super::value_of(&reply)
    }

    /// Whether a server holds the other end and its process lives (slow: reads /proc).
    pub fn server_alive(&self) -> bool {
        self.end.peer_alive()
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("name", &self.end.ch.obj.name)
            .finish()
    }
}

/// A reply, borrowed in place from the slot until it drops (the next call needs the
/// client again). A hostile process mapping the object could change the bytes:
/// validate what you read.
pub struct Reply<'a> {
    client: &'a mut Client,
    len: u32,
}

impl Deref for Reply<'_> {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        self.client.end.ch.payload(self.len)
    }
}

impl std::fmt::Debug for Reply<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reply").field("len", &self.len).finish()
    }
}

/// The answering end of a request-reply channel. One per channel at a time.
pub struct Server {
    /// `end.turn` is the last even `turn` value: a request arrives as `turn + 1`.
    end: End,
}

impl Server {
    /// Opens the request-reply channel `name` and claims its server end. Fails with
    /// [`ErrorKind::AlreadyExists`] while another live process holds it; the end of a
    /// dead server is taken over, and a request it left unanswered is received first.
    pub fn open(name: &str) -> Result<Server> {
        let (end, _) = End::open(name, Role::Server)?;
        Ok(Server { end })
    }

    /// Sets how many times a waiting receive polls before it sleeps (default 2000).
    /// A call whose peer last ran on this thread's CPU sleeps without polling: the
    /// peer could not run while it polled.
    pub fn set_spin(&mut self, polls: u32) {
        self.end.spin = polls;
    }

    /// The largest request or reply.
    pub fn max_message(&self) -> usize {
        self.end.ch.max as usize
    }

    /// The channel's object name (`/name`).
    pub fn name(&self) -> &str {
        &self.end.ch.obj.name
    }

    /// Waits as `patience` allows until a request is there to receive, answering
    /// requests torn by a server that died mid-reply on the way.
    fn ready(&mut self, patience: Patience) -> std::result::Result<(), ChannelError> {
        // The wake-up the last answer may owe: `Request::answer` only ran the barrier.
        // On the development VM, anything the server did after its reply's barrier (a
        // load of the client's sleep word, even a store to its own memory) cost 30 ns of
        // an 8-byte call (110 against 80 ns); here it costs nothing measurable. A client
        // that sleeps meanwhile looks again every REPLY_SLICE; dropping the server wakes
        // it too.
        self.end.ch.wake_peer(Role::Client);
        loop {
            let (mine, next) = (self.end.turn, self.end.turn.wrapping_add(1));
            self.end.wait_for(mine, next, patience)?;
            if (self.end.ch.tag_len() >> 32) as u32 != TAG_ANSWERING {
                break;
            }
            // A server died writing its reply over this request: what is left is
            // neither. Answer it as unanswered and wait for the next one.
            self.end.turn = self.end.turn.wrapping_add(2);
            self.end.ch.publish(TAG_UNANSWERED, 0, self.end.turn);
            self.end.ch.wake_peer(Role::Client);
        }
        Ok(())
    }

    /// Whether a request is there to receive now (for the async wrapper).
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn ready_now(&mut self) -> std::result::Result<bool, ChannelError> {
        match self.ready(Patience::Now) {
            Ok(()) => Ok(true),
            Err(ChannelError::Empty) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Waits at most `timeout` until a request is there to receive (for the async
    /// wrapper, which then receives it without waiting).
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn wait_timeout(
        &mut self,
        timeout: Duration,
    ) -> std::result::Result<(), ChannelError> {
        self.ready(Patience::For(timeout))
    }

    fn next(&mut self, patience: Patience) -> std::result::Result<Request<'_>, ChannelError> {
        self.ready(patience)?;
        let decoded = decode_request(self.end.ch.tag_len(), self.end.ch.max);
        let req = Request {
            server: self,
            len: *decoded.as_ref().unwrap_or(&0),
            answered: false,
        };
        match decoded {
            Ok(_) => Ok(req),
            // Dropping `req` answers the garbage with no reply, so the slot goes back to
            // the client and neither side waits for ever.
            Err(why) => Err(ChannelError::Corrupt(why)),
        }
    }

    /// The next request, if one is waiting now ([`ChannelError::Empty`] if not).
    #[inline]
    pub fn try_recv(&mut self) -> std::result::Result<Request<'_>, ChannelError> {
        self.next(Patience::Now)
    }

    /// The next request, waiting for it. When the client has gone:
    /// [`ChannelError::Disconnected`] (it closed) or [`ChannelError::PeerDied`] (it
    /// died), once; the next call waits for a new client.
    #[inline]
    pub fn recv(&mut self) -> std::result::Result<Request<'_>, ChannelError> {
        self.next(Patience::Forever)
    }

    /// As [`Server::recv`], waiting at most `timeout`.
    #[inline]
    pub fn recv_timeout(
        &mut self,
        timeout: Duration,
    ) -> std::result::Result<Request<'_>, ChannelError> {
        self.next(Patience::For(timeout))
    }

    /// Whether a client holds the other end and its process lives (slow: reads /proc).
    pub fn client_alive(&self) -> bool {
        self.end.peer_alive()
    }
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("name", &self.end.ch.obj.name)
            .finish()
    }
}

/// A request, borrowed in place from the slot. Answer it with [`Request::reply`]; a
/// request dropped without a reply is answered with none (the client gets
/// [`ChannelError::Unanswered`]). A hostile process mapping the object could change the
/// bytes: validate what you read.
pub struct Request<'a> {
    server: &'a mut Server,
    len: u32,
    answered: bool,
}

impl Request<'_> {
    /// Answers with a copy of `reply`, written over the request. A reply over the
    /// channel's limit is [`ChannelError::TooLarge`], and the client gets
    /// [`ChannelError::Unanswered`] instead.
    #[inline]
    pub fn reply(mut self, reply: &[u8]) -> std::result::Result<(), ChannelError> {
        let max = self.server.end.ch.max as usize;
        if reply.len() > max {
            return Err(ChannelError::TooLarge {
                len: reply.len(),
                max,
            });
        }
        self.answer(TAG_REPLY, reply);
        Ok(())
    }

    /// Answers with a plain-old-data value.
    #[inline]
    pub fn reply_value<T: bytemuck::NoUninit>(
        self,
        value: &T,
    ) -> std::result::Result<(), ChannelError> {
        self.reply(bytemuck::bytes_of(value))
    }

    /// The request as a plain-old-data value ([`ChannelError::WrongSize`] otherwise).
    pub fn value<T: bytemuck::AnyBitPattern>(&self) -> std::result::Result<T, ChannelError> {
        super::value_of(self)
    }

    #[inline(always)]
    fn answer(&mut self, tag: u32, data: &[u8]) {
        let s = &mut *self.server;
        if !data.is_empty() {
            // The reply overwrites the request: mark the slot first, so that if this
            // process is killed in the copy, the next server does not take the half
            // overwritten bytes for the request.
            s.end
                .ch
                .obj
                .word64(TAG_LEN)
                .store((TAG_ANSWERING as u64) << 32, Ordering::Relaxed);
            // SYNC: a Release fence keeps the mark before the payload stores below in
            // memory order (a crash, not another thread, is what it guards against; on
            // x86 it only stops the compiler from reordering).
            std::sync::atomic::fence(Ordering::Release);
        }
        s.end.ch.write_payload(data);
        s.end.turn = s.end.turn.wrapping_add(2);
        s.end.ch.publish(tag, data.len() as u32, s.end.turn);
        // The client's sleep word is looked at by the next receive (`Server::ready`)
        // or the drop, not here (see there).
        self.answered = true;
    }
}

impl Deref for Request<'_> {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        self.server.end.ch.payload(self.len)
    }
}

impl Drop for Request<'_> {
    #[inline]
    fn drop(&mut self) {
        if !self.answered {
            self.answer(TAG_UNANSWERED, &[]);
        }
    }
}

impl std::fmt::Debug for Request<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request").field("len", &self.len).finish()
    }
}

/// Removes the channel's name; processes that have it open keep using it.
pub fn remove(name: &str) -> Result<()> {
    super::remove(name)
}

/// What [`describe`] reports about a request-reply channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RpcInfo {
    /// The largest request or reply.
    pub max_message: u32,
    /// Calls answered so far (from the `turn` word).
    pub calls: u64,
    /// Whether a request waits for its answer.
    pub pending: bool,
    /// The client, if one holds the end.
    pub client: Option<EndpointInfo>,
    /// The server, if one holds the end.
    pub server: Option<EndpointInfo>,
    /// How many times a client has opened the channel.
    pub client_opens: u32,
    /// How many times a server has opened the channel.
    pub server_opens: u32,
}

/// Describes the request-reply channel laid out in `region` (read-only mappings work).
pub fn describe(region: &(impl Region + ?Sized)) -> Result<RpcInfo> {
    let max_message = validate(region)?;
    let turn: u64 = region.read(TURN)?;
    let endpoint = |off: usize| -> Result<(Option<EndpointInfo>, u32)> {
        let w: u64 = region.read(off)?;
        let epoch: u32 = region.read(off + super::layout::EPOCH_DELTA)?;
        let info = (w != 0).then(|| EndpointInfo {
            pid: liveness::pid_of(w),
            alive: liveness::alive(w),
        });
        Ok((info, epoch))
    };
    let (client, client_opens) = endpoint(CLIENT_OFFSET)?;
    let (server, server_opens) = endpoint(SERVER_OFFSET)?;
    Ok(RpcInfo {
        max_message,
        calls: turn / 2,
        pending: turn & 1 == 1,
        client,
        server,
        client_opens,
        server_opens,
    })
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn name(tag: &str) -> String {
        format!("/shmkit_test_rpc_{tag}_{}", std::process::id())
    }

    #[test]
    fn calls_are_answered_in_place_and_in_order() {
        let n = name("order");
        create(&n, 100, 0o600).unwrap();
        let mut server = Server::open(&n).unwrap();
        let mut client = Client::open(&n).unwrap();
        let t = std::thread::spawn(move || {
            let mut served = 0u32;
            loop {
                match server.recv() {
                    Ok(req) => {
                        let mut v = req.to_vec();
                        v.reverse();
                        req.reply(&v).unwrap();
                        served += 1;
                    }
                    Err(ChannelError::Disconnected) => return served,
                    Err(e) => panic!("server: {e}"),
                }
            }
        });
        for i in 0..2000u32 {
            let len = (i % 101) as usize;
            let req: Vec<u8> = (0..len).map(|k| (k as u32 * 7 + i) as u8).collect();
            let reply = client.call(&req).unwrap();
            let mut want = req.clone();
            want.reverse();
            assert_eq!(&*reply, &want[..], "call {i}");
        }
        assert_eq!(
            client.call(&[0; 101]).unwrap_err(),
            ChannelError::TooLarge { len: 101, max: 100 }
        );
        drop(client);
        assert_eq!(t.join().unwrap(), 2000);
        let info = describe(
            &crate::posix::PosixShm::open(
                &crate::posix::ShmName::new(&n).unwrap(),
                crate::posix::Access::ReadOnly,
            )
            .unwrap()
            .map()
            .unwrap(),
        )
        .unwrap();
        assert_eq!(
            (info.calls, info.pending, info.max_message),
            (2000, false, 100)
        );
        remove(&n).unwrap();
    }

    #[test]
    fn a_request_sent_now_is_collected_later() {
        let n = name("split");
        create(&n, 16, 0o600).unwrap();
        let mut server = Server::open(&n).unwrap();
        let mut client = Client::open(&n).unwrap();
        assert_eq!(client.try_reply().unwrap_err(), ChannelError::Empty);
        client.send_request(b"one").unwrap();
        // The first request's answer is still awaited.
        assert_eq!(client.send_request(b"two").unwrap_err(), ChannelError::Full);
        assert_eq!(client.try_reply().unwrap_err(), ChannelError::Empty);
        let req = server.try_recv().unwrap();
        assert_eq!(&*req, b"one");
        req.reply(b"ONE").unwrap();
        assert!(server.ready_now().is_ok_and(|r| !r));
        assert_eq!(&*client.try_reply().unwrap(), b"ONE");
        assert_eq!(client.reply().unwrap_err(), ChannelError::Empty);
        // A request left out is dropped once its answer comes.
        client.send_request(b"lost").unwrap();
        assert!(server.ready_now().unwrap());
        server.try_recv().unwrap().reply(b"LOST").unwrap();
        client.send_request(b"kept").unwrap();
        server.wait_timeout(Duration::from_secs(5)).unwrap();
        server.try_recv().unwrap().reply(b"KEPT").unwrap();
        assert_eq!(
            &*client.reply_timeout(Duration::from_secs(5)).unwrap(),
            b"KEPT"
        );
        drop((client, server));
        remove(&n).unwrap();
    }
}
