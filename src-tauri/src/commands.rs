//! The commands the window may call. Each is a line or two over [`Gatehouse`]; none returns a token.

use std::sync::Arc;

use tauri::ipc::Channel;
use tauri::{AppHandle, Runtime, State};

use crate::error::Result;
use crate::service::Gatehouse;
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

/// Quits the app (the window's Ctrl+Q, like the tray's Quit).
#[tauri::command]
pub fn quit<R: Runtime>(app: AppHandle<R>) {
    app.exit(0);
}
