//! The desktop around the app under test: its config, the OS's scheme handler, the "system browser", a
//! WebDriver session on the real window, and the processes behind them. Everything is stopped on drop.
//!
//! The harness runs inside `tests/bin/test`, which provides Xvfb, a private D-Bus session with an unlocked
//! throwaway gnome-keyring, and temporary HOME and XDG directories.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

use crate::idp::{stop_child, Idp};
use crate::wait_for;

mod card;
mod system;
pub use card::Card;
pub use system::*;

/// How long the UI gets to reach a state; generous for a debug build on two cores.
pub const UI_TIMEOUT: Duration = Duration::from_secs(30);

/// The Debian package built by `tests/bin/package --debug`: the newest in the bundle directory.
pub fn debian_package() -> PathBuf {
    let dir = app_binary().with_file_name("bundle").join("deb");
    let newest = std::fs::read_dir(&dir)
        .ok()
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "deb"))
        .max_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
    newest.unwrap_or_else(|| panic!("no .deb in {}: run tests/bin/package --debug", dir.display()))
}

/// The `gatehouse` program built by `cargo build`: the command line, and the way people start the window. The
/// debug build, unless `GATEHOUSE_TEST_PROFILE` names another (`release`, for figures).
pub fn app_binary() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::tests_dir().join("..").join("target"));
    let profile = std::env::var("GATEHOUSE_TEST_PROFILE").unwrap_or_else(|_| "debug".into());
    let binary = target.join(profile).join("gatehouse");
    assert!(binary.exists(), "{} is missing: build the workspace first", binary.display());
    binary.canonicalize().unwrap_or(binary)
}

/// The command line and light tray program, `gatehouse-cli`, which `gatehouse` hands every command but an
/// agent's token to (in the same process).
pub fn command_binary() -> PathBuf {
    app_binary().with_file_name("gatehouse-cli")
}

/// The window program, `gatehouse-window`, which `gatehouse-cli` hands a launch to (in the same process).
pub fn window_binary() -> PathBuf {
    app_binary().with_file_name("gatehouse-window")
}

/// One scenario's desktop: a config file pointing at its provider, a scheme handler for the app, and the
/// control files of the test browser.
pub struct Desktop {
    /// The scenario's name, for artifacts.
    pub name: String,
    /// The keychain profile the app uses.
    pub profile: String,
    /// Where logs and screenshots go.
    pub artifacts: PathBuf,
    /// Scratch space, removed on drop.
    pub scratch: PathBuf,
    /// The config file the app reads.
    pub config: PathBuf,
    /// The test browser's control directory.
    pub browser_dir: PathBuf,
}

impl Desktop {
    /// Sets up the desktop for scenario `name` against `idp`.
    pub fn new(name: &str, idp: &Idp) -> Desktop {
        // A scenario starts with no app running: one left by an earlier failure would take over the launch.
        terminate(app_processes());
        let artifacts = crate::artifacts_dir(name);
        let scratch_root =
            std::env::var_os("GATEHOUSE_TEST_SCRATCH").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
        let scratch = scratch_root.join(format!("e2e-{name}"));
        let _ = std::fs::remove_dir_all(&scratch);
        let browser_dir = scratch.join("browser");
        std::fs::create_dir_all(&browser_dir).unwrap_or_else(|e| panic!("scratch: {e}"));
        let profile = format!("e2e-{name}");
        let config = scratch.join("gatehouse.toml");
        std::fs::write(&config, idp.profile_toml(&profile)).unwrap_or_else(|e| panic!("config: {e}"));
        register_scheme_handler();
        register_default_browser(&crate::tests_dir().join("bin").join("chromium-user"));
        let desktop = Desktop { name: name.to_owned(), profile, artifacts, scratch, config, browser_dir };
        desktop.browser_decides("approve");
        desktop
    }

    /// What the person in the browser will do next: `approve`, `deny` or `ignore`.
    pub fn browser_decides(&self, decision: &str) {
        std::fs::write(self.browser_dir.join("decision"), decision).unwrap_or_else(|e| panic!("decision: {e}"));
    }

    /// Who signs in at the provider's login page from now on (`alice` until this is called).
    pub fn browser_signs_in_as(&self, login: &str) {
        std::fs::write(self.browser_dir.join("login"), login).unwrap_or_else(|e| panic!("login: {e}"));
    }

    /// Makes the person in the browser wait before signing in, until [`Desktop::release_browser`].
    pub fn hold_browser(&self) {
        std::fs::write(self.browser_dir.join("hold"), "").unwrap_or_else(|e| panic!("hold: {e}"));
    }

    /// Lets the person in the browser go on.
    pub fn release_browser(&self) {
        let _ = std::fs::remove_file(self.browser_dir.join("hold"));
    }

    /// How many times the browser was opened.
    pub fn browser_launches(&self) -> usize {
        std::fs::read_to_string(self.browser_dir.join("opened")).map(|log| log.lines().count()).unwrap_or(0)
    }

    /// The last custom-scheme redirect the browser handed to the OS.
    pub fn last_redirect(&self) -> String {
        self.try_last_redirect().unwrap_or_else(|| panic!("no redirect yet"))
    }

    /// The last authorization URL the browser was asked to open, if any yet.
    pub fn try_last_authorize(&self) -> Option<String> {
        std::fs::read_to_string(self.browser_dir.join("last-authorize")).ok()
    }

    /// What the browser did, a line per page it was asked to open.
    pub fn browser_log(&self) -> String {
        std::fs::read_to_string(self.browser_dir.join("log")).unwrap_or_default()
    }

    /// The last custom-scheme redirect the browser got, if any yet.
    pub fn try_last_redirect(&self) -> Option<String> {
        std::fs::read_to_string(self.browser_dir.join("last-redirect")).ok()
    }

    /// The environment the app (and so the browser it opens) runs with.
    pub fn app_env(&self) -> Vec<(String, String)> {
        vec![
            ("GATEHOUSE_CONFIG".into(), self.config.display().to_string()),
            ("GATEHOUSE_LOG".into(), "info".into()),
            ("GATEHOUSE_TEST_BROWSER_DIR".into(), self.browser_dir.display().to_string()),
        ]
    }

    /// Hands `link` to the OS, as a browser does with a custom-scheme redirect.
    pub fn xdg_open(&self, link: &str) {
        let status = Command::new("xdg-open")
            .arg(link)
            .envs(self.app_env())
            .status()
            .unwrap_or_else(|e| panic!("xdg-open: {e}"));
        assert!(status.success(), "xdg-open {link} failed: {status}");
    }

    /// Starts the app under WebDriver and waits for its window to render.
    pub async fn launch(&self) -> App {
        self.launch_with(Launch::default()).await
    }

    /// Starts the app under WebDriver with `launch`'s changes.
    pub async fn launch_with(&self, launch: Launch) -> App {
        wait_for_no_app().await;
        let mut env = self.app_env();
        env.extend(launch.env);
        let application = match (&launch.via_link, &launch.via_entry) {
            // The OS's way: xdg-open finds the .desktop handler and starts the app with the link as its only
            // argument. WebDriver's inspector settings reach the app through xdg-open's environment.
            (Some(link), _) => {
                env.push(("GATEHOUSE_TEST_LINK".into(), link.clone()));
                crate::tests_dir().join("bin").join("open-link")
            }
            // The applications menu's way: the desktop entry's Exec line.
            (None, Some(entry)) => {
                env.push(("GATEHOUSE_TEST_ENTRY".into(), entry.display().to_string()));
                crate::tests_dir().join("bin").join("launch-entry")
            }
            (None, None) => app_binary(),
        };
        let log = self.artifacts.join(format!("driver-{}.log", launch.label.as_deref().unwrap_or("app")));
        let mut caps = serde_json::Map::new();
        caps.insert("tauri:options".into(), json!({ "application": application, "args": [] }));
        let mut attempt = 1;
        let (client, driver, log) = loop {
            let log = log.with_extension(format!("{attempt}.log"));
            let driver = Driver::start(&log, &env);
            // tauri-driver speaks plain HTTP on loopback: no TLS stack needed.
            let session = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                .capabilities(caps.clone())
                .connect(&format!("http://127.0.0.1:{}", driver.port))
                .await;
            match session {
                Ok(client) => break (client, driver, log),
                // Starting a WebDriver session is harness plumbing, not the product: tauri-driver's proxy
                // occasionally drops the first request. Start over once, from no app, and say so.
                Err(e) if attempt == 1 => {
                    eprintln!("WebDriver session failed ({e}); starting the driver and app again");
                    drop(driver);
                    terminate(app_processes());
                    wait_for_no_app().await;
                    attempt += 1;
                }
                Err(e) => panic!("WebDriver session: {e}; see {}", self.artifacts.display()),
            }
        };
        let app = App { client: Some(client), _driver: driver, artifacts: self.artifacts.clone(), log, owns_app: true };
        app.wait_for_rendered().await;
        app
    }

    /// Starts the app as a person's session does, not under WebDriver, with `launch`'s changes; the window,
    /// whenever there is one, can then be driven with [`Resident::attach`].
    pub fn launch_resident(&self, launch: Launch) -> Resident {
        let label = launch.label.clone().unwrap_or_else(|| "resident".into());
        let inspector = crate::free_port();
        let mut env = self.app_env();
        env.extend(launch.env);
        // WebKit's inspector server, which WebDriver attaches to, and automation allowed in the app's web context.
        env.push(("WEBKIT_INSPECTOR_SERVER".into(), format!("127.0.0.1:{inspector}")));
        env.push(("TAURI_WEBVIEW_AUTOMATION".into(), "true".into()));
        let log = self.artifacts.join(format!("{label}.log"));
        let mut command = match &launch.via_entry {
            Some(entry) => {
                let mut command = Command::new("gio");
                command.arg("launch").arg(entry);
                command
            }
            None => Command::new(app_binary()),
        };
        command.args(&launch.args).envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let child = spawn_logged(command, &log, "starting the app");
        Resident { child, inspector, artifacts: self.artifacts.clone(), log, attached: 0 }
    }
}

/// The app started as a person's session does ([`Desktop::launch_resident`]): it lives on with its window
/// closed, in the tray, and its window is driven over WebDriver only while there is one. Stopped on drop.
pub struct Resident {
    child: Child,
    inspector: u16,
    artifacts: PathBuf,
    /// The app's own output.
    pub log: PathBuf,
    attached: usize,
}

impl Resident {
    /// The app's process: the first one running the window program or, with no window, the light tray (or
    /// `gatehouse`, about to become one of them). It is the same process whichever it runs: each hands over to the
    /// next by `exec`.
    pub fn pid(&self) -> u32 {
        let programs = [window_binary(), command_binary(), app_binary()];
        wait_until(|| programs.iter().flat_map(|program| processes_of(program)).min())
            .unwrap_or_else(|| panic!("the app isn't running; see {}", self.log.display()))
    }

    /// A WebDriver session on the window shown now, once it has rendered. A closed window ends its session;
    /// attach again after the window is shown again.
    pub async fn attach(&mut self) -> App {
        crate::wait_for("the window to be on screen", UI_TIMEOUT, || async {
            window_on_screen("Gatehouse").then_some(())
        })
        .await;
        self.attached += 1;
        let log = self.artifacts.join(format!("webdriver-attached-{}.log", self.attached));
        let driver = Driver::attach(&log, self.inspector);
        let url = format!("http://127.0.0.1:{}", driver.port);
        let client = crate::wait_for("a WebDriver session on the window", UI_TIMEOUT, || async {
            ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new()).connect(&url).await.ok()
        })
        .await;
        // A session starts on no page when the app has had a window before: go to the one it has now.
        let window = crate::wait_for("the window's page", UI_TIMEOUT, || async {
            client.windows().await.ok().and_then(|handles| handles.into_iter().next())
        })
        .await;
        client.switch_to_window(window).await.unwrap_or_else(|e| panic!("switching to the window: {e}"));
        let app =
            App { client: Some(client), _driver: driver, artifacts: self.artifacts.clone(), log, owns_app: false };
        app.wait_for_rendered().await;
        app
    }
}

impl Resident {
    /// Ends `app`'s WebDriver session, then closes the window with its close button ([`press_close`]): a window
    /// under automation ignores its close button, and WebKit lets go of a session a moment after its driver.
    pub async fn detach(&self, app: App) {
        drop(app);
        press_close("Gatehouse").await;
    }
}

/// Closes the window titled `title` with its close button ([`close_window`]) and waits until it is gone, pressing
/// again every 2 s while it stays: under Xvfb, with no window manager, GTK now and then drops the request when it
/// comes just after a tray action (no close reaches the app at all). Returns how many presses it took.
///
/// # Panics
/// When the window is still there after 15 presses.
pub async fn press_close(title: &str) -> usize {
    for press in 1..=15 {
        close_window(title);
        for _ in 0..20 {
            if !window_on_screen(title) {
                return press;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    panic!("the window {title:?} didn't close after 15 presses of its close button");
}

impl Drop for Resident {
    fn drop(&mut self) {
        terminate(app_processes());
        stop_child(&mut self.child);
    }
}

/// `found()`'s answer, asked every 100 ms for up to 10 s.
fn wait_until<T>(found: impl Fn() -> Option<T>) -> Option<T> {
    for _ in 0..100 {
        if let Some(value) = found() {
            return Some(value);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

impl Drop for Desktop {
    fn drop(&mut self) {
        // A browser still at work would hand its redirect to the OS later and start a stray app, which would
        // swallow the next scenario's launch: stop browsers first, then apps.
        terminate_browsers(&browser_script());
        terminate(app_processes());
        let _ = std::fs::remove_dir_all(&self.scratch);
    }
}

/// Changes to how the app is started.
#[derive(Default)]
pub struct Launch {
    /// Extra environment.
    pub env: Vec<(String, String)>,
    /// Start the app the way the OS does for a link: through xdg-open.
    pub via_link: Option<String>,
    /// Start the app from this desktop entry, as the applications menu does.
    pub via_entry: Option<PathBuf>,
    /// Names this launch's log.
    pub label: Option<String>,
    /// Arguments for the app (with [`Desktop::launch_resident`] and no desktop entry).
    pub args: Vec<String>,
}

/// Makes the debug build the handler for `com.example.gatehouse:` links, as an installer would.
fn register_scheme_handler() {
    let script = crate::tests_dir().join("bin").join("register-handler");
    let status = Command::new(script).arg(app_binary()).status().unwrap_or_else(|e| panic!("register-handler: {e}"));
    assert!(status.success(), "register-handler failed");
}

/// The script the default browser runs.
fn browser_script() -> PathBuf {
    crate::tests_dir().join("browser").join("sign-in.mjs")
}

/// Makes `browser` the default web browser in the test's XDG directories, as a person sets their default
/// browser. `xdg-open https://…` asks for the `x-scheme-handler/https` default before it falls back to
/// `$BROWSER`, so an installed browser (Chromium, say) would otherwise take the test's place.
fn register_default_browser(browser: &Path) {
    let data = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("XDG_DATA_HOME is not set: run tests/bin/test"));
    let apps = data.join("applications");
    std::fs::create_dir_all(&apps).unwrap_or_else(|e| panic!("{}: {e}", apps.display()));
    let entry = format!(
        "[Desktop Entry]\nType=Application\nName=Gatehouse test browser\nExec={} %u\nNoDisplay=true\n\
         MimeType=x-scheme-handler/http;x-scheme-handler/https;text/html;\n",
        browser.display()
    );
    std::fs::write(apps.join("gatehouse-test-browser.desktop"), entry).unwrap_or_else(|e| panic!("browser entry: {e}"));
    for mime in ["x-scheme-handler/http", "x-scheme-handler/https"] {
        let status = Command::new("xdg-mime")
            .args(["default", "gatehouse-test-browser.desktop", mime])
            .status()
            .unwrap_or_else(|e| panic!("xdg-mime: {e}"));
        assert!(status.success(), "xdg-mime default {mime} failed");
    }
}

/// `tauri-driver` with Debian's WebKitWebDriver behind it, on free ports.
struct Driver {
    port: u16,
    child: Child,
}

impl Driver {
    /// WebKitWebDriver alone, attached to the WebKit inspector server at `inspector` in an app already
    /// running (`--target`), rather than starting the app itself as tauri-driver does.
    fn attach(log: &Path, inspector: u16) -> Driver {
        let port = crate::free_port();
        let mut command = Command::new("WebKitWebDriver");
        command.args([format!("--port={port}"), format!("--target=127.0.0.1:{inspector}")]);
        Driver::ready(spawn_logged(command, log, "WebKitWebDriver"), port, &[port])
    }

    fn start(log: &Path, env: &[(String, String)]) -> Driver {
        let port = crate::free_port();
        let native_port = crate::free_port();
        let mut command = Command::new("tauri-driver");
        command
            .args(["--port", &port.to_string(), "--native-port", &native_port.to_string()])
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        // Ready when both tauri-driver and the WebKitWebDriver behind it accept connections.
        Driver::ready(spawn_logged(command, log, "tauri-driver"), port, &[port, native_port])
    }

    /// The driver `child`, serving WebDriver on `port`, once every one of `ports` accepts connections (10 s at
    /// most; then it is stopped, and this panics).
    fn ready(child: Child, port: u16, ports: &[u16]) -> Driver {
        let mut driver = Driver { port, child };
        for _ in 0..100 {
            if ports.iter().all(|p| TcpStream::connect(("127.0.0.1", *p)).is_ok()) {
                return driver;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        stop_child(&mut driver.child);
        panic!("the WebDriver server did not listen on {ports:?}");
    }
}

/// Starts `command` with its output and errors, together, in a new file at `log`.
///
/// # Panics
/// When the log can't be made or the program can't be started (`what` names it).
fn spawn_logged(mut command: Command, log: &Path, what: &str) -> Child {
    let log_file = std::fs::File::create(log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
    let err_file = log_file.try_clone().unwrap_or_else(|e| panic!("log: {e}"));
    command
        .stdout(Stdio::from(log_file))
        .stderr(Stdio::from(err_file))
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: {e} (the README's test command installs it)"))
}

impl Drop for Driver {
    fn drop(&mut self) {
        // SIGTERM, not SIGKILL: tauri-driver then stops WebKitWebDriver too.
        stop_child(&mut self.child);
    }
}

/// The app's window, driven over WebDriver.
pub struct App {
    client: Option<Client>,
    // Kept for its drop: stopping tauri-driver stops WebKitWebDriver.
    _driver: Driver,
    artifacts: PathBuf,
    log: PathBuf,
    /// Whether the app ends with this session (it was started by it), rather than with a [`Resident`].
    owns_app: bool,
}

impl App {
    fn client(&self) -> &Client {
        self.client.as_ref().unwrap_or_else(|| panic!("the WebDriver session is closed"))
    }

    /// Runs `script` in the page, as a script of the page's own could, and returns what it returns (a promise
    /// is awaited).
    pub async fn execute(&self, script: &str) -> Value {
        self.client().execute(script, vec![]).await.unwrap_or_else(|e| panic!("script failed: {e}"))
    }

    /// The first (with one profile, the only) account's card; the shortcuts below look at it.
    fn first(&self) -> Card<'_> {
        Card { app: self, scope: String::new() }
    }

    /// The card of the account of `profile`.
    pub fn card(&self, profile: &str) -> Card<'_> {
        Card { app: self, scope: format!("[data-profile='{profile}'] ") }
    }

    /// The first account's phase (`signedOut`, `waitingForBrowser`, `signedIn`, …).
    pub async fn phase(&self) -> String {
        self.first().phase().await
    }

    /// Waits until the first account is in `phase`.
    pub async fn wait_for_phase(&self, phase: &str) {
        self.first().wait_for_phase(phase).await;
    }

    /// Waits until the window shows an account, or its setup view when nothing is set up.
    async fn wait_for_rendered(&self) {
        wait_for("the window to render", UI_TIMEOUT, || async {
            let setup = self.client().execute("return !document.getElementById('setup').hidden", vec![]).await;
            (!self.phase().await.is_empty() || setup.ok() == Some(Value::Bool(true))).then_some(())
        })
        .await;
    }

    /// Types `text` into the input with `data-testid`, as a person does (its old text cleared first; an empty
    /// `text` leaves it cleared).
    pub async fn type_into(&self, test_id: &str, text: &str) {
        let element = self.shown(test_id).await;
        element.clear().await.unwrap_or_else(|e| panic!("clearing {test_id}: {e}"));
        // An empty text is a cleared field (WebDriver refuses to send no keys).
        if !text.is_empty() {
            element.send_keys(text).await.unwrap_or_else(|e| panic!("typing into {test_id}: {e}"));
        }
    }

    /// Presses `keys` where the keyboard focus is, as a person at the keyboard does: each
    /// [`fantoccini::key::Key`] or text in turn.
    pub async fn press(&self, keys: &[&str]) {
        for key in keys {
            let element = self.client().active_element().await.unwrap_or_else(|e| panic!("no focused element: {e}"));
            element.send_keys(key).await.unwrap_or_else(|e| panic!("pressing {key:?}: {e}"));
        }
    }

    /// The `data-testid` of the element that has the keyboard focus ("" for one without).
    pub async fn focused(&self) -> String {
        let id = self.execute("return document.activeElement ? document.activeElement.dataset.testid || '' : ''").await;
        id.as_str().unwrap_or_default().to_owned()
    }

    /// Presses Tab until the element with `data-testid` has the focus, at most `limit` times, and says how many it
    /// took; `None` when it was never reached.
    pub async fn tab_to(&self, test_id: &str, limit: usize) -> Option<usize> {
        let tab = fantoccini::key::Key::Tab.to_string();
        for presses in 0..=limit {
            if self.focused().await == test_id {
                return Some(presses);
            }
            self.press(&[&tab]).await;
        }
        None
    }

    /// Chooses the option with `value` in the select with `data-testid`, as a person does.
    pub async fn choose(&self, test_id: &str, value: &str) {
        let element = self.shown(test_id).await;
        element.click().await.unwrap_or_else(|e| panic!("opening {test_id}: {e}"));
        let option = element
            .find(Locator::Css(&format!("option[value='{value}']")))
            .await
            .unwrap_or_else(|e| panic!("no option {value} in {test_id}: {e}"));
        option.click().await.unwrap_or_else(|e| panic!("choosing {value} in {test_id}: {e}"));
    }

    async fn shown(&self, test_id: &str) -> fantoccini::elements::Element {
        self.first().shown(test_id).await
    }

    /// The visible text of the first element with `data-testid`, or "" when hidden or missing.
    pub async fn text(&self, test_id: &str) -> String {
        self.first().text(test_id).await
    }

    /// Waits until the element's text contains `needle`, and returns the text.
    pub async fn wait_for_text(&self, test_id: &str, needle: &str) -> String {
        self.first().wait_for_text(test_id, needle).await
    }

    /// The kind of the first account's notice, if one is shown.
    pub async fn notice_kind(&self) -> Option<String> {
        self.first().notice_kind().await
    }

    /// Waits until the first account shows a notice of `kind`, and returns its text.
    pub async fn wait_for_notice(&self, kind: &str) -> String {
        self.first().wait_for_notice(kind).await
    }

    /// Clicks the first button with `data-testid`, as a person does.
    pub async fn click(&self, test_id: &str) {
        self.first().click(test_id).await;
    }

    /// Clicks the first account's notice's Dismiss button.
    pub async fn dismiss_notice(&self) {
        self.first().dismiss_notice().await;
    }

    /// The kind of the window's own notice (a link that matched no account), if one is shown.
    pub async fn window_notice_kind(&self) -> Option<String> {
        let script = "const n = document.querySelector('[data-testid=window-notice]'); \
                      return n && !n.hidden ? n.dataset.kind : null";
        self.client().execute(script, vec![]).await.ok().and_then(|v| v.as_str().map(str::to_owned))
    }

    /// Audits the window as it is now with axe-core (from npm, run inside the real WebKitGTK page over
    /// WebDriver), against WCAG 2.x A and AA, and fails on any serious or critical violation. The report goes to
    /// the scenario's artifacts as `a11y-<name>.json`.
    ///
    /// # Panics
    /// On a serious or critical violation, or when axe-core can't run.
    pub async fn audit_accessibility(&self, name: &str) {
        let loaded = self.execute("return typeof window.axe === 'object'").await;
        if loaded != Value::Bool(true) {
            let source = std::fs::read_to_string(crate::tests_dir().join("browser/node_modules/axe-core/axe.min.js"))
                .unwrap_or_else(|e| panic!("axe-core is not installed ({e}): run tests/bin/setup --tests"));
            self.execute(&format!("{source}\n;return typeof window.axe")).await;
        }
        let script = "return axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', \
                      'wcag21a', 'wcag21aa', 'best-practice'] }, resultTypes: ['violations'] }).then((r) => \
                      r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, \
                      nodes: v.nodes.map((n) => n.target.join(' ')) })))";
        let violations = self.execute(script).await;
        let report = serde_json::to_string_pretty(&violations).unwrap_or_default();
        let _ = std::fs::write(self.artifacts.join(format!("a11y-{name}.json")), &report);
        let list = violations.as_array().unwrap_or_else(|| panic!("axe-core didn't run: {violations}"));
        let grave: Vec<&Value> =
            list.iter().filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical"))).collect();
        assert!(grave.is_empty(), "{name}: serious or critical accessibility violations: {grave:#?}");
    }

    /// The page's HTML as the webview has it now.
    pub async fn page_source(&self) -> String {
        self.client().source().await.unwrap_or_else(|e| panic!("page source: {e}"))
    }

    /// Saves a screenshot of the window as `<name>.png` among the scenario's artifacts.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        // Let the latest DOM change reach the screen first: WebKit's snapshot can otherwise show the frame
        // before it.
        let paint = "const done = arguments[arguments.length - 1]; \
                     requestAnimationFrame(() => requestAnimationFrame(() => done(true)));";
        let _ = self.client().execute_async(paint, vec![]).await;
        let png = self.client().screenshot().await.unwrap_or_else(|e| panic!("screenshot: {e}"));
        let path = self.artifacts.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        path
    }

    /// Quits with Ctrl+Q, as a person does, and waits for the process to end.
    pub async fn quit(mut self) {
        let body = self.client().find(Locator::Css("body")).await.unwrap_or_else(|e| panic!("body: {e}"));
        // The app exits at once, so the WebDriver answer may never come.
        let _ =
            tokio::time::timeout(Duration::from_secs(5), body.send_keys(&(fantoccini::key::Key::Control + "q"))).await;
        wait_for_no_app().await;
        if let Some(client) = self.client.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), client.close()).await;
        }
    }

    /// Whether the checkbox with `data-testid` is checked.
    pub async fn is_checked(&self, test_id: &str) -> bool {
        let script = format!("return document.querySelector(\"[data-testid='{test_id}']\").checked");
        self.execute(&script).await.as_bool().unwrap_or_else(|| panic!("no checkbox {test_id}"))
    }

    /// Waits until the checkbox with `data-testid` is `checked`.
    pub async fn wait_for_checked(&self, test_id: &str, checked: bool) {
        let what = format!("[data-testid={test_id}] to be {}", if checked { "checked" } else { "unchecked" });
        wait_for(&what, UI_TIMEOUT, || async { (self.is_checked(test_id).await == checked).then_some(()) }).await;
    }

    /// The window's place and size, `(x, y, width, height)`, as WebDriver reports them.
    pub async fn window_rect(&self) -> (u64, u64, u64, u64) {
        self.client().get_window_rect().await.unwrap_or_else(|e| panic!("window rect: {e}"))
    }

    /// Moves and resizes the window, as a person does with the mouse.
    pub async fn set_window_rect(&self, x: u32, y: u32, width: u32, height: u32) {
        self.client().set_window_rect(x, y, width, height).await.unwrap_or_else(|e| panic!("set window rect: {e}"));
    }

    /// The log of this app run: tauri-driver's output, which carries the app's stderr.
    pub fn log_path(&self) -> PathBuf {
        self.log.clone()
    }
}

impl Drop for App {
    fn drop(&mut self) {
        // The driver, dropped next, stops WebKitWebDriver; make sure the app goes too, also after a panic.
        if self.owns_app {
            terminate(app_processes());
        }
    }
}

/// Draws `html` with headless Chromium (installed by the test set-up) as `<name>.png` among `artifacts`. It is
/// for what has no window of its own to screenshot here: no panel or application menu runs under Xvfb, so the
/// tray menu and the desktop entry are drawn from the real data, read over D-Bus or from the package.
pub fn draw(artifacts: &Path, name: &str, html: &str, size: (u32, u32)) -> PathBuf {
    let page = artifacts.join(format!("{name}.html"));
    let png = artifacts.join(format!("{name}.png"));
    std::fs::write(&page, html).unwrap_or_else(|e| panic!("{}: {e}", page.display()));
    let status = Command::new("chromium")
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"])
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("--window-size={},{}", size.0, size.1))
        .arg(format!("file://{}", page.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("chromium: {e}"));
    assert!(status.success() && png.exists(), "chromium could not draw {name}");
    png
}

/// Escapes `text` for HTML.
pub fn html_text(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_token_written_anywhere_below_a_directory() {
        let dir = std::env::temp_dir().join(format!("gatehouse-leak-check-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("deep/er")).unwrap();
        let token = "Zk9xW3Bq1T0y7uVhL8dE2aRcN5mJ4sGfHpKiQoXbYwA";
        std::fs::write(dir.join("deep/er/state.json"), format!("{{\"t\":\"{token}\"}}")).unwrap();
        std::fs::write(dir.join("clean.txt"), "nothing to see").unwrap();
        let found = files_containing_tokens(&dir, &[crate::sha256_hex(token)]);
        assert_eq!(found, vec![dir.join("deep/er/state.json")]);
        assert!(files_containing_tokens(&dir, &[crate::sha256_hex("other")]).is_empty());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
