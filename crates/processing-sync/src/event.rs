//! `Event`.

use std::time::{Duration, Instant};

use crate::algo::event::EventState;
use crate::error::SyncError;
use crate::shared::Shared;

crate::shared::shared_primitive! {
    /// A flag that processes can wait for, like `threading.Event`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let ev = processing::sync::Event::new().unwrap();
    /// assert!(!ev.wait_timeout(Duration::from_millis(1)));
    /// ev.set();
    /// assert!(ev.is_set() && ev.wait_timeout(Duration::ZERO));
    /// ```
    Event(EventState), set: is_set
}

impl Event {
    /// Creates a clear event.
    pub fn new() -> Result<Event, SyncError> {
        Ok(Event {
            shared: Shared::create(|_| {})?,
        })
    }

    /// Whether the flag is set.
    pub fn is_set(&self) -> bool {
        self.shared.state().is_set()
    }

    /// Sets the flag and wakes every waiter.
    pub fn set(&self) {
        self.shared.state().set(self.shared.park());
    }

    /// Clears the flag.
    pub fn clear(&self) {
        self.shared.state().clear();
    }

    /// Waits until the flag is set.
    pub fn wait(&self) {
        self.shared.state().wait(None, self.shared.park());
    }

    /// Waits at most `timeout`; returns whether the flag is set.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.shared
            .state()
            .wait(Instant::now().checked_add(timeout), self.shared.park())
    }
}
