//! The single-producer single-consumer channel: [`Sender`], [`Receiver`], zero-copy
//! [`SendLoan`] and [`RecvGuard`].
//!
//! Each endpoint maps the object itself, claims its endpoint slot (free, or held by a
//! dead process: a restarted peer takes the dead one's place) and keeps its own position
//! privately. Sending writes a record in place and publishes it with one Release store
//! of its stamp word; receiving reads it and publishes its position with one Release
//! store, then runs one fence before looking at the other side's sleep word. Neither
//! makes a system call unless the other side sleeps (see [`super::wait`]).
//!
//! # Trust
//!
//! The slot a loan or guard exposes belongs to this side by protocol, so it is handed
//! out as a slice. A hostile process mapping the object can still write into it at any
//! time: treat the contents as untrusted input (validate before use), as you would
//! bytes read from a socket. Lengths and positions are never re-read from shared memory
//! after they were checked.

use std::ops::{Deref, DerefMut};
use std::time::Duration;

use super::layout::{
    self, RECEIVER_OFFSET, RECORD_ALIGN, RX_SLEEP_OFFSET, SENDER_OFFSET, TX_SLEEP_OFFSET,
};
use super::liveness;
use super::multi::Watch;
use super::ring::{self, Consumer, Peeked, Producer, Reserved};
use super::shared::Shared;
use super::wait::{self, block_on, Check, Patience, DEFAULT_SPIN};
use super::ChannelError;
use crate::error::{Error, ErrorKind, Result};

fn claim(sh: &Shared, off: usize, role: &str) -> Result<(u64, Watch)> {
    let me = liveness::me();
    if let Err(pid) = sh.endpoint(off).claim(me) {
        return Err(Error::new(
            ErrorKind::AlreadyExists,
            "open",
            &sh.name,
            format!("the channel already has a live {role} (pid {pid})"),
        ));
    }
    let (peer, sleep) = if off == SENDER_OFFSET {
        (RECEIVER_OFFSET, TX_SLEEP_OFFSET)
    } else {
        (SENDER_OFFSET, RX_SLEEP_OFFSET)
    };
    wait::note_cpu(sh.cpu_hint(sleep));
    Ok((me, Watch::new(&sh.endpoint(peer))))
}

/// Reads and checks both positions at open.
fn positions(sh: &Shared) -> std::result::Result<(u64, u64), Error> {
    use std::sync::atomic::Ordering::Acquire;
    // SYNC: Acquire pairs with the Release stores in Producer::commit and
    // Consumer::release of earlier holders.
    let head = sh.word64(layout::HEAD_OFFSET).load(Acquire);
    // SYNC: as above. (A receiver that died waiting left its WAITING bit.)
    let tail = sh.word64(layout::TAIL_OFFSET).load(Acquire) & !ring::WAITING;
    // A producer that died between publishing a record and storing `head` leaves
    // `head` behind `tail`; Sender::open recovers it from the records.
    if head.abs_diff(tail) > sh.g.ring_size
        || head % RECORD_ALIGN != 0
        || tail % RECORD_ALIGN != 0
        || head.max(tail) > u64::MAX / 2
    {
        return Err(Error::corrupt(
            "open",
            &sh.name,
            format!("positions out of range (head {head}, tail {tail})"),
        ));
    }
    Ok((head, tail))
}

/// The sending end of an SPSC channel. One per channel at a time.
///
/// ```no_run
/// # fn main() -> shmkit::Result<()> {
/// use shmkit::channel::{self, Options, Receiver, Sender};
/// channel::create("/demo_chan", &Options::default())?;
/// let mut tx = Sender::open("/demo_chan")?;
/// let mut rx = Receiver::open("/demo_chan")?;
/// tx.send(b"hello").unwrap();
/// let mut loan = tx.loan(5).unwrap();
/// loan.copy_from_slice(b"world");
/// loan.commit();
/// assert_eq!(rx.recv().unwrap(), b"hello");
/// assert_eq!(&*rx.recv_ref().unwrap(), b"world");
/// channel::remove("/demo_chan")?;
/// # Ok(()) }
/// ```
pub struct Sender {
    sh: Shared,
    p: Producer,
    watch: Watch,
    me: u64,
    spin: u32,
}

impl Sender {
    /// Opens the channel `name` (`/name` or `name`) and claims its sender slot. Fails
    /// with [`ErrorKind::AlreadyExists`] while another live process holds it; the slot
    /// of a dead sender is taken over.
    pub fn open(name: &str) -> Result<Sender> {
        Sender::with(Shared::open(name)?)
    }

    /// Opens the channel in the System V segment `id` (made by
    /// [`super::create_sysv`]) and claims its sender slot, as [`Sender::open`] does.
    /// [`Sender::name`] is then `id N`.
    ///
    /// ```no_run
    /// # fn main() -> shmkit::Result<()> {
    /// use shmkit::channel::{self, Options, Sender};
    /// let id = channel::create_sysv(shmkit::sysv::Key::PRIVATE, &Options::default())?;
    /// let mut tx = Sender::open_sysv(id)?;
    /// tx.send(b"hello").unwrap();
    /// # drop(tx); channel::remove_sysv(id)?;
    /// # Ok(()) }
    /// ```
    pub fn open_sysv(id: i32) -> Result<Sender> {
        Sender::with(Shared::open_sysv(id)?)
    }

    fn with(sh: Shared) -> Result<Sender> {
        let (me, watch) = claim(&sh, SENDER_OFFSET, "sender")?;
        let recovered = positions(&sh).and_then(|(head, tail)| {
            let h = ring::recover_head(&sh.g, head, tail, &sh)
                .map_err(|e| e.into_error("open", &sh.name))?;
            Ok((h, tail))
        });
        let (head, tail) = match recovered {
            Ok(p) => p,
            Err(e) => {
                sh.endpoint(SENDER_OFFSET).release(me);
                return Err(e);
            }
        };
        Ok(Sender {
            p: Producer::at(head, tail),
            sh,
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
        self.sh.g.max_message as usize
    }

    /// The channel's object name (`/name`).
    pub fn name(&self) -> &str {
        &self.sh.name
    }

    fn poll_reserve(
        &mut self,
        len: usize,
        force: Check,
    ) -> std::result::Result<Option<Reserved>, ChannelError> {
        let tail = self.sh.word64(layout::TAIL_OFFSET);
        if let Some(r) = self.p.reserve(&self.sh.g, tail, len)? {
            return Ok(Some(r));
        }
        let due = self.watch.due(force);
        match self
            .watch
            .gone_if_due(&self.sh.endpoint(RECEIVER_OFFSET), force, due)
        {
            None => Ok(None),
            Some(e) => {
                self.watch.reported(&self.sh.endpoint(RECEIVER_OFFSET));
                Err(e)
            }
        }
    }

    /// Room for `len` bytes: at once if the cached receiver position shows it (no
    /// shared memory read, no call), else through [`Sender::reserve_slow`].
    #[inline]
    fn reserve(
        &mut self,
        len: usize,
        patience: Patience,
    ) -> std::result::Result<Reserved, ChannelError> {
        match self.p.reserve_cached(&self.sh.g, len) {
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
        match patience.waiting() {
            None => self
                .poll_reserve(len, Check::Normal)?
                .ok_or(ChannelError::Full),
            Some(patience) => {
                if let Some(r) = self.poll_reserve(len, Check::Spin)? {
                    return Ok(r);
                }
                let Sender {
                    sh, p, watch, spin, ..
                } = self;
                let word = sh.word32(TX_SLEEP_OFFSET);
                let mine = sh.cpu_hint(TX_SLEEP_OFFSET);
                let (spin, first) = wait::budget(mine, [sh.cpu_hint(RX_SLEEP_OFFSET)], *spin);
                block_on(word, spin, first, patience, |force| {
                    let tail = sh.word64(layout::TAIL_OFFSET);
                    if let Some(r) = p.reserve(&sh.g, tail, len)? {
                        return Ok(Some(r));
                    }
                    let due = watch.due(force);
                    match watch.gone_if_due(&sh.endpoint(RECEIVER_OFFSET), force, due) {
                        None => Ok(None),
                        Some(e) => {
                            watch.reported(&sh.endpoint(RECEIVER_OFFSET));
                            Err(e)
                        }
                    }
                })
            }
        }
    }

    #[inline(always)]
    fn put(&mut self, data: &[u8], patience: Patience) -> Result<(), ChannelError> {
        let r = self.reserve(data.len(), patience)?;
        if let Some(dst) = self.sh.ring_ptr(r.payload_off, data.len()) {
            // SAFETY: the reserved bytes lie inside the ring (ring_ptr checked) and belong
            // to the sender until commit; `data` is private memory, so no overlap.
            #[allow(unsafe_code)]
            unsafe {
                super::copy::copy_bytes(data.as_ptr(), dst, data.len())
            };
        }
        self.finish(&r, r.len);
        Ok(())
    }

    #[inline(always)]
    fn finish(&mut self, r: &Reserved, len: u32) {
        self.p.commit(
            &self.sh.g,
            self.sh.word64(layout::HEAD_OFFSET),
            &self.sh,
            r,
            len,
        );
        let sh = &self.sh;
        wait::notify(sh.word32(RX_SLEEP_OFFSET), || sh.cpu_hint(TX_SLEEP_OFFSET));
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
    #[inline]
    pub fn send_value<T: bytemuck::NoUninit>(&mut self, value: &T) -> Result<(), ChannelError> {
        self.send(bytemuck::bytes_of(value))
    }

    /// Sends a plain-old-data value if there is room now.
    #[inline]
    pub fn try_send_value<T: bytemuck::NoUninit>(&mut self, value: &T) -> Result<(), ChannelError> {
        self.try_send(bytemuck::bytes_of(value))
    }

    #[inline]
    fn make_loan(&mut self, r: Reserved) -> SendLoan<'_> {
        SendLoan { tx: self, r }
    }

    /// Loans `len` bytes of the ring if there is room now: write in place, then
    /// [`SendLoan::commit`]. Dropping the loan sends nothing.
    #[inline]
    pub fn try_loan(&mut self, len: usize) -> Result<SendLoan<'_>, ChannelError> {
        let r = self.reserve(len, Patience::Now)?;
        Ok(self.make_loan(r))
    }

    /// Loans `len` bytes, waiting for room.
    #[inline]
    pub fn loan(&mut self, len: usize) -> Result<SendLoan<'_>, ChannelError> {
        let r = self.reserve(len, Patience::Forever)?;
        Ok(self.make_loan(r))
    }

    /// Loans `len` bytes, waiting at most `timeout` for room.
    #[inline]
    pub fn loan_timeout(
        &mut self,
        len: usize,
        timeout: Duration,
    ) -> Result<SendLoan<'_>, ChannelError> {
        let r = self.reserve(len, Patience::For(timeout))?;
        Ok(self.make_loan(r))
    }

    /// Whether a receiver holds the other end and its process lives (slow: reads /proc).
    pub fn receiver_alive(&self) -> bool {
        matches!(self.sh.endpoint(RECEIVER_OFFSET).holder(), Some((_, true)))
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        self.sh.endpoint(SENDER_OFFSET).release(self.me);
        wait::wake(self.sh.word32(RX_SLEEP_OFFSET));
    }
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("name", &self.sh.name)
            .finish()
    }
}

/// Ring space loaned by [`Sender::loan`]: write the message in place, then commit.
/// Dropping it without committing sends nothing. Another process mapping the object
/// could scribble on these bytes; the receiver validates the record, not the payload.
pub struct SendLoan<'a> {
    tx: &'a mut Sender,
    r: Reserved,
}

impl SendLoan<'_> {
    /// Sends the whole loaned length.
    #[inline]
    pub fn commit(self) {
        let n = self.r.len;
        self.tx.finish(&self.r, n);
    }

    /// Sends only the first `len` bytes (at most the loaned length; more is clamped).
    #[inline]
    pub fn commit_len(self, len: usize) {
        let n = len.min(self.r.len as usize) as u32;
        self.tx.finish(&self.r, n);
    }
}

impl Deref for SendLoan<'_> {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        match self.tx.sh.ring_ptr(self.r.payload_off, self.r.len as usize) {
            // SAFETY: the reserved bytes are inside the ring and belong to this sender
            // until commit (protocol); the slice borrows the loan, which borrows the
            // sender, which keeps the mapping alive.
            #[allow(unsafe_code)]
            Some(p) => unsafe { std::slice::from_raw_parts(p, self.r.len as usize) },
            None => &[],
        }
    }
}

impl DerefMut for SendLoan<'_> {
    #[inline]
    fn deref_mut(&mut self) -> &mut [u8] {
        match self.tx.sh.ring_ptr(self.r.payload_off, self.r.len as usize) {
            // SAFETY: as in deref; &mut self makes this the only slice over the loan.
            #[allow(unsafe_code)]
            Some(p) => unsafe { std::slice::from_raw_parts_mut(p, self.r.len as usize) },
            None => &mut [],
        }
    }
}

/// The receiving end of an SPSC channel. One per channel at a time.
pub struct Receiver {
    sh: Shared,
    c: Consumer,
    watch: Watch,
    me: u64,
    spin: u32,
}

impl Receiver {
    /// Opens the channel `name` and claims its receiver slot (taking over a dead
    /// receiver's; a message it was reading but had not released is delivered again).
    pub fn open(name: &str) -> Result<Receiver> {
        Receiver::with(Shared::open(name)?)
    }

    /// Opens the channel in the System V segment `id` (made by
    /// [`super::create_sysv`]) and claims its receiver slot, as [`Receiver::open`] does.
    ///
    /// ```no_run
    /// # fn main() -> shmkit::Result<()> {
    /// use shmkit::channel::Receiver;
    /// # let id = 0;
    /// let mut rx = Receiver::open_sysv(id)?;
    /// while let Ok(msg) = rx.recv() {
    ///     println!("{}", String::from_utf8_lossy(&msg));
    /// }
    /// # Ok(()) }
    /// ```
    pub fn open_sysv(id: i32) -> Result<Receiver> {
        Receiver::with(Shared::open_sysv(id)?)
    }

    fn with(sh: Shared) -> Result<Receiver> {
        let (me, mut watch) = claim(&sh, RECEIVER_OFFSET, "receiver")?;
        let tail = match positions(&sh) {
            Ok((_, tail)) => tail,
            Err(e) => {
                sh.endpoint(RECEIVER_OFFSET).release(me);
                return Err(e);
            }
        };
        let mut c = Consumer::take_over(tail, sh.word64(layout::TAIL_OFFSET));
        // Messages left by a sender that has gone: drain them, then report the end.
        let waiting = !matches!(c.peek(&sh.g, sh.word64(layout::TAIL_OFFSET), &sh), Ok(None));
        if waiting && watch.epoch_at_open > 0 {
            watch.seen = true;
        }
        Ok(Receiver {
            c,
            sh,
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
        self.sh.g.max_message as usize
    }

    /// The channel's object name (`/name`).
    pub fn name(&self) -> &str {
        &self.sh.name
    }

    #[inline(always)]
    fn poll_peek(
        sh: &Shared,
        c: &mut Consumer,
        watch: &mut Watch,
        force: Check,
    ) -> std::result::Result<Option<Peeked>, ChannelError> {
        let tail = sh.word64(layout::TAIL_OFFSET);
        if let Some(p) = c.peek(&sh.g, tail, sh)? {
            return Ok(Some(p));
        }
        // On the polls due for it: a stamp that `head` says is there but is not
        // (garbage written over the ring) is an error, not a wait for ever.
        let due = watch.due(force);
        if due && c.confirm_empty(&sh.g, sh.word64(layout::HEAD_OFFSET), sh)? {
            return c.peek(&sh.g, tail, sh);
        }
        match watch.gone_if_due(&sh.endpoint(SENDER_OFFSET), force, due) {
            None => Ok(None),
            // The sender's last commit happens before its endpoint was freed (or before
            // it died): look once more before reporting the end.
            Some(e) => match c.peek(&sh.g, tail, sh)? {
                Some(p) => Ok(Some(p)),
                None => {
                    watch.reported(&sh.endpoint(SENDER_OFFSET));
                    Err(e)
                }
            },
        }
    }

    /// The next message: at once if its header is there (one shared load, no call),
    /// else through [`Receiver::next_slow`].
    #[inline]
    fn next(&mut self, patience: Patience) -> Result<Peeked, ChannelError> {
        match self.c.peek_msg(&self.sh.g, &self.sh) {
            Some(p) => Ok(p),
            None => self.next_slow(patience),
        }
    }

    #[inline(never)]
    fn next_slow(&mut self, patience: Patience) -> Result<Peeked, ChannelError> {
        let Receiver {
            sh, c, watch, spin, ..
        } = self;
        match patience.waiting() {
            None => Self::poll_peek(sh, c, watch, Check::Normal)?.ok_or(ChannelError::Empty),
            Some(patience) => {
                if let Some(p) = Self::poll_peek(sh, c, watch, Check::Spin)? {
                    return Ok(p);
                }
                // The sender may now go back to the ring's start (ring::WAITING); the
                // release of the message found clears the mark, the other ends below.
                let tail = sh.word64(layout::TAIL_OFFSET);
                c.wait_here(tail);
                let got = Self::wait(sh, c, watch, *spin, patience);
                if got.is_err() {
                    c.end_wait(&sh.g, tail, sh);
                }
                got
            }
        }
    }

    /// The waiting part of a blocking receive.
    fn wait(
        sh: &Shared,
        c: &mut Consumer,
        watch: &mut Watch,
        spin: u32,
        patience: Patience,
    ) -> Result<Peeked, ChannelError> {
        // Spin on the stamp word alone: one load per poll, so a message is seen, and
        // returned, as soon as its line arrives.
        let mine = sh.cpu_hint(RX_SLEEP_OFFSET);
        let (spin, first) = wait::budget(mine, [sh.cpu_hint(TX_SLEEP_OFFSET)], spin);
        let spins = if patience == Patience::For(Duration::ZERO) {
            0
        } else {
            spin
        };
        if let Some(p) = c.spin_for_msg(&sh.g, sh, spins) {
            return Ok(p);
        }
        if let Some(p) = Self::poll_peek(sh, c, watch, Check::Spin)? {
            return Ok(p);
        }
        let word = sh.word32(RX_SLEEP_OFFSET);
        block_on(word, 0, first, patience, |force| {
            Self::poll_peek(sh, c, watch, force)
        })
    }

    #[inline]
    fn guard(&mut self, p: Peeked) -> RecvGuard<'_> {
        RecvGuard { rx: self, p }
    }

    /// The next message in place, if there is one now.
    #[inline]
    pub fn try_recv_ref(&mut self) -> Result<RecvGuard<'_>, ChannelError> {
        let p = self.next(Patience::Now)?;
        Ok(self.guard(p))
    }

    /// The next message in place, waiting for it. After the sender has gone and every
    /// message it committed was received: [`ChannelError::Disconnected`] (it closed) or
    /// [`ChannelError::PeerDied`] (it died).
    #[inline]
    pub fn recv_ref(&mut self) -> Result<RecvGuard<'_>, ChannelError> {
        let p = self.next(Patience::Forever)?;
        Ok(self.guard(p))
    }

    /// The next message in place, waiting at most `timeout`.
    #[inline]
    pub fn recv_ref_timeout(&mut self, timeout: Duration) -> Result<RecvGuard<'_>, ChannelError> {
        let p = self.next(Patience::For(timeout))?;
        Ok(self.guard(p))
    }

    /// A copy of the next message, if there is one now.
    #[inline]
    pub fn try_recv(&mut self) -> Result<Vec<u8>, ChannelError> {
        self.try_recv_ref().map(|g| g.to_vec())
    }

    /// A copy of the next message, waiting for it.
    #[inline]
    pub fn recv(&mut self) -> Result<Vec<u8>, ChannelError> {
        self.recv_ref().map(|g| g.to_vec())
    }

    /// A copy of the next message, waiting at most `timeout`.
    #[inline]
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Vec<u8>, ChannelError> {
        self.recv_ref_timeout(timeout).map(|g| g.to_vec())
    }

    /// The next message as a plain-old-data value, waiting for it. A message of another
    /// size is consumed and reported as [`ChannelError::WrongSize`].
    #[inline(always)]
    pub fn recv_value<T: bytemuck::AnyBitPattern>(&mut self) -> Result<T, ChannelError> {
        let g = self.recv_ref()?;
        super::value_of(&g)
    }

    /// The next plain-old-data value, if there is one now.
    #[inline]
    pub fn try_recv_value<T: bytemuck::AnyBitPattern>(&mut self) -> Result<T, ChannelError> {
        let g = self.try_recv_ref()?;
        super::value_of(&g)
    }

    /// Whether a message (or a corruption to report) is waiting now, without taking
    /// it. Cheap: no system call.
    pub fn has_message(&mut self) -> bool {
        let sh = &self.sh;
        let tail = sh.word64(layout::TAIL_OFFSET);
        !matches!(self.c.peek(&sh.g, tail, sh), Ok(None))
    }

    /// Whether a sender holds the other end and its process lives (slow: reads /proc).
    pub fn sender_alive(&self) -> bool {
        matches!(self.sh.endpoint(SENDER_OFFSET).holder(), Some((_, true)))
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.sh.endpoint(RECEIVER_OFFSET).release(self.me);
        wait::wake(self.sh.word32(TX_SLEEP_OFFSET));
    }
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("name", &self.sh.name)
            .finish()
    }
}

/// A received message, borrowed in place; its ring space goes back to the sender when
/// the guard is dropped. The bytes belong to the receiver by protocol, but a hostile
/// process mapping the object could change them: validate what you read.
pub struct RecvGuard<'a> {
    rx: &'a mut Receiver,
    p: Peeked,
}

impl Deref for RecvGuard<'_> {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        match self.rx.sh.ring_ptr(self.p.payload_off, self.p.len as usize) {
            // SAFETY: the record was validated to lie inside the ring and inside the
            // committed data; until the guard drops, the sender does not reuse it
            // (protocol). The slice borrows the guard, which keeps the mapping alive.
            #[allow(unsafe_code)]
            Some(p) => unsafe { std::slice::from_raw_parts(p, self.p.len as usize) },
            None => &[],
        }
    }
}

impl Drop for RecvGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        let sh = &self.rx.sh;
        self.rx.c.release(sh.word64(layout::TAIL_OFFSET), &self.p);
        wait::notify(sh.word32(TX_SLEEP_OFFSET), || sh.cpu_hint(RX_SLEEP_OFFSET));
    }
}
