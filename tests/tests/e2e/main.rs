//! The product as a person meets it: clicks in the real window (WebKitGTK over WebDriver), the real demo
//! provider's pages in the "browser", the OS routing the deep link back through xdg-open and a .desktop
//! handler into the running instance, and the real keychain. The test reaches the app only through its
//! window, the OS and the provider.
//!
//! The scenarios share one display, bus and keyring and the app is single-instance, so they run one at a time.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed assertion

#[path = "../common/mod.rs"]
mod common;

use harness::desktop::{self, App, BareBus, Desktop, Launch};
use harness::idp::Idp;
use harness::{accepts_connections, keyring, sha256_hex, wait_for, with_param};

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn start(name: &str) -> (Idp, Desktop) {
    keyring::require_secret_service();
    let idp = Idp::start(&harness::artifacts_dir(name).join("idp.log"));
    let desktop = Desktop::new(name, &idp);
    (idp, desktop)
}

/// Launches the app and signs in through the browser, checking what the person sees on the way.
async fn launch_and_sign_in(desktop: &Desktop) -> App {
    let app = desktop.launch().await;
    app.wait_for_phase("signedOut").await;
    sign_in_as_alice(&app).await;
    app
}

/// Presses Sign in and waits until the window shows Alice's account and data.
async fn sign_in_as_alice(app: &App) {
    app.click("sign-in").await;
    app.wait_for_phase("signedIn").await;
    app.wait_for_text("account", "Alice").await;
    app.wait_for_text("resource", "Hello, Alice!").await;
}

mod accounts;
mod command_line_and_load;
mod desktop_integration;
mod first_run;

/// The window's `get_state` round trip, measured in the page: what a person would feel as the window's
/// responsiveness.
async fn get_state_round_trip_ms(app: &App) -> f64 {
    let script = "const t = performance.now(); \
                  return window.__TAURI__.core.invoke('get_state').then(() => performance.now() - t);";
    app.execute(script).await.as_f64().unwrap()
}

fn percentile(values: &[f64], p: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// The profile's config with a loopback redirect (RFC 8252 §7.3) instead of the private-use scheme.
fn use_loopback(desktop: &Desktop) {
    let text = std::fs::read_to_string(&desktop.config).unwrap();
    std::fs::write(&desktop.config, text.replace("com.example.gatehouse:/callback", "http://127.0.0.1/callback"))
        .unwrap();
}

/// The port of the loopback listener the waiting sign-in opened. The authorization request was pushed to the
/// provider (RFC 9126), so the browser's URL doesn't carry the redirect URI: the port is the one the app listens
/// on, as the OS shows it, besides those in `before` (WebDriver's own inspector port is one).
async fn loopback_port(desktop: &Desktop, before: &[u16]) -> u16 {
    let authorize =
        wait_for("the browser to be opened", desktop::UI_TIMEOUT, || async { desktop.try_last_authorize() }).await;
    let authorize = url::Url::parse(&authorize).unwrap();
    assert!(authorize.query_pairs().all(|(k, _)| k != "redirect_uri"), "pushed, not in the URL: {authorize}");
    let mut ports = desktop::listening_loopback_ports(&desktop::app_processes());
    ports.retain(|p| !before.contains(p));
    assert_eq!(ports.len(), 1, "one new listener: {ports:?}, besides {before:?}");
    ports[0]
}

/// Launches the app with a loopback profile and presses Sign in, with the person in the browser not started
/// yet. Returns the listener's port, which is open.
async fn start_loopback_sign_in(name: &str) -> (Idp, Desktop, App, u16) {
    let (idp, desktop) = start(name);
    use_loopback(&desktop);
    let app = desktop.launch().await;
    app.wait_for_phase("signedOut").await;
    let before = desktop::listening_loopback_ports(&desktop::app_processes());
    desktop.hold_browser();
    app.click("sign-in").await;
    app.wait_for_phase("waitingForBrowser").await;
    let port = loopback_port(&desktop, &before).await;
    assert!(accepts_connections(port));
    (idp, desktop, app, port)
}

/// `xdg-mime`'s default handler for Gatehouse's scheme, as the OS would pick it.
fn scheme_handler() -> String {
    let output = std::process::Command::new("xdg-mime")
        .args(["query", "default", "x-scheme-handler/com.example.gatehouse"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// Waits until the tray menu reads `want` (labels in order; "(disabled)" after those that can't be clicked).
async fn expect_tray(menu: &harness::tray::TrayMenu, want: &[&str]) {
    let seen = std::sync::Mutex::new(Vec::new());
    let read = || async {
        let summary = menu.summary();
        let matches = summary == want;
        *seen.lock().unwrap() = summary;
        matches.then_some(())
    };
    let waited = tokio::time::timeout(desktop::UI_TIMEOUT, wait_for("the tray menu", desktop::UI_TIMEOUT * 2, read));
    if waited.await.is_err() {
        panic!("the tray menu didn't come to read {want:?}; it reads {:?}", seen.lock().unwrap());
    }
}

/// Draws the installed desktop entry as an applications menu shows it: its icon from the hicolor theme, its
/// name, and on hover its comment; with the entry's text beside it.
fn draw_menu_entry(desktop: &Desktop, prefix: &std::path::Path) {
    let entry = std::fs::read_to_string(prefix.join("usr/share/applications/Gatehouse.desktop")).unwrap();
    let field = |key: &str| {
        entry.lines().find_map(|l| l.strip_prefix(&format!("{key}="))).map(desktop::html_text).unwrap_or_default()
    };
    let icon = prefix.join(format!("usr/share/icons/hicolor/128x128/apps/{}.png", field("Icon")));
    assert!(icon.exists(), "the entry's icon is in the package: {}", icon.display());
    let html = format!(
        "<!doctype html><meta charset=utf-8><style>body{{margin:0;background:#2d2d2d;color:#eee;\
         font:14px 'DejaVu Sans',sans-serif;display:flex;gap:24px;padding:24px}}.tile{{width:150px;text-align:center;\
         background:#444;border-radius:14px;padding:18px 6px}}.tile img{{width:96px}}.tip{{margin-top:10px;font-size:12px;\
         color:#ccc}}pre{{margin:0;background:#1e1e1e;padding:12px;border-radius:8px;font-size:12px;color:#cfc}}</style>\
         <div class=tile><img src=\"file://{}\"><div>{}</div><div class=tip>{}</div></div><pre>{}</pre>",
        icon.display(),
        field("Name"),
        field("Comment"),
        desktop::html_text(&entry)
    );
    desktop::draw(&desktop.artifacts, "application-menu-entry", &html, (760, 300));
}

/// What the setup form shows beside the field `test_id`: the message, whether the field is marked invalid and
/// described by that message, whether it has the focus, and whether the message sits right below it.
#[derive(Debug)]
struct FieldProblem {
    message: String,
    marked: bool,
    focused: bool,
    beside: bool,
}

async fn field_problem(app: &App, test_id: &str) -> FieldProblem {
    let script = format!(
        "const input = document.querySelector('[data-testid={test_id}]'); \
         const error = document.getElementById(input.id + '-error'); \
         if (error.hidden || !error.textContent) return null; \
         const gap = error.getBoundingClientRect().top - input.getBoundingClientRect().bottom; \
         return [error.textContent, input.getAttribute('aria-invalid') === 'true' && \
           (input.getAttribute('aria-describedby') || '').split(' ').includes(error.id), \
           document.activeElement === input, error.parentElement === input.parentElement && gap >= 0 && gap < 24];"
    );
    let found = wait_for(&format!("a message beside {test_id}"), desktop::UI_TIMEOUT, || async {
        Some(app.execute(&script).await).filter(|v| v.is_array())
    })
    .await;
    FieldProblem {
        message: found[0].as_str().unwrap_or_default().to_owned(),
        marked: found[1] == true,
        focused: found[2] == true,
        beside: found[3] == true,
    }
}

/// The window header's provider line.
async fn header(app: &App) -> String {
    app.execute("return document.getElementById('provider').textContent").await.as_str().unwrap_or_default().to_owned()
}

/// The whole setup view's text, which no message may fill with files, keys or restarts.
async fn setup_text(app: &App) -> String {
    app.execute(
        "return document.getElementById('setup-form').innerText + document.getElementById('setup-findings').innerText",
    )
    .await
    .as_str()
    .unwrap_or_default()
    .to_owned()
}

/// A launch from a clean home: no config file (and no `GATEHOUSE_CONFIG`), so the window opens on its setup view,
/// in a config directory of the scenario's own. Returns the launch and where the config file will be.
fn clean_home(desktop: &Desktop) -> (Launch, std::path::PathBuf) {
    let home_config = desktop.scratch.join("home-config");
    // The desktop's own settings stay: the default browser and scheme handlers chosen with xdg-mime live in the
    // config directory too, and the browser the app opens inherits its environment.
    std::fs::create_dir_all(&home_config).unwrap();
    if let Some(desktop_config) = std::env::var_os("XDG_CONFIG_HOME").map(std::path::PathBuf::from) {
        let _ = std::fs::copy(desktop_config.join("mimeapps.list"), home_config.join("mimeapps.list"));
    }
    let env = vec![
        ("GATEHOUSE_CONFIG".to_owned(), String::new()),
        ("XDG_CONFIG_HOME".to_owned(), home_config.display().to_string()),
    ];
    (Launch { env, ..Launch::default() }, home_config.join(keyring::SERVICE).join("config.toml"))
}

/// The profile of the window's only account card.
async fn only_profile(app: &App) -> String {
    let script = "const c = document.querySelectorAll('[data-testid=account-card]'); \
                  return c.length === 1 ? c[0].dataset.profile : ''";
    wait_for("one account card", desktop::UI_TIMEOUT, || async {
        app.execute(script).await.as_str().filter(|p| !p.is_empty()).map(str::to_owned)
    })
    .await
}

mod session;
mod setup;
