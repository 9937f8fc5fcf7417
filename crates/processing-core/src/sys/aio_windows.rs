//! The Windows side of `crate::aio`: waits on kernel objects (a process handle) through the
//! system thread pool's `RegisterWaitForSingleObject`, which serves many waits per pool
//! thread; the callback wakes the waiting future.

use std::future::Future;
use std::io;
use std::os::windows::io::{AsRawHandle, BorrowedHandle, OwnedHandle};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use windows_sys::Win32::Foundation::{BOOLEAN, HANDLE, INVALID_HANDLE_VALUE};
use windows_sys::Win32::System::Threading::{
    RegisterWaitForSingleObject, UnregisterWaitEx, INFINITE, WT_EXECUTEONLYONCE,
};

struct Shared {
    fired: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

/// The future of [`wait_handle`](crate::aio::wait_handle): `Ok(())` once the object is
/// signalled (a process handle: the process ended).
#[derive(Debug)]
pub struct HandleReady {
    handle: OwnedHandle,
    shared: Arc<SharedDbg>,
    /// The registered wait and the context pointer handed to it (one `Arc` reference).
    wait: Option<(HANDLE, *const SharedDbg)>,
}

/// `Shared` with a `Debug` that prints the flag only.
struct SharedDbg(Shared);

impl std::fmt::Debug for SharedDbg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("fired", &self.0.fired.load(Ordering::Relaxed))
            .finish()
    }
}

// SAFETY: the raw wait handle and context pointer are only used by this future (register,
// unregister, release); the context is an `Arc` of `Sync` data.
unsafe impl Send for HandleReady {}
// SAFETY: as above; `&HandleReady` gives access to nothing.
unsafe impl Sync for HandleReady {}

pub(crate) fn wait_handle(h: BorrowedHandle<'_>) -> io::Result<HandleReady> {
    Ok(HandleReady {
        handle: h.try_clone_to_owned()?,
        shared: Arc::new(SharedDbg(Shared {
            fired: AtomicBool::new(false),
            waker: Mutex::new(None),
        })),
        wait: None,
    })
}

unsafe extern "system" fn on_signal(ctx: *mut core::ffi::c_void, _timed_out: BOOLEAN) {
    // SAFETY: `ctx` is the `Arc` reference registered with the wait; it is released only
    // after `UnregisterWaitEx(.., INVALID_HANDLE_VALUE)` returned, i.e. after this callback.
    let s = unsafe { &*(ctx as *const SharedDbg) };
    s.0.fired.store(true, Ordering::Release);
    let w = s.0.waker.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(w) = w {
        w.wake();
    }
}

impl Future for HandleReady {
    type Output = io::Result<()>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        *this
            .shared
            .0
            .waker
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(cx.waker().clone());
        if this.shared.0.fired.load(Ordering::Acquire) {
            return Poll::Ready(Ok(()));
        }
        if this.wait.is_none() {
            let ctx = Arc::into_raw(this.shared.clone());
            let mut wait: HANDLE = std::ptr::null_mut();
            // SAFETY: `handle` is an open handle owned by this future and outlives the wait
            // (unregistered in `drop` before the handle closes); `ctx` stays valid until the
            // wait is unregistered.
            let ok = unsafe {
                RegisterWaitForSingleObject(
                    &mut wait,
                    this.handle.as_raw_handle() as HANDLE,
                    Some(on_signal),
                    ctx.cast(),
                    INFINITE,
                    WT_EXECUTEONLYONCE,
                )
            };
            if ok == 0 {
                let e = io::Error::last_os_error();
                // SAFETY: the registration failed, so `ctx` was never handed out: release it.
                drop(unsafe { Arc::from_raw(ctx) });
                return Poll::Ready(Err(e));
            }
            this.wait = Some((wait, ctx));
            if this.shared.0.fired.load(Ordering::Acquire) {
                return Poll::Ready(Ok(()));
            }
        }
        Poll::Pending
    }
}

impl Drop for HandleReady {
    fn drop(&mut self) {
        if let Some((wait, ctx)) = self.wait.take() {
            // SAFETY: `wait` is our registration; with INVALID_HANDLE_VALUE the call returns
            // once a running callback finished, after which `ctx` is ours to release.
            unsafe {
                UnregisterWaitEx(wait, INVALID_HANDLE_VALUE);
                drop(Arc::from_raw(ctx));
            }
        }
    }
}
