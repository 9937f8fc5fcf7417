//! Helpers shared by the cross-crate conformance suite in `tests/`, the examples and the
//! benchmark programs of the `processing` workspace. Not part of the public API.

pub mod process_cases;

/// Small traits over the behaviour that direct objects and their manager proxies share, so
/// that one test body runs against both.
pub mod shared {
    use processing::manager::{EventProxy, LockProxy, QueueProxy};
    use processing::{Event, Lock, Queue};
    use serde::{de::DeserializeOwned, Serialize};

    /// A FIFO queue usable from several processes.
    pub trait QueueLike<T>: Clone + Serialize + DeserializeOwned {
        /// Puts `value`.
        fn put_item(&self, value: T);
        /// Takes the oldest item, waiting for one.
        fn get_item(&self) -> T;
        /// Takes the oldest item if there is one.
        fn try_get_item(&self) -> Option<T>;
    }

    impl<T: Serialize + DeserializeOwned> QueueLike<T> for QueueProxy<T> {
        fn put_item(&self, value: T) {
            self.put(value).expect("queue proxy put");
        }
        fn get_item(&self) -> T {
            self.get().expect("queue proxy get")
        }
        fn try_get_item(&self) -> Option<T> {
            match self.try_get() {
                Ok(item) => Some(item),
                Err(e) if e.is_empty() => None,
                Err(e) => panic!("queue proxy try_get: {e}"),
            }
        }
    }

    /// A mutual-exclusion lock usable from several processes.
    pub trait LockLike: Clone + Serialize + DeserializeOwned {
        /// Acquires, waiting as needed.
        fn lock_acquire(&self);
        /// Acquires if free now.
        fn lock_try_acquire(&self) -> bool;
        /// Releases.
        fn lock_release(&self);
    }

    impl LockLike for LockProxy {
        fn lock_acquire(&self) {
            // The guard is forgotten: the caller releases explicitly.
            self.acquire().expect("lock proxy acquire").forget();
        }
        fn lock_try_acquire(&self) -> bool {
            match self.try_acquire() {
                Ok(guard) => {
                    guard.forget();
                    true
                }
                Err(e) if e.is_would_block() => false,
                Err(e) => panic!("lock proxy try_acquire: {e}"),
            }
        }
        fn lock_release(&self) {
            self.release().expect("lock proxy release");
        }
    }

    /// An event flag usable from several processes.
    pub trait EventLike: Clone + Serialize + DeserializeOwned {
        /// Sets the flag.
        fn event_set(&self);
        /// Waits for the flag.
        fn event_wait(&self);
        /// Whether the flag is set.
        fn event_is_set(&self) -> bool;
    }

    impl EventLike for EventProxy {
        fn event_set(&self) {
            self.set().expect("event proxy set");
        }
        fn event_wait(&self) {
            self.wait().expect("event proxy wait");
        }
        fn event_is_set(&self) -> bool {
            self.is_set().expect("event proxy is_set")
        }
    }

    impl<T: Serialize + DeserializeOwned> QueueLike<T> for Queue<T> {
        fn put_item(&self, value: T) {
            self.put(value)
                .map_err(|e| e.to_string())
                .expect("queue put");
        }
        fn get_item(&self) -> T {
            self.get().expect("queue get")
        }
        fn try_get_item(&self) -> Option<T> {
            self.try_get().ok()
        }
    }

    impl LockLike for Lock {
        fn lock_acquire(&self) {
            // The guard is forgotten: the caller releases explicitly, as with the proxy.
            match self.acquire() {
                Ok(guard) => guard.forget(),
                Err(e) => panic!("lock acquire: {e}"),
            }
        }
        fn lock_try_acquire(&self) -> bool {
            self.try_acquire().map(|guard| guard.forget()).is_ok()
        }
        fn lock_release(&self) {
            self.release().expect("lock release");
        }
    }

    impl EventLike for Event {
        fn event_set(&self) {
            self.set();
        }
        fn event_wait(&self) {
            self.wait();
        }
        fn event_is_set(&self) -> bool {
            self.is_set()
        }
    }
}

/// Ends process `pid` from outside, as an operator or the OOM killer would: `SIGKILL` on Unix,
/// `TerminateProcess` (exit code 77) on Windows. Panics if the process cannot be reached: the
/// tests that call it own the process.
pub fn kill_from_outside(pid: u32) {
    #[cfg(unix)]
    {
        let pid = libc::pid_t::try_from(pid).expect("pid fits pid_t");
        // SAFETY: kill(2) with a pid the calling test started; no memory is touched.
        let r = unsafe { libc::kill(pid, libc::SIGKILL) };
        assert_eq!(r, 0, "kill({pid})");
    }
    #[cfg(windows)]
    {
        use windows_sys::Win32::Foundation::CloseHandle;
        use windows_sys::Win32::System::Threading::{
            OpenProcess, TerminateProcess, PROCESS_TERMINATE,
        };
        // SAFETY: opens a process the calling test started, terminates it and closes the
        // handle exactly once.
        unsafe {
            let h = OpenProcess(PROCESS_TERMINATE, 0, pid);
            assert!(!h.is_null(), "OpenProcess({pid})");
            assert_ne!(TerminateProcess(h, 77), 0, "TerminateProcess({pid})");
            CloseHandle(h);
        }
    }
}
