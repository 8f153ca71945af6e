//! The multi-producer single-consumer channel: one object holding N producer *lanes*,
//! each an SPSC ring with its own producer endpoint, and one receiver that polls them.
//!
//! ```text
//! offset        size   contents
//!      0          64   shmkit::header (kind CHANNEL_MPSC, version LAYOUT_VERSION)
//!     64          64   config: ring_size u64 | max_message u32 | lanes u32 |
//!                              lane_offset u64 | lane_stride u64 | stamp_key u64 | zero
//!    128         128   rx_sleep: AtomicU32, 1 while the receiver sleeps (futex) |
//!                      receiver CPU hint u32 (`wait::note_cpu`)
//!    256         128   receiver endpoint: owner u64 | epoch u32
//!    384         128   reserved, zero
//!    512   stride*N    lanes[0..N], stride = LANE_HEADER + ring_size:
//!          +0    128     head: AtomicU64 (written by the lane's producer)
//!          +128  128     tail: AtomicU64, bit 0: waiting (written by the receiver)
//!          +256  128     tx_sleep: AtomicU32, 1 while the lane's producer sleeps |
//!                        producer CPU hint u32 (0 while the lane has no producer)
//!          +384  128     producer endpoint: owner u64 | epoch u32
//!          +512  ring    records, exactly as in an SPSC ring (see [`super::layout`])
//! ```
//!
//! # Why lanes
//!
//! A single ring shared by several producers needs a reservation protocol (a CAS on
//! `head`) in which a producer killed between reserving and committing leaves a hole
//! the consumer can neither skip safely nor wait out. With one lane per producer every
//! SPSC guarantee carries over unchanged: a lane has exactly one writer, a record is
//! published by its stamp, so a producer killed half-way leaves no visible
//! record; every committed record is delivered; the consumer validates every word it
//! reads (the SPSC ring code is reused as is).
//!
//! - A [`Sender`] claims the first lane that is free or held by a dead process (the
//!   restarted producer recovers the lane's head from its records, like SPSC).
//! - The [`Receiver`] polls the lanes round-robin, starting after the lane it last took
//!   a message from, so a busy producer cannot starve the others.
//! - The receiver sleeps on one shared futex word; a producer, after publishing a
//!   record with SeqCst, loads that word with SeqCst and makes a wake-up system call
//!   only when it is 1 (the Dekker pattern of [`super::wait`], with the receiver's
//!   re-check covering every lane). A producer waiting for room sleeps on its own
//!   lane's word, which the receiver checks after releasing a message of that lane.
//!
//! End of stream: when a producer dies, the receiver delivers what it committed and
//! then reports [`ChannelError::PeerDied`] once (other producers may go on). When no
//! lane holds a producer any more (after at least one came), the receiver reports
//! [`ChannelError::Disconnected`] once every lane is drained, and then waits for new
//! producers. Messages of one producer arrive in order; there is no order between
//! producers.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::layout::{Geometry, RECORD_ALIGN, RECORD_HEADER};
use super::liveness;
use super::multi::{Obj, RingView, Watch};
use super::ring::{self, Consumer, Peeked, Polled, Producer, Reserved};
use super::wait::{self, block_on, Check, Patience, DEFAULT_SPIN, LIVENESS_SLICE};
use super::{ChannelError, EndpointInfo};
use crate::error::{Error, ErrorKind, Result};
use crate::header::{self, ObjectKind, HEADER_SIZE};
use crate::region::{Region, RegionExt};

/// The version of this layout, checked at open.
/// 3: bit 0 of a lane's `tail` says the receiver waits, as SPSC layout 3; 2: lane
/// records are published by a stamp, as SPSC layout 2.
pub const LAYOUT_VERSION: u16 = 3;
/// Offset of the config block.
pub const CONFIG_OFFSET: usize = HEADER_SIZE;
/// Offset of the receiver's sleep word.
pub const RX_SLEEP_OFFSET: usize = 128;
/// Offset of the receiver endpoint.
pub const RECEIVER_OFFSET: usize = 256;
/// Offset of lane 0.
pub const LANES_OFFSET: usize = 512;
/// Bytes of a lane's header before its ring.
pub const LANE_HEADER: usize = 512;
/// Offset of `head` in a lane.
pub const LANE_HEAD: usize = 0;
/// Offset of `tail` in a lane.
pub const LANE_TAIL: usize = 128;
/// Offset of the producer's sleep word in a lane.
pub const LANE_TX_SLEEP: usize = 256;
/// Offset of the producer endpoint in a lane.
pub const LANE_ENDPOINT: usize = 384;
/// Most lanes in one channel.
pub const MAX_LANES: u32 = 64;

/// The config block at [`CONFIG_OFFSET`].
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct Config {
    /// Bytes of each lane's ring (a power of two).
    pub ring_size: u64,
    /// Largest payload.
    pub max_message: u32,
    /// Number of lanes.
    pub lanes: u32,
    /// Offset of lane 0 ([`LANES_OFFSET`]).
    pub lane_offset: u64,
    /// Bytes from one lane to the next ([`LANE_HEADER`] + ring_size).
    pub lane_stride: u64,
    /// The key of the record stamps in every lane (top bit set).
    pub stamp_key: u64,
    /// Zero.
    pub reserved: [u64; 3],
}

const _: () = assert!(std::mem::size_of::<Config>() == 64);

/// The checked geometry of an MPSC object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MpscGeometry {
    /// Each lane's ring.
    pub ring: Geometry,
    /// Number of lanes.
    pub lanes: u32,
}

impl MpscGeometry {
    /// Bytes from one lane to the next.
    pub fn stride(&self) -> u64 {
        LANE_HEADER as u64 + self.ring.ring_size
    }
    /// Object offset of lane `i`.
    pub fn lane(&self, i: usize) -> usize {
        LANES_OFFSET + i * self.stride() as usize
    }
    /// Total bytes of the object.
    pub fn total_size(&self) -> u64 {
        LANES_OFFSET as u64 + self.lanes as u64 * self.stride()
    }
}

/// Creates the MPSC channel `name` with `lanes` producer lanes, each a ring sized as
/// for an SPSC channel with `capacity` and `max_message`.
pub fn create(name: &str, capacity: u64, max_message: u64, lanes: u32, mode: u32) -> Result<()> {
    let object = crate::posix::ShmName::new(name)?.to_string();
    if lanes == 0 || lanes > MAX_LANES {
        return Err(Error::invalid(
            "create",
            &object,
            format!("{lanes} lanes is not between 1 and {MAX_LANES}"),
        ));
    }
    let ring = Geometry::for_request(capacity, max_message, &object)?;
    let g = MpscGeometry { ring, lanes };
    Obj::create(name, g.total_size(), mode, |map| init(map, g))
}

/// Lays out an MPSC object with geometry `g` in `region` (not yet published).
pub(crate) fn init(region: &(impl Region + ?Sized), g: MpscGeometry) -> Result<()> {
    header::init(
        region,
        header::Layout {
            kind: ObjectKind::CHANNEL_MPSC,
            version: LAYOUT_VERSION,
            header_size: (LANES_OFFSET - HEADER_SIZE) as u32,
            total_size: g.total_size(),
        },
    )?;
    region.write(
        CONFIG_OFFSET,
        &Config {
            ring_size: g.ring.ring_size,
            max_message: g.ring.max_message,
            lanes: g.lanes,
            lane_offset: LANES_OFFSET as u64,
            lane_stride: g.stride(),
            stamp_key: g.ring.stamp_key,
            reserved: [0; 3],
        },
    )
}

/// Validates an MPSC object's header and config; returns its geometry.
pub fn validate(region: &(impl Region + ?Sized)) -> Result<MpscGeometry> {
    let h = header::validate(region, ObjectKind::CHANNEL_MPSC, LAYOUT_VERSION)?;
    validate_config(region, &h)
}

fn validate_config(region: &(impl Region + ?Sized), h: &header::Header) -> Result<MpscGeometry> {
    let name = region.object_name();
    let bad = |why: String| Error::corrupt("open", &name, why);
    if h.header_size != (LANES_OFFSET - HEADER_SIZE) as u32 {
        return Err(bad(format!("MPSC header size {} is wrong", h.header_size)));
    }
    let cfg: Config = region.read(CONFIG_OFFSET)?;
    let ring = Geometry {
        ring_size: cfg.ring_size,
        max_message: cfg.max_message,
        stamp_key: cfg.stamp_key,
    };
    ring.check().map_err(|r| bad(r.to_string()))?;
    if cfg.lanes == 0 || cfg.lanes > MAX_LANES {
        return Err(bad(format!("{} lanes is out of range", cfg.lanes)));
    }
    let g = MpscGeometry {
        ring,
        lanes: cfg.lanes,
    };
    if cfg.lane_offset != LANES_OFFSET as u64 || cfg.lane_stride != g.stride() {
        return Err(bad("the lane offset or stride is wrong".into()));
    }
    if g.total_size() != h.total_size || g.total_size() > region.len() as u64 {
        return Err(bad(format!(
            "{} lanes of {} bytes do not match the object size {} (mapping {})",
            g.lanes,
            ring.ring_size,
            h.total_size,
            region.len()
        )));
    }
    Ok(g)
}

/// A mapped, validated MPSC object.
struct Chan {
    obj: Obj,
    g: MpscGeometry,
}

impl Chan {
    fn open(name: &str) -> Result<Chan> {
        let (obj, h) = Obj::open(name, ObjectKind::CHANNEL_MPSC, LAYOUT_VERSION)?;
        let g = validate_config(obj.map(), &h)?;
        Ok(Chan { obj, g })
    }
    fn lane_word64(&self, lane: usize, off: usize) -> &std::sync::atomic::AtomicU64 {
        self.obj.word64(self.g.lane(lane) + off)
    }
    fn lane_word32(&self, lane: usize, off: usize) -> &std::sync::atomic::AtomicU32 {
        self.obj.word32(self.g.lane(lane) + off)
    }
    /// A lane's producer's CPU hint ([`wait::note_cpu`]).
    fn lane_cpu(&self, lane: usize) -> &std::sync::atomic::AtomicU32 {
        self.lane_word32(lane, LANE_TX_SLEEP + wait::CPU_HINT_DELTA)
    }
    /// The receiver's CPU hint.
    fn rx_cpu(&self) -> &std::sync::atomic::AtomicU32 {
        self.obj.word32(RX_SLEEP_OFFSET + wait::CPU_HINT_DELTA)
    }
    fn ring(&self, lane: usize) -> RingView<'_> {
        self.obj
            .ring(self.g.lane(lane) + LANE_HEADER, self.g.ring.ring_size)
    }
    fn producer_ep(&self, lane: usize) -> liveness::Endpoint<'_> {
        self.obj.endpoint(self.g.lane(lane) + LANE_ENDPOINT)
    }
    fn receiver_ep(&self) -> liveness::Endpoint<'_> {
        self.obj.endpoint(RECEIVER_OFFSET)
    }
}

/// A lane's positions at open, checked.
fn positions(ch: &Chan, lane: usize) -> Result<(u64, u64)> {
    // SYNC: Acquire pairs with the Release store of `head` in Producer::commit by an
    // earlier producer of this lane.
    let head = ch.lane_word64(lane, LANE_HEAD).load(Ordering::Acquire);
    // SYNC: Acquire pairs with the Release store of `tail` in Consumer::release. (A
    // receiver that died waiting left its WAITING bit.)
    let tail = ch.lane_word64(lane, LANE_TAIL).load(Ordering::Acquire) & !ring::WAITING;
    if head.abs_diff(tail) > ch.g.ring.ring_size
        || head % RECORD_ALIGN != 0
        || tail % RECORD_ALIGN != 0
        || head.max(tail) > u64::MAX / 2
    {
        return Err(Error::corrupt(
            "open",
            &ch.obj.name,
            format!("lane {lane}: positions out of range (head {head}, tail {tail})"),
        ));
    }
    Ok((head, tail))
}

/// A producer of an MPSC channel: holds one lane.
pub struct Sender {
    ch: Chan,
    lane: usize,
    p: Producer,
    watch: Watch,
    me: u64,
    spin: u32,
}

impl Sender {
    /// Opens the MPSC channel `name` and claims a lane: the first free one, or one held
    /// by a dead process. Fails with [`ErrorKind::AlreadyExists`] when every lane has a
    /// live producer.
    pub fn open(name: &str) -> Result<Sender> {
        let ch = Chan::open(name)?;
        let me = liveness::me();
        let lane = (0..ch.g.lanes as usize)
            .find(|&l| ch.producer_ep(l).claim(me).is_ok())
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::AlreadyExists,
                    "open",
                    &ch.obj.name,
                    format!("all {} lanes have a live producer", ch.g.lanes),
                )
            })?;
        let got = positions(&ch, lane).and_then(|(head, tail)| {
            let h = ring::recover_head(&ch.g.ring, head, tail, &ch.ring(lane))
                .map_err(|e| e.into_error("open", &ch.obj.name))?;
            Ok((h, tail))
        });
        let (head, tail) = match got {
            Ok(p) => p,
            Err(e) => {
                ch.producer_ep(lane).release(me);
                return Err(e);
            }
        };
        wait::note_cpu(ch.lane_cpu(lane));
        let watch = Watch::new(&ch.receiver_ep());
        Ok(Sender {
            ch,
            lane,
            p: Producer::at(head, tail),
            watch,
            me,
            spin: DEFAULT_SPIN,
        })
    }

    /// The lane this sender holds.
    pub fn lane(&self) -> usize {
        self.lane
    }

    /// Sets how many times a blocking call polls before it sleeps (default 2000).
    /// A call whose peer last ran on this thread's CPU sleeps without polling: the
    /// peer could not run while it polled.
    pub fn set_spin(&mut self, polls: u32) {
        self.spin = polls;
    }

    /// The largest message this channel takes.
    pub fn max_message(&self) -> usize {
        self.ch.g.ring.max_message as usize
    }

    /// The channel's object name (`/name`).
    pub fn name(&self) -> &str {
        &self.ch.obj.name
    }

    fn poll_reserve(
        ch: &Chan,
        lane: usize,
        p: &mut Producer,
        watch: &mut Watch,
        len: usize,
        how: Check,
    ) -> std::result::Result<Option<Reserved>, ChannelError> {
        if let Some(r) = p.reserve(&ch.g.ring, ch.lane_word64(lane, LANE_TAIL), len)? {
            return Ok(Some(r));
        }
        let ep = ch.receiver_ep();
        match watch.gone(&ep, how) {
            None => Ok(None),
            Some(e) => {
                watch.reported(&ep);
                Err(e)
            }
        }
    }

    /// Room for `len` bytes: at once if the cached receiver position shows it (no
    /// shared memory read, no call), else through [`Sender::reserve_slow`].
    #[inline(always)]
    fn reserve(
        &mut self,
        len: usize,
        patience: Patience,
    ) -> std::result::Result<Reserved, ChannelError> {
        match self.p.reserve_cached(&self.ch.g.ring, len) {
            Some(r) => Ok(r),
            None => self.reserve_slow(len, patience),
        }
    }

    #[inline(never)]
    fn reserve_slow(
        &mut self,
        len: usize,
        patience: Patience,
    ) -> std::result::Result<Reserved, ChannelError> {
        let Sender {
            ch,
            lane,
            p,
            watch,
            spin,
            ..
        } = self;
        match patience.waiting() {
            None => Self::poll_reserve(ch, *lane, p, watch, len, Check::Normal)?
                .ok_or(ChannelError::Full),
            Some(patience) => {
                if let Some(r) = Self::poll_reserve(ch, *lane, p, watch, len, Check::Spin)? {
                    return Ok(r);
                }
                let word = ch.lane_word32(*lane, LANE_TX_SLEEP);
                let (spin, first) = wait::budget(ch.lane_cpu(*lane), [ch.rx_cpu()], *spin);
                block_on(word, spin, first, patience, |how| {
                    Self::poll_reserve(ch, *lane, p, watch, len, how)
                })
            }
        }
    }

    #[inline(always)]
    fn finish(&mut self, r: &Reserved, len: u32) {
        let ch = &self.ch;
        self.p.commit(
            &ch.g.ring,
            ch.lane_word64(self.lane, LANE_HEAD),
            &ch.ring(self.lane),
            r,
            len,
        );
        let lane = self.lane;
        wait::notify(ch.obj.word32(RX_SLEEP_OFFSET), || ch.lane_cpu(lane));
    }

    #[inline(always)]
    fn put(&mut self, data: &[u8], patience: Patience) -> Result<(), ChannelError> {
        let r = self.reserve(data.len(), patience)?;
        self.ch.ring(self.lane).copy_in(r.payload_off, data);
        self.finish(&r, r.len);
        Ok(())
    }

    /// Sends a copy of `data` if there is room now.
    #[inline]
    pub fn try_send(&mut self, data: &[u8]) -> Result<(), ChannelError> {
        self.put(data, Patience::Now)
    }

    /// Sends a copy of `data`, waiting for room as long as the receiver lives (or has
    /// not come yet).
    #[inline]
    pub fn send(&mut self, data: &[u8]) -> Result<(), ChannelError> {
        self.put(data, Patience::Forever)
    }

    /// Sends a copy of `data`, waiting at most `timeout` for room.
    #[inline]
    pub fn send_timeout(&mut self, data: &[u8], timeout: Duration) -> Result<(), ChannelError> {
        self.put(data, Patience::For(timeout))
    }

    /// Sends a plain-old-data value (its bytes).
    pub fn send_value<T: bytemuck::NoUninit>(&mut self, value: &T) -> Result<(), ChannelError> {
        self.send(bytemuck::bytes_of(value))
    }

    /// Sends a plain-old-data value if there is room now.
    pub fn try_send_value<T: bytemuck::NoUninit>(&mut self, value: &T) -> Result<(), ChannelError> {
        self.try_send(bytemuck::bytes_of(value))
    }

    /// Loans `len` bytes of this sender's lane if there is room now: write in place,
    /// then [`SendLoan::commit`]. Dropping the loan sends nothing.
    pub fn try_loan(&mut self, len: usize) -> Result<SendLoan<'_>, ChannelError> {
        let r = self.reserve(len, Patience::Now)?;
        Ok(SendLoan { tx: self, r })
    }

    /// Loans `len` bytes, waiting for room.
    pub fn loan(&mut self, len: usize) -> Result<SendLoan<'_>, ChannelError> {
        let r = self.reserve(len, Patience::Forever)?;
        Ok(SendLoan { tx: self, r })
    }

    /// Loans `len` bytes, waiting at most `timeout` for room.
    pub fn loan_timeout(
        &mut self,
        len: usize,
        timeout: Duration,
    ) -> Result<SendLoan<'_>, ChannelError> {
        let r = self.reserve(len, Patience::For(timeout))?;
        Ok(SendLoan { tx: self, r })
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        // Relaxed: a hint. A lane without a producer has no CPU for the receiver to
        // weigh ([`wait::budget`]).
        self.ch.lane_cpu(self.lane).store(0, Ordering::Relaxed);
        self.ch.producer_ep(self.lane).release(self.me);
        wait::wake(self.ch.obj.word32(RX_SLEEP_OFFSET));
    }
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("mpsc::Sender")
            .field("name", &self.ch.obj.name)
            .field("lane", &self.lane)
            .finish()
    }
}

/// Lane space loaned by [`Sender::loan`]: write the message in place, then commit.
/// Dropping it without committing sends nothing.
pub struct SendLoan<'a> {
    tx: &'a mut Sender,
    r: Reserved,
}

impl SendLoan<'_> {
    /// Sends the whole loaned length.
    pub fn commit(self) {
        let n = self.r.len;
        self.tx.finish(&self.r, n);
    }

    /// Sends only the first `len` bytes (at most the loaned length).
    pub fn commit_len(self, len: usize) {
        let n = len.min(self.r.len as usize) as u32;
        self.tx.finish(&self.r, n);
    }
}

impl Deref for SendLoan<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        let len = self.r.len as usize;
        match self.tx.ch.ring(self.tx.lane).ptr(self.r.payload_off, len) {
            // SAFETY: the reserved bytes lie in this sender's lane and belong to it
            // until commit (protocol); the slice borrows the loan, hence the mapping.
            Some(p) => unsafe { std::slice::from_raw_parts(p, len) },
            None => &[],
        }
    }
}

impl DerefMut for SendLoan<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        let len = self.r.len as usize;
        match self.tx.ch.ring(self.tx.lane).ptr(self.r.payload_off, len) {
            // SAFETY: as in deref; &mut self makes this the only slice over the loan.
            Some(p) => unsafe { std::slice::from_raw_parts_mut(p, len) },
            None => &mut [],
        }
    }
}

/// The receiver's view of one lane.
struct LaneState {
    c: Consumer,
    seen: bool,
    epoch_at_open: u32,
    died: Option<u32>,
}

/// `i` wrapped into `0..n` (`i <= n`): the lane after lane `i - 1`, without a division.
#[inline(always)]
fn wrap(i: usize, n: usize) -> usize {
    if i >= n {
        0
    } else {
        i
    }
}

/// The consumer of an MPSC channel. One per channel at a time.
pub struct Receiver {
    ch: Chan,
    lanes: Vec<LaneState>,
    next: usize,
    last_check: Instant,
    me: u64,
    spin: u32,
}

impl Receiver {
    /// Opens the MPSC channel `name` and claims its receiver slot (a dead receiver's
    /// slot is taken over; a message it had not released is delivered again).
    pub fn open(name: &str) -> Result<Receiver> {
        let ch = Chan::open(name)?;
        let me = liveness::me();
        if let Err(pid) = ch.receiver_ep().claim(me) {
            return Err(Error::new(
                ErrorKind::AlreadyExists,
                "open",
                &ch.obj.name,
                format!("the channel already has a live receiver (pid {pid})"),
            ));
        }
        wait::note_cpu(ch.rx_cpu());
        let mut lanes = Vec::with_capacity(ch.g.lanes as usize);
        for l in 0..ch.g.lanes as usize {
            let tail = match positions(&ch, l) {
                Ok((_, t)) => t,
                Err(e) => {
                    ch.receiver_ep().release(me);
                    return Err(e);
                }
            };
            let ep = ch.producer_ep(l);
            let epoch = ep.epoch.load(Ordering::Relaxed);
            let mut c = Consumer::take_over(tail, ch.lane_word64(l, LANE_TAIL));
            let waiting = !matches!(
                c.peek(&ch.g.ring, ch.lane_word64(l, LANE_TAIL), &ch.ring(l)),
                Ok(None)
            );
            lanes.push(LaneState {
                c,
                seen: ep.holder().is_some() || (waiting && epoch > 0),
                epoch_at_open: epoch,
                died: None,
            });
        }
        Ok(Receiver {
            ch,
            lanes,
            next: 0,
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
        self.ch.g.ring.max_message as usize
    }

    /// The number of lanes (most producers at once).
    pub fn lanes(&self) -> usize {
        self.lanes.len()
    }

    /// The channel's object name (`/name`).
    pub fn name(&self) -> &str {
        &self.ch.obj.name
    }

    /// One round over the lanes, starting after the last lane served.
    fn scan(
        ch: &Chan,
        lanes: &mut [LaneState],
        next: &mut usize,
    ) -> std::result::Result<Option<(usize, Peeked)>, ChannelError> {
        let n = lanes.len();
        let mut l = *next;
        for _ in 0..n {
            let tail = ch.lane_word64(l, LANE_TAIL);
            if let Some(p) = lanes[l].c.peek(&ch.g.ring, tail, &ch.ring(l))? {
                *next = wrap(l + 1, n);
                return Ok(Some((l, p)));
            }
            l = wrap(l + 1, n);
        }
        Ok(None)
    }

    fn poll(
        ch: &Chan,
        lanes: &mut [LaneState],
        next: &mut usize,
        last_check: &mut Instant,
        how: Check,
    ) -> std::result::Result<Option<(usize, Peeked)>, ChannelError> {
        if let Some(x) = Self::scan(ch, lanes, next)? {
            return Ok(Some(x));
        }
        let check = match how {
            Check::Spin => return Ok(None),
            Check::Normal => last_check.elapsed() >= LIVENESS_SLICE,
            Check::Liveness => true,
        };
        if check {
            *last_check = Instant::now();
        }
        let mut held = false;
        for (l, st) in lanes.iter_mut().enumerate() {
            let ep = ch.producer_ep(l);
            if let liveness::Gone::Died(pid) = ep.gone(check, &mut st.seen, st.epoch_at_open) {
                st.died = Some(pid);
            }
            // SYNC: Acquire pairs with the Release in Endpoint::release: a producer's
            // last commit happens before its lane reads free; the scan below sees it.
            held |= ep.owner.load(Ordering::Acquire) != 0;
        }
        // A producer's last commit happens before it freed its lane (or died): look
        // once more before reporting an end.
        if let Some(x) = Self::scan(ch, lanes, next)? {
            return Ok(Some(x));
        }
        // A stamp that a lane's `head` says is there but is not (garbage written over
        // the ring) is an error, not a wait for ever.
        for (l, st) in lanes.iter().enumerate() {
            if st
                .c
                .confirm_empty(&ch.g.ring, ch.lane_word64(l, LANE_HEAD), &ch.ring(l))?
            {
                return Self::scan(ch, lanes, next);
            }
        }
        if let Some(st) = lanes.iter_mut().find(|s| s.died.is_some()) {
            let pid = st.died.take().unwrap_or(0);
            return Err(ChannelError::PeerDied(pid));
        }
        if !held && lanes.iter().any(|s| s.seen) {
            for (l, st) in lanes.iter_mut().enumerate() {
                st.seen = false;
                st.epoch_at_open = ch.producer_ep(l).epoch.load(Ordering::Relaxed);
            }
            return Err(ChannelError::Disconnected);
        }
        Ok(None)
    }

    /// The next message: at once if the lane whose turn it is has one (one shared
    /// load, no call), else through [`Receiver::next_slow`].
    #[inline(always)]
    fn next_msg(&mut self, patience: Patience) -> Result<(usize, Peeked), ChannelError> {
        let l = self.next;
        if let Some(st) = self.lanes.get(l) {
            if let Some(p) = st.c.peek_msg(&self.ch.g.ring, &self.ch.ring(l)) {
                self.next = wrap(l + 1, self.lanes.len());
                return Ok((l, p));
            }
        }
        self.next_slow(patience)
    }

    #[inline(never)]
    fn next_slow(&mut self, patience: Patience) -> Result<(usize, Peeked), ChannelError> {
        let Receiver {
            ch,
            lanes,
            next,
            last_check,
            spin,
            ..
        } = self;
        match patience.waiting() {
            None => {
                Self::poll(ch, lanes, next, last_check, Check::Normal)?.ok_or(ChannelError::Empty)
            }
            Some(patience) => {
                if let Some(x) = Self::poll(ch, lanes, next, last_check, Check::Spin)? {
                    return Ok(x);
                }
                // Every lane's producer may now go back to its ring's start
                // (ring::WAITING); afterwards only the lane whose message is returned
                // keeps the mark, which the message's release clears.
                for (l, st) in lanes.iter_mut().enumerate() {
                    st.c.wait_here(ch.lane_word64(l, LANE_TAIL));
                }
                let got = Self::wait(ch, lanes, next, last_check, *spin, patience);
                let keep = got.as_ref().ok().map(|&(l, _)| l);
                for (l, st) in lanes.iter_mut().enumerate() {
                    if Some(l) != keep {
                        st.c.end_wait(&ch.g.ring, ch.lane_word64(l, LANE_TAIL), &ch.ring(l));
                    }
                }
                got
            }
        }
    }

    /// The waiting part of a blocking receive.
    fn wait(
        ch: &Chan,
        lanes: &mut [LaneState],
        next: &mut usize,
        last_check: &mut Instant,
        spin: u32,
        patience: Patience,
    ) -> Result<(usize, Peeked), ChannelError> {
        // Sleep at once if every producer last ran on this CPU (see super::wait).
        let (spin, first) =
            wait::budget(ch.rx_cpu(), (0..lanes.len()).map(|l| ch.lane_cpu(l)), spin);
        // Spin on the lanes' stamps alone (one load per lane per round), and
        // return a message as soon as one arrives; anything else (padding,
        // garbage) goes to the full poll.
        let spins = if patience == Patience::For(Duration::ZERO) {
            0
        } else {
            spin
        };
        let n = lanes.len();
        'spin: for _ in 0..spins {
            let mut l = *next;
            for _ in 0..n {
                match lanes[l].c.poll_stamp(&ch.g.ring, &ch.ring(l)) {
                    Polled::Msg(p) => {
                        *next = wrap(l + 1, n);
                        return Ok((l, p));
                    }
                    Polled::Other => break 'spin,
                    Polled::Nothing => {}
                }
                l = wrap(l + 1, n);
            }
            std::hint::spin_loop();
        }
        let word = ch.obj.word32(RX_SLEEP_OFFSET);
        block_on(word, 0, first, patience, |how| {
            Self::poll(ch, lanes, next, last_check, how)
        })
    }

    #[inline]
    fn guard(&mut self, (lane, p): (usize, Peeked)) -> RecvGuard<'_> {
        RecvGuard { rx: self, lane, p }
    }

    /// The next message in place, if there is one now.
    #[inline]
    pub fn try_recv_ref(&mut self) -> Result<RecvGuard<'_>, ChannelError> {
        let x = self.next_msg(Patience::Now)?;
        Ok(self.guard(x))
    }

    /// The next message in place, waiting for it. [`ChannelError::PeerDied`] once per
    /// producer that died (after its committed messages); [`ChannelError::Disconnected`]
    /// when no producer is left and every message was received.
    #[inline]
    pub fn recv_ref(&mut self) -> Result<RecvGuard<'_>, ChannelError> {
        let x = self.next_msg(Patience::Forever)?;
        Ok(self.guard(x))
    }

    /// The next message in place, waiting at most `timeout`.
    #[inline]
    pub fn recv_ref_timeout(&mut self, timeout: Duration) -> Result<RecvGuard<'_>, ChannelError> {
        let x = self.next_msg(Patience::For(timeout))?;
        Ok(self.guard(x))
    }

    /// A copy of the next message, if there is one now.
    pub fn try_recv(&mut self) -> Result<Vec<u8>, ChannelError> {
        self.try_recv_ref().map(|g| g.to_vec())
    }

    /// A copy of the next message, waiting for it.
    pub fn recv(&mut self) -> Result<Vec<u8>, ChannelError> {
        self.recv_ref().map(|g| g.to_vec())
    }

    /// A copy of the next message, waiting at most `timeout`.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Vec<u8>, ChannelError> {
        self.recv_ref_timeout(timeout).map(|g| g.to_vec())
    }

    /// The next message as a plain-old-data value, waiting for it. A message of another
    /// size is consumed and reported as [`ChannelError::WrongSize`].
    pub fn recv_value<T: bytemuck::AnyBitPattern>(&mut self) -> Result<T, ChannelError> {
        let g = self.recv_ref()?;
        super::value_of(&g)
    }

    /// The next plain-old-data value, if there is one now.
    pub fn try_recv_value<T: bytemuck::AnyBitPattern>(&mut self) -> Result<T, ChannelError> {
        let g = self.try_recv_ref()?;
        super::value_of(&g)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.ch.receiver_ep().release(self.me);
        for l in 0..self.lanes.len() {
            wait::wake(self.ch.lane_word32(l, LANE_TX_SLEEP));
        }
    }
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("mpsc::Receiver")
            .field("name", &self.ch.obj.name)
            .finish()
    }
}

/// A received message borrowed in place; its lane space goes back to its producer when
/// the guard is dropped. Validate what you read: a hostile process could change it.
pub struct RecvGuard<'a> {
    rx: &'a mut Receiver,
    lane: usize,
    p: Peeked,
}

impl RecvGuard<'_> {
    /// The lane the message came from.
    pub fn lane(&self) -> usize {
        self.lane
    }
}

impl Deref for RecvGuard<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        let len = self.p.len as usize;
        match self.rx.ch.ring(self.lane).ptr(self.p.payload_off, len) {
            // SAFETY: the record was validated to lie inside the lane's ring; until the
            // guard drops, the producer does not reuse it (protocol). The slice borrows
            // the guard, which keeps the mapping alive.
            Some(p) => unsafe { std::slice::from_raw_parts(p, len) },
            None => &[],
        }
    }
}

impl Drop for RecvGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        let ch = &self.rx.ch;
        let lane = self.lane;
        self.rx.lanes[lane]
            .c
            .release(ch.lane_word64(lane, LANE_TAIL), &self.p);
        wait::notify(ch.lane_word32(lane, LANE_TX_SLEEP), || ch.rx_cpu());
    }
}

/// One lane, as [`describe`] sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LaneInfo {
    /// The producer holding the lane, if any.
    pub producer: Option<EndpointInfo>,
    /// Ring bytes holding unreceived messages (0 if the positions are inconsistent).
    pub used: u64,
    /// How many times a producer claimed the lane.
    pub opens: u32,
}

/// What [`describe`] reports about an MPSC channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MpscInfo {
    /// Each lane's ring bytes.
    pub capacity: u64,
    /// Largest message.
    pub max_message: u32,
    /// The receiver, if one holds the slot.
    pub receiver: Option<EndpointInfo>,
    /// How many times a receiver opened the channel.
    pub receiver_opens: u32,
    /// The lanes.
    pub lanes: Vec<LaneInfo>,
}

/// Describes the MPSC channel laid out in `region` (read-only mappings work).
pub fn describe(region: &(impl Region + ?Sized)) -> Result<MpscInfo> {
    let g = validate(region)?;
    let ep = |off: usize| -> Result<(Option<EndpointInfo>, u32)> {
        let w: u64 = region.read(off)?;
        let epoch: u32 = region.read(off + 8)?;
        Ok((
            (w != 0).then(|| EndpointInfo {
                pid: liveness::pid_of(w),
                alive: liveness::alive(w),
            }),
            epoch,
        ))
    };
    let (receiver, receiver_opens) = ep(RECEIVER_OFFSET)?;
    let mut lanes = Vec::new();
    for l in 0..g.lanes as usize {
        let base = g.lane(l);
        let head: u64 = region.read(base + LANE_HEAD)?;
        let tail = region.read::<u64>(base + LANE_TAIL)? & !ring::WAITING;
        let (producer, opens) = ep(base + LANE_ENDPOINT)?;
        let used = if tail <= head && head - tail <= g.ring.ring_size {
            head - tail
        } else {
            0
        };
        lanes.push(LaneInfo {
            producer,
            used,
            opens,
        });
    }
    Ok(MpscInfo {
        capacity: g.ring.ring_size,
        max_message: g.ring.max_message,
        receiver,
        receiver_opens,
        lanes,
    })
}

const _: () = assert!(RECORD_HEADER == 16);
