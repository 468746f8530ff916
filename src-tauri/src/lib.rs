//! Gatehouse: sign in to an OAuth 2.0 / OpenID Connect provider from the desktop, the native-app way
//! (RFC 8252): system browser, PKCE, a private-use URI scheme redirect, and tokens kept in the OS keychain.
//!
//! `run()` wires Tauri to the accounts of [`gatehouse_app::Installation`]; everything that matters happens in
//! their services, in `gatehouse-core`.

pub mod commands;
pub mod deep_link;
#[cfg(unix)]
pub mod programs;
pub mod settings;
#[cfg(desktop)]
pub mod tray;
pub mod watch;
#[cfg(target_os = "linux")]
mod webkit;
pub mod window;

use std::sync::Mutex;

use tauri::webview::PageLoadEvent;
use tauri::{AppHandle, Manager, RunEvent, Runtime, WindowEvent};
use tauri_plugin_opener::OpenerExt;
use tauri_plugin_window_state::{AppHandleExt, StateFlags};

use gatehouse_app::launch::{self, Launch};
use gatehouse_app::{handover, say, Installation};
use gatehouse_core::accounts;
use gatehouse_core::config::{Config, ConfigError};
use gatehouse_core::presets;
use gatehouse_core::service::Shell;

use crate::settings::SettingsChannel;
use crate::watch::ViewChannel;
use crate::window::{accounts_of, asked, show_main_window, MAIN_WINDOW};

/// What is remembered of the window between runs: its size and place, and whether it was maximised. Nothing
/// else, and nothing about the session: the state file holds only numbers. Not whether it was visible either:
/// a login start stays in the tray, and a person's launch always shows the window.
pub const REMEMBERED: StateFlags = StateFlags::SIZE.union(StateFlags::POSITION).union(StateFlags::MAXIMIZED);

/// Starts Gatehouse.
pub fn run() {
    gatehouse_app::no_core_dumps();
    gatehouse_app::init_tracing();
    // Without a display GTK can't start, and would abort with an internal panic: say what to do instead.
    if !handover::has_display(|name| std::env::var_os(name)) {
        say!(
            "gatehouse: error[no_display]: Gatehouse's window needs a graphical session (DISPLAY or WAYLAND_DISPLAY \
             is not set). Over SSH or in a script, use the command line: gatehouse sign-in --device, gatehouse \
             token, gatehouse --help."
        );
        std::process::exit(1);
    }
    let mut context = tauri::generate_context!();
    #[cfg(target_os = "linux")]
    if hand_to_running_instance() {
        return;
    }
    // This process is the running instance now, so nothing waits for a sign-in: a link it was started with
    // answers none. It would stay in this process's command line (`/proc/PID/cmdline`, readable by every local
    // user) for as long as it runs, so the process starts again in place with a flag that stands for it.
    #[cfg(unix)]
    if let Some(args) = launch::without_links(&std::env::args_os().collect::<Vec<_>>()) {
        tracing::info!("started by a sign-in link with no sign-in waiting; starting again without it");
        // Returns only when the new image couldn't start; then this one goes on, link and all.
        let _ = handover::become_window(args);
    }
    let args: Vec<String> = std::env::args().collect();
    let installation = Installation::from_args(&args);
    for scheme in redirect_schemes(&installation.config) {
        accept_scheme(&mut context, &scheme);
    }
    // A light tray start that fell back to this program (no session bus) makes no window at all, so no web view
    // and none of WebKit's processes: the tray makes the window when a person asks for it.
    if Launch::parse(&args).light_tray {
        for window in &mut context.config_mut().app.windows {
            window.create = false;
        }
    }
    let app = build_app(tauri::Builder::default(), installation).build(context);
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
pub fn build_app<R: Runtime>(builder: tauri::Builder<R>, installation: Installation) -> tauri::Builder<R> {
    let builder = builder
        // single-instance must come first, so a second launch (the OS delivering a deep link) is forwarded
        // to this instance before any other plugin runs in it. A link among its arguments reaches the deep-link
        // plugin, which hands it to the accounts.
        .plugin(tauri_plugin_single_instance::init(|app, argv, _cwd| asked(app, &Launch::parse(&argv))))
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
            #[cfg(unix)]
            programs::programs,
            #[cfg(unix)]
            programs::decide_program,
            #[cfg(unix)]
            programs::watch_questions,
        ])
        .setup(move |app| set_up(app, installation))
        // The keychain and the network are touched only once the window has shown its first page, so they
        // never delay it.
        .on_page_load(|webview, payload| {
            if webview.label() == MAIN_WINDOW && payload.event() == PageLoadEvent::Finished {
                tracing::info!("window ready");
                Startup::ready(webview.app_handle(), |s| s.page_loaded = true);
            }
        })
        .on_window_event(on_window_event)
}

/// Opens the accounts of `installation` for the window and the tray, and listens for sign-in links.
fn set_up<R: Runtime>(app: &mut tauri::App<R>, installation: Installation) -> Result<(), Box<dyn std::error::Error>> {
    let schemes = redirect_schemes(&installation.config);
    let shell = {
        let handle = app.handle().clone();
        move || TauriShell { app: handle.clone() }
    };
    let handle = app.handle().clone();
    // The window's channel, and the tray, which listens to it.
    let sink: accounts::Sink = Box::new(move |view| {
        if let Some(channel) = handle.try_state::<ViewChannel>() {
            channel.send(view);
        }
    });
    let accounts = installation.open_accounts(shell, sink, true);
    // Other programs of the user ask this process for tokens while it runs (the light tray serves them when the
    // window has handed over).
    #[cfg(unix)]
    app.manage(programs::Programs::of(&installation));
    #[cfg(unix)]
    {
        let agent = tauri::async_runtime::block_on(async { gatehouse_app::agent::start_for(&installation, &accounts) });
        if let Some(agent) = &agent {
            programs::ask_in_window(app.handle(), agent.consent());
        }
        app.manage(programs::QuestionChannel::default());
        app.manage(TokenAgent(agent));
    }
    app.manage(accounts);
    let early_links = deep_link::listen(app.handle(), &schemes);
    // A login start makes no window, so there is no first page to wait for.
    let no_window = app.config().app.windows.iter().any(|w| w.label == MAIN_WINDOW && !w.create);
    let launch = Launch::parse(&std::env::args().collect::<Vec<_>>());
    Startup::ready(app.handle(), |s| {
        s.links = Some(early_links);
        s.page_loaded |= no_window;
        s.sign_in = launch.sign_in;
        s.stale_link = launch.stale_link;
    });
    Ok(())
}

/// Closing the window leaves Gatehouse in the tray, and destroys the window: its web view and WebKit's processes
/// are most of what Gatehouse weighs, and nothing lives in them. Every state the window shows is the backend's, so
/// Show makes a new window that shows it all again.
fn on_window_event<R: Runtime>(window: &tauri::Window<R>, event: &WindowEvent) {
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
            #[cfg(unix)]
            programs::window_closed(app);
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
}

/// Hands this launch (its arguments and working directory) to the Gatehouse already running, if there is one,
/// and returns whether it took them. It is what tauri-plugin-single-instance does for a second launch, over the
/// same D-Bus name and method, but before GTK and WebKit start: the plugin can only do it from inside a started
/// app, which must then exit with GTK's threads running, and that exit crashed about once in a thousand
/// launches. When nothing answers, the launch goes on, and the plugin decides as before.
#[cfg(target_os = "linux")]
fn hand_to_running_instance() -> bool {
    let (name, _) = handover::single_instance();
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
    match zbus::block_on(handover::to_running_instance(bus.inner(), argv)) {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!("couldn't hand this launch to the running Gatehouse ({e}); starting normally");
            false
        }
    }
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
        let agent = app.try_state::<TokenAgent>().and_then(|agent| agent.0.as_ref().map(|a| a.in_flight()));
        let idle = accounts_of(app).is_some_and(|accounts| {
            accounts.services().iter().all(|service| !service.is_pending() && service.view().phase.is_settled())
        }) && agent.unwrap_or(0) == 0;
        if idle {
            tracing::info!("the window is closed and nothing is in progress; handing over to the light tray");
            // No new caller from here on, and any that slipped in is answered before the `exec`.
            if let Some(agent) = app.try_state::<TokenAgent>() {
                if let Some(agent) = agent.0.as_ref() {
                    tauri::async_runtime::block_on(agent.stop_and_finish(std::time::Duration::from_secs(90)));
                }
            }
            let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
            let e = handover::become_light_tray(&args);
            tracing::warn!("the light tray couldn't start ({e}); staying in the tray as the window program");
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
}

/// The token agent this process runs, if it could start one.
#[cfg(unix)]
pub struct TokenAgent(Option<gatehouse_app::agent::Agent>);

#[cfg(unix)]
impl TokenAgent {
    /// What the agent asks before it hands out a token, if an agent runs.
    pub fn consent(&self) -> Option<&gatehouse_app::agent::consent::Consent> {
        self.0.as_ref().map(gatehouse_app::agent::Agent::consent)
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
    /// A sign-in asked for at launch ([`Launch::sign_in`]), started once the sessions are restored.
    sign_in: Option<Option<String>>,
    /// Started for a link that answered no sign-in ([`launch::STALE_LINK_FLAG`]): said once restored.
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

    /// The window's commands reach the service, and what comes back is the view and typed errors. A broken
    /// profile keeps the test away from the keychain and the network.
    #[test]
    fn commands_are_wired_to_the_service() {
        let config =
            Config::parse_all("client_id = \"x\"\nredirect_uri = \"x\"\nresource_url = \"x\"\n", "broken.toml");
        let mut context = mock_context(noop_assets());
        // single-instance turns the identifier into a D-Bus name, which the mock's default is not.
        context.config_mut().identifier = "com.example.gatehouse.wiring-test".into();
        let installation = Installation {
            config,
            config_file: None,
            added_file: None,
            runtime_dir: None,
            handout_log: None,
            programs_file: None,
        };
        let mut app = build_app(mock_builder(), installation).build(context).unwrap();
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
