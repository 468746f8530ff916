//! Gatehouse's own settings, none of them secret: whether it starts at login. (The window's size and
//! position are kept by tauri-plugin-window-state; see [`crate::REMEMBERED`].)
//!
//! Start at login is an entry the system starts at login: on Linux an XDG autostart entry
//! (`~/.config/autostart/Gatehouse.desktop`, written by [`gatehouse_app::autostart`], which the light tray uses
//! too), elsewhere tauri-plugin-autostart's (a launch agent on macOS, the Run key on Windows). The entry itself is
//! the setting: there is no second copy that could drift from it. The entry starts Gatehouse with
//! [`gatehouse_app::launch::LIGHT_TRAY_FLAG`], so a login start puts it in the light tray without a window, and the session is restored
//! quietly.

use serde::Serialize;
use tauri::{AppHandle, Manager, Runtime};

#[cfg(not(target_os = "linux"))]
use gatehouse_app::launch::LIGHT_TRAY_FLAG;
use gatehouse_core::error::{Error, Result};

use crate::watch::Watcher;

/// The settings the window and the tray show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    /// Whether Gatehouse starts, hidden in the tray, when the user logs in.
    pub start_at_login: bool,
}

/// Where settings go when they change: the window, and the tray, which listens.
pub type SettingsChannel = Watcher<Settings>;

/// Adds what start at login needs to `builder`: on Linux nothing, elsewhere the autostart plugin, set up to start
/// Gatehouse hidden.
pub fn with_autostart<R: Runtime>(builder: tauri::Builder<R>) -> tauri::Builder<R> {
    #[cfg(not(target_os = "linux"))]
    let builder = builder.plugin(tauri_plugin_autostart::Builder::new().arg(LIGHT_TRAY_FLAG).build());
    builder
}

/// The settings now.
pub fn current<R: Runtime>(app: &AppHandle<R>) -> Settings {
    let start_at_login = autostart_enabled(app).unwrap_or_else(|e| {
        tracing::warn!("couldn't tell whether Gatehouse starts at login: {e}");
        false
    });
    Settings { start_at_login }
}

#[cfg(target_os = "linux")]
fn autostart_enabled<R: Runtime>(_app: &AppHandle<R>) -> std::result::Result<bool, String> {
    gatehouse_app::autostart::is_enabled().map_err(|e| e.to_string())
}

#[cfg(target_os = "linux")]
fn set_autostart<R: Runtime>(_app: &AppHandle<R>, enabled: bool) -> std::result::Result<(), String> {
    // The entry starts `gatehouse`, the light tray, never the window program.
    gatehouse_app::autostart::switch(enabled).map_err(|e| e.to_string())
}

#[cfg(not(target_os = "linux"))]
fn autostart_enabled<R: Runtime>(app: &AppHandle<R>) -> std::result::Result<bool, String> {
    use tauri_plugin_autostart::ManagerExt;
    if app.try_state::<tauri_plugin_autostart::AutoLaunchManager>().is_none() {
        return Ok(false);
    }
    app.autolaunch().is_enabled().map_err(|e| e.to_string())
}

#[cfg(not(target_os = "linux"))]
fn set_autostart<R: Runtime>(app: &AppHandle<R>, enabled: bool) -> std::result::Result<(), String> {
    use tauri_plugin_autostart::ManagerExt;
    if app.try_state::<tauri_plugin_autostart::AutoLaunchManager>().is_none() {
        return Err("starting at login isn't available on this system".into());
    }
    let autolaunch = app.autolaunch();
    if enabled { autolaunch.enable() } else { autolaunch.disable() }.map_err(|e| e.to_string())
}

/// Turns start at login on or off, tells the window and the tray, and returns the settings as they now are.
///
/// # Errors
/// [`Error::Setting`] when the autostart entry can't be written or removed.
pub fn set_start_at_login<R: Runtime>(app: &AppHandle<R>, enabled: bool) -> Result<Settings> {
    let changed = set_autostart(app, enabled);
    let settings = current(app);
    // Tell both whatever happened: a failed change leaves the entry as it was, and they must show that.
    publish(app, settings);
    changed.map_err(Error::Setting)?;
    tracing::info!("start at login is {}", if settings.start_at_login { "on" } else { "off" });
    Ok(settings)
}

fn publish<R: Runtime>(app: &AppHandle<R>, settings: Settings) {
    if let Some(channel) = app.try_state::<SettingsChannel>() {
        channel.send(&settings);
    }
}
