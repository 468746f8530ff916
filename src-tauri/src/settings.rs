//! Gatehouse's own settings, none of them secret: whether it starts at login. (The window's size and
//! position are kept by tauri-plugin-window-state; see [`crate::REMEMBERED`].)
//!
//! Start at login is an XDG autostart entry written by tauri-plugin-autostart (`~/.config/autostart/
//! Gatehouse.desktop` on Linux, a launch agent on macOS, the Run key on Windows). The entry itself is the
//! setting: there is no second copy that could drift from it. The entry starts Gatehouse with
//! [`HIDDEN_FLAG`], so a login start puts it in the tray without a window, and the session is restored
//! quietly.

use serde::Serialize;
use tauri::{AppHandle, Manager, Runtime};
use tauri_plugin_autostart::ManagerExt;

use crate::error::{Error, Result};
use crate::watch::Watcher;

/// Starts Gatehouse in the tray, with its window hidden. The autostart entry passes it.
pub const HIDDEN_FLAG: &str = "--hidden";

/// The settings the window and the tray show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    /// Whether Gatehouse starts, hidden in the tray, when the user logs in.
    pub start_at_login: bool,
}

/// Where settings go when they change.
pub type SettingsChannel = Watcher<Settings>;

/// Whether `args` (a command line, program first) asks for a start without the window.
pub fn starts_hidden(args: &[String]) -> bool {
    args.iter().skip(1).any(|arg| arg == HIDDEN_FLAG)
}

/// The autostart plugin, set up to start Gatehouse hidden.
pub fn autostart_plugin<R: Runtime>() -> tauri::plugin::TauriPlugin<R> {
    tauri_plugin_autostart::Builder::new().arg(HIDDEN_FLAG).build()
}

/// The settings now.
pub fn current<R: Runtime>(app: &AppHandle<R>) -> Settings {
    let start_at_login = match app.try_state::<tauri_plugin_autostart::AutoLaunchManager>() {
        Some(manager) => manager.is_enabled().unwrap_or_else(|e| {
            tracing::warn!("couldn't tell whether Gatehouse starts at login: {e}");
            false
        }),
        None => false,
    };
    Settings { start_at_login }
}

/// Turns start at login on or off, tells the window and the tray, and returns the settings as they now are.
///
/// # Errors
/// [`Error::Setting`] when the autostart entry can't be written or removed.
pub fn set_start_at_login<R: Runtime>(app: &AppHandle<R>, enabled: bool) -> Result<Settings> {
    if app.try_state::<tauri_plugin_autostart::AutoLaunchManager>().is_none() {
        return Err(Error::Setting("starting at login isn't available on this system".into()));
    }
    let autolaunch = app.autolaunch();
    let changed = if enabled { autolaunch.enable() } else { autolaunch.disable() };
    let settings = current(app);
    // Tell both whatever happened: a failed change leaves the entry as it was, and they must show that.
    publish(app, settings);
    changed.map_err(|e| Error::Setting(e.to_string()))?;
    tracing::info!("start at login is {}", if settings.start_at_login { "on" } else { "off" });
    Ok(settings)
}

fn publish<R: Runtime>(app: &AppHandle<R>, settings: Settings) {
    if let Some(channel) = app.try_state::<SettingsChannel>() {
        channel.send(&settings);
    }
    #[cfg(desktop)]
    crate::tray::show_settings(app, settings);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_flag_itself_hides_the_window() {
        let args = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(starts_hidden(&args(&["gatehouse", "--hidden"])));
        assert!(!starts_hidden(&args(&["gatehouse"])));
        assert!(!starts_hidden(&args(&["--hidden"])), "the program's own name is not a flag");
        assert!(!starts_hidden(&args(&["gatehouse", "com.example.gatehouse:/cb?x=--hidden"])));
    }
}
