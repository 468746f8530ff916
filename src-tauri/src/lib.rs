//! Gatehouse: sign in to an OAuth 2.0 / OpenID Connect provider from the desktop, the native-app way
//! (RFC 8252): system browser, PKCE, a private-use URI scheme redirect, and tokens kept in the OS keychain.
//!
//! `run()` wires Tauri to the [`service::Gatehouse`] service; everything that matters happens there.

pub mod commands;
pub mod deep_link;
pub mod settings;
pub mod watch;
#[cfg(target_os = "linux")]
mod webkit;

// The sign-in itself lives in the Tauri-free core crate; its modules are this crate's too, by the same names.
pub use gatehouse_core::{
    accounts, api, auth, config, config_file, dpop, error, http, os, presets, service, setup, state, tokens,
};
#[cfg(desktop)]
pub mod tray;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tauri::webview::PageLoadEvent;
use tauri::{AppHandle, Manager, RunEvent, Runtime, WindowEvent};
use tauri_plugin_opener::OpenerExt;
use tauri_plugin_window_state::{AppHandleExt, StateFlags};

use crate::accounts::Accounts;
use crate::config::{Config, ConfigError, CONFIG_ENV};
use crate::service::{Gatehouse, Shell};
use crate::settings::SettingsChannel;
use crate::state::AuthView;
use crate::tokens::keychain::Keychain;
use crate::watch::ViewChannel;

/// The label of the one window.
pub const MAIN_WINDOW: &str = "main";

/// What is remembered of the window between runs: its size and place, and whether it was maximised. Nothing
/// else, and nothing about the session: the state file holds only numbers. Not whether it was visible either:
/// a login start stays in the tray, and a person's launch always shows the window.
pub const REMEMBERED: StateFlags = StateFlags::SIZE.union(StateFlags::POSITION).union(StateFlags::MAXIMIZED);

/// Whether there is a display to open the window on. On Linux that is an X11 (`DISPLAY`) or Wayland
/// (`WAYLAND_DISPLAY`) session; elsewhere there always is one.
pub fn has_display(var: impl Fn(&str) -> Option<std::ffi::OsString>) -> bool {
    if !cfg!(target_os = "linux") {
        return true;
    }
    ["DISPLAY", "WAYLAND_DISPLAY"].iter().any(|name| var(name).is_some_and(|value| !value.is_empty()))
}

/// Starts Gatehouse.
pub fn run() {
    gatehouse_cli::no_core_dumps();
    gatehouse_cli::init_tracing();
    // Without a display GTK can't start, and would abort with an internal panic: say what to do instead.
    if !has_display(|name| std::env::var_os(name)) {
        gatehouse_cli::say!(
            "gatehouse: error[no_display]: Gatehouse's window needs a graphical session (DISPLAY or WAYLAND_DISPLAY \
             is not set). Over SSH or in a script, use the command line: gatehouse sign-in --device, gatehouse \
             token, gatehouse --help."
        );
        std::process::exit(1);
    }
    let mut context = tauri::generate_context!();
    #[cfg(target_os = "linux")]
    if hand_to_running_instance(&context.config().identifier) {
        return;
    }
    // This process is the running instance now, so nothing waits for a sign-in: a link it was started with
    // answers none. It would stay in this process's command line (`/proc/PID/cmdline`, readable by every local
    // user) for as long as it runs, so the process starts again in place with a flag that stands for it.
    #[cfg(unix)]
    if let Some(args) = gatehouse_cli::without_links(&std::env::args_os().collect::<Vec<_>>()) {
        tracing::info!("started by a sign-in link with no sign-in waiting; starting again without it");
        // Returns only when the new image couldn't start; then this one goes on, link and all.
        let _ = gatehouse_cli::open_window(args);
    }
    let args: Vec<String> = std::env::args().collect();
    let config_dir = dirs::config_dir().map(|dir| dir.join(&context.config().identifier));
    let env_path = std::env::var_os(CONFIG_ENV).map(PathBuf::from);
    let config_file = Config::file_path(&args, env_path.clone(), config_dir.clone());
    let config = Config::load(&args, env_path, config_dir);
    for scheme in redirect_schemes(&config) {
        accept_scheme(&mut context, &scheme);
    }
    // A login start (the autostart entry's flag) makes no window at all, so no web view and none of WebKit's
    // processes: the tray makes the window when a person asks for it.
    if settings::starts_hidden(&args) {
        for window in &mut context.config_mut().app.windows {
            window.create = false;
        }
    }
    let app = build_app(tauri::Builder::default(), config, config_file).build(context);
    match app {
        Ok(app) => app.run(|_app, event| {
            // Closing the window leaves Gatehouse in the tray; only Quit (an explicit exit code) ends it.
            if let RunEvent::ExitRequested { code: None, api, .. } = event {
                api.prevent_exit();
            }
        }),
        Err(e) => {
            tracing::error!("Gatehouse could not start: {e}");
            std::process::exit(1);
        }
    }
}

/// Wires plugins, commands, window behaviour and the service onto `builder`.
pub fn build_app<R: Runtime>(
    builder: tauri::Builder<R>,
    config: Result<Vec<Config>, ConfigError>,
    config_file: Option<PathBuf>,
) -> tauri::Builder<R> {
    let builder = builder
        // single-instance must come first, so a second launch (the OS delivering a deep link) is forwarded
        // to this instance before any other plugin runs in it.
        .plugin(tauri_plugin_single_instance::init(|app, argv, _cwd| {
            if !settings::starts_hidden(&argv) {
                show_main_window(app);
            }
            if let (Some(profile), Some(accounts)) = (sign_in_request(&argv), accounts_of(app)) {
                tauri::async_runtime::spawn(async move { accounts.sign_in(profile.as_deref()).await });
            }
            if let (true, Some(accounts)) = (stale_link(&argv), accounts_of(app)) {
                accounts.stale_link();
            }
        }))
        .plugin(tauri_plugin_deep_link::init())
        .plugin(tauri_plugin_opener::init());
    settings::with_autostart(builder)
        .plugin(tauri_plugin_window_state::Builder::new().with_state_flags(REMEMBERED).build())
        .manage(Startup::default())
        .manage(ViewChannel::default())
        .manage(SettingsChannel::default())
        .manage(commands::KeptForm::default())
        .invoke_handler(tauri::generate_handler![
            commands::get_state,
            commands::watch_state,
            commands::sign_in,
            commands::cancel_sign_in,
            commands::sign_in_with_code,
            commands::paste_redirect,
            commands::refresh,
            commands::sign_out,
            commands::dismiss_notice,
            commands::dismiss_window_notice,
            commands::forget,
            commands::add_account,
            commands::remove_account,
            commands::check_provider,
            commands::save_provider,
            commands::open_browser_again,
            commands::provider_details,
            commands::remove_provider,
            commands::keep_setup_form,
            commands::kept_setup_form,
            commands::watch_settings,
            commands::set_start_at_login,
            commands::quit,
        ])
        .setup(move |app| {
            let schemes = redirect_schemes(&config);
            let identifier = app.config().identifier.clone();
            let added_file = dirs::data_dir().map(|dir| dir.join(&identifier).join(accounts::ADDED_FILE));
            let accounts::Profiles { profiles, added, added_unreadable } =
                accounts::profiles(config, added_file.as_deref());
            let make = {
                let (handle, identifier) = (app.handle().clone(), identifier.clone());
                move |profile| {
                    let shell = TauriShell { app: handle.clone() };
                    Gatehouse::new(profile, Keychain::new(identifier.clone()), shell)
                }
            };
            let services = profiles.into_iter().map(&make).collect::<Result<Vec<_>, _>>()?;
            let additions = added_file.map(|file| accounts::Additions {
                file,
                factory: Box::new(move |config| make(Ok(config))),
                config_file,
            });
            let handle = app.handle().clone();
            let sink: accounts::Sink = Box::new(move |view| {
                if let Some(channel) = handle.try_state::<ViewChannel>() {
                    channel.send(view);
                }
                #[cfg(desktop)]
                tray::update(&handle, view);
            });
            let accounts = Accounts::new(services, Keychain::new(identifier), sink, additions, added);
            if added_unreadable {
                accounts.added_list_unreadable();
            }
            app.manage(accounts);
            let early_links = deep_link::listen(app.handle(), &schemes);
            // A login start makes no window, so there is no first page to wait for.
            let no_window = app.config().app.windows.iter().any(|w| w.label == MAIN_WINDOW && !w.create);
            let args: Vec<String> = std::env::args().collect();
            let (sign_in, stale) = (sign_in_request(&args), stale_link(&args));
            Startup::ready(app.handle(), |s| {
                s.links = Some(early_links);
                s.page_loaded |= no_window;
                s.sign_in = sign_in;
                s.stale_link = stale;
            });
            Ok(())
        })
        // The keychain and the network are touched only once the window has shown its first page, so they
        // never delay it.
        .on_page_load(|webview, payload| {
            if webview.label() == MAIN_WINDOW && payload.event() == PageLoadEvent::Finished {
                tracing::info!("window ready");
                Startup::ready(webview.app_handle(), |s| s.page_loaded = true);
            }
        })
        // Closing the window leaves Gatehouse in the tray, and destroys the window: its web view and WebKit's
        // processes are most of what Gatehouse weighs, and nothing lives in them. Every state the window shows
        // is the backend's, so Show makes a new window that shows it all again.
        .on_window_event(|window, event| {
            if window.label() != MAIN_WINDOW {
                return;
            }
            match event {
                WindowEvent::CloseRequested { .. } => {
                    tracing::info!("window closing; Gatehouse stays in the tray");
                    // The plugin saves at exit; saving here keeps the place for the next window, and when the
                    // session ends with a signal rather than Quit.
                    if let Err(e) = window.app_handle().save_window_state(REMEMBERED) {
                        tracing::warn!("couldn't save the window's size and place: {e}");
                    }
                }
                WindowEvent::Destroyed => {
                    let app = window.app_handle();
                    app.state::<ViewChannel>().clear();
                    app.state::<SettingsChannel>().clear();
                    #[cfg(target_os = "linux")]
                    {
                        let app = app.clone();
                        let spawned = std::thread::Builder::new().name("closed-window".into()).spawn(move || {
                            let closed = || app.get_webview_window(MAIN_WINDOW).is_none();
                            if webkit::end_processes(closed) {
                                hand_to_tray_when_idle(&app, closed);
                            }
                        });
                        if let Err(e) = spawned {
                            tracing::warn!("couldn't end WebKit's processes: {e}");
                        }
                    }
                }
                _ => {}
            }
        })
}

/// Hands this launch (its arguments and working directory) to the Gatehouse already running, if there is one,
/// and returns whether it took them. It is what tauri-plugin-single-instance does for a second launch, over the
/// same D-Bus name and method, but before GTK and WebKit start: the plugin can only do it from inside a started
/// app, which must then exit with GTK's threads running, and that exit crashed about once in a thousand
/// launches. When nothing answers, the launch goes on, and the plugin decides as before.
#[cfg(target_os = "linux")]
fn hand_to_running_instance(identifier: &str) -> bool {
    let (name, path) = gatehouse_cli::single_instance(identifier);
    let Ok(bus) = zbus::blocking::Connection::session() else { return false };
    let running = bus
        .call_method(
            Some("org.freedesktop.DBus"),
            "/org/freedesktop/DBus",
            Some("org.freedesktop.DBus"),
            "NameHasOwner",
            &(name.as_str(),),
        )
        .ok()
        .and_then(|reply| reply.body().deserialize::<bool>().ok())
        .unwrap_or(false);
    if !running {
        return false;
    }
    let argv: Vec<String> = std::env::args_os().map(|arg| arg.to_string_lossy().into_owned()).collect();
    let cwd = std::env::current_dir().unwrap_or_default().to_string_lossy().into_owned();
    let handed = bus.call_method(
        Some(name.as_str()),
        path.as_str(),
        Some("org.SingleInstance.DBus"),
        "ExecuteCallback",
        &(argv, cwd),
    );
    match handed {
        Ok(_) => true,
        Err(e) => {
            tracing::warn!("couldn't hand this launch to the running Gatehouse ({e}); starting normally");
            false
        }
    }
}

/// Whether `args` (a command line, program first) stand for a sign-in link that answered no sign-in.
fn stale_link(args: &[String]) -> bool {
    args.iter().skip(1).any(|arg| arg == gatehouse_cli::STALE_LINK_FLAG)
}

/// What [`gatehouse_cli::SIGN_IN_FLAG`] among `args` (a command line, program first) asks for: a sign-in to the
/// first profile (`Some(None)`) or to the one named (`--sign-in=PROFILE`).
fn sign_in_request(args: &[String]) -> Option<Option<String>> {
    let flag = gatehouse_cli::SIGN_IN_FLAG;
    args.iter().skip(1).find_map(|arg| {
        if arg == flag {
            Some(None)
        } else {
            arg.strip_prefix(flag).and_then(|rest| rest.strip_prefix('=')).map(|p| Some(p.to_owned()))
        }
    })
}

/// Once the window is closed and nothing is in progress (no sign-in, renewal or sign-out, no unsaved setup form),
/// hands this process to the light tray, `gatehouse --hidden`, which keeps the sessions and the tray without GTK
/// or WebKitGTK: a closed window then weighs what a login start does. Gives up when the window is shown again,
/// and leaves the app as it is when the setup form is kept (it lives only in this process) or the light tray
/// can't start.
#[cfg(target_os = "linux")]
fn hand_to_tray_when_idle<R: Runtime>(app: &AppHandle<R>, closed: impl Fn() -> bool) {
    loop {
        if !closed() {
            return;
        }
        if app.state::<commands::KeptForm>().is_kept() {
            tracing::info!("an unsaved setup form is kept here; staying in the tray as the window program");
            return;
        }
        let idle = accounts_of(app).is_some_and(|accounts| {
            accounts.services().iter().all(|service| !service.is_pending() && service.view().phase.is_settled())
        });
        if idle {
            tracing::info!("the window is closed and nothing is in progress; handing over to the light tray");
            let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
            let e = gatehouse_cli::open_tray(&args);
            tracing::warn!("the light tray couldn't start ({e}); staying in the tray as the window program");
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
}

/// Starts the service and the tray once both the setup hook (which has the launch links) and the window's
/// first page load have happened, in whichever order they come. Both run on the main thread.
#[derive(Default)]
struct Startup(Mutex<StartupState>);

#[derive(Default)]
struct StartupState {
    links: Option<Vec<String>>,
    page_loaded: bool,
    /// A sign-in asked for at launch ([`sign_in_request`]), started once the sessions are restored.
    sign_in: Option<Option<String>>,
    /// Started for a link that answered no sign-in ([`gatehouse_cli::STALE_LINK_FLAG`]): said once restored.
    stale_link: bool,
}

impl Startup {
    fn ready<R: Runtime>(app: &AppHandle<R>, change: impl FnOnce(&mut StartupState)) {
        let Some(startup) = app.try_state::<Startup>() else { return };
        let (links, sign_in, stale_link) = {
            let Ok(mut state) = startup.0.lock() else { return };
            change(&mut state);
            if !state.page_loaded {
                return;
            }
            (state.links.take(), state.sign_in.take(), std::mem::take(&mut state.stale_link))
        };
        let (Some(links), Some(accounts)) = (links, accounts_of(app)) else { return };
        // The tray too waits for the window: building its menu costs the first paint a frame or two. It is
        // built before the services start, so that it sees every change of state from then on.
        #[cfg(desktop)]
        if let Err(e) = tray::create(app, &accounts.view()) {
            tracing::warn!("no tray icon: {e}");
        }
        tauri::async_runtime::spawn(async move {
            accounts.start(links).await;
            if stale_link {
                accounts.stale_link();
            }
            if let Some(profile) = sign_in {
                // Its errors are shown in the window, as the button's are.
                let _ = accounts.sign_in(profile.as_deref()).await;
            }
        });
    }
}

/// Every profile's service, once setup has created them.
pub(crate) fn accounts_of<R: Runtime>(app: &AppHandle<R>) -> Option<Arc<Accounts>> {
    app.try_state::<Arc<Accounts>>().map(|accounts| accounts.inner().clone())
}

/// The private-use schemes the profiles redirect to, each once.
fn redirect_schemes(config: &Result<Vec<Config>, ConfigError>) -> Vec<String> {
    // The app's own scheme always: a provider set up in the window later redirects there (RFC 8252 §7.1).
    let own = presets::SCHEME.split(':').next().unwrap_or_default().to_owned();
    let mut schemes: Vec<String> = vec![own];
    for profile in config.iter().flatten() {
        if let Some(scheme) = profile.redirect_scheme() {
            if !schemes.iter().any(|s| s == scheme) {
                schemes.push(scheme.to_owned());
            }
        }
    }
    schemes
}

/// Shows, unminimises and focuses the window, first making it if there is none (a login start, or a closed
/// window).
pub fn show_main_window<R: Runtime>(app: &AppHandle<R>) {
    let window = match app.get_webview_window(MAIN_WINDOW) {
        Some(window) => window,
        None => match open_main_window(app) {
            Ok(Some(window)) => window,
            // Being made for another caller, which shows it.
            Ok(None) => return,
            Err(e) => {
                tracing::error!("couldn't open the window: {e}");
                return;
            }
        },
    };
    let _ = window.show();
    let _ = window.unminimize();
    let _ = window.set_focus();
}

/// Makes the window as the config describes it, in the size and place it was last closed at (the window-state
/// plugin restores them as it is made). Its page asks the backend for everything it shows. `None` when another
/// caller is making it: two requests at once (the tray and a link) make one window, and a caller never waits for
/// another, which may be waiting for the main thread this one runs on.
fn open_main_window<R: Runtime>(app: &AppHandle<R>) -> tauri::Result<Option<tauri::WebviewWindow<R>>> {
    static OPENING: Mutex<()> = Mutex::new(());
    let _one_at_a_time = match OPENING.try_lock() {
        Ok(guard) => guard,
        Err(std::sync::TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
        Err(std::sync::TryLockError::WouldBlock) => return Ok(None),
    };
    if let Some(window) = app.get_webview_window(MAIN_WINDOW) {
        return Ok(Some(window));
    }
    let mut config = app
        .config()
        .app
        .windows
        .iter()
        .find(|w| w.label == MAIN_WINDOW)
        .cloned()
        .ok_or_else(|| tauri::Error::WindowNotFound)?;
    config.create = true;
    tauri::WebviewWindowBuilder::from_config(app, &config)?.build().map(Some)
}

/// The deep-link plugin only accepts schemes listed in its config. The profiles' redirect schemes are chosen at
/// run time, so add them before the app is built.
fn accept_scheme(context: &mut tauri::Context<tauri::Wry>, scheme: &str) {
    let plugins = &mut context.config_mut().plugins.0;
    let entry =
        plugins.entry("deep-link".to_owned()).or_insert_with(|| serde_json::json!({ "desktop": { "schemes": [] } }));
    if let Some(schemes) = entry.pointer_mut("/desktop/schemes").and_then(|s| s.as_array_mut()) {
        if !schemes.iter().any(|s| s == scheme) {
            schemes.push(serde_json::Value::from(scheme));
        }
    }
}

struct TauriShell<R: Runtime> {
    app: AppHandle<R>,
}

impl<R: Runtime> Shell for TauriShell<R> {
    fn open_browser(&self, url: &url::Url) -> Result<(), String> {
        self.app.opener().open_url(url.as_str(), None::<&str>).map_err(|e| e.to_string())
    }

    fn focus(&self) {
        show_main_window(&self.app);
    }

    fn publish(&self, _view: &AuthView) {
        // The window and the tray show every account: the changed one goes out with the others.
        if let Some(accounts) = accounts_of(&self.app) {
            accounts.publish();
        }
    }
}

#[cfg(test)]
mod tests {
    use tauri::test::{get_ipc_response, mock_builder, mock_context, noop_assets, INVOKE_KEY};
    use tauri::webview::InvokeRequest;

    use super::*;

    fn invoke(
        webview: &tauri::WebviewWindow<tauri::test::MockRuntime>,
        cmd: &str,
    ) -> Result<serde_json::Value, serde_json::Value> {
        let request = InvokeRequest {
            cmd: cmd.into(),
            callback: tauri::ipc::CallbackFn(0),
            error: tauri::ipc::CallbackFn(1),
            url: "tauri://localhost".parse().unwrap(),
            body: tauri::ipc::InvokeBody::default(),
            headers: Default::default(),
            invoke_key: INVOKE_KEY.to_string(),
        };
        get_ipc_response(webview, request).map(|body| body.deserialize::<serde_json::Value>().unwrap())
    }

    #[test]
    fn a_sign_in_is_asked_for_by_the_flag_alone() {
        let args = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(sign_in_request(&args(&["gatehouse", "--sign-in"])), Some(None));
        assert_eq!(
            sign_in_request(&args(&["gatehouse", "--config", "x", "--sign-in=work"])),
            Some(Some("work".into()))
        );
        assert_eq!(sign_in_request(&args(&["gatehouse"])), None);
        assert_eq!(sign_in_request(&args(&["gatehouse", "--sign-inx"])), None);
        assert_eq!(sign_in_request(&args(&["--sign-in"])), None, "the program's own name is not a flag");
    }

    /// The window's commands reach the service, and what comes back is the view and typed errors. A broken
    /// profile keeps the test away from the keychain and the network.
    #[test]
    fn commands_are_wired_to_the_service() {
        let config =
            Config::parse_all("client_id = \"x\"\nredirect_uri = \"x\"\nresource_url = \"x\"\n", "broken.toml");
        let mut context = mock_context(noop_assets());
        // single-instance turns the identifier into a D-Bus name, which the mock's default is not.
        context.config_mut().identifier = "com.example.gatehouse.wiring-test".into();
        let mut app = build_app(mock_builder(), config, None).build(context).unwrap();
        // One turn of the event loop runs the setup hook, which creates the service.
        #[allow(deprecated)]
        app.run_iteration(|_, _| {});
        let webview = tauri::WebviewWindowBuilder::new(&app, MAIN_WINDOW, Default::default()).build().unwrap();

        let window = invoke(&webview, "get_state").unwrap();
        let view = &window["accounts"][0];
        assert_eq!(view["phase"], "configError");
        assert_eq!(view["notice"]["kind"], "config_invalid");
        assert!(view["notice"]["message"].as_str().unwrap().contains("issuer"), "{view}");

        let error = invoke(&webview, "sign_in").unwrap_err();
        assert_eq!(error["kind"], "config_invalid");
        assert!(error["message"].as_str().unwrap().contains("broken.toml"), "{error}");
        assert_eq!(invoke(&webview, "dismiss_notice").unwrap(), serde_json::Value::Null);
        let after = invoke(&webview, "get_state").unwrap();
        assert!(after["accounts"][0]["notice"].is_null());
        // Every change gets a newer revision, which is how the window orders what it receives.
        assert!(after["revision"].as_u64().unwrap() > window["revision"].as_u64().unwrap(), "{after}");
    }
}
