//! The commands the window may call. Each is a line or two over an account's [`gatehouse_core::service::ProfileService`];
//! none returns a token.

use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tauri::ipc::Channel;
use tauri::{AppHandle, Runtime, State};

use crate::settings::{self, Settings, SettingsChannel};
use crate::watch::ViewChannel;
use gatehouse_core::accounts::Accounts;
use gatehouse_core::error::Result;
use gatehouse_core::setup::{Draft, Editing, Findings, SaveOutcome};
use gatehouse_core::state::WindowView;

/// What the window should show now: every account.
#[tauri::command]
pub fn get_state(accounts: State<'_, Arc<Accounts>>) -> WindowView {
    accounts.view()
}

/// Sends every later view over `channel`, and returns the current one. This channel, not an event, is how
/// the window learns of changes: the window may listen to no event at all, so it can't hear the deep-link
/// plugin's `deep-link://new-url`, which carries the raw callback URL.
#[tauri::command]
pub fn watch_state(
    accounts: State<'_, Arc<Accounts>>,
    watcher: State<'_, ViewChannel>,
    channel: Channel<WindowView>,
) -> WindowView {
    watcher.set(channel);
    accounts.view()
}

// Each action below is for one account: `profile` names it (the first profile when left out).

/// Opens the system browser to sign in.
#[tauri::command]
pub async fn sign_in(accounts: State<'_, Arc<Accounts>>, profile: Option<String>) -> Result<()> {
    accounts.sign_in(profile.as_deref()).await
}

/// Cancels the sign-in in progress.
#[tauri::command]
pub async fn cancel_sign_in(accounts: State<'_, Arc<Accounts>>, profile: Option<String>) -> Result<()> {
    accounts.get(profile.as_deref())?.cancel_sign_in().await
}

/// Opens the browser again at the waiting sign-in's own link (the attempt stays the same).
#[tauri::command]
pub async fn open_browser_again(
    accounts: State<'_, Arc<Accounts>>,
    profile: Option<String>,
) -> Result<gatehouse_core::service::Reopened> {
    accounts.get(profile.as_deref())?.open_browser_again().await
}

/// Signs in with a code on another device instead of the browser (RFC 8628).
#[tauri::command]
pub async fn sign_in_with_code(accounts: State<'_, Arc<Accounts>>, profile: Option<String>) -> Result<()> {
    accounts.get(profile.as_deref())?.sign_in_with_code().await
}

/// Completes the waiting sign-in with the address the browser ended on, pasted by the person.
#[tauri::command]
pub async fn paste_redirect(accounts: State<'_, Arc<Accounts>>, profile: Option<String>, link: String) -> Result<()> {
    accounts.get(profile.as_deref())?.handle_pasted(&link).await
}

/// Refreshes the access token and reloads the resource.
#[tauri::command]
pub async fn refresh(accounts: State<'_, Arc<Accounts>>, profile: Option<String>) -> Result<()> {
    accounts.get(profile.as_deref())?.refresh().await
}

/// Signs out.
#[tauri::command]
pub async fn sign_out(accounts: State<'_, Arc<Accounts>>, profile: Option<String>) -> Result<()> {
    accounts.get(profile.as_deref())?.sign_out().await
}

/// Clears an account's notice.
#[tauri::command]
pub fn dismiss_notice(accounts: State<'_, Arc<Accounts>>, profile: Option<String>) -> Result<()> {
    accounts.get(profile.as_deref())?.dismiss_notice();
    Ok(())
}

/// Clears the window's own notice (about a link that matched no account).
#[tauri::command]
pub fn dismiss_window_notice(accounts: State<'_, Arc<Accounts>>) {
    accounts.dismiss_notice();
}

/// Adds an account at the provider of the configured profile `from` (the first when left out) and starts its
/// sign-in; returns the new account's profile name.
#[tauri::command]
pub async fn add_account(accounts: State<'_, Arc<Accounts>>, from: Option<String>) -> Result<String> {
    accounts.add_account(from.as_deref()).await
}

/// Removes an added account that is signed out.
#[tauri::command]
pub async fn remove_account(accounts: State<'_, Arc<Accounts>>, profile: String) -> Result<()> {
    accounts.remove_account(&profile).await
}

/// What Check finds about the provider `draft` names (`editing`: the profile being edited, if any).
#[tauri::command]
pub async fn check_provider(
    accounts: State<'_, Arc<Accounts>>,
    draft: Draft,
    editing: Option<String>,
) -> Result<Findings> {
    accounts.check_provider(&draft, editing.as_deref()).await
}

/// Saves the provider `draft` names in the config file, as a new profile or over `editing`, when Check finds
/// nothing that won't work; otherwise says what Check says.
#[tauri::command]
pub async fn save_provider(
    accounts: State<'_, Arc<Accounts>>,
    draft: Draft,
    editing: Option<String>,
) -> Result<SaveOutcome> {
    accounts.save_provider(&draft, editing.as_deref()).await
}

/// The setup view's unsaved form: what the person chose and typed, never the client secret. The app keeps it
/// in memory while the window is closed, so the next window shows it as it was left; it is never written
/// anywhere, and goes with the app.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SetupForm {
    /// The profile being edited; none for a new provider.
    editing: Option<String>,
    preset: String,
    issuer: String,
    client_id: String,
    tenant: String,
    domain: String,
    realm: String,
    name: String,
    redirect: String,
    scopes: String,
    resource: String,
}

/// Where the app keeps the [`SetupForm`].
#[derive(Default)]
pub struct KeptForm(Mutex<Option<SetupForm>>);

impl KeptForm {
    /// Whether a form is kept.
    pub fn is_kept(&self) -> bool {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).is_some()
    }
}

/// Keeps the setup view's unsaved form (none once it is saved or cancelled).
#[tauri::command]
pub fn keep_setup_form(kept: State<'_, KeptForm>, form: Option<SetupForm>) {
    *kept.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = form;
}

/// The setup form a window left unsaved, if any.
#[tauri::command]
pub fn kept_setup_form(kept: State<'_, KeptForm>) -> Option<SetupForm> {
    kept.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
}

/// What the setup view shows to edit `profile` (never its secret).
#[tauri::command]
pub fn provider_details(accounts: State<'_, Arc<Accounts>>, profile: String) -> Result<Editing> {
    accounts.provider_details(&profile)
}

/// Signs `profile` out (revoking), then removes it from the config file; returns what the sign-out said.
#[tauri::command]
pub async fn remove_provider(
    accounts: State<'_, Arc<Accounts>>,
    profile: String,
) -> Result<Option<gatehouse_core::state::Notice>> {
    accounts.remove_provider(&profile).await
}

/// Removes the keychain session of a profile that is no longer in the config.
#[tauri::command]
pub async fn forget(accounts: State<'_, Arc<Accounts>>, profile: String) -> Result<()> {
    accounts.forget(&profile).await
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
