//! The `gatehouse` program: its command line, its light tray, and its way to the window.
//!
//! `gatehouse status`, `token`, `sign-in`, `sign-out` and `credential` run here, over `gatehouse-core`, and load
//! no window toolkit: git calls the credential helper on every fetch, and shell prompts call `token` all the
//! time, so a command costs what a keychain lookup costs. `--hidden` (a login start) is the light tray, which
//! keeps the sessions and shows the tray menu over D-Bus, still with no window toolkit. Anything else (no
//! command, a sign-in link the OS hands over) is the window's, and [`main`] replaces this process with the window
//! program, `gatehouse-window`, installed beside this one; the light tray does the same when the window is asked
//! for.

mod commands;
#[cfg(target_os = "linux")]
mod light_tray;

use std::ffi::OsString;
use std::process::ExitCode;

use gatehouse_app::handover;
#[cfg(target_os = "linux")]
use gatehouse_app::launch::Launch;

pub use commands::{exit_code, is_cli, run, terminal_safe};

/// The `gatehouse` program: runs the command line in `std::env::args_os()`, or hands everything to the window.
pub fn main() -> ExitCode {
    gatehouse_app::no_core_dumps();
    let args: Vec<OsString> = std::env::args_os().collect();
    if is_cli(&args) {
        return run(args);
    }
    // A login start is the light tray, with no window toolkit, until the window is asked for.
    #[cfg(target_os = "linux")]
    if Launch::parse(&args).light_tray {
        return light_tray::run(args);
    }
    handover::become_window(args)
}
