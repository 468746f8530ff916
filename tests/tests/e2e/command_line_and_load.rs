//! The window beside the command line, the setup form across a closed window, and the app under load (figures and floods, run on demand).

use super::*;

/// The window and twenty `gatehouse token` processes renew one expired session together: the provider sees
/// exactly one refresh grant, every process prints a token the resource takes, the window goes on with the
/// renewed session, and the grant is alive afterwards.
#[tokio::test]
async fn s24_the_window_and_twenty_token_commands_renew_an_expired_session_once() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let (idp, desktop) = start("s24-one-renewal");
    // Tokens for other tools: Bearer tokens, not bound to the window's DPoP key.
    std::fs::write(&desktop.config, idp.bearer_profile_toml(&desktop.profile)).unwrap();
    let app = launch_and_sign_in(&desktop).await;
    common::expire_access_token(&desktop.profile).await;

    // Twenty commands and the window's Refresh all queue up at the renewal lock before any may renew, so they
    // truly contend.
    let lock_path = harness::cli::renewal_lock_path(&desktop.profile);
    let held = harness::cli::hold_renewal_lock(&desktop.profile);
    // The same profile from a copy of the config: the window's token agent serves only its own config file, so
    // these commands renew in processes of their own, as tools of another installation would.
    let config = desktop.config.with_extension("commands.toml");
    std::fs::copy(&desktop.config, &config).unwrap();
    let commands = tokio::spawn(async move { harness::cli::concurrent_tokens(&config, 20).await });
    app.click("refresh").await;
    wait_for("twenty commands and the window at the renewal lock", desktop::UI_TIMEOUT, || async {
        (harness::cli::processes_with_open(&lock_path) == 21).then_some(())
    })
    .await;
    drop(held);
    let runs = commands.await.unwrap();
    app.wait_for_phase("signedIn").await;
    app.wait_for_text("resource", "Hello, Alice!").await;
    assert_eq!(app.notice_kind().await, None);
    assert_eq!(idp.events_named("grant.success", Some("refresh_token")).await.len(), 1, "exactly one renewal");
    for run in &runs {
        assert_eq!(run.code, 0, "{run:?}");
        assert_eq!(harness::cli::resource_status(&idp.issuer(), run.stdout.trim_end()).await, 200, "{run:?}");
    }
    assert_eq!(
        idp.introspect(&keyring::stored(&desktop.profile, "refresh_token")).await["active"],
        true,
        "the grant is alive"
    );
    // The window's next Refresh renews with the live refresh token.
    app.click("refresh").await;
    wait_for("the window's own renewal", desktop::UI_TIMEOUT, || async {
        (idp.events_named("grant.success", Some("refresh_token")).await.len() == 2).then_some(())
    })
    .await;
    app.wait_for_phase("signedIn").await;
    assert_eq!(app.notice_kind().await, None);
    // The window's token agent serves this user's programs with its own config file: they read no keychain (there
    // is no session bus for them here), and get the window's token.
    let no_keychain = harness::cli::no_keychain();
    let served = harness::cli::gatehouse_with(&desktop.config, &["token"], &no_keychain).await;
    assert_eq!(served.code, 0, "{served:?}");
    assert_eq!(served.stdout.trim_end(), keyring::stored(&desktop.profile, "access_token"));

    // "Programs using this account" lists the programs asked about (here one allowed from the command line) and
    // the tokens given (the command's just now), and changes a decision, which the command line then lists.
    let allow = harness::cli::gatehouse(&desktop.config, &["allow", "true", "--profile", &desktop.profile]).await;
    assert_eq!(allow.code, 0, "{allow:?}");
    app.click("programs-toggle").await;
    app.wait_for_text("program-list", "/true").await;
    assert!(app.text("program-list").await.contains("allowed"));
    app.wait_for_text("handout-list", "/gatehouse").await;
    assert!(!app.page_source().await.contains(served.stdout.trim_end()), "no token in the window");
    app.execute("document.querySelector('[data-testid=program-list]').scrollIntoView()").await;
    app.screenshot("s24-programs").await;
    app.audit_accessibility("s24-programs").await;
    app.click("program-deny").await;
    app.wait_for_text("program-list", "denied").await;
    let listed = harness::cli::gatehouse(&desktop.config, &["programs", "--json"]).await;
    assert!(listed.stdout.contains("\"decision\":\"deny\"") && listed.stdout.contains("/true\""), "{listed:?}");

    // A program that hasn't been asked about (this test) asks the agent: with the window open, the question is
    // asked in it, not in a notification, and the program waits for the answer, which is remembered.
    let notifications = harness::notifications::Notifications::start();
    notifications.answer_with(Some("deny"));
    let shown_before = notifications.shown().len();
    let socket = lock_path.parent().unwrap().parent().unwrap().join("agent").join("agent.sock");
    let request = format!("{{\"config\":\"{}\"}}\n", desktop.config.canonicalize().unwrap().display());
    let ask = move || {
        use std::io::{BufRead as _, Write as _};
        let mut stream = std::os::unix::net::UnixStream::connect(&socket).unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut answer = String::new();
        std::io::BufReader::new(stream).read_line(&mut answer).unwrap();
        answer
    };
    let waiting = tokio::task::spawn_blocking(ask.clone());
    let me = std::env::current_exe().unwrap().canonicalize().unwrap();
    let title = app.wait_for_text("question-title", "Allow").await;
    assert!(title.contains(me.to_str().unwrap()) && title.contains(&desktop.profile), "the whole path: {title}");
    assert!(app.text("question-text").await.contains(me.to_str().unwrap()), "the whole path");
    app.screenshot("s24-question").await;
    app.audit_accessibility("s24-question").await;
    assert!(!waiting.is_finished(), "the program waits for the answer");
    // Its buttons wait a moment, so that a click meant for what was there before can't answer it.
    let enabled = "return !document.querySelector('[data-testid=question-allow]').disabled";
    wait_for("Allow to be enabled", desktop::UI_TIMEOUT, || async {
        (app.execute(enabled).await == true).then_some(())
    })
    .await;
    app.click("question-allow").await;
    let answer = waiting.await.unwrap();
    assert!(answer.contains("\"token\""), "{answer}");
    assert_eq!(notifications.shown().len(), shown_before, "asked in the window only");
    app.wait_for_text("program-list", me.to_str().unwrap()).await;
    let listed = harness::cli::gatehouse(&desktop.config, &["programs", "--json"]).await;
    let mine = listed.stdout.lines().find(|l| l.contains(me.to_str().unwrap())).unwrap_or_default().to_owned();
    assert!(mine.contains("\"decision\":\"allow\""), "{listed:?}");
    // Remembered: the next request is answered without a question.
    assert!(tokio::task::spawn_blocking(ask).await.unwrap().contains("\"token\""));
    assert!(app.execute("return document.querySelector('[data-testid=question]').hidden").await == true);
    app.quit().await;
}

/// `gatehouse sign-in` on a loopback profile opens the real browser, waits, and signs in; the window, started
/// afterwards, finds the session.
#[tokio::test]
async fn s25_the_command_line_signs_in_through_the_browser_and_the_window_uses_it() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let (idp, desktop) = start("s25-cli-sign-in");
    use_loopback(&desktop);
    let run = harness::cli::gatehouse_with(&desktop.config, &["sign-in"], &desktop.app_env()).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.is_empty() && run.stderr.contains("Signed in as Alice."), "{run:?}");
    assert_eq!(desktop.browser_launches(), 1);
    assert_eq!(idp.events_named("grant.success", Some("authorization_code")).await.len(), 1);
    assert_eq!(keyring::count_entries(&desktop.profile), 1);
    let again = harness::cli::gatehouse_with(&desktop.config, &["sign-in"], &desktop.app_env()).await;
    assert_eq!(again.code, 7, "{again:?}");
    assert!(again.stderr.contains("error[already_signed_in]"), "{again:?}");

    let app = desktop.launch().await;
    app.wait_for_phase("signedIn").await;
    app.wait_for_text("account", "Alice").await;
    assert_eq!(desktop.browser_launches(), 1, "the window needed no browser");
    app.quit().await;
}

/// A setup form left half filled in, with the window closed: Show brings it back as it was (the choice, the issuer
/// and the client ID), except the client secret, which the app never keeps; and nothing of it is written anywhere.
#[tokio::test]
async fn s34_a_half_filled_setup_form_survives_a_closed_window_and_its_secret_does_not() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let host = harness::tray::TrayHost::start();
    let (idp, desktop) = start("s34-setup-form-kept");
    let (mut launch, config_file) = clean_home(&desktop);
    launch.label = Some("resident".into());
    let home_config = config_file.parent().unwrap().parent().unwrap().to_path_buf();
    let before = host.registered();
    let mut resident = desktop.launch_resident(launch);
    let app = resident.attach().await;
    app.choose("setup-preset", "other").await;
    app.type_into("setup-issuer", &idp.issuer()).await;
    app.type_into("setup-client-id", "half-typed-client").await;
    app.type_into("setup-client-secret", "typed-secret-never-kept").await;
    let menu = host.menu_after(before).await;
    resident.detach(app).await;
    let pid = resident.pid();
    wait_for("WebKit's processes to end", desktop::UI_TIMEOUT, || async {
        desktop::webkit_processes(pid).is_empty().then_some(())
    })
    .await;

    menu.click("Show Gatehouse");
    let app = resident.attach().await;
    let value = |id: &'static str| {
        let app = &app;
        async move {
            let script = format!("return document.querySelector('[data-testid={id}]').value");
            app.execute(&script).await.as_str().unwrap_or_default().to_owned()
        }
    };
    wait_for("the form as it was left", desktop::UI_TIMEOUT, || async {
        (value("setup-client-id").await == "half-typed-client").then_some(())
    })
    .await;
    assert_eq!(value("setup-preset").await, "other");
    assert_eq!(value("setup-issuer").await, idp.issuer());
    assert_eq!(value("setup-client-secret").await, "", "the secret is never kept");
    assert!(!config_file.exists(), "nothing is saved until Save");
    let dir = |name: &str| std::path::PathBuf::from(std::env::var_os(name).unwrap());
    // Neither the form nor its secret is written anywhere: not the config, not the app's data, and not WebKit's
    // own storage and caches (XDG_CACHE_HOME), where a web view keeps what it keeps.
    for (what, dirs) in [
        ("half-typed-client", vec![home_config.clone(), dir("XDG_DATA_HOME")]),
        ("typed-secret-never-kept", vec![home_config, dir("XDG_DATA_HOME"), dir("XDG_CACHE_HOME")]),
    ] {
        for dir in dirs {
            let found = std::process::Command::new("grep").args(["-rla", what]).arg(&dir).output().unwrap();
            assert!(found.stdout.is_empty(), "{what} was written to {}", String::from_utf8_lossy(&found.stdout));
        }
    }
    app.screenshot("setup-form-kept").await;
    menu.click("Quit");
    desktop::wait_for_no_app().await;
}

/// The tray's weight and the window's return, printed (run with `tests/bin/bench --tray`, which builds and points
/// the harness at the release build): memory (PSS of the app and its WebKit processes) 10 s after a `--hidden`
/// start, 10 s after the window is shown, and 10 s after it is closed; and the time from the tray's Show to the
/// window on screen and to its page loaded (the app logs `window ready` when the page has loaded), from a login
/// start and from a closed window. Signed in as Alice throughout.
#[tokio::test]
#[ignore = "figures: run with tests/bin/bench --tray"]
async fn tray_figures() {
    const RUNS: usize = 5;
    const SETTLE: std::time::Duration = std::time::Duration::from_secs(10);
    let _serial = ONE_AT_A_TIME.lock().await;
    let host = harness::tray::TrayHost::start();
    let (_idp, desktop) = start("tray-figures");
    {
        let mut resident = desktop.launch_resident(Launch { label: Some("sign-in".into()), ..Launch::default() });
        sign_in_as_alice(&resident.attach().await).await;
    }
    desktop::wait_for_no_app().await;
    let readies =
        |log: &std::path::Path| std::fs::read_to_string(log).unwrap_or_default().matches("window ready").count();
    // Show from the tray, and the times to a window on screen and to its page loaded, in ms.
    let show = |menu: &harness::tray::TrayMenu, log: &std::path::Path| {
        let before = readies(log);
        let started = std::time::Instant::now();
        menu.click("Show Gatehouse");
        let (mut mapped, mut ready) = (None, None);
        while (mapped.is_none() || ready.is_none()) && started.elapsed() < desktop::UI_TIMEOUT {
            if mapped.is_none() && desktop::window_on_screen("Gatehouse") {
                mapped = Some(started.elapsed().as_secs_f64() * 1000.0);
            }
            if ready.is_none() && readies(log) > before {
                ready = Some(started.elapsed().as_secs_f64() * 1000.0);
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        (mapped.expect("the window on screen"), ready.expect("the window's page loaded"))
    };
    let mut figures: std::collections::BTreeMap<&str, Vec<f64>> = Default::default();
    for run in 0..RUNS {
        let before = host.registered();
        let launch = Launch { args: vec!["--hidden".into()], label: Some(format!("run-{run}")), ..Launch::default() };
        let resident = desktop.launch_resident(launch);
        let menu = host.menu_after(before).await;
        expect_tray(
            &menu,
            &["Signed in as Alice (disabled)", "Refresh", "Sign out", "Start at login [ ]", "Show Gatehouse", "Quit"],
        )
        .await;
        let pid = resident.pid();
        tokio::time::sleep(SETTLE).await;
        assert!(desktop::webkit_processes(pid).is_empty());
        figures.entry("1 PSS 10 s after --hidden (MiB)").or_default().push(desktop::tree_pss_mib(pid));
        let (mapped, ready) = show(&menu, &resident.log);
        figures.entry("4 Show from a login start: on screen (ms)").or_default().push(mapped);
        figures.entry("5 Show from a login start: page loaded (ms)").or_default().push(ready);
        tokio::time::sleep(SETTLE).await;
        figures.entry("2 PSS 10 s after Show, window open (MiB)").or_default().push(desktop::tree_pss_mib(pid));
        desktop::press_close("Gatehouse").await;
        tokio::time::sleep(SETTLE).await;
        assert!(desktop::webkit_processes(pid).is_empty());
        figures.entry("3 PSS 10 s after closing the window (MiB)").or_default().push(desktop::tree_pss_mib(pid));
        let (mapped, ready) = show(&menu, &resident.log);
        figures.entry("6 Show from a closed window: on screen (ms)").or_default().push(mapped);
        figures.entry("7 Show from a closed window: page loaded (ms)").or_default().push(ready);
        menu.click("Quit");
        desktop::wait_for_no_app().await;
    }
    println!("\ntray figures, {RUNS} runs, {}; medians [all runs]", desktop::app_binary().display());
    for (name, mut values) in figures {
        values.sort_by(f64::total_cmp);
        let all: Vec<String> = values.iter().map(|v| format!("{v:.0}")).collect();
        println!("  {:<46} {:>7.1}  [{}]", &name[2..], values[values.len() / 2], all.join(", "));
    }
}

/// Figures, not a test (`tests/bin/bench --flood`): 1,000 forged, replayed and malformed links through the real
/// OS route (xdg-open, the .desktop handler, single-instance) while signed in. Prints the links accepted (must
/// be 0), whether the keychain entry is byte-identical, the window's `get_state` round trip during the flood,
/// and the app's memory before and after; and checks that no link's contents reached the log.
#[tokio::test]
#[ignore = "figures: run with tests/bin/bench --flood"]
async fn flood_of_forged_links_through_the_os_while_signed_in() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let (idp, desktop) = start("flood-links");
    let app = launch_and_sign_in(&desktop).await;
    let real = desktop.last_redirect();
    let entry_before = keyring::lookup(&desktop.profile).unwrap();
    let grants_before = idp.events_named("grant.success", None).await.len();
    let app_pid = *desktop::processes_of(&desktop::window_binary()).iter().min().unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let rss_before = desktop::tree_rss_mib(app_pid);

    // A marker in every forged link, to look for in the log afterwards.
    let links: Vec<String> = (0..1000)
        .map(|i| match i % 5 {
            0 => real.clone(),
            1 => format!("com.example.gatehouse:/callback?code=FLOODCODE{i}&state=FLOODSTATE{i}&iss={}", idp.issuer()),
            2 => with_param(&real, "state", &format!("FLOODSTATE{i}")),
            3 => format!("com.example.gatehouse:/elsewhere?code=FLOODCODE{i}&state=FLOODSTATE{i}"),
            _ => format!("com.example.gatehouse:/callback?state=FLOODSTATE{i}&state=again&code=FLOODCODE{i}"),
        })
        .collect();
    let env = desktop.app_env();
    let started = std::time::Instant::now();
    let sender = tokio::spawn(async move {
        let links = std::sync::Arc::new(tokio::sync::Mutex::new(links));
        let mut workers = Vec::new();
        for _ in 0..8 {
            let (links, env) = (links.clone(), env.clone());
            workers.push(tokio::spawn(async move {
                loop {
                    let Some(link) = links.lock().await.pop() else { break };
                    let _ =
                        tokio::process::Command::new("xdg-open").arg(&link).envs(env.iter().cloned()).status().await;
                }
            }));
        }
        for worker in workers {
            worker.await.unwrap();
        }
    });
    let mut round_trips = Vec::new();
    while !sender.is_finished() {
        round_trips.push(get_state_round_trip_ms(&app).await);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    sender.await.unwrap();
    let sent_in = started.elapsed().as_secs_f64();
    // Let the last forwarded links be handled.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let accepted = idp.events_named("grant.success", None).await.len() - grants_before;
    let identical = keyring::lookup(&desktop.profile).unwrap() == entry_before;
    let rss_after = desktop::tree_rss_mib(app_pid);
    assert_eq!(app.phase().await, "signedIn");
    app.wait_for_text("resource", "Hello, Alice!").await;
    let log_path = app.log_path();
    app.quit().await;
    let log = std::fs::read_to_string(log_path).unwrap();
    let rejected = log.matches("sign-in callback not accepted").count();
    let leaked = log.contains("FLOODSTATE") || log.contains("FLOODCODE");

    println!("\nflood: 1000 links through xdg-open (8 at a time) in {sent_in:.0} s, while signed in");
    println!("  links accepted: {accepted} (code exchanges at the provider); rejections logged: {rejected}");
    println!("  keychain entry byte-identical: {identical}");
    println!(
        "  get_state round trip during the flood: p50 {:.1} ms, p99 {:.1} ms ({} samples)",
        percentile(&round_trips, 0.5),
        percentile(&round_trips, 0.99),
        round_trips.len()
    );
    println!("  app RSS (with its WebKit processes): {rss_before:.0} MiB before, {rss_after:.0} MiB after");
    println!("  link contents in the log: {}", if leaked { "FOUND" } else { "none" });
    assert_eq!(accepted, 0);
    assert!(identical && !leaked);
}

/// Figures, not a test (`tests/bin/bench --flood`): 1,000 junk requests at a loopback sign-in's listener while
/// it waits, then the real redirect. Prints the junk accepted (must be 0), the window's `get_state` round trip
/// during the flood, and the app's memory before and after.
#[tokio::test]
#[ignore = "figures: run with tests/bin/bench --flood"]
async fn flood_of_junk_at_the_loopback_listener() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let (idp, desktop, app, port) = start_loopback_sign_in("flood-loopback").await;
    let app_pid = *desktop::processes_of(&desktop::window_binary()).iter().min().unwrap();
    let rss_before = desktop::tree_rss_mib(app_pid);
    let base = format!("http://127.0.0.1:{port}");
    let started = std::time::Instant::now();
    let sender = tokio::spawn(async move {
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let mut statuses = std::collections::BTreeMap::new();
        for batch in 0..50 {
            let requests = (0..20).map(|i| {
                let n = batch * 20 + i;
                let request = match n % 4 {
                    0 => http.get(format!("{base}/callback?code=JUNK{n}&state=JUNK{n}")),
                    1 => http.get(format!("{base}/favicon{n}.ico")),
                    2 => http.post(format!("{base}/callback")).body(format!("code=JUNK{n}")),
                    _ => http.get(format!("{base}/callback?state=a&state=b&code=JUNK{n}")),
                };
                tokio::spawn(request.send())
            });
            let handles: Vec<_> = requests.collect();
            for handle in handles {
                let status = handle.await.unwrap().map(|r| r.status().as_u16()).unwrap_or(0);
                *statuses.entry(status).or_insert(0) += 1;
            }
        }
        statuses
    });
    let mut round_trips = Vec::new();
    while !sender.is_finished() {
        round_trips.push(get_state_round_trip_ms(&app).await);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let statuses = sender.await.unwrap();
    let sent_in = started.elapsed().as_secs_f64();
    let accepted = idp.events_named("grant.success", None).await.len();
    assert_eq!(app.phase().await, "waitingForBrowser", "junk changes nothing");
    let rss_after = desktop::tree_rss_mib(app_pid);
    desktop.release_browser();
    app.wait_for_phase("signedIn").await;
    println!(
        "\nloopback flood: 1000 junk requests at the listener (20 at a time) in {sent_in:.1} s, while a sign-in waits"
    );
    println!("  junk accepted: {accepted} (code exchanges); answers by HTTP status: {statuses:?}");
    println!(
        "  get_state round trip during the flood: p50 {:.1} ms, p99 {:.1} ms ({} samples)",
        percentile(&round_trips, 0.5),
        percentile(&round_trips, 0.99),
        round_trips.len()
    );
    println!("  app RSS (with its WebKit processes): {rss_before:.0} MiB before, {rss_after:.0} MiB after");
    println!("  then the real redirect signed in");
    let log_path = app.log_path();
    app.quit().await;
    let leaked = std::fs::read_to_string(log_path).unwrap().contains("JUNK");
    println!("  request contents in the log: {}", if leaked { "FOUND" } else { "none" });
    assert_eq!(accepted, 0);
    assert!(!leaked);
}
