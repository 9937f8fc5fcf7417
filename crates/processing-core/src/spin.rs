//! The wait strategy of the shared-memory waiters: spin for a bounded, adaptive time, then
//! sleep (on a futex, a socket, ...), and never spin while the machine is oversubscribed.
//!
//! Spinning pays only while the peer is running on another CPU: a hand-over then costs well
//! under a microsecond instead of a cross-CPU wake-up (25–40 µs on small VMs). On a machine
//! with more runnable threads than CPUs the peer is often waiting for a CPU, and a spinner only
//! burns the time slice the peer needs; the scheduler then also counts the spinner as a CPU hog
//! and delays its own wake-ups (a round trip of the pipe ring went from 1 µs to 30–600 µs so).
//! Hence two rules:
//! - the budget follows the waits: about four times the recent average wait (5–50 µs) while
//!   waits are short, 5 µs once they are longer than a spin could cover;
//! - no spin at all while [`oversubscribed`] (Linux: more runnable threads than CPUs, sampled
//!   from `/proc/loadavg` at most every 2 ms and smoothed).
//!
//! A thread pinned to one CPU yields at once on every round (its peer can only run when it
//! does), oversubscribed or not: that spin offers the CPU to the peer instead of taking it.
//! Others spin 1 µs without yielding, then yield now and then (every 64 rounds). The scheduler
//! sometimes keeps two threads that take turns on one CPU while another CPU idles (seen with a
//! manager client and its connection thread just after the server started). Then a spin can
//! only end by the peer's turn: a yield that returns later than 2 µs to a wait that is over
//! shows that the peer ran there, so this thread's next 8 waits sleep at once. Yield for yield, both
//! threads would stay runnable and never be woken, and the balancer leaves such cache-hot
//! threads where they are; a sleeper's wake-up is where the kernel can place it anew, and a
//! hand-over through a sleep on one CPU costs 2–4 µs where a spin there costs a whole turn.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The longest spin.
const SPIN_MAX: Duration = Duration::from_micros(50);
/// The shortest spin (while waits are long: the peer is busy or off the CPU).
const SPIN_MIN: Duration = Duration::from_micros(5);
/// The first part of a spin has no yield: most hand-overs between CPUs complete within it. It
/// is short because a peer on the same CPU waits for this thread's yield (under load nothing
/// spins, so an unrelated thread rarely takes the yielded CPU).
const SPIN_NO_YIELD: Duration = Duration::from_micros(1);
/// A yield that returns later than this ran another thread on the CPU (an empty run queue
/// answers a yield within a microsecond).
const YIELD_RAN_ANOTHER: Duration = Duration::from_micros(2);
/// Waits longer than this count as this long in the running average (one long idle period
/// must not disable spinning for long).
const WAIT_SAMPLE_CAP: Duration = Duration::from_millis(1);
/// Least time between two samples of the machine's runnable threads (per process).
const SAMPLE_EVERY: Duration = Duration::from_millis(2);

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// When the last sample was taken (ns after `epoch`, plus 1; 0: never).
static SAMPLED_AT: AtomicU64 = AtomicU64::new(0);
/// The smoothed count of runnable threads, in sixteenths.
static RUNNABLE_X16: AtomicU32 = AtomicU32::new(0);

/// Whether the machine has more runnable threads than CPUs (averaged over the last few
/// milliseconds): then a spinning waiter would only delay the thread it waits for. Linux reads
/// the running count of `/proc/loadavg` at most every 2 ms per process; elsewhere the count is
/// unknown and this is always `false`.
///
/// ```
/// // Cheap: at most one small read of /proc every 2 ms, otherwise two atomic loads.
/// let _busy: bool = processing::core::os::oversubscribed();
/// ```
pub fn oversubscribed() -> bool {
    let now = epoch().elapsed().as_nanos() as u64 + 1;
    let at = SAMPLED_AT.load(Ordering::Relaxed);
    if (at == 0 || now.saturating_sub(at) >= SAMPLE_EVERY.as_nanos() as u64)
        && SAMPLED_AT
            .compare_exchange(at, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        if let Some(n) = crate::sys::runnable_threads() {
            let sample = n.min(1 << 20) * 16;
            let avg = RUNNABLE_X16.load(Ordering::Relaxed);
            let avg = if at == 0 {
                sample
            } else {
                avg - avg / 4 + sample / 4
            };
            RUNNABLE_X16.store(avg, Ordering::Relaxed);
        }
    }
    // Half a thread of slack: one extra runnable thread now and then is not contention.
    RUNNABLE_X16.load(Ordering::Relaxed) > crate::sys::online_cpus().saturating_mul(16) + 8
}

thread_local! {
    /// (calls until the next check, whether this thread may run on one CPU only).
    static PINNED: std::cell::Cell<(u32, bool)> = const { std::cell::Cell::new((0, false)) };
}

thread_local! {
    /// How many more waits of this thread sleep without spinning (after a yield ran another
    /// thread on its CPU, see `spin_until`).
    static SLEEP_AT_ONCE: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// How many waits sleep at once after a spin found the CPU shared.
const SLEEPS_AFTER_SHARED_CPU: u32 = 8;

/// Whether the calling thread may run on one CPU only (checked again every 256 calls).
fn pinned() -> bool {
    PINNED.with(|c| {
        let (left, pinned) = c.get();
        if left > 0 {
            c.set((left - 1, pinned));
            return pinned;
        }
        let pinned = crate::sys::pinned_to_one_cpu();
        c.set((255, pinned));
        pinned
    })
}

/// The spin-then-sleep policy of one waiter (one side of a ring, say): how long to spin
/// before sleeping, learnt from how long its waits last, and nothing while the machine is
/// [`oversubscribed`]. Safe to share between threads (the statistics are relaxed atomics; a
/// lost update only blurs the average).
///
/// ```
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::time::Instant;
/// use processing::core::os::SpinPolicy;
///
/// let policy = SpinPolicy::new();
/// let flag = AtomicBool::new(true);
/// let began = Instant::now();
/// // Ready at once: no spin. (When not ready, a waiter sleeps after a `false` here.)
/// assert!(policy.spin_until(|| flag.load(Ordering::Acquire)));
/// policy.record(began.elapsed());
/// assert!(policy.budget() <= std::time::Duration::from_micros(50));
/// ```
#[derive(Debug)]
pub struct SpinPolicy {
    /// Running average of the waits, in nanoseconds.
    avg_wait: AtomicU64,
}

impl Default for SpinPolicy {
    fn default() -> Self {
        SpinPolicy::new()
    }
}

impl SpinPolicy {
    /// A policy that starts from a 10 µs average wait (a 45 µs spin).
    pub const fn new() -> SpinPolicy {
        SpinPolicy {
            avg_wait: AtomicU64::new(10_000),
        }
    }

    /// How long the next wait should spin: zero while the machine is oversubscribed, else
    /// about four times the average wait, 5–50 µs (5 µs once waits are longer than 100 µs).
    /// [`spin_until`](Self::spin_until) on a thread pinned to one CPU uses the second figure
    /// even then (see the module docs).
    pub fn budget(&self) -> Duration {
        if oversubscribed() {
            return Duration::ZERO;
        }
        self.learnt_budget()
    }

    /// The budget the recorded waits call for, whatever the machine's load.
    fn learnt_budget(&self) -> Duration {
        let avg = Duration::from_nanos(self.avg_wait.load(Ordering::Relaxed));
        if avg > 2 * SPIN_MAX {
            SPIN_MIN
        } else {
            (avg * 4 + SPIN_MIN).min(SPIN_MAX)
        }
    }

    /// Records how long a whole wait lasted (spin and sleep), until the condition held.
    pub fn record(&self, waited: Duration) {
        let w = waited.min(WAIT_SAMPLE_CAP).as_nanos() as u64;
        let avg = self.avg_wait.load(Ordering::Relaxed);
        self.avg_wait
            .store(avg - avg / 8 + w / 8, Ordering::Relaxed);
    }

    /// Busy-waits until `ready()` holds or [`budget`](Self::budget) is spent; returns whether
    /// it holds. `ready` is checked first, so a condition that already holds costs nothing.
    /// Under `cfg(loom)` (the model checker's build) it never spins: every wait goes straight
    /// to its sleep, which is a scheduling point of the model.
    pub fn spin_until(&self, ready: impl FnMut() -> bool) -> bool {
        self.spin_until_before(None, ready)
    }

    /// [`spin_until`](Self::spin_until) that also ends at `deadline` (`None`: none), and does
    /// not spin at all once it has passed: a wait with a timeout spins no longer than its
    /// timeout, and a zero timeout not at all.
    ///
    /// ```
    /// use std::time::Instant;
    /// use processing::core::os::SpinPolicy;
    ///
    /// let policy = SpinPolicy::new();
    /// // The deadline has passed: one look, no spin.
    /// assert!(!policy.spin_until_before(Some(Instant::now()), || false));
    /// assert!(policy.spin_until_before(Some(Instant::now()), || true));
    /// ```
    pub fn spin_until_before(
        &self,
        deadline: Option<Instant>,
        mut ready: impl FnMut() -> bool,
    ) -> bool {
        if ready() {
            return true;
        }
        if cfg!(loom) {
            return false;
        }
        // Pinned to one CPU, every round yields: the peer can only run when this thread
        // gives way, so even on an oversubscribed machine the spin hands the CPU over rather
        // than taking it.
        let yield_at_once = pinned();
        if !yield_at_once {
            let skip = SLEEP_AT_ONCE.with(|c| {
                let n = c.get();
                c.set(n.saturating_sub(1));
                n > 0
            });
            if skip {
                return false;
            }
        }
        let budget = if yield_at_once {
            self.learnt_budget()
        } else {
            self.budget()
        };
        let start = Instant::now();
        let budget = deadline.map_or(budget, |d| budget.min(d.saturating_duration_since(start)));
        if budget.is_zero() {
            return false;
        }
        let mut round = 0u32;
        loop {
            round = round.wrapping_add(1);
            if yield_at_once {
                std::thread::yield_now();
                if round & 3 == 0 && start.elapsed() > budget {
                    return false;
                }
            } else if round & 63 == 0 {
                let el = start.elapsed();
                if el > budget {
                    return false;
                }
                if el > SPIN_NO_YIELD {
                    std::thread::yield_now();
                    // A yield that took this long ran another thread on this CPU; if the
                    // wait is over now, that thread was the peer, which the scheduler placed
                    // here. Turn by turn on one CPU both stay runnable, so no wake-up ever
                    // moves either to an idle CPU (and the balancer leaves such cache-hot
                    // threads where they are): the next waits sleep, so that the peer's
                    // wake-up places this thread anew.
                    if start.elapsed() - el > YIELD_RAN_ANOTHER && ready() {
                        SLEEP_AT_ONCE.with(|c| c.set(SLEEPS_AFTER_SHARED_CPU));
                        return true;
                    }
                }
            } else {
                std::hint::spin_loop();
            }
            if ready() {
                return true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    #[test]
    fn the_budget_follows_the_waits() {
        let p = SpinPolicy::new();
        for _ in 0..64 {
            p.record(Duration::from_micros(1));
        }
        let short = p.avg_wait.load(Ordering::Relaxed);
        for _ in 0..64 {
            p.record(Duration::from_secs(1));
        }
        let long = p.avg_wait.load(Ordering::Relaxed);
        assert!(short < 2_000, "{short}");
        // Capped: one long idle period counts as 1 ms.
        assert!((900_000..=1_000_000).contains(&long), "{long}");
        assert!(p.budget() <= SPIN_MIN);
    }

    /// A wait whose deadline has passed (a zero timeout) looks once and does not spin.
    #[test]
    fn a_passed_deadline_looks_once() {
        let p = SpinPolicy::new();
        let mut looks = 0;
        let deadline = Some(Instant::now());
        assert!(!p.spin_until_before(deadline, || {
            looks += 1;
            false
        }));
        assert_eq!(looks, 1);
    }

    #[test]
    fn spin_until_sees_a_condition_set_by_another_thread() {
        let p = SpinPolicy::new();
        let flag = Arc::new(AtomicBool::new(false));
        let f = Arc::clone(&flag);
        let setter = std::thread::spawn(move || f.store(true, Ordering::Release));
        let began = Instant::now();
        while !p.spin_until(|| flag.load(Ordering::Acquire)) {
            std::thread::yield_now();
            assert!(began.elapsed() < Duration::from_secs(30));
        }
        setter.join().unwrap();
        assert!(p.spin_until(|| true));
    }

    /// More busy threads than CPUs: the machine is oversubscribed, whatever else runs on it,
    /// and no waiter spins.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn more_busy_threads_than_cpus_is_oversubscribed_and_stops_spinning() {
        let stop = Arc::new(AtomicBool::new(false));
        let busy: Vec<_> = (0..crate::sys::online_cpus() + 2)
            .map(|_| {
                let stop = Arc::clone(&stop);
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::hint::spin_loop();
                    }
                })
            })
            .collect();
        let began = Instant::now();
        let mut seen = false;
        while began.elapsed() < Duration::from_secs(20) {
            if oversubscribed() {
                seen = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(3));
        }
        let policy = SpinPolicy::new();
        let spun = seen && policy.budget().is_zero();
        stop.store(true, Ordering::Relaxed);
        for b in busy {
            b.join().unwrap();
        }
        assert!(seen, "never saw the machine oversubscribed");
        assert!(spun, "a waiter would spin on an oversubscribed machine");
    }
}
