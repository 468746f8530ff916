//! The ways between Gatehouse's programs, installed side by side: `gatehouse` (what people and other programs
//! start), `gatehouse-cli` (the command line and the light tray) and `gatehouse-window`. One process becomes the
//! next in place (`exec`): `gatehouse` becomes `gatehouse-cli` for anything but a token the agent gives, the light
//! tray becomes the window when a person asks for it, and the window becomes the light tray once it is closed with
//! nothing in progress. A second launch hands its arguments to the one running, over the session bus.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::launch;

/// The file name of the program people and other programs start: it answers `gatehouse token` from a running
/// Gatehouse's agent itself, and hands everything else to [`COMMAND_PROGRAM`] (which may hand it to
/// [`WINDOW_PROGRAM`]).
pub const FRONT_PROGRAM: &str = "gatehouse";

/// The file name of the window program, installed in the same directory as `gatehouse`.
pub const WINDOW_PROGRAM: &str = "gatehouse-window";

/// The file name of the command line and light tray program, installed in the same directory as `gatehouse`.
pub const COMMAND_PROGRAM: &str = "gatehouse-cli";

/// The single-instance D-Bus name and object path: those tauri-plugin-single-instance serves in the window (its
/// `ExecuteCallback(argv, cwd)` takes a second launch's arguments), and the light tray serves in its stead.
pub fn single_instance() -> (String, String) {
    let name = format!("{}.SingleInstance", crate::IDENTIFIER);
    let path = format!("/{}", name.replace('.', "/").replace('-', "_"));
    (name, path)
}

/// The single-instance interface both programs serve.
pub const SINGLE_INSTANCE_INTERFACE: &str = "org.SingleInstance.DBus";

/// Hands a launch (its arguments, program first, and working directory) to the Gatehouse running on `bus`.
///
/// # Errors
/// When nothing takes the call: no Gatehouse is running, or it doesn't answer.
#[cfg(target_os = "linux")]
pub async fn to_running_instance(bus: &zbus::Connection, argv: Vec<String>) -> zbus::Result<()> {
    let (name, path) = single_instance();
    let cwd = std::env::current_dir().unwrap_or_default().to_string_lossy().into_owned();
    bus.call_method(
        Some(name.as_str()),
        path.as_str(),
        Some(SINGLE_INSTANCE_INTERFACE),
        "ExecuteCallback",
        &(argv, cwd),
    )
    .await?;
    Ok(())
}

/// Whether there is a display to open the window on. On Linux that is an X11 (`DISPLAY`) or Wayland
/// (`WAYLAND_DISPLAY`) session, as `var` reads the environment; elsewhere there always is one.
pub fn has_display(var: impl Fn(&str) -> Option<OsString>) -> bool {
    if !cfg!(target_os = "linux") {
        return true;
    }
    ["DISPLAY", "WAYLAND_DISPLAY"].iter().any(|name| var(name).is_some_and(|value| !value.is_empty()))
}

/// Replaces this process with the window program, given the same arguments (a sign-in link, `--hidden`,
/// `--config FILE`), environment and working directory. On Unix the process stays the same one (`exec`): what
/// started `gatehouse` (a desktop entry, WebDriver, a service manager) is left holding the window's process.
/// Elsewhere the window runs as a child, and its exit code is this program's.
pub fn become_window(args: Vec<OsString>) -> ExitCode {
    become_program(WINDOW_PROGRAM, args).unwrap_or_else(|e| {
        crate::say!(
            "gatehouse: error[no_window]: Gatehouse's window couldn't be started ({e}). Reinstall Gatehouse; the \
             command line (gatehouse --help) works without it."
        );
        ExitCode::FAILURE
    })
}

/// Replaces this process with the command line and light tray program, given the same arguments, as
/// [`become_window`] does with the window program: `gatehouse` hands it every command it doesn't answer itself.
pub fn become_command_line(args: Vec<OsString>) -> ExitCode {
    become_program(COMMAND_PROGRAM, args).unwrap_or_else(|e| {
        crate::say!("gatehouse: error[no_command_line]: Gatehouse's command line couldn't be started ({e}). Reinstall Gatehouse.");
        ExitCode::FAILURE
    })
}

/// Replaces this process with the program `name` beside it (on Unix; elsewhere runs it and waits), keeping the
/// name it was started by as `argv[0]`, so that the window's class and the command line's messages still say
/// `gatehouse` (`ps` shows the program's own file name).
///
/// # Errors
/// Why it couldn't be started, with its path.
fn become_program(name: &str, args: Vec<OsString>) -> Result<ExitCode, String> {
    let program = beside(name).map_err(|e| e.to_string())?;
    let mut command = std::process::Command::new(&program);
    let mut args = args.into_iter();
    let started_as = args.next();
    command.args(args);
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        if let Some(started_as) = started_as {
            command.arg0(started_as);
        }
        // `exec` only returns when it failed.
        let e = command.exec();
        Err(format!("{}: {e}", program.display()))
    }
    #[cfg(not(unix))]
    {
        let _ = started_as;
        match command.status() {
            Ok(status) => Ok(ExitCode::from(status.code().and_then(|c| u8::try_from(c).ok()).unwrap_or(1))),
            Err(e) => Err(format!("{}: {e}", program.display())),
        }
    }
}

/// Starts the window program beside this one with `args` (no program name), apart from this process: in a
/// process group of its own, so that Ctrl+C in this terminal leaves it running, and with no terminal. A
/// Gatehouse already running (the window or the light tray) is handed the arguments instead, by the
/// single-instance hand-over, and the started one ends at once.
///
/// Returns the started program, to see whether it failed at once.
///
/// # Errors
/// Why the window program couldn't be started.
pub fn start_window(args: &[OsString]) -> Result<std::process::Child, String> {
    use std::process::Stdio;
    let program = beside(WINDOW_PROGRAM).map_err(|e| e.to_string())?;
    let mut command = std::process::Command::new(&program);
    command.args(args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        command.process_group(0);
    }
    command.spawn().map_err(|e| format!("{}: {e}", program.display()))
}

/// Replaces the window program's process with the light tray (`gatehouse-cli --hidden`, beside it), keeping the
/// config choice of `args` (the window's own command line, program first). Returns only when that failed.
#[cfg(unix)]
pub fn become_light_tray(args: &[OsString]) -> std::io::Error {
    use std::os::unix::process::CommandExt;
    let program = match beside(COMMAND_PROGRAM) {
        Ok(program) => program,
        Err(e) => return e,
    };
    let mut command = std::process::Command::new(program);
    if let Some(name) = args.first() {
        command.arg0(name);
    }
    command.args(launch::config_args(args).into_iter().skip(1)).arg(launch::LIGHT_TRAY_FLAG);
    command.exec()
}

/// The program `name` in the directory of the running one.
///
/// # Errors
/// When this program's own path is unknown.
pub fn beside(name: &str) -> std::io::Result<PathBuf> {
    Ok(std::env::current_exe()?.with_file_name(format!("{name}{}", std::env::consts::EXE_SUFFIX)))
}
