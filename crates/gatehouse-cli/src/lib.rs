//! Gatehouse's command line, its light tray, and its way to the window: the programs `gatehouse` ([`front`]) and
//! `gatehouse-cli` ([`main`]).
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

/// `gatehouse`, the program people and other programs start. It answers `gatehouse token` from a running
/// Gatehouse's agent itself, and hands everything else, in place (`exec`), to `gatehouse-cli` (the command
/// line's [`main`]): a program's token then costs the start of a small program and one exchange over the
/// agent's socket, not the start of the whole command line. A `token` the agent couldn't give goes on to
/// `gatehouse-cli` too, told not to ask the agent again.
pub fn front() -> ExitCode {
    gatehouse_app::no_core_dumps();
    let mut args: Vec<OsString> = std::env::args_os().collect();
    if let Some((config, asked)) = commands::token::plain(&args) {
        let config = gatehouse_app::Installation::config_file_for(config);
        match commands::token::through_agent(config, &asked) {
            Ok(true) => return ExitCode::SUCCESS,
            Ok(false) => args.push(format!("--{}", commands::token::AGENT_ASKED).into()),
            Err(e) => return commands::failed(&e, asked.profile.as_deref()),
        }
    }
    handover::become_command_line(args)
}

/// `gatehouse-cli`: runs the command line in `std::env::args_os()`, or the light tray, or hands everything to
/// the window.
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
