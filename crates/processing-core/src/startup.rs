//! Code that runs when a binary is loaded, before `main`.
//!
//! Re-executed helper processes (a spawned child, the forkserver, the resource tracker) are
//! the user's own executable started again with a marker in the environment. A function
//! registered with [`on_load!`](crate::on_load) runs before `main` in every binary that links
//! the registering crate (executables, `cargo test` binaries, examples, benches), looks for its
//! marker, and if present takes the process over and never returns to `main`.
//!
//! Such a function runs before the Rust runtime's own `main` set-up: it may allocate and use
//! std, but it must not rely on `std::env::args()` being initialised on every platform.

/// Registers `fn()` items to run when the binary is loaded, before `main`.
///
/// Linux and other ELF platforms use `.init_array`; Windows uses the C runtime's `.CRT$XCU`
/// initialiser table; macOS uses `__mod_init_func`. Rust keeps `#[used]` statics of linked
/// crates, so the registration survives linking.
///
/// ```
/// fn hello() { /* look for a marker in the environment */ }
/// processing::core::on_load!(hello);
/// ```
#[macro_export]
macro_rules! on_load {
    ($f:path) => {
        const _: () = {
            #[used]
            #[cfg_attr(
                any(
                    target_os = "linux",
                    target_os = "android",
                    target_os = "freebsd",
                    target_os = "netbsd",
                    target_os = "openbsd"
                ),
                link_section = ".init_array"
            )]
            #[cfg_attr(target_os = "macos", link_section = "__DATA,__mod_init_func")]
            #[cfg_attr(windows, link_section = ".CRT$XCU")]
            static ON_LOAD: extern "C" fn() = {
                extern "C" fn on_load() {
                    $f()
                }
                on_load
            };
        };
    };
}
