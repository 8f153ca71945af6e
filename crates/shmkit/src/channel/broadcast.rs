//! The broadcast channel: one [`Publisher`], up to N [`Subscriber`]s, each with its own
//! cursor, joining and leaving while it runs.
//!
//! ```text
//! offset        size   contents
//!      0          64   shmkit::header (kind CHANNEL_BROADCAST, version LAYOUT_VERSION)
//!     64          64   config: slots u64 | max_message u32 | subscribers u32 |
//!                              mode u32 | slot_size u32 | ring_offset u64 | zero
//!    128         128   publisher: head u64 (messages published) | owner u64 | epoch u32
//!    256         128   tx_sleep: AtomicU32, 1 while the publisher waits for room |
//!                      publisher CPU hint u32 (`wait::note_cpu`)
//!    384         128   rx wait: wake_seq u32 (futex) | sleepers u32
//!    512   128*subs    subscriber slots: owner u64 | epoch u32 | sleeping u32 |
//!                                        CPU hint u32 | pad to 64 |
//!                                        cursor u64 (next message index) | pad
//!   ring  slots*size   message slots: seq u64 | len u32 | zero u32 | payload (max
//!                      message rounded up to 8)
//! ```
//!
//! Messages are numbered 0, 1, 2 … and message `p` lives in slot `p % slots`. Each slot
//! is a seqlock: the publisher stores `seq = 2p + 1` (writing), then the length and the
//! payload, then `seq = 2p + 2` (Release). A subscriber reading message `c` loads `seq`
//! (Acquire): below `2c + 2` means "not yet" (a publisher killed while writing leaves it
//! odd, so a torn message is never seen), above means the slot was reused, equal means
//! ready: it copies the length and payload with relaxed atomic loads, then loads `seq`
//! again after an Acquire fence; a change means the copy may be torn and is discarded.
//!
//! The mode is chosen at creation:
//! - [`Mode::Backpressure`]: the publisher writes message `p` only when every live
//!   subscriber's cursor is above `p - slots` (it caches the minimum and rescans only
//!   when the cache says full); a dead subscriber's slot is reclaimed when it holds the
//!   publisher back.
//! - [`Mode::Overwrite`]: the publisher never waits; a subscriber that was overtaken
//!   jumps to the oldest message still in the ring and gets
//!   [`ChannelError::Lagged`]`(missed)` once, then the messages that follow.
//!
//! Waiting: subscribers sleep on one futex word `wake_seq` and count themselves in
//! `sleepers` (SeqCst) before a last check; the publisher, after publishing (SeqCst),
//! loads `sleepers` (SeqCst) and only when it is non-zero bumps `wake_seq` and wakes all
//! of them (the Dekker pattern of [`super::wait`], made safe for many sleepers). A
//! sleeper also sets `sleeping` in its own slot, so that when a subscriber dies asleep,
//! whoever reclaims its slot takes its count back out of `sleepers`. The
//! publisher waiting for room sleeps on `tx_sleep` (the SPSC wait loop); a
//! subscriber notifies it after moving its cursor.
//!
//! In Backpressure mode a subscriber can read a message in its slot
//! ([`Subscriber::recv_ref`]): its cursor moves past the message only when the guard is
//! dropped, so the publisher cannot reuse the slot meanwhile. In Overwrite mode the
//! publisher may reuse a slot at any time, so receiving copies (a `recv_ref` guard then
//! holds a copy, checked by the seqlock). The publisher may loan a slot
//! ([`Publisher::loan`]); in Overwrite mode nobody reads a slot while its seq is odd.

use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::liveness;
use super::multi::{Obj, Watch};
use super::seqlock;
use super::wait::{self, block_on, Check, Patience, DEFAULT_SPIN, LIVENESS_SLICE};
use super::{ChannelError, EndpointInfo};
use crate::error::{Error, ErrorKind, Result};
use crate::header::{self, ObjectKind, HEADER_SIZE};
use crate::region::{Region, RegionExt};
use crate::sys::futex;

/// The version of this layout, checked at open.
pub const LAYOUT_VERSION: u16 = 1;
/// Offset of the config block.
pub const CONFIG_OFFSET: usize = HEADER_SIZE;
/// Offset of the publisher's `head` (messages published).
pub const HEAD_OFFSET: usize = 128;
/// Offset of the publisher endpoint (owner u64, epoch u32).
pub const PUBLISHER_OFFSET: usize = 136;
/// Offset of the publisher's sleep word.
pub const TX_SLEEP_OFFSET: usize = 256;
/// Offset of the subscribers' futex word.
pub const WAKE_SEQ_OFFSET: usize = 384;
/// Offset of the count of sleeping subscribers.
pub const SLEEPERS_OFFSET: usize = 388;
/// Offset of subscriber slot 0.
pub const SUBS_OFFSET: usize = 512;
/// Bytes of a subscriber slot.
pub const SUB_SIZE: usize = 128;
/// Offset of the cursor in a subscriber slot.
pub const SUB_CURSOR: usize = 64;
/// Offset of the "asleep, counted in sleepers" flag in a subscriber slot.
pub const SUB_SLEEPING: usize = 12;
/// Offset of the subscriber's CPU hint in its slot (see `channel::wait`; the
/// publisher's sits next to `tx_sleep`).
pub const SUB_CPU: usize = 16;
/// Bytes of a message slot's header (seq u64, len u32, zero u32).
pub const SLOT_HEADER: usize = 16;
/// Most subscribers.
pub const MAX_SUBSCRIBERS: u32 = 1024;
/// Most message slots.
pub const MAX_SLOTS: u64 = 1 << 24;
/// Largest ring (1 GiB).
pub const MAX_RING: u64 = 1 << 30;

/// What happens when a subscriber is slow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// The publisher waits for the slowest live subscriber.
    #[default]
    Backpressure,
    /// The publisher overwrites; an overtaken subscriber is told how many it missed.
    Overwrite,
}

/// The config block at [`CONFIG_OFFSET`].
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct Config {
    /// Message slots in the ring.
    pub slots: u64,
    /// Largest payload.
    pub max_message: u32,
    /// Subscriber slots.
    pub subscribers: u32,
    /// 0: Backpressure, 1: Overwrite.
    pub mode: u32,
    /// Bytes of a message slot ([`SLOT_HEADER`] + max_message rounded up to 8).
    pub slot_size: u32,
    /// Offset of the ring.
    pub ring_offset: u64,
    /// Zero.
    pub reserved: [u64; 4],
}

const _: () = assert!(std::mem::size_of::<Config>() == 64);

/// The checked geometry of a broadcast object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BroadcastGeometry {
    /// Message slots.
    pub slots: u64,
    /// Largest payload.
    pub max_message: u32,
    /// Subscriber slots.
    pub subscribers: u32,
    /// The mode.
    pub mode: Mode,
}

impl BroadcastGeometry {
    /// Bytes of one message slot.
    pub fn slot_size(&self) -> u64 {
        SLOT_HEADER as u64 + (self.max_message as u64).div_ceil(8) * 8
    }
    /// Offset of the ring.
    pub fn ring_offset(&self) -> u64 {
        (SUBS_OFFSET + self.subscribers as usize * SUB_SIZE) as u64
    }
    /// Total bytes of the object.
    pub fn total_size(&self) -> u64 {
        self.ring_offset() + self.slots * self.slot_size()
    }
    fn check(&self) -> std::result::Result<(), &'static str> {
        if self.subscribers == 0 || self.subscribers > MAX_SUBSCRIBERS {
            return Err("the subscriber count is out of range");
        }
        if self.slots < 2 || self.slots > MAX_SLOTS {
            return Err("the slot count is out of range");
        }
        if self.max_message as u64 > MAX_RING / 2 || self.slots * self.slot_size() > MAX_RING {
            return Err("the ring exceeds 1 GiB");
        }
        Ok(())
    }
}

/// Creates the broadcast channel `name`: a ring of about `capacity` bytes (at least two
/// message slots of `max_message` bytes), `subscribers` subscriber slots, `mode`.
pub fn create(
    name: &str,
    capacity: u64,
    max_message: u64,
    subscribers: u32,
    mode: Mode,
    perm: u32,
) -> Result<()> {
    let object = crate::posix::ShmName::new(name)?.to_string();
    let max = u32::try_from(max_message)
        .ok()
        .filter(|m| (*m as u64) <= MAX_RING / 2)
        .ok_or_else(|| Error::invalid("create", &object, "the message limit is too large"))?;
    let mut g = BroadcastGeometry {
        slots: 2,
        max_message: max,
        subscribers,
        mode,
    };
    g.slots = (capacity / g.slot_size()).max(2);
    g.check()
        .map_err(|r| Error::invalid("create", &object, r))?;
    Obj::create(name, g.total_size(), perm, |map| init(map, g))
}

/// Lays out a broadcast object with geometry `g` in `region` (not yet published).
pub(crate) fn init(region: &(impl Region + ?Sized), g: BroadcastGeometry) -> Result<()> {
    header::init(
        region,
        header::Layout {
            kind: ObjectKind::CHANNEL_BROADCAST,
            version: LAYOUT_VERSION,
            header_size: (g.ring_offset() as usize - HEADER_SIZE) as u32,
            total_size: g.total_size(),
        },
    )?;
    region.write(
        CONFIG_OFFSET,
        &Config {
            slots: g.slots,
            max_message: g.max_message,
            subscribers: g.subscribers,
            mode: (g.mode == Mode::Overwrite) as u32,
            slot_size: g.slot_size() as u32,
            ring_offset: g.ring_offset(),
            reserved: [0; 4],
        },
    )
}

/// Validates a broadcast object's header and config; returns its geometry.
pub fn validate(region: &(impl Region + ?Sized)) -> Result<BroadcastGeometry> {
    let h = header::validate(region, ObjectKind::CHANNEL_BROADCAST, LAYOUT_VERSION)?;
    validate_config(region, &h)
}

fn validate_config(
    region: &(impl Region + ?Sized),
    h: &header::Header,
) -> Result<BroadcastGeometry> {
    let name = region.object_name();
    let bad = |why: String| Error::corrupt("open", &name, why);
    let cfg: Config = region.read(CONFIG_OFFSET)?;
    let mode = match cfg.mode {
        0 => Mode::Backpressure,
        1 => Mode::Overwrite,
        m => return Err(bad(format!("unknown broadcast mode {m}"))),
    };
    let g = BroadcastGeometry {
        slots: cfg.slots,
        max_message: cfg.max_message,
        subscribers: cfg.subscribers,
        mode,
    };
    g.check().map_err(|r| bad(r.to_string()))?;
    if cfg.slot_size as u64 != g.slot_size() || cfg.ring_offset != g.ring_offset() {
        return Err(bad("the slot size or ring offset is wrong".into()));
    }
    if h.header_size as u64 != g.ring_offset() - HEADER_SIZE as u64 {
        return Err(bad(format!(
            "broadcast header size {} is wrong",
            h.header_size
        )));
    }
    if g.total_size() != h.total_size || g.total_size() > region.len() as u64 {
        return Err(bad(format!(
            "{} slots of {} bytes do not match the object size {} (mapping {})",
            g.slots,
            g.slot_size(),
            h.total_size,
            region.len()
        )));
    }
    Ok(g)
}

/// A mapped, validated broadcast object.
struct Chan {
    obj: Obj,
    g: BroadcastGeometry,
}

impl Chan {
    fn open(name: &str) -> Result<Chan> {
        let (obj, h) = Obj::open(name, ObjectKind::CHANNEL_BROADCAST, LAYOUT_VERSION)?;
        let g = validate_config(obj.map(), &h)?;
        Ok(Chan { obj, g })
    }
    fn head(&self) -> &AtomicU64 {
        self.obj.word64(HEAD_OFFSET)
    }
    fn publisher(&self) -> liveness::Endpoint<'_> {
        self.obj.endpoint(PUBLISHER_OFFSET)
    }
    fn sub(&self, i: usize) -> liveness::Endpoint<'_> {
        self.obj.endpoint(SUBS_OFFSET + i * SUB_SIZE)
    }
    fn sleeping(&self, i: usize) -> &AtomicU32 {
        self.obj.word32(SUBS_OFFSET + i * SUB_SIZE + SUB_SLEEPING)
    }
    /// Subscriber `i`'s CPU hint.
    fn sub_cpu(&self, i: usize) -> &AtomicU32 {
        self.obj.word32(SUBS_OFFSET + i * SUB_SIZE + SUB_CPU)
    }
    /// The publisher's CPU hint.
    fn pub_cpu(&self) -> &AtomicU32 {
        self.obj.word32(TX_SLEEP_OFFSET + wait::CPU_HINT_DELTA)
    }
    /// Takes a reclaimed slot's sleeper out of the count (it died asleep).
    fn unsleep(&self, i: usize) {
        if self.sleeping(i).swap(0, Ordering::Relaxed) == 1 {
            self.obj
                .word32(SLEEPERS_OFFSET)
                .fetch_sub(1, Ordering::Relaxed);
        }
    }
    fn cursor(&self, i: usize) -> &AtomicU64 {
        self.obj.word64(SUBS_OFFSET + i * SUB_SIZE + SUB_CURSOR)
    }
    fn slot_off(&self, p: u64) -> usize {
        (self.g.ring_offset() + (p % self.g.slots) * self.g.slot_size()) as usize
    }
    fn seq(&self, p: u64) -> &AtomicU64 {
        self.obj.word64(self.slot_off(p))
    }
    fn len(&self, p: u64) -> &AtomicU32 {
        self.obj.word32(self.slot_off(p) + 8)
    }
    /// The payload words of message `p`'s slot.
    fn word(&self, p: u64, i: usize) -> &AtomicU64 {
        self.obj.word64(self.slot_off(p) + SLOT_HEADER + 8 * i)
    }
    fn payload_ptr(&self, p: u64) -> usize {
        self.slot_off(p) + SLOT_HEADER
    }
}

impl seqlock::SlotMem for Chan {
    #[inline]
    fn seq(&self, p: u64, order: Ordering) -> u64 {
        Chan::seq(self, p).load(order)
    }
    #[inline]
    fn set_seq(&self, p: u64, v: u64, order: Ordering) {
        Chan::seq(self, p).store(v, order)
    }
    #[inline]
    fn len(&self, p: u64) -> u32 {
        Chan::len(self, p).load(Ordering::Relaxed)
    }
    #[inline]
    fn set_len(&self, p: u64, v: u32) {
        Chan::len(self, p).store(v, Ordering::Relaxed)
    }
    #[inline]
    fn word(&self, p: u64, i: usize) -> u64 {
        Chan::word(self, p, i).load(Ordering::Relaxed)
    }
    #[inline]
    fn set_word(&self, p: u64, i: usize, v: u64) {
        Chan::word(self, p, i).store(v, Ordering::Relaxed)
    }
    #[inline]
    fn fence(&self, order: Ordering) {
        fence(order)
    }
}

/// Where a publisher resumes: the shared `head`, moved past messages a publisher that
/// died had published before storing `head` (at most one ring).
fn recover_head(ch: &Chan) -> u64 {
    // SYNC: Acquire pairs with the Release store of `head` in Publisher::finish.
    let mut h = ch.head().load(Ordering::Acquire).min(u64::MAX / 4);
    for _ in 0..ch.g.slots {
        // SYNC: Acquire pairs with the Release seq store in Publisher::finish.
        if ch.seq(h).load(Ordering::Acquire) == 2 * h + 2 {
            h += 1;
        } else {
            break;
        }
    }
    h
}

/// The publishing end of a broadcast channel. One per channel at a time.
pub struct Publisher {
    ch: Chan,
    head: u64,
    /// The lowest cursor of a live subscriber, as last computed (Backpressure).
    cached_min: u64,
    last_check: Instant,
    me: u64,
    spin: u32,
}

impl Publisher {
    /// Opens the broadcast channel `name` and claims its publisher slot (a dead
    /// publisher's is taken over; it resumes after the last complete message).
    pub fn open(name: &str) -> Result<Publisher> {
        let ch = Chan::open(name)?;
        let me = liveness::me();
        if let Err(pid) = ch.publisher().claim(me) {
            return Err(Error::new(
                ErrorKind::AlreadyExists,
                "open",
                &ch.obj.name,
                format!("the channel already has a live publisher (pid {pid})"),
            ));
        }
        wait::note_cpu(ch.pub_cpu());
        let head = recover_head(&ch);
        Ok(Publisher {
            ch,
            head,
            cached_min: head,
            last_check: Instant::now(),
            me,
            spin: DEFAULT_SPIN,
        })
    }

    /// Sets how many times a blocking call polls before it sleeps (default 2000).
    /// A call whose peer last ran on this thread's CPU sleeps without polling: the
    /// peer could not run while it polled.
    pub fn set_spin(&mut self, polls: u32) {
        self.spin = polls;
    }

    /// The largest message this channel takes.
    pub fn max_message(&self) -> usize {
        self.ch.g.max_message as usize
    }

    /// The channel's mode.
    pub fn mode(&self) -> Mode {
        self.ch.g.mode
    }

    /// The channel's object name (`/name`).
    pub fn name(&self) -> &str {
        &self.ch.obj.name
    }

    /// The lowest cursor of the subscribers (`head` if none); with `reap`, the slots of
    /// dead subscribers are freed on the way.
    fn min_cursor(ch: &Chan, head: u64, reap: bool) -> u64 {
        let mut min = head;
        for i in 0..ch.g.subscribers as usize {
            let ep = ch.sub(i);
            // SYNC: Acquire pairs with the Release in Endpoint::claim/release.
            let w = ep.owner.load(Ordering::Acquire);
            if w == 0 {
                continue;
            }
            if reap && !liveness::alive(w) {
                // SYNC: a dead subscriber wrote nothing after dying; Relaxed suffices.
                if ep
                    .owner
                    .compare_exchange(w, 0, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
                {
                    ch.unsleep(i);
                }
                continue;
            }
            // SYNC: SeqCst pairs with the SeqCst cursor store in Subscriber::advance
            // (the subscriber has finished reading what it passed) and orders this
            // load after our tx_sleep store (see super::wait).
            let c = ch.cursor(i).load(Ordering::SeqCst);
            // A cursor ahead of head is a joining subscriber's or a hostile one's: it
            // holds nothing back.
            min = min.min(c.min(head));
        }
        min
    }

    fn poll_room(&mut self, how: Check) -> bool {
        if self.ch.g.mode == Mode::Overwrite || self.head - self.cached_min < self.ch.g.slots {
            return true;
        }
        let reap = match how {
            Check::Spin => false,
            Check::Normal => self.last_check.elapsed() >= LIVENESS_SLICE,
            Check::Liveness => true,
        };
        if reap {
            self.last_check = Instant::now();
        }
        self.cached_min = Self::min_cursor(&self.ch, self.head, reap);
        self.head - self.cached_min < self.ch.g.slots
    }

    fn reserve(&mut self, len: usize, patience: Patience) -> std::result::Result<(), ChannelError> {
        if len > self.ch.g.max_message as usize {
            return Err(ChannelError::TooLarge {
                len,
                max: self.ch.g.max_message as usize,
            });
        }
        match patience.waiting() {
            None => self
                .poll_room(Check::Normal)
                .then_some(())
                .ok_or(ChannelError::Full),
            Some(patience) => {
                if self.poll_room(Check::Spin) {
                    return Ok(());
                }
                // Sleep at once if every live subscriber last ran on this CPU.
                let ch = &self.ch;
                let live = (0..ch.g.subscribers as usize)
                    .filter(|&i| ch.sub(i).owner.load(Ordering::Relaxed) != 0)
                    .map(|i| ch.sub_cpu(i));
                let (spin, first) = wait::budget(ch.pub_cpu(), live, self.spin);
                // The sleep word is re-derived inside: `self` is borrowed by the poll.
                let word: *const AtomicU32 = self.ch.obj.word32(TX_SLEEP_OFFSET);
                // SAFETY: `word` points into the mapping owned by self.ch, which lives
                // for the whole call; only shared (atomic) access is made through it.
                let word = unsafe { &*word };
                block_on(word, spin, first, patience, |how| {
                    Ok(self.poll_room(how).then_some(()))
                })
            }
        }
    }

    /// Marks slot `head` as being written.
    fn begin(&self) {
        seqlock::begin(&self.ch, self.head);
    }

    fn finish(&mut self, len: u32) {
        let p = self.head;
        seqlock::finish(&self.ch, p, len);
        self.head = p + 1;
        // SYNC: Release pairs with the Acquire loads of `head` in recover_head and
        // Subscriber::overtaken.
        self.ch.head().store(self.head, Ordering::Release);
        // SYNC: SeqCst load pairs with the SeqCst fetch_add in Subscriber::wait.
        if self.ch.obj.word32(SLEEPERS_OFFSET).load(Ordering::SeqCst) != 0 {
            wait::note_cpu(self.ch.pub_cpu());
            let seq = self.ch.obj.word32(WAKE_SEQ_OFFSET);
            seq.fetch_add(1, Ordering::Relaxed);
            futex::wake_all(seq);
        }
    }

    fn put(&mut self, data: &[u8], patience: Patience) -> Result<(), ChannelError> {
        self.reserve(data.len(), patience)?;
        self.begin();
        if self.ch.g.mode == Mode::Backpressure {
            // Nobody reads this slot now: every live subscriber has passed its previous
            // message (reserve waited for that) and none reads a message before its
            // seq is even. So one plain copy, as a loan would be written, instead of
            // word-by-word atomic stores (the seqlock's way, needed in Overwrite mode
            // where a lagging subscriber may still be copying the old message).
            let off = self.ch.payload_ptr(self.head);
            self.ch.obj.ring(off, data.len() as u64).copy_in(0, data);
        } else {
            seqlock::write(&self.ch, self.head, data);
        }
        self.finish(data.len() as u32);
        Ok(())
    }

    /// Publishes a copy of `data` if there is room now (always, in Overwrite mode).
    pub fn try_send(&mut self, data: &[u8]) -> Result<(), ChannelError> {
        self.put(data, Patience::Now)
    }

    /// Publishes a copy of `data`, waiting for the slowest subscriber (Backpressure).
    pub fn send(&mut self, data: &[u8]) -> Result<(), ChannelError> {
        self.put(data, Patience::Forever)
    }

    /// Publishes a copy of `data`, waiting at most `timeout` for room.
    pub fn send_timeout(&mut self, data: &[u8], timeout: Duration) -> Result<(), ChannelError> {
        self.put(data, Patience::For(timeout))
    }

    /// Publishes a plain-old-data value (its bytes).
    pub fn send_value<T: bytemuck::NoUninit>(&mut self, value: &T) -> Result<(), ChannelError> {
        self.send(bytemuck::bytes_of(value))
    }

    /// Loans `len` bytes of the next message slot if there is room now: write in place,
    /// then [`PubLoan::commit`]. Dropping the loan publishes nothing.
    pub fn try_loan(&mut self, len: usize) -> Result<PubLoan<'_>, ChannelError> {
        self.reserve(len, Patience::Now)?;
        self.begin();
        Ok(PubLoan { tx: self, len })
    }

    /// Loans `len` bytes, waiting for room.
    pub fn loan(&mut self, len: usize) -> Result<PubLoan<'_>, ChannelError> {
        self.reserve(len, Patience::Forever)?;
        self.begin();
        Ok(PubLoan { tx: self, len })
    }

    /// Loans `len` bytes, waiting at most `timeout` for room.
    pub fn loan_timeout(
        &mut self,
        len: usize,
        timeout: Duration,
    ) -> Result<PubLoan<'_>, ChannelError> {
        self.reserve(len, Patience::For(timeout))?;
        self.begin();
        Ok(PubLoan { tx: self, len })
    }

    /// How many subscribers hold a slot now (alive or not yet found dead).
    pub fn subscribers(&self) -> usize {
        (0..self.ch.g.subscribers as usize)
            .filter(|&i| self.ch.sub(i).owner.load(Ordering::Relaxed) != 0)
            .count()
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.ch.publisher().release(self.me);
        let seq = self.ch.obj.word32(WAKE_SEQ_OFFSET);
        seq.fetch_add(1, Ordering::Relaxed);
        futex::wake_all(seq);
    }
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("broadcast::Publisher")
            .field("name", &self.ch.obj.name)
            .finish()
    }
}

/// A message slot loaned by [`Publisher::loan`]. Subscribers do not read it before
/// commit (its seq is odd). Dropping it without committing publishes nothing (the slot
/// stays marked as being written and is rewritten by the next send).
pub struct PubLoan<'a> {
    tx: &'a mut Publisher,
    len: usize,
}

impl PubLoan<'_> {
    /// Publishes the whole loaned length.
    pub fn commit(self) {
        let n = self.len as u32;
        self.tx.finish(n);
    }
    /// Publishes only the first `len` bytes (at most the loaned length).
    pub fn commit_len(self, len: usize) {
        let n = len.min(self.len) as u32;
        self.tx.finish(n);
    }
}

impl std::ops::Deref for PubLoan<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        let off = self.tx.ch.payload_ptr(self.tx.head);
        let ring = self.tx.ch.obj.ring(off, self.len as u64);
        match ring.ptr(0, self.len) {
            // SAFETY: the slot is inside the mapping (ring checked it) and belongs to
            // the publisher while its seq is odd (protocol); the slice borrows the
            // loan, hence the mapping.
            Some(p) => unsafe { std::slice::from_raw_parts(p, self.len) },
            None => &[],
        }
    }
}

impl std::ops::DerefMut for PubLoan<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        let off = self.tx.ch.payload_ptr(self.tx.head);
        let ring = self.tx.ch.obj.ring(off, self.len as u64);
        match ring.ptr(0, self.len) {
            // SAFETY: as in deref; &mut self makes this the only slice over the loan.
            Some(p) => unsafe { std::slice::from_raw_parts_mut(p, self.len) },
            None => &mut [],
        }
    }
}

/// A subscriber of a broadcast channel: receives every message published after it
/// joined (in Overwrite mode, minus the ones it was told it missed).
pub struct Subscriber {
    ch: Chan,
    slot: usize,
    cursor: u64,
    missed: u64,
    watch: Watch,
    me: u64,
    spin: u32,
}

/// What one read attempt found.
enum Read {
    Got(Vec<u8>),
    /// Message `cursor` is ready with this length, to be read in place (Backpressure
    /// mode); the cursor has not moved.
    InPlace(u32),
    Nothing,
    Lagged(u64),
}

/// A received message: a copy, or (Backpressure mode) its length, in place.
enum Msg {
    Copied(Vec<u8>),
    InPlace(u32),
}

impl Subscriber {
    /// Joins the broadcast channel `name`: claims a free subscriber slot (or a dead
    /// subscriber's) and starts at the next message to be published. Fails with
    /// [`ErrorKind::AlreadyExists`] when every slot is held by a live subscriber.
    pub fn open(name: &str) -> Result<Subscriber> {
        let ch = Chan::open(name)?;
        let me = liveness::me();
        let slot = (0..ch.g.subscribers as usize)
            .find(|&i| ch.sub(i).claim(me).is_ok())
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::AlreadyExists,
                    "open",
                    &ch.obj.name,
                    format!("all {} subscriber slots are taken", ch.g.subscribers),
                )
            })?;
        ch.unsleep(slot);
        wait::note_cpu(ch.sub_cpu(slot));
        let cursor = recover_head(&ch);
        // SYNC: SeqCst pairs with the SeqCst cursor loads in Publisher::min_cursor.
        ch.cursor(slot).store(cursor, Ordering::SeqCst);
        let watch = Watch::new(&ch.publisher());
        Ok(Subscriber {
            ch,
            slot,
            cursor,
            missed: 0,
            watch,
            me,
            spin: DEFAULT_SPIN,
        })
    }

    /// Sets how many times a blocking call polls before it sleeps (default 2000).
    /// A call whose peer last ran on this thread's CPU sleeps without polling: the
    /// peer could not run while it polled.
    pub fn set_spin(&mut self, polls: u32) {
        self.spin = polls;
    }

    /// The largest message this channel takes.
    pub fn max_message(&self) -> usize {
        self.ch.g.max_message as usize
    }

    /// The channel's mode.
    pub fn mode(&self) -> Mode {
        self.ch.g.mode
    }

    /// The subscriber slot this subscriber holds.
    pub fn slot(&self) -> usize {
        self.slot
    }

    /// Messages missed so far (Overwrite mode), in all.
    pub fn missed(&self) -> u64 {
        self.missed
    }

    /// The channel's object name (`/name`).
    pub fn name(&self) -> &str {
        &self.ch.obj.name
    }

    /// One attempt at message `self.cursor`; `in_place`: leave a ready message where it
    /// is (Backpressure mode only, where the publisher cannot reuse its slot before the
    /// cursor moves on).
    fn read(&mut self, in_place: bool) -> std::result::Result<Read, ChannelError> {
        let c = self.cursor;
        if in_place && self.ch.g.mode == Mode::Backpressure {
            return self.read_in_place(c);
        }
        match seqlock::read(&self.ch, c, self.ch.g.max_message) {
            seqlock::Slot::Got(v) => {
                self.advance(c + 1);
                Ok(Read::Got(v))
            }
            seqlock::Slot::Nothing => Ok(Read::Nothing),
            seqlock::Slot::Reused => self.overtaken(),
            seqlock::Slot::TooLong => Err(ChannelError::Corrupt(
                "a message is longer than the channel's limit",
            )),
        }
    }

    fn read_in_place(&mut self, c: u64) -> std::result::Result<Read, ChannelError> {
        let want = 2 * c + 2;
        // SYNC: Acquire pairs with the SeqCst (release) seq store in seqlock::finish:
        // the length and payload are visible.
        let seq = self.ch.seq(c).load(Ordering::Acquire);
        if seq < want {
            return Ok(Read::Nothing);
        }
        if seq > want {
            return self.overtaken();
        }
        let len = self.ch.len(c).load(Ordering::Relaxed);
        if len > self.ch.g.max_message {
            return Err(ChannelError::Corrupt(
                "a message is longer than the channel's limit",
            ));
        }
        Ok(Read::InPlace(len))
    }

    /// The slot was reused: jump to the oldest message that is still in the ring.
    fn overtaken(&mut self) -> std::result::Result<Read, ChannelError> {
        // (In Backpressure mode the publisher never passes a live subscriber: a reused
        // slot means this one was taken for dead, or the object is corrupt.)
        // SYNC: Acquire pairs with the Release store of `head` in Publisher::finish.
        let head = self.ch.head().load(Ordering::Acquire);
        if head < self.cursor || head > u64::MAX / 4 {
            return Err(ChannelError::Corrupt(
                "the publisher's position is out of range",
            ));
        }
        // Leave one slot of margin: the publisher may be writing the oldest one.
        let oldest = (head + 1)
            .saturating_sub(self.ch.g.slots)
            .max(self.cursor + 1);
        let missed = oldest - self.cursor;
        self.missed += missed;
        self.advance(oldest);
        Ok(Read::Lagged(missed))
    }

    fn advance(&mut self, to: u64) {
        self.cursor = to;
        // SYNC: SeqCst pairs with the SeqCst cursor loads in Publisher::min_cursor: our
        // copy of the payload happens before the publisher reuses the slot. SeqCst also
        // orders it before the tx_sleep load in wait::notify.
        self.ch.cursor(self.slot).store(to, Ordering::SeqCst);
        if self.ch.g.mode == Mode::Backpressure {
            let (ch, slot) = (&self.ch, self.slot);
            wait::notify(ch.obj.word32(TX_SLEEP_OFFSET), || ch.sub_cpu(slot));
        }
    }

    fn poll(
        &mut self,
        how: Check,
        in_place: bool,
    ) -> std::result::Result<Option<Msg>, ChannelError> {
        match self.read(in_place)? {
            Read::Got(v) => return Ok(Some(Msg::Copied(v))),
            Read::InPlace(len) => return Ok(Some(Msg::InPlace(len))),
            Read::Lagged(n) => return Err(ChannelError::Lagged(n)),
            Read::Nothing => {}
        }
        let Some(end) = self.watch.gone(&self.ch.publisher(), how) else {
            return Ok(None);
        };
        // The publisher's last message happens before it left: look again.
        match self.read(in_place)? {
            Read::Got(v) => Ok(Some(Msg::Copied(v))),
            Read::InPlace(len) => Ok(Some(Msg::InPlace(len))),
            // Reported now; the end is found again by the next call.
            Read::Lagged(n) => Err(ChannelError::Lagged(n)),
            Read::Nothing => {
                self.watch.reported(&self.ch.publisher());
                Err(end)
            }
        }
    }

    /// The next message as a copy.
    fn next(&mut self, patience: Patience) -> Result<Vec<u8>, ChannelError> {
        match self.next_msg(patience, false)? {
            Msg::Copied(v) => Ok(v),
            // Not asked for; copy it rather than fail.
            Msg::InPlace(len) => {
                let v = self.in_place(len).to_vec();
                self.advance(self.cursor + 1);
                Ok(v)
            }
        }
    }

    fn next_msg(&mut self, patience: Patience, in_place: bool) -> Result<Msg, ChannelError> {
        let Some(deadline) = patience.resolve() else {
            return self
                .poll(Check::Normal, in_place)?
                .ok_or(ChannelError::Empty);
        };
        // One poll first: a message already there needs no look at the CPU hints.
        if let Some(v) = self.poll(Check::Spin, in_place)? {
            return Ok(v);
        }
        let (spin, mut how) =
            wait::budget(self.ch.sub_cpu(self.slot), [self.ch.pub_cpu()], self.spin);
        for _ in 0..spin {
            if let Some(v) = self.poll(Check::Spin, in_place)? {
                return Ok(v);
            }
            std::hint::spin_loop();
        }
        let seq_word: *const AtomicU32 = self.ch.obj.word32(WAKE_SEQ_OFFSET);
        let sleepers: *const AtomicU32 = self.ch.obj.word32(SLEEPERS_OFFSET);
        // SAFETY: both point into the mapping owned by self.ch, alive for this call;
        // only atomic access is made through them.
        let (seq_word, sleepers) = unsafe { (&*seq_word, &*sleepers) };
        // A publisher on this CPU: /proc is read after a first short sleep instead (see
        // wait::SHARED_CPU_FIRST_SLEEP).
        let mut liveness_owed = how != Check::Liveness;
        loop {
            if let Some(v) = self.poll(how, in_place)? {
                return Ok(v);
            }
            let seen = seq_word.load(Ordering::Relaxed);
            // SYNC: SeqCst pairs with the SeqCst sleepers load in Publisher::finish:
            // either it sees us and bumps wake_seq, or our poll below sees its message.
            sleepers.fetch_add(1, Ordering::SeqCst);
            // SYNC: SeqCst fence orders the count above before the Acquire seq load of
            // the poll below (store-buffering with Publisher::finish's SeqCst seq store
            // and SeqCst sleepers load); slow path only.
            fence(Ordering::SeqCst);
            // Counted first, flagged second: a death in between leaks one count (the
            // publisher then makes a needless wake call), never a negative count.
            self.ch.sleeping(self.slot).store(1, Ordering::Relaxed);
            let polled = self.poll(Check::Normal, in_place);
            let longest = wait::sleep_limit(LIVENESS_SLICE, liveness_owed);
            liveness_owed = false;
            let slice = match (&polled, deadline) {
                (Ok(None), None) => Some(longest),
                (Ok(None), Some(d)) => {
                    let left = d.saturating_duration_since(Instant::now());
                    (!left.is_zero()).then(|| left.min(longest))
                }
                _ => None,
            };
            let w = slice.map(|s| futex::wait(seq_word, seen, Some(s)));
            self.ch.unsleep(self.slot);
            match polled {
                Ok(Some(v)) => return Ok(v),
                Err(e) => return Err(e),
                Ok(None) if slice.is_none() => return Err(ChannelError::Timeout),
                Ok(None) => {}
            }
            how = if w == Some(futex::Wait::TimedOut) {
                Check::Liveness
            } else {
                Check::Normal
            };
        }
    }

    /// A copy of the next message, if there is one now.
    /// [`ChannelError::Lagged`]`(n)`: `n` messages were overwritten before this
    /// subscriber read them (Overwrite mode); the next call goes on after them.
    pub fn try_recv(&mut self) -> Result<Vec<u8>, ChannelError> {
        self.next(Patience::Now)
    }

    /// A copy of the next message, waiting for it. After the publisher has gone and
    /// every message was received: [`ChannelError::Disconnected`] or
    /// [`ChannelError::PeerDied`].
    pub fn recv(&mut self) -> Result<Vec<u8>, ChannelError> {
        self.next(Patience::Forever)
    }

    /// A copy of the next message, waiting at most `timeout`.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Vec<u8>, ChannelError> {
        self.next(Patience::For(timeout))
    }

    /// The next message as a plain-old-data value, waiting for it.
    pub fn recv_value<T: bytemuck::AnyBitPattern>(&mut self) -> Result<T, ChannelError> {
        let v = self.recv()?;
        super::value_of(&v)
    }

    /// The `len` bytes of message `self.cursor`, in its slot.
    fn in_place(&self, len: u32) -> &[u8] {
        let off = self.ch.payload_ptr(self.cursor);
        let ring = self.ch.obj.ring(off, len as u64);
        match ring.ptr(0, len as usize) {
            // SAFETY: the slot is inside the mapping (ring checked it); in Backpressure
            // mode the publisher does not rewrite it before this subscriber's cursor
            // moves past it, which happens only when the guard holding this borrow is
            // dropped (protocol; a hostile process could still write it: validate what
            // you read). The slice borrows the subscriber, hence the mapping.
            Some(p) => unsafe { std::slice::from_raw_parts(p, len as usize) },
            None => &[],
        }
    }

    fn guard(&mut self, msg: Msg) -> SubGuard<'_> {
        SubGuard { sub: self, msg }
    }

    /// The next message if there is one now, in place in Backpressure mode (its slot is
    /// kept from the publisher until the guard is dropped); in Overwrite mode, where the
    /// publisher may reuse a slot at any time, the guard holds a copy. Errors as
    /// [`Subscriber::try_recv`].
    pub fn try_recv_ref(&mut self) -> Result<SubGuard<'_>, ChannelError> {
        let m = self.next_msg(Patience::Now, true)?;
        Ok(self.guard(m))
    }

    /// The next message, waiting for it; in place as [`Subscriber::try_recv_ref`].
    pub fn recv_ref(&mut self) -> Result<SubGuard<'_>, ChannelError> {
        let m = self.next_msg(Patience::Forever, true)?;
        Ok(self.guard(m))
    }

    /// The next message, waiting at most `timeout`; in place as
    /// [`Subscriber::try_recv_ref`].
    pub fn recv_ref_timeout(&mut self, timeout: Duration) -> Result<SubGuard<'_>, ChannelError> {
        let m = self.next_msg(Patience::For(timeout), true)?;
        Ok(self.guard(m))
    }
}

/// A message received by [`Subscriber::recv_ref`]: borrowed in its slot (Backpressure
/// mode; the publisher waits for it before reusing the slot, so drop it soon) or a copy
/// (Overwrite mode).
pub struct SubGuard<'a> {
    sub: &'a mut Subscriber,
    msg: Msg,
}

impl SubGuard<'_> {
    /// Whether the message is read in place (Backpressure mode) rather than copied.
    pub fn is_in_place(&self) -> bool {
        matches!(self.msg, Msg::InPlace(_))
    }
}

impl std::ops::Deref for SubGuard<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match &self.msg {
            Msg::Copied(v) => v,
            Msg::InPlace(len) => self.sub.in_place(*len),
        }
    }
}

impl Drop for SubGuard<'_> {
    fn drop(&mut self) {
        // A copy was taken past already; a message read in place is passed now, which
        // lets the publisher reuse its slot.
        if let Msg::InPlace(_) = self.msg {
            let next = self.sub.cursor + 1;
            self.sub.advance(next);
        }
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        // Relaxed: a hint; a free slot has no CPU for the publisher to weigh.
        self.ch.sub_cpu(self.slot).store(0, Ordering::Relaxed);
        self.ch.sub(self.slot).release(self.me);
        wait::wake(self.ch.obj.word32(TX_SLEEP_OFFSET));
    }
}

impl std::fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("broadcast::Subscriber")
            .field("name", &self.ch.obj.name)
            .field("slot", &self.slot)
            .finish()
    }
}

/// One subscriber, as [`describe`] sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscriberInfo {
    /// The slot.
    pub slot: u32,
    /// Its holder.
    pub holder: EndpointInfo,
    /// Messages published that it has not read (0 if its cursor is out of range).
    pub behind: u64,
}

/// What [`describe`] reports about a broadcast channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BroadcastInfo {
    /// Message slots.
    pub slots: u64,
    /// Largest message.
    pub max_message: u32,
    /// The mode.
    pub mode: Mode,
    /// Messages published so far.
    pub published: u64,
    /// The publisher, if one holds the slot.
    pub publisher: Option<EndpointInfo>,
    /// Subscriber slots.
    pub capacity: u32,
    /// The subscribers holding slots.
    pub subscribers: Vec<SubscriberInfo>,
}

/// Describes the broadcast channel laid out in `region` (read-only mappings work).
pub fn describe(region: &(impl Region + ?Sized)) -> Result<BroadcastInfo> {
    let g = validate(region)?;
    let ep = |off: usize| -> Result<Option<EndpointInfo>> {
        let w: u64 = region.read(off)?;
        Ok((w != 0).then(|| EndpointInfo {
            pid: liveness::pid_of(w),
            alive: liveness::alive(w),
        }))
    };
    let head: u64 = region.read(HEAD_OFFSET)?;
    let mut subscribers = Vec::new();
    for i in 0..g.subscribers as usize {
        if let Some(holder) = ep(SUBS_OFFSET + i * SUB_SIZE)? {
            let c: u64 = region.read(SUBS_OFFSET + i * SUB_SIZE + SUB_CURSOR)?;
            subscribers.push(SubscriberInfo {
                slot: i as u32,
                holder,
                behind: head.saturating_sub(c),
            });
        }
    }
    Ok(BroadcastInfo {
        slots: g.slots,
        max_message: g.max_message,
        mode: g.mode,
        published: head,
        publisher: ep(PUBLISHER_OFFSET)?,
        capacity: g.subscribers,
        subscribers,
    })
}
