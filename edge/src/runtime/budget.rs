//! Admission control: the isolate's memory budget for upload buffers, and
//! how long an upload may hold its share of it.
//!
//! Cloudflare gives one isolate 128 MB for all the requests it serves at
//! once, and an isolate over it is killed with every request in it. An
//! upload must buffer what S3 needs a length for (a whole file up to the
//! multipart threshold, else one part), so the bytes uploads hold are
//! counted against a budget.
//!
//! An upload is granted budget for the bytes that have reached it (twice
//! them: its buffer's storage doubles as they come, `payload`), in `GRANT`
//! steps as its body is read ([`Metered`]), not for what its
//! `Content-Length` declares: a client that declares 20 MB and sends a few
//! kilobytes holds a few kilobytes' worth. Granting all that an upload might
//! hold at once let eight slow clients declaring large files take a 48 MiB
//! budget while sending next to nothing, and every other upload waited
//! `MAX_WAIT` for a 503. Two rules keep the grants safe and fair:
//!
//! - *Headroom for one to finish.* New uploads are admitted, and uploads
//!   grow, only while one largest upload's worth of the budget stays free.
//!   When an upload cannot grow, the oldest such one becomes the *finisher*
//!   and may use that headroom: it can always be given all it may ever hold,
//!   so uploads that all wait to grow never wait on each other for ever.
//! - *A share per owner.* One owner's admitted uploads may together declare
//!   at most `OWNER_SHARE` of the budget (each counted at the most it can
//!   hold), so one token's many uploads cannot take the budget from every
//!   other token. An upload over its owner's share waits without holding
//!   up other owners' uploads queued behind it.
//!
//! A grant is worth holding only while bytes come: an upload whose body
//! makes no progress (`PROGRESS_BYTES`, or its end) for the idle timeout
//! while the worker waits on the client ends with 408 `upload_stalled` and
//! gives everything back (`Metered`). Time spent waiting for budget or on
//! S3 does not count against the client.
//!
//! An upload that does not fit waits its turn, first come first served
//! among the owners with room in their share, before any byte of its body
//! is read: the unread body stays in the client's socket (TCP holds it
//! back), so a waiting upload costs the isolate next to nothing. Refusing at
//! once instead made every refused client's retry send its whole body again,
//! only for it to be read and dropped (a refusal must read the body, or the
//! client still sending gets a reset instead of the answer): 200 concurrent
//! uploads of up to 20 MB spent the machine draining bodies
//! (docs/reliability.md). Past `MAX_WAIT`, or with `MAX_WAITING` uploads
//! already queued, the client gets a 503 `over_capacity` with `Retry-After`
//! and nothing is stored. Strict order also means a large upload is not
//! passed over for ever by small ones that happen to fit.
//!
//! A waiting upload looks at its place on a timer of its own instead of
//! being woken by the upload that frees the room: a Rust waker called from
//! another request would have the waiting request polled in that request's
//! I/O context (wasm-bindgen's one task queue per isolate), and workerd
//! refuses a body read there ("Cannot perform I/O on behalf of a different
//! request"). A Worker isolate runs one thread, so the tally and the queue
//! are thread-locals.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::future::{Either, select};

use crate::runtime::body::{CHUNK_BYTES, Chunks};

/// How long a refused client is told to wait: it has already waited
/// `MAX_WAIT` in the queue, or found the queue full.
pub const RETRY_AFTER_SECS: u32 = 2;

/// What an upload holds in wasm memory besides its payload buffer: the
/// file's head (read before anything is stored), multer's buffer and the
/// body chunk in flight.
pub const UPLOAD_OVERHEAD: u64 = 512 * 1024;

/// The budget's settings, from the upload limits (`UPLOAD_MEMORY_BUDGET_BYTES`,
/// the multipart threshold and part size).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizing {
    /// What all uploads in one isolate may hold at once.
    pub budget: u64,
    /// The largest payload buffer one upload holds: a whole file up to the
    /// multipart threshold, else one part.
    pub largest_buffer: u64,
}

impl Sizing {
    /// The most an upload of `declared` body bytes can hold at once: its
    /// overhead plus its payload buffer, which is never larger than the body
    /// nor than the largest buffer. Without a declared length (chunked
    /// transfer), the largest buffer.
    pub fn reservation(&self, declared: Option<u64>) -> u64 {
        UPLOAD_OVERHEAD + declared.map_or(self.largest_buffer, |n| n.min(self.largest_buffer))
    }
}

/// An upload the budget has no room for, within its wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the isolate's upload memory budget is full: retry in {retry_after_secs} s")]
pub struct Refused {
    pub retry_after_secs: u32,
}
/// How long an upload waits for room before it is refused (counted in
/// ticks): long enough for a queue's worth of uploads to pass on a busy
/// isolate, well inside any client's request timeout.
#[cfg_attr(not(any(target_arch = "wasm32", test)), allow(dead_code))]
pub const MAX_WAIT: Duration = Duration::from_secs(30);
/// How often a waiting upload looks whether its turn came.
pub const TICK: Duration = Duration::from_millis(50);
/// Uploads that may wait at once; past it a new one is refused at once.
pub const MAX_WAITING: usize = 256;
/// Budget granted at a time as an upload's body arrives: a few body reads'
/// worth, so a growing upload asks seldom.
pub const GRANT: u64 = 1 << 20;
/// The part of the budget one owner's admitted uploads may declare (a
/// half: two owners can always upload side by side).
pub const OWNER_SHARE: (u64, u64) = (1, 2);
/// What counts as progress: this many body bytes (or the body's end)
/// within each idle timeout. A client trickling a few bytes at a time holds
/// its grant as surely as one that sends nothing.
pub const PROGRESS_BYTES: u64 = 64 * 1024;

/// One upload waiting for room.
struct Ticket {
    owner: Rc<str>,
    first: u64,
    most: u64,
    granted: Cell<bool>,
}

#[derive(Default)]
struct State {
    /// Bytes granted to uploads in progress.
    held: u64,
    /// Per owner: the most its admitted uploads may hold together.
    claimed: HashMap<Rc<str>, u64>,
    queue: VecDeque<Rc<Ticket>>,
    /// Uploads waiting to grow; new uploads wait while there are any.
    growing: usize,
    /// The one upload that may grow into the headroom (see the module docs).
    finisher: Option<u64>,
    next_id: u64,
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State::default());
}

/// Bytes granted to uploads in progress in this isolate.
pub fn held() -> u64 {
    STATE.with(|s| s.borrow().held)
}

/// Uploads waiting for room in this isolate.
#[cfg(test)]
fn waiting() -> usize {
    STATE.with(|s| s.borrow().queue.len())
}

/// The budget's figures an admission needs.
#[derive(Debug, Clone, Copy)]
struct Room {
    budget: u64,
    /// The most any one upload may hold: kept free for the finisher.
    headroom: u64,
    /// The most one owner's admitted uploads may hold together.
    share: u64,
}

impl Room {
    fn of(sizing: &Sizing) -> Room {
        let budget = sizing.budget;
        let headroom = sizing.reservation(None).min(budget);
        let share = (budget / OWNER_SHARE.1 * OWNER_SHARE.0).max(headroom);
        Room {
            budget,
            headroom,
            share,
        }
    }

    /// Whether `more` bytes may be granted beside `held` to anyone but the
    /// finisher. With nothing held, the one upload admitted may use it all.
    fn fits(&self, held: u64, more: u64) -> bool {
        held == 0 || held + more <= self.budget - self.headroom
    }
}

/// What one admitted upload holds, returned when dropped (whichever way the
/// upload ends). Shared by the handler and the body's [`Metered`] stream.
#[derive(Debug)]
pub struct Permit {
    id: u64,
    owner: Rc<str>,
    /// Bytes granted so far.
    granted: Cell<u64>,
    /// The most it may ever be granted.
    most: u64,
    room: Room,
}

impl Permit {
    /// Grows the grant to cover `bytes` (at most `most`), in `GRANT` steps,
    /// waiting up to `max_wait` for room; `NoRoom` if none came.
    async fn cover<F: Future<Output = ()>>(
        &self,
        bytes: u64,
        max_wait: Duration,
        sleep: &mut impl FnMut(Duration) -> F,
    ) -> Result<(), PaceError> {
        let want = bytes.min(self.most);
        if want <= self.granted.get() {
            return Ok(());
        }
        let step = (want - self.granted.get())
            .div_ceil(GRANT)
            .saturating_mul(GRANT)
            .min(self.most - self.granted.get());
        if self.try_grow(step) {
            return Ok(());
        }
        STATE.with(|s| s.borrow_mut().growing += 1);
        let _waiting = Growing;
        let mut waited = Duration::ZERO;
        while waited < max_wait {
            sleep(TICK).await;
            waited += TICK;
            if self.try_grow(step) {
                return Ok(());
            }
        }
        tracing::warn!(
            held = held(),
            wanted = step,
            "upload stopped: no room to grow within the memory budget"
        );
        Err(PaceError::NoRoom)
    }

    /// Grants `step` more if it fits beside the headroom; else, if no
    /// other upload is the finisher, this one becomes it and may use the
    /// whole budget.
    fn try_grow(&self, step: u64) -> bool {
        STATE.with(|s| {
            let mut s = s.borrow_mut();
            let room = self.room;
            let ok = if s.finisher == Some(self.id) {
                s.held + step <= room.budget
            } else if room.fits(s.held, step) {
                true
            } else if s.finisher.is_none() {
                s.finisher = Some(self.id);
                s.held + step <= room.budget
            } else {
                false
            };
            if ok {
                s.held += step;
                self.granted.set(self.granted.get() + step);
            }
            ok
        })
    }
}

/// Counts an upload waiting to grow while it waits.
struct Growing;

impl Drop for Growing {
    fn drop(&mut self) {
        STATE.with(|s| {
            let mut s = s.borrow_mut();
            s.growing = s.growing.saturating_sub(1);
        });
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        STATE.with(|s| {
            let mut s = s.borrow_mut();
            s.held = s.held.saturating_sub(self.granted.get());
            release_claim(&mut s, &self.owner, self.most);
            if s.finisher == Some(self.id) {
                s.finisher = None;
            }
            grant_waiting(&mut s, self.room);
        });
    }
}

fn release_claim(s: &mut State, owner: &Rc<str>, most: u64) {
    if let Some(c) = s.claimed.get_mut(owner) {
        *c = c.saturating_sub(most);
        if *c == 0 {
            s.claimed.remove(owner);
        }
    }
}

fn owner_has_room(s: &State, room: Room, owner: &Rc<str>, most: u64) -> bool {
    s.claimed.get(owner).copied().unwrap_or(0) + most <= room.share
}

/// Hands room to the queued uploads, in order, while they fit; an upload
/// over its owner's share is passed over, not waited for. Each sees its
/// grant on its next tick.
fn grant_waiting(s: &mut State, room: Room) {
    if s.growing > 0 {
        return;
    }
    let mut i = 0;
    while let Some(t) = s.queue.get(i).cloned() {
        if !owner_has_room(s, room, &t.owner, t.most) {
            i += 1;
            continue;
        }
        if !room.fits(s.held, t.first) {
            return;
        }
        s.held += t.first;
        *s.claimed.entry(t.owner.clone()).or_insert(0) += t.most;
        t.granted.set(true);
        s.queue.remove(i);
    }
}

/// A place in the queue. Dropped before it became a `Permit` (the wait ran
/// out, or the request went away), it leaves the queue, or gives back the
/// room it was granted meanwhile.
struct Place {
    ticket: Rc<Ticket>,
    room: Room,
    done: bool,
}

impl Place {
    fn into_permit(mut self) -> Permit {
        self.done = true;
        new_permit(
            &self.ticket.owner,
            self.ticket.first,
            self.ticket.most,
            self.room,
        )
    }
}

fn new_permit(owner: &Rc<str>, first: u64, most: u64, room: Room) -> Permit {
    let id = STATE.with(|s| {
        let mut s = s.borrow_mut();
        s.next_id += 1;
        s.next_id
    });
    Permit {
        id,
        owner: owner.clone(),
        granted: Cell::new(first),
        most,
        room,
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        STATE.with(|s| {
            let mut s = s.borrow_mut();
            if self.ticket.granted.get() {
                s.held = s.held.saturating_sub(self.ticket.first);
                release_claim(&mut s, &self.ticket.owner, self.ticket.most);
            } else {
                s.queue.retain(|t| !Rc::ptr_eq(t, &self.ticket));
            }
            // The front may have been what held the rest back.
            grant_waiting(&mut s, self.room);
        });
    }
}

/// Admits an upload of `owner` with its first grant, waiting up to
/// `MAX_WAIT` for room, or refuses it with `over_capacity`.
#[cfg(target_arch = "wasm32")]
pub async fn admit(
    sizing: &Sizing,
    owner: &str,
    declared: Option<u64>,
) -> Result<Rc<Permit>, Refused> {
    admit_with(
        sizing,
        owner,
        declared,
        MAX_WAIT,
        crate::runtime::clock::sleep,
    )
    .await
}

/// Native builds (unit tests, fuzzing) have no timer: whoever cannot be
/// admitted at once is refused.
#[cfg(not(target_arch = "wasm32"))]
pub async fn admit(
    sizing: &Sizing,
    owner: &str,
    declared: Option<u64>,
) -> Result<Rc<Permit>, Refused> {
    admit_with(sizing, owner, declared, Duration::ZERO, |_| {
        std::future::ready(())
    })
    .await
}

/// `admit` with the wait and the timer given.
pub async fn admit_with<F: Future<Output = ()>>(
    sizing: &Sizing,
    owner: &str,
    declared: Option<u64>,
    max_wait: Duration,
    mut sleep: impl FnMut(Duration) -> F,
) -> Result<Rc<Permit>, Refused> {
    let most = sizing.reservation(declared);
    let first = most.min(UPLOAD_OVERHEAD + GRANT);
    let room = Room::of(sizing);
    let owner: Rc<str> = owner.into();
    let place = STATE.with(|s| {
        let mut s = s.borrow_mut();
        let ahead = s
            .queue
            .iter()
            .any(|t| owner_has_room(&s, room, &t.owner, t.most));
        if !ahead
            && s.growing == 0
            && owner_has_room(&s, room, &owner, most)
            && room.fits(s.held, first)
        {
            s.held += first;
            *s.claimed.entry(owner.clone()).or_insert(0) += most;
            return Ok(None);
        }
        if max_wait.is_zero() || s.queue.len() >= MAX_WAITING {
            return Err(refuse(s.held, first, room.budget, s.queue.len()));
        }
        let ticket = Rc::new(Ticket {
            owner: owner.clone(),
            first,
            most,
            granted: Cell::new(false),
        });
        s.queue.push_back(ticket.clone());
        Ok(Some(Place {
            ticket,
            room,
            done: false,
        }))
    })?;
    let Some(place) = place else {
        return Ok(Rc::new(new_permit(&owner, first, most, room)));
    };
    let mut waited = Duration::ZERO;
    while waited < max_wait {
        sleep(TICK).await;
        waited += TICK;
        STATE.with(|s| grant_waiting(&mut s.borrow_mut(), room));
        if place.ticket.granted.get() {
            return Ok(Rc::new(place.into_permit()));
        }
    }
    drop(place);
    Err(STATE.with(|s| {
        let s = s.borrow();
        refuse(s.held, first, room.budget, s.queue.len())
    }))
}

fn refuse(held: u64, wanted: u64, budget: u64, waiting: usize) -> Refused {
    tracing::warn!(
        held,
        wanted,
        budget,
        waiting,
        "upload refused: memory budget reached"
    );
    Refused {
        retry_after_secs: RETRY_AFTER_SECS,
    }
}

/// Why a metered body stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PaceError {
    /// The client sent less than `PROGRESS_BYTES` within the idle timeout.
    #[error("the upload made no progress for {0} ms")]
    Stalled(u64),
    /// The upload could not be granted room for its next bytes in time.
    #[error("no room in the memory budget for the upload's next bytes")]
    NoRoom,
}

/// The `PaceError` inside a multer stream error, if that is what it is.
pub fn pace_error(e: &multer::Error) -> Option<PaceError> {
    match e {
        multer::Error::StreamReadFailed(inner) => inner
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|e| e.downcast_ref::<PaceError>())
            .copied(),
        _ => None,
    }
}

/// An upload's body, read only as far as its grant covers (growing it
/// first) and only while the client keeps up.
pub struct Metered<F> {
    inner: Chunks,
    permit: Rc<Permit>,
    idle: Duration,
    sleep: F,
    /// Body bytes read so far.
    read: u64,
    /// Bytes and time spent waiting on the client since progress was last made.
    window_bytes: u64,
    window_waited: Duration,
}

impl<F, Fut> Metered<F>
where
    F: FnMut(Duration) -> Fut + 'static,
    Fut: Future<Output = ()> + 'static,
{
    /// The body's chunks, metered against `permit`, ending with a
    /// `PaceError` once the client makes no progress for `idle`.
    pub fn chunks(inner: Chunks, permit: Rc<Permit>, idle: Duration, sleep: F) -> Chunks {
        let state = Metered {
            inner,
            permit,
            idle,
            sleep,
            read: 0,
            window_bytes: 0,
            window_waited: Duration::ZERO,
        };
        Box::new(Box::pin(futures_util::stream::unfold(
            Some(state),
            |state| async move {
                let mut m = state?;
                match m.next().await {
                    Ok(Some(bytes)) => Some((Ok(bytes), Some(m))),
                    Ok(None) => None,
                    Err(e) => Some((Err(e), None)),
                }
            },
        )))
    }

    async fn next(&mut self) -> Result<Option<Bytes>, std::io::Error> {
        // The buffer's storage may soon be twice what was read plus the next
        // read (`payload::PayloadBuffer` doubles as bytes arrive).
        let overhead = UPLOAD_OVERHEAD.min(self.permit.most);
        let storage = (self.read + u64::from(CHUNK_BYTES)).saturating_mul(2);
        self.permit
            .cover(overhead + storage, MAX_WAIT, &mut self.sleep)
            .await
            .map_err(std::io::Error::other)?;
        let left = self.idle.saturating_sub(self.window_waited);
        let started = crate::runtime::clock::now();
        let read = self.inner.next();
        let deadline = (self.sleep)(left);
        futures_util::pin_mut!(deadline);
        match select(read, deadline).await {
            Either::Left((Some(Ok(bytes)), _)) => {
                let len = bytes.len() as u64;
                self.read += len;
                self.window_bytes += len;
                self.window_waited += crate::runtime::clock::now()
                    .duration_since(started)
                    .unwrap_or_default();
                if self.window_bytes >= PROGRESS_BYTES {
                    self.window_bytes = 0;
                    self.window_waited = Duration::ZERO;
                }
                Ok(Some(bytes))
            }
            Either::Left((Some(Err(e)), _)) => Err(e),
            Either::Left((None, _)) => Ok(None),
            Either::Right(_) => {
                let ms = u64::try_from(self.idle.as_millis()).unwrap_or(u64::MAX);
                tracing::info!(
                    read = self.read,
                    idle_ms = ms,
                    "upload stopped: no progress from the client"
                );
                Err(std::io::Error::other(PaceError::Stalled(ms)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use futures_executor::{LocalPool, block_on};
    use futures_util::task::LocalSpawnExt;

    use super::*;

    const MIB: u64 = 1 << 20;

    fn limits(budget: u64) -> Sizing {
        Sizing {
            budget,
            largest_buffer: 5 << 20,
        }
    }

    /// The most one upload may hold: 5.5 MiB.
    fn most() -> u64 {
        limits(0).reservation(None)
    }

    /// A first grant: overhead and one step.
    const FIRST: u64 = UPLOAD_OVERHEAD + GRANT;

    #[test]
    fn a_reservation_is_the_body_or_one_part_whichever_is_smaller() {
        let l = limits(64 << 20);
        assert_eq!(l.reservation(Some(20_000)), UPLOAD_OVERHEAD + 20_000);
        assert_eq!(l.reservation(Some(90_000_000)), UPLOAD_OVERHEAD + (5 << 20));
        assert_eq!(l.reservation(None), UPLOAD_OVERHEAD + (5 << 20));
    }

    fn admit_now(l: &Sizing, owner: &str, declared: Option<u64>) -> Result<Rc<Permit>, Refused> {
        block_on(admit(l, owner, declared))
    }

    /// Grows `p` to cover `bytes` if that needs no wait.
    fn grow_now(p: &Permit, bytes: u64) -> Result<(), PaceError> {
        block_on(p.cover(bytes, Duration::ZERO, &mut |_| std::future::ready(())))
    }

    #[test]
    fn an_upload_holds_what_has_arrived_not_what_it_declares() {
        let l = limits(48 * MIB);
        // Eight uploads declaring 20 MB each, of eight owners: before, they
        // took 44 MiB between them; now each holds its first grant.
        let slow: Vec<_> = (0..8)
            .map(|i| admit_now(&l, &format!("slow{i}"), Some(20_000_000)).unwrap())
            .collect();
        assert_eq!(held(), 8 * FIRST);
        let other = admit_now(&l, "other", Some(3_400_000)).unwrap();
        // A small upload is granted what it declared, no more.
        let small = admit_now(&l, "small", Some(20_000)).unwrap();
        assert_eq!(held(), 9 * FIRST + UPLOAD_OVERHEAD + 20_000);
        // Bytes arriving grow the grant in steps, up to the most it may hold.
        grow_now(&other, UPLOAD_OVERHEAD + GRANT + 1).unwrap();
        assert_eq!(other.granted.get(), FIRST + GRANT);
        grow_now(&other, 50 * MIB).unwrap();
        assert_eq!(other.granted.get(), UPLOAD_OVERHEAD + 3_400_000);
        grow_now(&small, 5 * MIB).unwrap();
        assert_eq!(small.granted.get(), UPLOAD_OVERHEAD + 20_000);
        drop((slow, other, small));
        assert_eq!(held(), 0);
    }

    #[test]
    fn one_owner_claims_at_most_half_the_budget_and_others_pass_its_queue() {
        let l = limits(4 * most());
        let (mut pool, clock) = (LocalPool::new(), Clock::default());
        let a1 = admit_now(&l, "a", None).unwrap();
        let a2 = admit_now(&l, "a", None).unwrap();
        // A third of owner a's is over its share: it waits...
        let a3 = queue_up(&pool, l, "a", None, &clock);
        tick(&mut pool, &clock);
        assert!(a3.borrow().is_none());
        assert_eq!(waiting(), 1);
        // ...and another owner's upload does not wait behind it.
        let b = admit_now(&l, "b", None).unwrap();
        drop(a1);
        tick(&mut pool, &clock);
        let a3 = a3.take().expect("a's share has room again").unwrap();
        drop((a2, a3, b));
        assert_eq!((held(), waiting()), (0, 0));
    }

    #[test]
    fn uploads_that_all_wait_to_grow_finish_one_by_one() {
        // Room for two largest uploads: one for the admitted, one headroom.
        let l = limits(2 * most());
        let (mut pool, clock) = (LocalPool::new(), Clock::default());
        let ps: Vec<_> = (0..3)
            .map(|i| admit_now(&l, &format!("o{i}"), None).unwrap())
            .collect();
        assert!(
            admit_now(&l, "o3", None).is_err(),
            "the headroom stays free"
        );
        // The first to find no room becomes the finisher and gets it all.
        grow_now(&ps[0], most()).unwrap();
        assert_eq!(ps[0].granted.get(), most());
        // The others wait to grow, and new uploads wait behind them.
        let grow = |p: &Rc<Permit>| {
            let (p, slot, sleep) = (p.clone(), Rc::new(RefCell::new(None)), clock.sleep());
            let out = slot.clone();
            pool.spawner()
                .spawn_local(async move {
                    let mut sleep = sleep;
                    *out.borrow_mut() = Some(p.cover(most(), MAX_WAIT, &mut sleep).await);
                })
                .unwrap();
            slot
        };
        let g1 = grow(&ps[1]);
        let g2 = grow(&ps[2]);
        tick(&mut pool, &clock);
        assert!(g1.borrow().is_none() && g2.borrow().is_none());
        assert!(admit_now(&l, "o4", Some(1)).is_err(), "growers go first");
        let mut ps = ps.into_iter();
        drop(ps.next());
        tick(&mut pool, &clock);
        assert!(
            matches!(*g1.borrow(), Some(Ok(()))),
            "the next finisher gets it all"
        );
        assert!(g2.borrow().is_none(), "one finisher at a time");
        drop(ps.next());
        tick(&mut pool, &clock);
        assert!(matches!(*g2.borrow(), Some(Ok(()))));
        drop(ps);
        pool.run_until_stalled();
        assert_eq!((held(), waiting()), (0, 0));
    }

    #[test]
    fn a_grant_that_does_not_come_in_time_ends_the_upload() {
        let l = limits(2 * most());
        let clock = Clock::default();
        let a = admit_now(&l, "a", None).unwrap();
        let b = admit_now(&l, "b", None).unwrap();
        grow_now(&a, most()).unwrap();
        let mut sleep = clock.sleep();
        let mut late = Box::pin(b.cover(most(), MAX_WAIT, &mut sleep));
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        for _ in 0..(MAX_WAIT.as_millis() / TICK.as_millis()) {
            assert!(late.as_mut().poll(&mut cx).is_pending());
            clock.advance(TICK);
        }
        assert!(matches!(
            late.as_mut().poll(&mut cx),
            std::task::Poll::Ready(Err(PaceError::NoRoom))
        ));
        drop(late);
        drop((a, b));
        assert_eq!(held(), 0);
    }

    #[test]
    fn a_body_is_read_only_as_far_as_its_grant_and_a_silent_one_stalls() {
        let l = limits(48 * MIB);
        let permit = admit_now(&l, "a", None).unwrap();
        let chunk = Bytes::from(vec![7u8; CHUNK_BYTES as usize]);
        let body: Chunks = Box::new(futures_util::stream::iter(
            std::iter::repeat_n(chunk, 40).map(Ok),
        ));
        // The idle deadline never passes here; a tick does at once.
        let sleep = |d: Duration| -> std::pin::Pin<Box<dyn Future<Output = ()>>> {
            if d == TICK {
                Box::pin(std::future::ready(()))
            } else {
                Box::pin(std::future::pending())
            }
        };
        let mut metered = Metered::chunks(body, permit.clone(), Duration::from_secs(10), sleep);
        let mut read = 0u64;
        while let Some(c) = block_on(metered.next()) {
            read += c.unwrap().len() as u64;
            assert!(permit.granted.get() >= UPLOAD_OVERHEAD + (2 * read).min(5 * MIB));
            assert!(
                permit.granted.get()
                    <= UPLOAD_OVERHEAD + 2 * (read + u64::from(CHUNK_BYTES)) + GRANT
            );
        }
        assert_eq!(read, 40 * u64::from(CHUNK_BYTES));
        drop(metered);

        // A client that sends nothing: the deadline passes first.
        let silent: Chunks = Box::new(futures_util::stream::pending());
        let now = |_: Duration| std::future::ready(());
        let mut metered = Metered::chunks(silent, permit.clone(), Duration::from_secs(10), now);
        let err = block_on(metered.next()).unwrap().unwrap_err();
        let stalled = err
            .get_ref()
            .and_then(|e| e.downcast_ref::<PaceError>())
            .copied();
        assert_eq!(stalled, Some(PaceError::Stalled(10_000)));
        assert!(block_on(metered.next()).is_none(), "the body ends there");
        drop((metered, permit));
        assert_eq!(held(), 0);
    }

    /// A clock the test moves: `sleep` ends once it has moved that far.
    #[derive(Clone, Default)]
    struct Clock(Rc<(Cell<Duration>, RefCell<Vec<std::task::Waker>>)>);

    impl Clock {
        fn advance(&self, by: Duration) {
            self.0.0.set(self.0.0.get() + by);
            for w in self.0.1.borrow_mut().drain(..) {
                w.wake();
            }
        }

        fn sleep(
            &self,
        ) -> impl FnMut(Duration) -> std::pin::Pin<Box<dyn Future<Output = ()>>> + use<> {
            let clock = self.clone();
            move |d| {
                let (clock, until) = (clock.clone(), clock.0.0.get() + d);
                Box::pin(std::future::poll_fn(move |cx| {
                    if clock.0.0.get() >= until {
                        std::task::Poll::Ready(())
                    } else {
                        clock.0.1.borrow_mut().push(cx.waker().clone());
                        std::task::Poll::Pending
                    }
                }))
            }
        }
    }

    type Slot = Rc<RefCell<Option<Result<Rc<Permit>, Refused>>>>;

    fn queue_up(
        pool: &LocalPool,
        l: Sizing,
        owner: &'static str,
        declared: Option<u64>,
        clock: &Clock,
    ) -> Slot {
        let slot: Slot = Rc::default();
        let (out, sleep) = (slot.clone(), clock.sleep());
        pool.spawner()
            .spawn_local(async move {
                *out.borrow_mut() = Some(admit_with(&l, owner, declared, MAX_WAIT, sleep).await);
            })
            .unwrap();
        slot
    }

    /// One tick of the clock, and everything that can run runs.
    fn tick(pool: &mut LocalPool, clock: &Clock) {
        clock.advance(TICK);
        pool.run_until_stalled();
    }

    #[test]
    fn waiting_uploads_are_admitted_in_arrival_order_as_room_comes_back() {
        // Room for three first grants beside the headroom.
        let l = limits(most() + 3 * FIRST);
        let (mut pool, clock) = (LocalPool::new(), Clock::default());
        let a = admit_now(&l, "a", None).unwrap();
        let b = admit_now(&l, "b", None).unwrap();
        let c = admit_now(&l, "c", None).unwrap();
        // A large one first: small ones behind it wait their turn.
        let big = queue_up(&pool, l, "d", None, &clock);
        let s1 = queue_up(&pool, l, "e", Some(1000), &clock);
        tick(&mut pool, &clock);
        assert_eq!(waiting(), 2);
        drop(b);
        tick(&mut pool, &clock);
        let big = big.take().expect("its turn").unwrap();
        assert!(s1.borrow().is_none(), "a, c and big fill the room");
        drop(a);
        tick(&mut pool, &clock);
        let s1 = s1.take().unwrap().unwrap();
        drop((big, s1, c));
        assert_eq!((held(), waiting()), (0, 0));
    }

    #[test]
    fn an_upload_that_waited_too_long_is_refused_and_leaves_the_queue() {
        let l = limits(most() + FIRST);
        let (mut pool, clock) = (LocalPool::new(), Clock::default());
        let a = admit_now(&l, "a", None).unwrap();
        let half = (MAX_WAIT / 2).as_millis() / TICK.as_millis();
        let first = queue_up(&pool, l, "b", None, &clock);
        pool.run_until_stalled();
        for _ in 0..half {
            tick(&mut pool, &clock);
        }
        let second = queue_up(&pool, l, "c", Some(1000), &clock);
        pool.run_until_stalled();
        for _ in 0..half {
            tick(&mut pool, &clock);
        }
        let refused = first.take().expect("gave up").unwrap_err();
        assert_eq!(refused.retry_after_secs, RETRY_AFTER_SECS);
        assert!(second.borrow().is_none(), "still inside its wait");
        assert_eq!(waiting(), 1);
        drop(a);
        tick(&mut pool, &clock);
        drop(second.take().unwrap().unwrap());
        assert_eq!((held(), waiting()), (0, 0));
    }

    #[test]
    fn a_request_gone_while_waiting_gives_its_place_or_its_room_back() {
        let l = limits(most() + FIRST);
        let clock = Clock::default();
        let a = admit_now(&l, "a", None).unwrap();
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        // Gone while queued: it leaves the queue.
        let mut gone = Box::pin(admit_with(&l, "b", None, MAX_WAIT, clock.sleep()));
        assert!(gone.as_mut().poll(&mut cx).is_pending());
        assert_eq!(waiting(), 1);
        drop(gone);
        assert_eq!(waiting(), 0);
        // Gone after room was granted but before it looked: the room goes back.
        let mut late = Box::pin(admit_with(&l, "b", None, MAX_WAIT, clock.sleep()));
        assert!(late.as_mut().poll(&mut cx).is_pending());
        drop(a);
        assert_eq!((held(), waiting()), (FIRST, 0));
        drop(late);
        assert_eq!(held(), 0);
    }

    #[test]
    fn a_full_queue_refuses_at_once() {
        let l = limits(most() + FIRST);
        let (mut pool, clock) = (LocalPool::new(), Clock::default());
        let a = admit_now(&l, "a", None).unwrap();
        let queued: Vec<Slot> = (0..MAX_WAITING)
            .map(|_| queue_up(&pool, l, "q", Some(1), &clock))
            .collect();
        pool.run_until_stalled();
        assert_eq!(waiting(), MAX_WAITING);
        let last = queue_up(&pool, l, "q", Some(1), &clock);
        pool.run_until_stalled();
        assert!(last.take().expect("refused at once").is_err());
        drop(a);
        // Each admitted one ends at once; the queue drains in turns.
        let mut admitted = 0;
        while admitted < MAX_WAITING {
            tick(&mut pool, &clock);
            let now = queued.iter().filter_map(|s| s.take()).collect::<Vec<_>>();
            assert!(!now.is_empty() && now.iter().all(Result::is_ok));
            admitted += now.len();
        }
        assert_eq!((held(), waiting()), (0, 0));
    }
}
