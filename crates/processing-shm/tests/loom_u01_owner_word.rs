//! Model checks of the owner-checked lock word (`processing_shm::owner`) with loom: takeover of
//! a dead holder, mutual exclusion among lockers and takers, and the reused-pid rule.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p processing-shm --release --test
//! loom_u01_owner_word`. Each loom thread plays one process; which pids "run" is given to
//! `take_over_if` as a closure (pid 9 is the dead holder). The same word runs across real
//! processes in the queue, pipe and sync tests (`r07_…`, `r08_…`).
#![cfg(loom)]

use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::thread;
use processing_shm::owner::{Owner, OwnerWord, Suspect};

const DEAD: Owner = Owner { pid: 9, stamp: 90 };

fn check(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.check(f);
}

/// Only pid 9 is dead; every other pid runs with stamp `pid * 10`.
fn alive(pid: u32, stamp: u32) -> bool {
    pid != DEAD.pid && (stamp == 0 || stamp == pid * 10)
}

fn me(pid: u32) -> Owner {
    Owner {
        pid,
        stamp: pid * 10,
    }
}

/// Locks `word` as `who`: the free word by CAS, a dead holder's by takeover; yields between
/// tries (loom sees every retry as a scheduling point). Returns whether it took it over.
fn lock(word: &OwnerWord, who: Owner) -> bool {
    let mut suspect = Suspect::default();
    loop {
        if word.try_lock(who) {
            return false;
        }
        if word.take_over_if(who, &mut suspect, alive) {
            return true;
        }
        thread::yield_now();
    }
}

#[test]
fn u01_owner_word_exactly_one_taker_of_a_dead_holder() {
    check(|| {
        let word = Arc::new(OwnerWord::new());
        word.plant(DEAD);
        let ths: Vec<_> = (1..=2)
            .map(|pid| {
                let word = word.clone();
                thread::spawn(move || word.take_over_if(me(pid), &mut Suspect::default(), alive))
            })
            .collect();
        let took: Vec<bool> = ths.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(took.iter().filter(|t| **t).count(), 1, "{took:?}");
        let winner = if took[0] { 1 } else { 2 };
        assert_eq!(word.holder(), winner);
    });
}

#[test]
fn u01_owner_word_takeover_keeps_mutual_exclusion() {
    check(|| {
        let word = Arc::new(OwnerWord::new());
        word.plant(DEAD);
        let cell = Arc::new(UnsafeCell::new(0u32));
        let ths: Vec<_> = (1..=2)
            .map(|pid| {
                let (word, cell) = (word.clone(), cell.clone());
                thread::spawn(move || {
                    let took = lock(&word, me(pid));
                    // SAFETY: the word makes this the only access (loom reports otherwise).
                    cell.with_mut(|p| unsafe { *p += 1 });
                    assert!(word.unlock());
                    took
                })
            })
            .collect();
        let took: Vec<bool> = ths.into_iter().map(|t| t.join().unwrap()).collect();
        // SAFETY: all threads joined.
        assert_eq!(cell.with(|p| unsafe { *p }), 2);
        assert_eq!(took.iter().filter(|t| **t).count(), 1, "{took:?}");
        assert_eq!(word.holder(), 0);
    });
}

#[test]
fn u01_owner_word_a_live_holder_is_never_taken_over_on_one_look() {
    check(|| {
        // Thread 1 acquires (CAS, then its stamp) while thread 2 looks once: a half-written
        // word (new pid, old stamp) must not count as dead on a single observation.
        let word = Arc::new(OwnerWord::new());
        word.plant(me(3));
        assert!(word.unlock());
        let holder = {
            let word = word.clone();
            thread::spawn(move || assert!(word.try_lock(me(1))))
        };
        let looker = {
            let word = word.clone();
            thread::spawn(move || word.take_over_if(me(2), &mut Suspect::default(), alive))
        };
        holder.join().unwrap();
        assert!(!looker.join().unwrap());
        assert_eq!(word.holder(), 1);
    });
}

#[test]
fn u01_owner_word_reused_pid_taken_on_second_look() {
    check(|| {
        // Pid 4 runs, but with stamp 40: the holder (stamp 41) died and its pid was reused.
        let word = Arc::new(OwnerWord::new());
        word.plant(Owner { pid: 4, stamp: 41 });
        let taker = {
            let word = word.clone();
            thread::spawn(move || {
                let mut s = Suspect::default();
                let first = word.take_over_if(me(2), &mut s, alive);
                let second = word.take_over_if(me(2), &mut s, alive);
                (first, second)
            })
        };
        assert_eq!(taker.join().unwrap(), (false, true));
        assert_eq!(word.holder(), 2);
    });
}
