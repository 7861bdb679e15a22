//! Admission control: the isolate's memory budget for upload buffers.
//!
//! Cloudflare gives one isolate 128 MB for all the requests it serves at
//! once, and an isolate over it is killed with every request in it. An
//! upload must buffer what S3 needs a length for (a whole file up to the
//! multipart threshold, else one part), so concurrent uploads are admitted
//! only while what they may hold fits the budget.
//!
//! An upload that does not fit waits its turn, first come first served,
//! before any byte of its body is read: the unread body stays in the
//! client's socket (TCP holds it back), so a waiting upload costs the
//! isolate next to nothing. Refusing at once instead made every refused
//! client's retry send its whole body again, only for it to be read and
//! dropped (a refusal must read the body, or the client still sending gets
//! a reset instead of the answer): 200 concurrent uploads of up to 20 MB
//! spent the machine draining bodies (docs/reliability.md). Past
//! `MAX_WAIT`, or with `MAX_WAITING` uploads already queued, the client gets
//! a 503 `over_capacity` with `Retry-After` and nothing is stored. Strict
//! order also means a large upload is not passed over for ever by small
//! ones that happen to fit.
//!
//! A waiting upload looks at its place on a timer of its own instead of
//! being woken by the upload that frees the room: a Rust waker called from
//! another request would have the waiting request polled in that request's
//! I/O context (wasm-bindgen's one task queue per isolate), and workerd
//! refuses a body read there ("Cannot perform I/O on behalf of a different
//! request"). A Worker isolate runs one thread, so the tally and the queue
//! are thread-locals.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::rc::Rc;
use std::time::Duration;

use crate::config::Limits;
use crate::error::{ApiError, ApiResult};

/// How long a refused client is told to wait: it has already waited
/// `MAX_WAIT` in the queue, or found the queue full.
pub const RETRY_AFTER_SECS: u32 = 2;
/// How long an upload waits for room before it is refused (counted in
/// ticks): long enough for a queue's worth of uploads to pass on a busy
/// isolate, well inside any client's request timeout.
#[cfg_attr(not(any(target_arch = "wasm32", test)), allow(dead_code))]
pub const MAX_WAIT: Duration = Duration::from_secs(30);
/// How often a waiting upload looks whether its turn came.
pub const TICK: Duration = Duration::from_millis(50);
/// Uploads that may wait at once; past it a new one is refused at once.
pub const MAX_WAITING: usize = 256;

/// One upload waiting for room.
struct Ticket {
    bytes: u64,
    granted: Cell<bool>,
}

#[derive(Default)]
struct State {
    held: u64,
    queue: VecDeque<Rc<Ticket>>,
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State::default());
}

/// Bytes reserved by uploads in progress in this isolate.
pub fn held() -> u64 {
    STATE.with(|s| s.borrow().held)
}

/// Uploads waiting for room in this isolate.
#[cfg(test)]
fn waiting() -> usize {
    STATE.with(|s| s.borrow().queue.len())
}

/// A reservation against the budget, returned when dropped (whichever way
/// the upload ends).
#[derive(Debug)]
pub struct Permit {
    bytes: u64,
    budget: u64,
}

impl Drop for Permit {
    fn drop(&mut self) {
        STATE.with(|s| {
            let mut s = s.borrow_mut();
            s.held = s.held.saturating_sub(self.bytes);
            grant_waiting(&mut s, self.budget);
        });
    }
}

/// Hands room to the uploads at the front of the queue, in order, while
/// they fit; each sees it on its next tick.
fn grant_waiting(s: &mut State, budget: u64) {
    while let Some(t) = s.queue.front() {
        if s.held + t.bytes > budget {
            return;
        }
        s.held += t.bytes;
        t.granted.set(true);
        s.queue.pop_front();
    }
}

/// A place in the queue. Dropped before it became a `Permit` (the wait ran
/// out, or the request went away), it leaves the queue, or gives back the
/// room it was granted meanwhile.
struct Place {
    ticket: Rc<Ticket>,
    budget: u64,
    done: bool,
}

impl Place {
    fn into_permit(mut self) -> Permit {
        self.done = true;
        Permit {
            bytes: self.ticket.bytes,
            budget: self.budget,
        }
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
                s.held = s.held.saturating_sub(self.ticket.bytes);
            } else {
                s.queue.retain(|t| !Rc::ptr_eq(t, &self.ticket));
            }
            // The front may have been what held the rest back.
            grant_waiting(&mut s, self.budget);
        });
    }
}

/// Reserves what an upload may hold, waiting up to `MAX_WAIT` for room,
/// or refuses it with `over_capacity`.
#[cfg(target_arch = "wasm32")]
pub async fn admit(limits: &Limits, declared: Option<u64>) -> ApiResult<Permit> {
    admit_with(limits, declared, MAX_WAIT, crate::clock::sleep).await
}

/// Native builds (unit tests, fuzzing) have no timer: whoever cannot be
/// admitted at once is refused.
#[cfg(not(target_arch = "wasm32"))]
pub async fn admit(limits: &Limits, declared: Option<u64>) -> ApiResult<Permit> {
    admit_with(limits, declared, Duration::ZERO, |_| std::future::ready(())).await
}

/// `admit` with the wait and the timer given.
pub async fn admit_with<F: Future<Output = ()>>(
    limits: &Limits,
    declared: Option<u64>,
    max_wait: Duration,
    mut sleep: impl FnMut(Duration) -> F,
) -> ApiResult<Permit> {
    let bytes = limits.upload_reservation(declared);
    let budget = limits.memory_budget;
    let place = STATE.with(|s| {
        let mut s = s.borrow_mut();
        if s.queue.is_empty() && s.held + bytes <= budget {
            s.held += bytes;
            return Ok(None);
        }
        if max_wait.is_zero() || s.queue.len() >= MAX_WAITING {
            return Err(refuse(s.held, bytes, budget, s.queue.len()));
        }
        let ticket = Rc::new(Ticket {
            bytes,
            granted: Cell::new(false),
        });
        s.queue.push_back(ticket.clone());
        Ok(Some(Place {
            ticket,
            budget,
            done: false,
        }))
    })?;
    let Some(place) = place else {
        return Ok(Permit { bytes, budget });
    };
    let mut waited = Duration::ZERO;
    while waited < max_wait {
        sleep(TICK).await;
        waited += TICK;
        if place.ticket.granted.get() {
            return Ok(place.into_permit());
        }
    }
    drop(place);
    Err(STATE.with(|s| {
        let s = s.borrow();
        refuse(s.held, bytes, budget, s.queue.len())
    }))
}

fn refuse(held: u64, wanted: u64, budget: u64, waiting: usize) -> ApiError {
    tracing::warn!(
        held,
        wanted,
        budget,
        waiting,
        "upload refused: memory budget reached"
    );
    ApiError::OverCapacity {
        retry_after_secs: RETRY_AFTER_SECS,
    }
}

#[cfg(test)]
mod tests {
    use futures_executor::{LocalPool, block_on};
    use futures_util::task::LocalSpawnExt;

    use super::*;
    use crate::config::UPLOAD_OVERHEAD;

    fn limits(budget: u64) -> Limits {
        Limits {
            max_upload_bytes: 100_000_000,
            max_pixels: 100_000_000,
            max_dimension: 20_000,
            max_fields: 4,
            max_field_bytes: 1024,
            multipart_threshold: 5 << 20,
            part_bytes: 5 << 20,
            memory_budget: budget,
            max_images_per_owner: u64::MAX,
            max_bytes_per_owner: u64::MAX,
        }
    }

    #[test]
    fn a_reservation_is_the_body_or_one_part_whichever_is_smaller() {
        let l = limits(64 << 20);
        assert_eq!(l.upload_reservation(Some(20_000)), UPLOAD_OVERHEAD + 20_000);
        assert_eq!(
            l.upload_reservation(Some(90_000_000)),
            UPLOAD_OVERHEAD + (5 << 20)
        );
        assert_eq!(l.upload_reservation(None), UPLOAD_OVERHEAD + (5 << 20));
    }

    fn admit_now(l: &Limits, declared: Option<u64>) -> ApiResult<Permit> {
        block_on(admit(l, declared))
    }

    #[test]
    fn uploads_past_the_budget_are_refused_until_one_ends() {
        let l = limits(3 * limits(0).upload_reservation(None));
        let held_before = held();
        let a = admit_now(&l, None).unwrap();
        let b = admit_now(&l, None).unwrap();
        let c = admit_now(&l, None).unwrap();
        let refused = admit_now(&l, None).unwrap_err();
        assert_eq!(refused.status_and_code(), (503, "over_capacity"));
        assert!(
            refused
                .headers()
                .contains(&("retry-after", "2".to_string()))
        );
        assert!(admit_now(&l, Some(1)).is_err());
        drop(b);
        let d = admit_now(&l, Some(3_400_000)).unwrap();
        drop((a, c, d));
        assert_eq!(held(), held_before);
        assert_eq!(waiting(), 0);
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

    type Slot = Rc<RefCell<Option<ApiResult<Permit>>>>;

    fn queue_up(pool: &LocalPool, l: Limits, declared: Option<u64>, clock: &Clock) -> Slot {
        let slot: Slot = Rc::default();
        let (out, sleep) = (slot.clone(), clock.sleep());
        pool.spawner()
            .spawn_local(async move {
                *out.borrow_mut() = Some(admit_with(&l, declared, MAX_WAIT, sleep).await);
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
        let part = limits(0).upload_reservation(None);
        let small = limits(0).upload_reservation(Some(1000));
        let l = limits(2 * part);
        let (mut pool, clock) = (LocalPool::new(), Clock::default());
        let a = admit_now(&l, None).unwrap();
        let b = admit_now(&l, Some(1000)).unwrap();
        // The large one first: the small ones behind it fit now, but wait
        // their turn rather than pass it for ever.
        let big = queue_up(&pool, l, None, &clock);
        let s1 = queue_up(&pool, l, Some(1000), &clock);
        let s2 = queue_up(&pool, l, Some(1000), &clock);
        tick(&mut pool, &clock);
        assert_eq!(waiting(), 3);
        assert!(big.borrow().is_none() && s1.borrow().is_none());
        drop(b);
        tick(&mut pool, &clock);
        let big = big.take().expect("its turn").unwrap();
        assert!(s1.borrow().is_none(), "a and big fill the budget");
        assert_eq!((held(), waiting()), (2 * part, 2));
        drop(a);
        tick(&mut pool, &clock);
        let (s1, s2) = (s1.take().unwrap().unwrap(), s2.take().unwrap().unwrap());
        assert_eq!((held(), waiting()), (part + 2 * small, 0));
        drop((big, s1, s2));
        assert_eq!(held(), 0);
    }

    #[test]
    fn an_upload_that_waited_too_long_is_refused_and_leaves_the_queue() {
        let l = limits(limits(0).upload_reservation(None));
        let (mut pool, clock) = (LocalPool::new(), Clock::default());
        let a = admit_now(&l, None).unwrap();
        let half = (MAX_WAIT / 2).as_millis() / TICK.as_millis();
        let first = queue_up(&pool, l, None, &clock);
        pool.run_until_stalled();
        for _ in 0..half {
            tick(&mut pool, &clock);
        }
        let second = queue_up(&pool, l, Some(1000), &clock);
        pool.run_until_stalled();
        for _ in 0..half {
            tick(&mut pool, &clock);
        }
        let refused = first.take().expect("gave up").unwrap_err();
        assert_eq!(refused.status_and_code(), (503, "over_capacity"));
        assert!(second.borrow().is_none(), "still inside its wait");
        assert_eq!(waiting(), 1);
        drop(a);
        tick(&mut pool, &clock);
        drop(second.take().unwrap().unwrap());
        assert_eq!((held(), waiting()), (0, 0));
    }

    #[test]
    fn a_request_gone_while_waiting_gives_its_place_or_its_room_back() {
        let part = limits(0).upload_reservation(None);
        let l = limits(part);
        let clock = Clock::default();
        let a = admit_now(&l, None).unwrap();
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        // Gone while queued: it leaves the queue.
        let mut gone = Box::pin(admit_with(&l, None, MAX_WAIT, clock.sleep()));
        assert!(gone.as_mut().poll(&mut cx).is_pending());
        assert_eq!(waiting(), 1);
        drop(gone);
        assert_eq!(waiting(), 0);
        // Gone after room was granted but before it looked: the room goes back.
        let mut late = Box::pin(admit_with(&l, None, MAX_WAIT, clock.sleep()));
        assert!(late.as_mut().poll(&mut cx).is_pending());
        drop(a);
        assert_eq!((held(), waiting()), (part, 0));
        drop(late);
        assert_eq!(held(), 0);
    }

    #[test]
    fn a_full_queue_refuses_at_once() {
        let l = limits(limits(0).upload_reservation(None));
        let (mut pool, clock) = (LocalPool::new(), Clock::default());
        let a = admit_now(&l, None).unwrap();
        let queued: Vec<Slot> = (0..MAX_WAITING)
            .map(|_| queue_up(&pool, l, Some(1), &clock))
            .collect();
        pool.run_until_stalled();
        assert_eq!(waiting(), MAX_WAITING);
        let last = queue_up(&pool, l, Some(1), &clock);
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
