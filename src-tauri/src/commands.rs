//! The commands the window may call. Each is a line or two over [`Gatehouse`]; none returns a token.

use std::sync::Arc;

use tauri::ipc::Channel;
use tauri::{AppHandle, Runtime, State};

use crate::error::Result;
use crate::service::Gatehouse;
use crate::settings::{self, Settings, SettingsChannel};
use crate::state::{AuthView, ViewChannel};

/// What the window should show now.
#[tauri::command]
pub fn get_state(service: State<'_, Arc<Gatehouse>>) -> AuthView {
    service.view()
}

/// Sends every later view over `channel`, and returns the current one. This channel, not an event, is how
/// the window learns of changes: the window may listen to no event at all, so it can't hear the deep-link
/// plugin's `deep-link://new-url`, which carries the raw callback URL.
#[tauri::command]
pub fn watch_state(
    service: State<'_, Arc<Gatehouse>>,
    watcher: State<'_, ViewChannel>,
    channel: Channel<AuthView>,
) -> AuthView {
    watcher.set(channel);
    service.view()
}

/// Opens the system browser to sign in.
#[tauri::command]
pub async fn sign_in(service: State<'_, Arc<Gatehouse>>) -> Result<()> {
    service.sign_in().await
}

/// Cancels the sign-in in progress.
#[tauri::command]
pub async fn cancel_sign_in(service: State<'_, Arc<Gatehouse>>) -> Result<()> {
    service.cancel_sign_in().await
}

/// Refreshes the access token and reloads the resource.
#[tauri::command]
pub async fn refresh(service: State<'_, Arc<Gatehouse>>) -> Result<()> {
    service.refresh().await
}

/// Signs out.
#[tauri::command]
pub async fn sign_out(service: State<'_, Arc<Gatehouse>>) -> Result<()> {
    service.sign_out().await
}

/// Clears the notice.
#[tauri::command]
pub fn dismiss_notice(service: State<'_, Arc<Gatehouse>>) {
    service.dismiss_notice();
}

/// Sends every later change of the settings over `channel` (the tray can change them too), and returns the
/// current ones.
#[tauri::command]
pub fn watch_settings<R: Runtime>(
    app: AppHandle<R>,
    watcher: State<'_, SettingsChannel>,
    channel: Channel<Settings>,
) -> Settings {
    watcher.set(channel);
    settings::current(&app)
}

/// Turns start at login on or off, and returns the settings as they now are.
#[tauri::command]
pub fn set_start_at_login<R: Runtime>(app: AppHandle<R>, enabled: bool) -> Result<Settings> {
    settings::set_start_at_login(&app, enabled)
}

/// Quits the app (the window's Ctrl+Q, like the tray's Quit).
#[tauri::command]
pub fn quit<R: Runtime>(app: AppHandle<R>) {
    app.exit(0);
}
