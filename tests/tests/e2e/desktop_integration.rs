//! The desktop around the window: the loopback redirect, the scheme handler, the tray, the installed package, the window's size and place, start at login and a closed window.

use super::*;

#[tokio::test]
async fn s17_a_loopback_sign_in_in_the_real_browser_then_the_port_is_closed() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let (idp, desktop, app, port) = start_loopback_sign_in("s17-loopback").await;
    // A request for another path is refused, and the sign-in still waits.
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let wrong = http.get(format!("http://127.0.0.1:{port}/not-the-callback")).send().await.unwrap();
    assert_eq!(wrong.status(), 404);
    assert_eq!(app.phase().await, "waitingForBrowser");

    desktop.release_browser();
    app.wait_for_phase("signedIn").await;
    app.wait_for_text("account", "Alice").await;
    app.wait_for_text("resource", "Hello, Alice!").await;
    app.screenshot("signed-in-through-loopback").await;
    wait_for("the browser to show Gatehouse's page", desktop::UI_TIMEOUT, || async {
        desktop.browser_log().contains("loopback page: Signed in").then_some(())
    })
    .await;
    assert_eq!(keyring::count_entries(&desktop.profile), 1);

    // The listener took its one request and closed: a second request finds nothing there.
    wait_for("the listener to close", desktop::UI_TIMEOUT, || async { (!accepts_connections(port)).then_some(()) })
        .await;
    assert!(http.get(desktop.last_redirect()).send().await.is_err());
    assert_eq!(idp.events_named("grant.success", Some("authorization_code")).await.len(), 1);
    app.quit().await;
}

#[tokio::test]
async fn s18_cancel_during_a_loopback_sign_in_closes_the_port() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let (idp, desktop, app, port) = start_loopback_sign_in("s18-loopback-cancel").await;
    app.click("cancel").await;
    app.wait_for_phase("signedOut").await;
    wait_for("the listener to close", desktop::UI_TIMEOUT, || async { (!accepts_connections(port)).then_some(()) })
        .await;

    // The person finishes in the browser anyway: its redirect finds nothing listening, and nothing is exchanged.
    desktop.release_browser();
    wait_for("the browser to give up", desktop::UI_TIMEOUT, || async {
        (!desktop.browser_log().is_empty()).then_some(())
    })
    .await;
    assert!(!desktop.browser_log().contains("Signed in"), "{}", desktop.browser_log());
    assert_eq!(app.phase().await, "signedOut");
    assert!(keyring::lookup(&desktop.profile).is_none());
    assert!(idp.events_named("grant.success", Some("authorization_code")).await.is_empty());
    app.quit().await;
}

/// Trap 2 of issue 8: a development build must treat any default handler for its scheme as registered, and
/// leave it alone. With no handler at all, it registers one that Debian 12's `xdg-open` accepts.
#[tokio::test]
async fn s19_a_debug_build_leaves_the_users_own_scheme_handler_alone() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let (_idp, desktop) = start("s19-own-handler");
    let apps = std::path::PathBuf::from(std::env::var_os("XDG_DATA_HOME").unwrap()).join("applications");
    let ours = apps.join("gatehouse-handler.desktop");
    // The person's own handler, under a name of their choosing; the harness's handler is taken away.
    let own = apps.join("my-own-gatehouse.desktop");
    let entry = format!(
        "[Desktop Entry]\nType=Application\nName=My Gatehouse\nExec={} %u\nNoDisplay=true\n\
         MimeType=x-scheme-handler/com.example.gatehouse;\n",
        desktop::app_binary().display()
    );
    std::fs::write(&own, &entry).unwrap();
    std::fs::remove_file(&ours).unwrap();
    let status = std::process::Command::new("xdg-mime")
        .args(["default", "my-own-gatehouse.desktop", "x-scheme-handler/com.example.gatehouse"])
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(scheme_handler(), "my-own-gatehouse.desktop");

    // The sign-in's redirect arrives through the person's handler, which the app left as it was.
    let app = launch_and_sign_in(&desktop).await;
    assert_eq!(scheme_handler(), "my-own-gatehouse.desktop");
    assert_eq!(std::fs::read_to_string(&own).unwrap(), entry);
    assert!(!ours.exists(), "the app must not register itself over the person's handler");
    app.quit().await;

    // With no handler at all, the development build registers one, and links arrive through it.
    std::fs::remove_file(&own).unwrap();
    let mimeapps = std::path::PathBuf::from(std::env::var_os("XDG_CONFIG_HOME").unwrap()).join("mimeapps.list");
    let kept: String = std::fs::read_to_string(&mimeapps)
        .unwrap_or_default()
        .lines()
        .filter(|line| !line.contains("x-scheme-handler/com.example.gatehouse"))
        .map(|line| format!("{line}\n"))
        .collect();
    std::fs::write(&mimeapps, kept).unwrap();
    let _ = std::process::Command::new("update-desktop-database").arg(&apps).status();
    assert_eq!(scheme_handler(), "", "no handler may be left for this part");
    let app = desktop.launch_with(Launch { label: Some("self-registered".into()), ..Launch::default() }).await;
    app.wait_for_phase("signedIn").await;
    assert_eq!(scheme_handler(), "gatehouse-handler.desktop");
    let written = std::fs::read_to_string(&ours).unwrap();
    // The window registers itself: links go straight to the window program.
    assert!(written.contains(&format!("\nExec={} %u\n", desktop::window_binary().display())), "{written}");
    desktop.xdg_open("com.example.gatehouse:/callback?code=x&state=y");
    app.wait_for_notice("callback_rejected").await;
    app.quit().await;
}

/// The tray, read and clicked over D-Bus as a panel does: its menu follows the state, and its items work
/// against the real provider and keychain.
#[tokio::test]
async fn s20_the_tray_menu_follows_the_state_and_its_items_work() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let host = harness::tray::TrayHost::start();
    let before = host.registered();
    let (idp, desktop) = start("s20-tray");
    let app = desktop.launch().await;
    app.wait_for_phase("signedOut").await;
    let menu = host.menu_after(before).await;
    let signed_out = ["Signed out (disabled)", "Sign in", "Start at login [ ]", "Show Gatehouse", "Quit"];
    expect_tray(&menu, &signed_out).await;

    // Sign in from the tray; while the browser waits, the tray offers Cancel, which works.
    desktop.hold_browser();
    menu.click("Sign in");
    app.wait_for_phase("waitingForBrowser").await;
    expect_tray(&menu, &["Signing in… (disabled)", "Cancel sign-in", "Start at login [ ]", "Show Gatehouse", "Quit"])
        .await;
    menu.click("Cancel sign-in");
    app.wait_for_phase("signedOut").await;
    app.wait_for_notice("sign_in_cancelled").await;
    expect_tray(&menu, &signed_out).await;
    desktop.release_browser();
    app.wait_for_notice("callback_rejected").await;

    // Signed in, the tray says who, and its Refresh and Sign out act on the real session.
    sign_in_as_alice(&app).await;
    expect_tray(
        &menu,
        &["Signed in as Alice (disabled)", "Refresh", "Sign out", "Start at login [ ]", "Show Gatehouse", "Quit"],
    )
    .await;
    let icon = harness::tests_dir().join("../icons/32x32.png");
    desktop::draw(&desktop.artifacts, "tray-menu-signed-in", &menu.to_html(&icon), (320, 250));
    menu.click("Refresh");
    wait_for("the provider to record the tray's refresh", desktop::UI_TIMEOUT, || async {
        (idp.events_named("grant.success", Some("refresh_token")).await.len() == 1).then_some(())
    })
    .await;
    app.wait_for_phase("signedIn").await;
    let refresh = keyring::stored(&desktop.profile, "refresh_token");
    menu.click("Sign out");
    app.wait_for_phase("signedOut").await;
    expect_tray(&menu, &signed_out).await;
    assert!(keyring::lookup(&desktop.profile).is_none());
    assert_eq!(idp.introspect(&refresh).await["active"], false);

    menu.click("Show Gatehouse");
    assert_eq!(app.phase().await, "signedOut", "Show leaves the app as it was");
    menu.click("Quit");
    desktop::wait_for_no_app().await;
}

/// The package as installed: its files unpacked into a prefix that `XDG_DATA_DIRS` and `PATH` point at, its
/// desktop entry made the scheme handler, and the app started from that entry. A full sign-in then runs
/// through the packaged binary: the browser's redirect reaches it through the packaged `Exec` line.
#[tokio::test]
async fn s21_the_installed_package_signs_in_through_its_desktop_entry() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let (idp, desktop) = start("s21-installed");
    let prefix = desktop.scratch.join("installed");
    let package = desktop::debian_package();
    let status = std::process::Command::new("dpkg-deb").arg("-x").arg(&package).arg(&prefix).status().unwrap();
    assert!(status.success(), "dpkg-deb -x {}", package.display());
    let binary = prefix.join("usr/bin/gatehouse-window");
    let entry = prefix.join("usr/share/applications/Gatehouse.desktop");
    let data_dirs = format!("{}:/usr/local/share:/usr/share", prefix.join("usr/share").display());
    let path = format!("{}:{}", prefix.join("usr/bin").display(), std::env::var("PATH").unwrap());
    // The packaged entry is the only handler: the development build's is taken away.
    let apps = std::path::PathBuf::from(std::env::var_os("XDG_DATA_HOME").unwrap()).join("applications");
    std::fs::remove_file(apps.join("gatehouse-handler.desktop")).unwrap();
    let _ = std::process::Command::new("update-desktop-database").arg(&apps).status();
    let xdg_mime = |args: &[&str]| {
        let output = std::process::Command::new("xdg-mime").args(args).env("XDG_DATA_DIRS", &data_dirs).output();
        String::from_utf8_lossy(&output.unwrap().stdout).trim().to_owned()
    };
    xdg_mime(&["default", "Gatehouse.desktop", "x-scheme-handler/com.example.gatehouse"]);
    assert_eq!(xdg_mime(&["query", "default", "x-scheme-handler/com.example.gatehouse"]), "Gatehouse.desktop");

    // As on a GNOME desktop, xdg-open hands links to `gio open`, which (unlike xdg-open's own fallback) passes
    // the URL only where the entry's Exec line says `%u`.
    let env = vec![
        ("XDG_DATA_DIRS".to_string(), data_dirs.clone()),
        ("PATH".to_string(), path),
        ("XDG_CURRENT_DESKTOP".to_string(), "GNOME".to_string()),
    ];
    let launch = Launch { env, via_entry: Some(entry), label: Some("installed".into()), ..Launch::default() };
    let app = desktop.launch_with(launch).await;
    app.wait_for_phase("signedOut").await;
    assert!(!desktop::processes_of(&binary).is_empty(), "the packaged binary must be the one running");
    sign_in_as_alice(&app).await;
    assert_eq!(xdg_mime(&["query", "default", "x-scheme-handler/com.example.gatehouse"]), "Gatehouse.desktop");
    assert_eq!(keyring::count_entries(&desktop.profile), 1);
    assert_eq!(idp.events_named("grant.success", Some("authorization_code")).await.len(), 1);
    app.screenshot("signed-in-installed").await;
    draw_menu_entry(&desktop, &prefix);
    app.quit().await;
}

/// The window comes back where it was left and as big, after Quit and a new launch. What remembers it is a
/// file of numbers: no account, no token.
#[tokio::test]
async fn s22_the_window_remembers_its_size_and_place_and_nothing_else() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let (idp, desktop) = start("s22-window-state");
    let config_home = std::path::PathBuf::from(std::env::var_os("XDG_CONFIG_HOME").unwrap());
    let state_file = config_home.join("com.example.gatehouse").join(".window-state.json");
    let _ = std::fs::remove_file(&state_file);
    let app = launch_and_sign_in(&desktop).await;
    let first = app.window_rect().await;
    app.set_window_rect(140, 90, 640, 700).await;
    let moved = app.window_rect().await;
    assert_ne!(moved, first, "the window must have moved for this test to mean anything");
    app.quit().await;

    let text = std::fs::read_to_string(&state_file).unwrap_or_else(|e| panic!("{}: {e}", state_file.display()));
    let state: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut keys: Vec<&str> = state["main"].as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    let numbers = ["decorated", "fullscreen", "height", "maximized", "prev_x", "prev_y", "visible", "width", "x", "y"];
    assert_eq!(keys, numbers, "{text}");
    assert_eq!(state.as_object().unwrap().len(), 1, "one window: {text}");
    let hashes = desktop::issued_token_hashes(&idp.events().await);
    assert!(desktop::files_containing_tokens(&config_home, &hashes).is_empty());
    assert!(!text.contains("Alice") && !text.contains("alice"), "{text}");

    let launch = Launch { label: Some("again".into()), ..Launch::default() };
    let app = desktop.launch_with(launch).await;
    app.wait_for_phase("signedIn").await;
    assert_eq!(app.window_rect().await, moved, "the window comes back as it was left");
    app.quit().await;
    // The next scenarios start with the window as it comes by default.
    std::fs::remove_file(&state_file).unwrap();
}

/// Start at login, switched on from the tray and from the window. The login start, from the autostart entry,
/// is the light tray: no window, no WebKit, no window toolkit, the session restored without the browser; starting
/// Gatehouse again brings the window, in the same process.
#[tokio::test]
async fn s23_start_at_login_starts_hidden_in_the_tray_and_restores_quietly() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let host = harness::tray::TrayHost::start();
    let (_idp, desktop) = start("s23-start-at-login");
    // XDG Autostart: the entry is in $XDG_CONFIG_HOME/autostart.
    let config_home = std::env::var_os("XDG_CONFIG_HOME").map(std::path::PathBuf::from);
    let config_home =
        config_home.unwrap_or_else(|| std::path::PathBuf::from(std::env::var_os("HOME").unwrap()).join(".config"));
    let entry = config_home.join("autostart/Gatehouse.desktop");
    let _ = std::fs::remove_file(&entry);
    let before = host.registered();
    let app = launch_and_sign_in(&desktop).await;
    let menu = host.menu_after(before).await;
    let signed_in =
        |check: &'static str| ["Signed in as Alice (disabled)", "Refresh", "Sign out", check, "Show Gatehouse", "Quit"];
    expect_tray(&menu, &signed_in("Start at login [ ]")).await;
    assert!(desktop::window_on_screen("Gatehouse"), "a person's launch shows the window");
    assert!(!app.is_checked("start-at-login").await, "off by default");
    assert!(!entry.exists());

    // On from the tray: the entry appears and the window's setting follows.
    menu.click("Start at login");
    expect_tray(&menu, &signed_in("Start at login [x]")).await;
    app.wait_for_checked("start-at-login", true).await;
    let text = std::fs::read_to_string(&entry).unwrap_or_else(|e| panic!("{}: {e}", entry.display()));
    let exec = text.lines().find_map(|l| l.strip_prefix("Exec=")).unwrap_or_else(|| panic!("no Exec in {text}"));
    // The light tray, never the window program: a login start loads no window toolkit.
    assert_eq!(exec, format!("{} --hidden", desktop::app_binary().display()));

    // Off and on again from the window: the tray follows.
    app.click("start-at-login").await;
    expect_tray(&menu, &signed_in("Start at login [ ]")).await;
    assert!(!entry.exists(), "off removes the entry");
    app.click("start-at-login").await;
    expect_tray(&menu, &signed_in("Start at login [x]")).await;
    assert!(entry.exists());
    app.quit().await;

    // The login: the session starts the autostart entry. It makes no window, so neither a web view nor any of
    // WebKit's processes, and restores the session quietly; the tray shows who is signed in.
    let opened = desktop.browser_launches();
    let before = host.registered();
    let launch = Launch { via_entry: Some(entry.clone()), label: Some("login".into()), ..Launch::default() };
    let mut resident = desktop.launch_resident(launch);
    let menu = host.menu_after(before).await;
    expect_tray(&menu, &signed_in("Start at login [x]")).await;
    assert!(!desktop::window_on_screen("Gatehouse"), "a login start shows no window");
    assert_eq!(desktop::webkit_processes(resident.pid()), Vec::<u32>::new(), "a login start runs no WebKit");
    assert_eq!(desktop::toolkit_mapped(resident.pid()), Vec::<String>::new(), "a login start maps no toolkit");
    assert_eq!(desktop.browser_launches(), opened, "the session is restored without the browser");
    // Started again, as the OS does with a sign-in link: the launch hands itself to the light tray, which becomes
    // the window in the same process. The light tray has no sign-in waiting, so the link answers none: the window
    // says so, and the link's code never reaches the command line of the process that goes on running, which
    // every local user can read (/proc/PID/cmdline).
    let pid = resident.pid();
    let link = "com.example.gatehouse:/callback?code=stale-code-for-the-tray&state=stale-state";
    let again = std::process::Command::new(desktop::app_binary())
        .arg(link)
        .envs(desktop.app_env())
        .status()
        .unwrap_or_else(|e| panic!("starting Gatehouse again: {e}"));
    assert!(again.success(), "the second launch: {again}");
    let app = resident.attach().await;
    assert_eq!(desktop::app_processes(), vec![pid], "one Gatehouse, the one that was running");
    app.wait_for_phase("signedIn").await;
    app.wait_for_text("resource", "Hello, Alice!").await;
    let message = app.wait_for_notice("callback_rejected").await;
    assert!(message.contains("no sign-in was in progress"), "{message}");
    let cmdline = String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/cmdline")).unwrap()).replace('\0', " ");
    assert!(!cmdline.contains("stale-code-for-the-tray"), "the code is in the window's command line: {cmdline}");
    app.screenshot("shown-after-login-start").await;
    app.click("start-at-login").await;
    expect_tray(&menu, &signed_in("Start at login [ ]")).await;
    assert!(!entry.exists());
    menu.click("Quit");
    desktop::wait_for_no_app().await;
}

/// Closing the window leaves Gatehouse in the tray with no web view: no WebKit process is left, the session
/// goes on (the tray's Refresh renews it), and Show makes a new window that shows the signed-in state as it is,
/// with no new sign-in.
#[tokio::test]
async fn s33_a_closed_window_leaves_no_webkit_and_show_brings_the_state_back() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let host = harness::tray::TrayHost::start();
    let (idp, desktop) = start("s33-closed-window");
    // The app as a person starts it, with no WebDriver session: a window under automation ignores its close
    // button. Alice signs in from the tray, with the window open.
    let before = host.registered();
    let mut resident = desktop.launch_resident(Launch::default());
    let pid = resident.pid();
    let menu = host.menu_after(before).await;
    expect_tray(&menu, &["Signed out (disabled)", "Sign in", "Start at login [ ]", "Show Gatehouse", "Quit"]).await;
    assert!(desktop::window_on_screen("Gatehouse"));
    menu.click("Sign in");
    let signed_in =
        ["Signed in as Alice (disabled)", "Refresh", "Sign out", "Start at login [ ]", "Show Gatehouse", "Quit"];
    expect_tray(&menu, &signed_in).await;
    assert_eq!(desktop::webkit_processes(pid).len(), 2, "a shown window has its web and network processes");
    let open_mib = desktop::tree_pss_mib(pid);

    // The title bar's close button: the window goes, and WebKit with it; the app stays, in the tray.
    let presses = desktop::press_close("Gatehouse").await;
    eprintln!("s33: the window closed after {presses} press(es) of its close button");
    wait_for("WebKit's processes to end", desktop::UI_TIMEOUT, || async {
        desktop::webkit_processes(pid).is_empty().then_some(())
    })
    .await;
    assert_eq!(resident.pid(), pid, "closing the window leaves the app running");
    // With nothing in progress, the window program hands its process to the light tray: GTK and WebKitGTK go.
    wait_for("the light tray to take over", desktop::UI_TIMEOUT, || async {
        desktop::toolkit_mapped(pid).is_empty().then_some(())
    })
    .await;
    let closed_mib = desktop::tree_pss_mib(pid);
    eprintln!("s33: {open_mib:.0} MiB PSS with the window open, {closed_mib:.0} MiB closed (debug build)");
    assert!(closed_mib < open_mib, "{closed_mib} MiB closed, {open_mib} MiB open");
    expect_tray(&menu, &signed_in).await;
    // A click on the icon shows the window (its Activate), so the item is not "only a menu": KDE Plasma and
    // other panels that honour ItemIsMenu would otherwise open the menu and never show the window.
    assert_eq!(host.latest_item_is_menu(), Some(false), "the light tray's ItemIsMenu");
    let access = keyring::stored(&desktop.profile, "access_token");
    menu.click("Refresh");
    wait_for("the tray's refresh with no window", desktop::UI_TIMEOUT, || async {
        (keyring::stored(&desktop.profile, "access_token") != access).then_some(())
    })
    .await;
    assert_eq!(idp.events_named("grant.success", Some("refresh_token")).await.len(), 1);

    // Show: a new window, with the session as it is now.
    menu.click("Show Gatehouse");
    let app = resident.attach().await;
    app.wait_for_phase("signedIn").await;
    app.wait_for_text("account", "Alice").await;
    app.wait_for_text("resource", "Hello, Alice!").await;
    assert_eq!(desktop::webkit_processes(pid).len(), 2);
    assert_eq!(idp.events_named("grant.success", Some("authorization_code")).await.len(), 1, "no new sign-in");
    assert_eq!(keyring::count_entries(&desktop.profile), 1);
    app.screenshot("shown-again").await;
    app.audit_accessibility("shown-again").await;
    assert_eq!(app.focused().await, "refresh", "focus on the signed-in view's first action");
    menu.click("Quit");
    desktop::wait_for_no_app().await;
}
