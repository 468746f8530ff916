//! The `gatehouse` program: its command line, and its way to the window.
//!
//! `gatehouse status`, `token`, `sign-in`, `sign-out` and `credential` run here, over `gatehouse-core`, and load
//! no window toolkit: git calls the credential helper on every fetch, and shell prompts call `token` all the
//! time, so a command costs what a keychain lookup costs. Anything else (no command, a sign-in link the OS
//! hands over, `--hidden`) is the window's, and [`main`] replaces this process with the window program, which
//! is installed beside this one.

mod commands;
mod window;

use std::ffi::OsString;
use std::process::ExitCode;

pub use commands::{exit_code, is_cli, run, terminal_safe};
pub use window::WINDOW_PROGRAM;

/// The `gatehouse` program: runs the command line in `std::env::args_os()`, or hands everything to the window.
pub fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    if is_cli(&args) {
        run(args)
    } else {
        window::open(args)
    }
}
