//! The command line against the real demo provider and the real Secret Service: `gatehouse status`, `token`
//! and `sign-out` as another tool runs them, in child processes, sharing the keychain entry with a session
//! signed in through the service (as the window does).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed assertion

mod common;

use std::path::PathBuf;
use std::time::Duration;

use gatehouse_lib::tokens::unix_now;
use harness::cli::{
    concurrent_tokens, gatehouse, gatehouse_with_input, hold_renewal_lock, processes_with_open, renewal_lock_path,
    resource_status,
};
use harness::idp::Idp;
use harness::{artifacts_dir, desktop, keyring, sha256_hex, wait_for};

/// Where a test's config file goes: the test command's scratch directory, which it removes however the
/// tests end.
fn config_path(name: &str) -> PathBuf {
    let dir = std::env::var_os("GATEHOUSE_TEST_SCRATCH").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
    dir.join(format!("gatehouse-{name}-{}.toml", std::process::id()))
}

/// A provider, a config file for `profile`, and Alice signed in under that profile, with Bearer tokens that other
/// tools can use.
async fn signed_in(name: &str) -> (Idp, PathBuf) {
    signed_in_with(name, Idp::bearer_profile_toml).await
}

/// As [`signed_in`], with the profile `profile_toml` writes.
async fn signed_in_with(name: &str, profile_toml: fn(&Idp, &str) -> String) -> (Idp, PathBuf) {
    keyring::require_secret_service();
    let idp = Idp::start(&artifacts_dir(name).join("idp.log"));
    let profile = profile_of(name);
    let config = config_path(name);
    std::fs::write(&config, profile_toml(&idp, &profile)).unwrap();
    let (service, browser) = common::service(&profile_toml(&idp, &profile));
    service.start(Vec::new()).await;
    common::sign_in(&service, &browser, "alice").await;
    assert!(keyring::lookup(&profile).is_some());
    (idp, config)
}

fn profile_of(name: &str) -> String {
    format!("cli-{name}")
}

fn stored(profile: &str, field: &str) -> String {
    keyring::session(profile).unwrap()[field].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn status_shows_who_is_signed_in_and_never_a_token() {
    let (_idp, config) = signed_in("status").await;
    let profile = profile_of("status");
    let run = gatehouse(&config, &["status", "--json"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let status: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let entry = &status["profiles"][0];
    assert_eq!(entry["profile"], profile.as_str());
    assert_eq!(entry["state"], "signed_in");
    assert_eq!(entry["account"]["name"], "Alice");
    assert_eq!(entry["renewable"], true);
    assert!(entry["expires_at"].as_u64().unwrap() > unix_now());
    for field in ["access_token", "refresh_token"] {
        let token = stored(&profile, field);
        assert!(!run.stdout.contains(&token) && !run.stderr.contains(&token), "{field} in the status output");
    }

    let text = gatehouse(&config, &["status"]).await;
    assert_eq!(text.code, 0);
    assert!(text.stdout.contains("signed in as Alice <alice>") && text.stdout.contains("renewable"), "{text:?}");
    std::fs::remove_file(&config).unwrap();
}

#[tokio::test]
async fn token_renews_an_expired_access_token_and_prints_only_the_token() {
    let (idp, config) = signed_in("token").await;
    let profile = profile_of("token");
    let before = stored(&profile, "access_token");

    // Fresh: printed as stored, with no renewal.
    let fresh = gatehouse(&config, &["token"]).await;
    assert_eq!((fresh.code, fresh.stdout.as_str()), (0, format!("{before}\n").as_str()), "{}", fresh.stderr);
    assert!(idp.events_named("grant.success", Some("refresh_token")).await.is_empty());

    // Expired: renewed first, saved, and only the new token printed.
    common::expire_access_token(&profile).await;
    let renewed = gatehouse(&config, &["token"]).await;
    assert_eq!(renewed.code, 0, "{renewed:?}");
    let token = renewed.stdout.strip_suffix('\n').unwrap();
    assert!(!token.is_empty() && !token.contains('\n') && token != before, "{renewed:?}");
    let grants = idp.events_named("grant.success", Some("refresh_token")).await;
    assert_eq!(grants.len(), 1);
    assert_eq!(grants[0]["access_token_sha256"], sha256_hex(token), "the printed token is the one issued");
    assert_eq!(stored(&profile, "access_token"), token, "saved before it was printed");
    assert_eq!(resource_status(&idp.issuer(), token).await, 200);

    // --min-ttl longer than the token's life: said plainly, and no renewal is spent on it.
    let longer = gatehouse(&config, &["token", "--min-ttl", "3600"]).await;
    assert_eq!(longer.code, 6, "a 600 s token can never last an hour: {longer:?}");
    assert!(longer.stdout.is_empty() && longer.stderr.contains("error[token_lifetime_too_short]"), "{longer:?}");
    assert_eq!(idp.events_named("grant.success", Some("refresh_token")).await.len(), 1);
    std::fs::remove_file(&config).unwrap();
}

/// `gatehouse sign-out` revokes and removes the session; then `token` says there is none, and what to run.
#[tokio::test]
async fn sign_out_revokes_and_then_the_token_command_asks_for_a_sign_in() {
    let (idp, config) = signed_in("sign-out").await;
    let profile = profile_of("sign-out");
    let refresh = stored(&profile, "refresh_token");
    let run = gatehouse(&config, &["sign-out", "--profile", &profile]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.is_empty() && run.stderr.contains("The session has ended, here and at the provider."),
        "{run:?}"
    );
    assert!(keyring::lookup(&profile).is_none());
    assert_eq!(idp.introspect(&refresh).await["active"], false);

    let token = gatehouse(&config, &["token"]).await;
    assert_eq!(token.code, 3, "{token:?}");
    assert!(token.stdout.is_empty() && token.stderr.contains("error[not_signed_in]"), "{token:?}");
    // In the command line's own words: what to run, never a button to press.
    assert!(token.stderr.contains("run: gatehouse sign-in"), "{token:?}");
    assert!(!token.stderr.contains("Press") && !token.stderr.contains("button"), "{token:?}");
    let named = gatehouse(&config, &["token", "--profile", &profile]).await;
    assert!(named.stderr.contains(&format!("run: gatehouse sign-in --profile {profile}")), "{named:?}");
    let status = gatehouse(&config, &["status", "--json"]).await;
    let status: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(status["profiles"][0]["state"], "signed_out");
    std::fs::remove_file(&config).unwrap();
}

/// As a git credential helper, Gatehouse hands its access token only to the scheme and host of the profile's
/// resource, and only for `get`; an `erase` of that token (the server refused it) renews it at the next `get`;
/// git itself, configured with it, receives the token.
#[tokio::test]
async fn as_a_git_credential_helper_it_answers_only_for_the_resource_host() {
    let (idp, config) = signed_in("credential").await;
    let profile = profile_of("credential");
    let host = idp.issuer().trim_start_matches("http://").to_owned();
    let asked = format!("protocol=http\nhost={host}\npath=group/repo.git\n\n");
    let run = gatehouse_with_input(&config, &["credential", "get"], &asked).await;
    assert_eq!(run.code, 0, "{run:?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines[..2], ["username=oauth2".to_owned(), format!("password={}", stored(&profile, "access_token"))]);
    assert!(lines[2].starts_with("password_expiry_utc="), "{lines:?}");

    // Another host, port or scheme gets nothing, so git asks its next helper.
    let (name, port) = host.split_once(':').unwrap();
    let others = [
        "protocol=http\nhost=evil.example\n\n".to_owned(),
        format!("protocol=https\nhost={host}\n\n"),
        format!("protocol=http\nhost={name}:{}\n\n", port.parse::<u16>().unwrap().wrapping_add(1)),
        format!("protocol=http\nhost={name}\n\n"),
    ];
    for other in &others {
        let run = gatehouse_with_input(&config, &["credential", "get"], other).await;
        assert_eq!((run.code, run.stdout.as_str()), (0, ""), "{other:?}: {run:?}");
    }
    // Gatehouse keeps its own session: git's store changes nothing, and neither does an erase without a
    // password, or of a token that isn't the session's.
    let session = keyring::lookup(&profile).unwrap();
    let other = format!("protocol=http\nhost={host}\nusername=oauth2\npassword=not-the-token\n\n");
    for (operation, input) in [("store", &asked), ("erase", &asked), ("erase", &other)] {
        let run = gatehouse_with_input(&config, &["credential", operation], input).await;
        assert_eq!((run.code, run.stdout.as_str()), (0, ""), "{run:?}");
    }
    assert_eq!(keyring::lookup(&profile).unwrap(), session, "the entry is untouched");

    // git erases a password the server refused (gitcredentials(7)): that token is never handed out again, and the
    // next get renews the session with one refresh grant; the one after that gets the renewed token as it is.
    let refused = stored(&profile, "access_token");
    let erase = format!("protocol=http\nhost={host}\nusername=oauth2\npassword={refused}\n\n");
    let run = gatehouse_with_input(&config, &["credential", "erase"], &erase).await;
    assert_eq!((run.code, run.stdout.as_str()), (0, ""), "{run:?}");
    assert!(idp.events_named("grant.success", Some("refresh_token")).await.is_empty(), "erase itself spends nothing");
    let run = gatehouse_with_input(&config, &["credential", "get"], &asked).await;
    assert_eq!(run.code, 0, "{run:?}");
    let renewed = stored(&profile, "access_token");
    assert_ne!(renewed, refused);
    assert!(run.stdout.contains(&format!("password={renewed}\n")), "{run:?}");
    assert!(!run.stdout.contains(&refused), "the refused token is never handed out again");
    let again = gatehouse_with_input(&config, &["credential", "get"], &asked).await;
    assert!(again.stdout.contains(&format!("password={renewed}\n")), "{again:?}");
    assert_eq!(idp.events_named("grant.success", Some("refresh_token")).await.len(), 1, "one refresh");
    assert_eq!(keyring::count_entries(&profile), 1);

    // git, configured as the README shows, fills the credential from Gatehouse.
    let helper = format!("!{} credential", harness::desktop::app_binary().display());
    let mut git = tokio::process::Command::new("git")
        .args(["-c", &format!("credential.helper={helper}"), "credential", "fill"])
        .env("GATEHOUSE_CONFIG", &config)
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use tokio::io::AsyncWriteExt;
        git.stdin.take().unwrap().write_all(asked.as_bytes()).await.unwrap();
    }
    let filled = git.wait_with_output().await.unwrap();
    let filled = String::from_utf8_lossy(&filled.stdout).into_owned();
    assert!(filled.contains(&format!("password={}", stored(&profile, "access_token"))), "{filled}");
    std::fs::remove_file(&config).unwrap();
}

/// Twenty `gatehouse token` processes at once on an expired session: the provider sees one refresh grant,
/// every process prints a token the resource takes, and the grant is still alive.
#[tokio::test]
async fn twenty_concurrent_token_commands_renew_once() {
    let (idp, config) = signed_in("twenty").await;
    let profile = profile_of("twenty");
    common::expire_access_token(&profile).await;
    // All twenty queue up at the renewal lock before any may renew, so they truly contend.
    let lock_path = renewal_lock_path(&profile);
    let held = hold_renewal_lock(&profile);
    let commands = tokio::spawn({
        let config = config.clone();
        async move { concurrent_tokens(&config, 20).await }
    });
    wait_for("twenty processes at the renewal lock", Duration::from_secs(30), || async {
        (processes_with_open(&lock_path) == 20).then_some(())
    })
    .await;
    drop(held);
    let runs = commands.await.unwrap();
    let grants = idp.events_named("grant.success", Some("refresh_token")).await;
    assert_eq!(grants.len(), 1, "one renewal for twenty processes");
    for run in &runs {
        assert_eq!(run.code, 0, "{run:?}");
        assert_eq!(resource_status(&idp.issuer(), run.stdout.trim_end()).await, 200, "{run:?}");
    }
    assert_eq!(idp.introspect(&stored(&profile, "refresh_token")).await["active"], true, "the grant is alive");
    std::fs::remove_file(&config).unwrap();
}

/// Runs `gatehouse args…` (with `config`, when given) where there is no graphical session; returns its exit code
/// and what it said on stderr.
async fn without_a_display(args: &[&str], config: Option<&std::path::Path>) -> (Option<i32>, String) {
    let mut command = tokio::process::Command::new(harness::desktop::app_binary());
    command.args(args).env_remove("DISPLAY").env_remove("WAYLAND_DISPLAY");
    if let Some(config) = config {
        command.env("GATEHOUSE_CONFIG", config);
    }
    let output = command.output().await.unwrap();
    (output.status.code(), String::from_utf8_lossy(&output.stderr).into_owned())
}

/// Run with no command and no display (over SSH, say), Gatehouse says why it can't open its window and what to
/// use instead, rather than aborting inside GTK.
#[tokio::test]
async fn without_a_display_the_window_points_to_the_command_line() {
    let (code, stderr) = without_a_display(&[], None).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("error[no_display]") && stderr.contains("gatehouse sign-in --device"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// A profile whose sign-in comes back through the app's own link needs the window; with no graphical session
/// (over SSH, say), `gatehouse sign-in` says so at once and points to a code on another device, rather than
/// waiting for a window that can't appear.
#[tokio::test]
async fn a_scheme_profile_without_a_display_points_to_a_code() {
    keyring::require_secret_service();
    let idp = Idp::start(&artifacts_dir("cli-no-window").join("idp.log"));
    let config = config_path("cli-no-window");
    std::fs::write(&config, idp.profile_toml("cli-no-window")).unwrap();
    let (code, stderr) = without_a_display(&["sign-in"], Some(&config)).await;
    assert_eq!(code, Some(7), "{stderr}");
    assert!(stderr.contains("error[needs_window]") && stderr.contains("gatehouse sign-in --device"), "{stderr}");
    assert!(idp.events_named("par.success", None).await.is_empty(), "no sign-in was started");
    std::fs::remove_file(&config).unwrap();
}

#[tokio::test]
async fn usage_and_config_errors_have_their_exit_codes() {
    keyring::require_secret_service();
    let idp = Idp::start(&artifacts_dir("cli-errors").join("idp.log"));
    let config = config_path("cli-errors");
    std::fs::write(&config, idp.profile_toml("cli-errors")).unwrap();
    let unknown = gatehouse(&config, &["token", "--profile", "nobody"]).await;
    assert_eq!(unknown.code, 2, "{unknown:?}");
    assert!(unknown.stderr.contains("error[unknown_profile]") && unknown.stderr.contains("cli-errors"));
    // Endpoints given by hand, with no device authorization endpoint among them: no device flow.
    let explicit = format!(
        "profile = \"cli-errors\"\nclient_id = \"gatehouse-desktop\"\nauthorization_endpoint = \"{0}/auth\"\n\
         token_endpoint = \"{0}/token\"\nredirect_uri = \"http://127.0.0.1/callback\"\nresource_url = \"{0}/api/resource\"\n",
        idp.issuer()
    );
    std::fs::write(&config, explicit).unwrap();
    let device = gatehouse(&config, &["sign-in", "--device"]).await;
    assert_eq!(device.code, 7, "{device:?}");
    assert!(device.stderr.contains("error[no_device_flow]"), "{device:?}");
    std::fs::write(&config, "client_id = \"x\"\n").unwrap();
    let broken = gatehouse(&config, &["status"]).await;
    assert_eq!(broken.code, 4, "{broken:?}");
    assert!(broken.stderr.contains("error[config_invalid]") && broken.stdout.is_empty(), "{broken:?}");
    let usage = gatehouse(&config, &["token", "--min-ttl", "soon"]).await;
    assert_eq!(usage.code, 2, "{usage:?}");
    std::fs::remove_file(&config).unwrap();
}

/// Figures, not a test (`tests/bin/bench --cli` runs it): how long `gatehouse token` takes to print a token
/// that needs no renewal, and what twenty concurrent commands on an expired session cost the provider.
#[tokio::test]
#[ignore = "a benchmark: run with tests/bin/bench --cli"]
async fn print_token_command_figures() {
    let (idp, config) = signed_in("figures").await;
    let profile = profile_of("figures");
    // Side by side, alternating, so that both meet the same machine: `gatehouse token` with a token that needs
    // no renewal, and `secret-tool lookup` of the same keychain entry, the floor any keychain reader pays.
    let (mut ours, mut floor) = (Vec::new(), Vec::new());
    for _ in 0..21 {
        let run = gatehouse(&config, &["token"]).await;
        assert_eq!(run.code, 0, "{run:?}");
        ours.push(run.elapsed.as_secs_f64() * 1000.0);
        let started = std::time::Instant::now();
        let lookup = tokio::process::Command::new("secret-tool")
            .args(["lookup", "service", keyring::SERVICE, "username", &profile])
            .output()
            .await
            .unwrap();
        assert!(lookup.status.success() && !lookup.stdout.is_empty());
        floor.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    let median = |times: &[f64]| {
        let mut sorted = times.to_vec();
        sorted.sort_by(f64::total_cmp);
        (sorted[10], sorted[0], sorted[20])
    };
    let ((ours_median, ours_min, ours_max), (floor_median, floor_min, floor_max)) = (median(&ours), median(&floor));
    println!("\n21 alternating runs each, no renewal needed:");
    println!("  gatehouse token:      median {ours_median:.1} ms (min {ours_min:.1}, max {ours_max:.1})");
    println!("  secret-tool lookup:   median {floor_median:.1} ms (min {floor_min:.1}, max {floor_max:.1})");
    println!("  ratio of the medians: {:.1}x (goal: 2x or less)", ours_median / floor_median);

    common::expire_access_token(&profile).await;
    let started = std::time::Instant::now();
    let runs = concurrent_tokens(&config, 20).await;
    let wall = started.elapsed().as_secs_f64() * 1000.0;
    let grants = idp.events_named("grant.success", Some("refresh_token")).await.len();
    let printed = runs.iter().filter(|r| r.code == 0).count();
    println!("20 concurrent gatehouse token on an expired session: {grants} refresh grant(s) at the provider, {printed}/20 printed a token, {wall:.0} ms wall clock");
    std::fs::remove_file(&config).unwrap();
}

/// `gatehouse sign-in --device` against the real provider's device flow (RFC 8628): it shows a code and where
/// to enter it, a person enters it on another device (the scripted user agent) and approves, and the session
/// lands in the keychain, bound to a DPoP key as a browser sign-in's is.
#[tokio::test]
async fn device_sign_in_with_a_code_entered_on_another_device() {
    keyring::require_secret_service();
    let idp = Idp::start(&artifacts_dir("cli-device").join("idp.log"));
    let profile = "cli-device";
    let config = config_path("cli-device");
    std::fs::write(&config, idp.profile_toml(profile)).unwrap();
    let run = harness::cli::device_sign_in(&config, "alice").await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains(&format!("To sign in, open {}", idp.issuer())), "{run:?}");
    assert!(run.stderr.contains("Signed in as Alice."), "{run:?}");
    let grants = idp.events_named("grant.success", Some("urn:ietf:params:oauth:grant-type:device_code")).await;
    assert_eq!(grants.len(), 1);
    assert_eq!(keyring::count_entries(profile), 1);
    // The provider does DPoP, and so does this sign-in: a code is no way round the key (RFC 9449 §5), so the
    // tokens stay bound to it and `token` keeps them to itself, as after a browser sign-in.
    let proven = idp.events_named("grant.success", Some("urn:ietf:params:oauth:grant-type:device_code")).await;
    assert!(keyring::session(profile).unwrap()["dpop_key"].is_string(), "a DPoP session: {proven:?}");
    let token = gatehouse(&config, &["token"]).await;
    assert_eq!((token.code, token.stdout.as_str()), (8, ""), "{token:?}");
    let again = gatehouse(&config, &["sign-in", "--device"]).await;
    assert_eq!(again.code, 7, "{again:?}");
    assert!(again.stderr.contains("error[already_signed_in]"), "{again:?}");
    assert_eq!(gatehouse(&config, &["sign-out"]).await.code, 0);
    std::fs::remove_file(&config).unwrap();
}

/// A DPoP session's tokens are bound to a key that stays in the keychain (RFC 9449): `token` and the credential
/// helper say so, with their own exit code, and print nothing, rather than hand out a token no tool could use.
#[tokio::test]
async fn a_dpop_bound_session_keeps_its_tokens_to_itself() {
    let (idp, config) = signed_in_with("dpop", Idp::profile_toml).await;
    let profile = profile_of("dpop");
    assert!(keyring::session(&profile).unwrap()["dpop_key"].is_string(), "a DPoP session was expected");

    let run = gatehouse(&config, &["token"]).await;
    assert_eq!(run.code, 8, "{run:?}");
    assert!(
        run.stdout.is_empty() && run.stderr.contains("error[dpop_bound]") && run.stderr.contains("dpop = false"),
        "{run:?}"
    );
    let host = url::Url::parse(&idp.issuer()).unwrap();
    let asked = format!("protocol=http\nhost={}:{}\n\n", host.host_str().unwrap(), host.port().unwrap());
    let helper = gatehouse_with_input(&config, &["credential", "get"], &asked).await;
    assert_eq!(helper.code, 8, "{helper:?}");
    assert!(helper.stdout.is_empty(), "{helper:?}");
    // The key's private part is in the keychain entry, and nowhere in what the commands print.
    let stored_key: serde_json::Value =
        serde_json::from_str(keyring::session(&profile).unwrap()["dpop_key"].as_str().unwrap()).unwrap();
    let private = stored_key["d"].as_str().unwrap().to_owned();
    assert!(private.len() >= 40, "{stored_key}");
    let status = gatehouse(&config, &["status", "--json"]).await;
    assert_eq!(status.code, 0, "{status:?}");
    for output in [&status.stdout, &status.stderr, &run.stdout, &run.stderr, &helper.stdout, &helper.stderr] {
        assert!(!output.contains(&private), "the key's private part must not show");
    }
    assert_eq!(gatehouse(&config, &["sign-out"]).await.code, 0);
    assert!(keyring::lookup(&profile).is_none());
    std::fs::remove_file(&config).unwrap();
}

/// With several profiles in one file, `--profile` picks one, `status` lists them all, and a name the file
/// doesn't have is a usage error that lists the ones it has.
#[tokio::test]
async fn profile_picks_one_of_several_and_status_lists_them_all() {
    keyring::require_secret_service();
    let idp = Idp::start(&artifacts_dir("cli-profiles").join("idp.log"));
    let (first, second) = ("cli-profiles-work", "cli-profiles-home");
    let config = config_path("cli-profiles");
    let tables =
        format!("[[profile]]\n{}\n[[profile]]\n{}", idp.bearer_profile_toml(first), idp.bearer_profile_toml(second));
    std::fs::write(&config, &tables).unwrap();
    for (profile, login) in [(first, "alice"), (second, "bob")] {
        let (service, browser) = common::service(&idp.bearer_profile_toml(profile));
        service.start(Vec::new()).await;
        common::sign_in(&service, &browser, login).await;
    }

    let status = gatehouse(&config, &["status", "--json"]).await;
    assert_eq!(status.code, 0, "{status:?}");
    let want = [(first, "Alice"), (second, "Bob")].map(|(p, n)| (p.to_owned(), n.to_owned()));
    assert_eq!(harness::cli::listed_accounts(&status.stdout), want);

    let home = gatehouse(&config, &["token", "--profile", second]).await;
    assert_eq!((home.code, home.stdout.trim_end()), (0, stored(second, "access_token").as_str()), "{home:?}");
    let default = gatehouse(&config, &["token"]).await;
    assert_eq!(default.stdout.trim_end(), stored(first, "access_token"), "without --profile, the first one");
    let unknown = gatehouse(&config, &["token", "--profile", "nope"]).await;
    assert_eq!(unknown.code, 2, "{unknown:?}");
    assert!(unknown.stderr.contains("error[unknown_profile]") && unknown.stderr.contains(second), "{unknown:?}");

    let signed_out = gatehouse(&config, &["sign-out", "--profile", second]).await;
    assert_eq!(signed_out.code, 0, "{signed_out:?}");
    assert!(keyring::lookup(second).is_none());
    assert!(keyring::lookup(first).is_some(), "signing out of one leaves the other");
    gatehouse(&config, &["sign-out", "--profile", first]).await;
    std::fs::remove_file(&config).unwrap();
}

/// A `--min-ttl` longer than the provider's tokens live can't be met by any renewal. The first call on a
/// session that doesn't yet know its tokens' lifetime spends one refresh grant to learn it; no later call, and
/// none of twenty at once, spends another. Each says plainly what it can't do and what would work; a need the
/// tokens can meet still gets a token.
#[tokio::test]
async fn a_min_ttl_the_provider_cannot_meet_is_said_plainly_and_costs_at_most_one_grant() {
    let (idp, config) = signed_in("min-ttl").await;
    let profile = profile_of("min-ttl");
    let refreshes = || async { idp.events_named("grant.success", Some("refresh_token")).await.len() };
    // A session saved before Gatehouse kept its tokens' lifetime, due for renewal.
    let keychain = gatehouse_lib::tokens::keychain::Keychain::new(keyring::SERVICE);
    let mut session = keychain.load(&profile).await.unwrap().unwrap();
    assert_eq!(session.lifetime, Some(600), "the demo provider's tokens live 600 s");
    session.lifetime = None;
    session.expires_at = Some(unix_now() - 5);
    keychain.save(&profile, &session).await.unwrap();

    let first = gatehouse(&config, &["token", "--min-ttl", "900"]).await;
    assert_eq!((first.code, first.stdout.as_str()), (6, ""), "{first:?}");
    assert!(first.stderr.contains("error[token_lifetime_too_short]"), "{first:?}");
    assert!(first.stderr.contains("last 600 seconds") && first.stderr.contains("--min-ttl below 600"), "{first:?}");
    assert_eq!(refreshes().await, 1, "one renewal, to learn what the provider's tokens last");
    assert!(keyring::session(&profile).unwrap()["access_token"].is_string(), "the renewed session is kept");

    for _ in 0..3 {
        let again = gatehouse(&config, &["token", "--min-ttl", "900"]).await;
        assert_eq!(again.code, 6, "{again:?}");
    }
    let runs = harness::cli::concurrent_runs(&config, &["token", "--min-ttl", "900"], 20).await;
    assert!(runs.iter().all(|run| run.code == 6 && run.stdout.is_empty()), "{runs:?}");
    assert_eq!(refreshes().await, 1, "no further grant for a need no renewal can meet");

    let met = gatehouse(&config, &["token", "--min-ttl", "300"]).await;
    assert_eq!((met.code, met.stdout.trim_end()), (0, stored(&profile, "access_token").as_str()), "{met:?}");
    assert_eq!(refreshes().await, 1);
    assert!(idp.refused_grants().await.is_empty());
    gatehouse(&config, &["sign-out"]).await;
    std::fs::remove_file(&config).unwrap();
}

/// Twenty calls at once with the same need the provider can't meet, on a session that doesn't know its
/// tokens' lifetime: they share one renewal.
#[tokio::test]
async fn concurrent_calls_with_an_unmet_need_share_one_renewal() {
    let (idp, config) = signed_in("min-ttl-twenty").await;
    let profile = profile_of("min-ttl-twenty");
    let keychain = gatehouse_lib::tokens::keychain::Keychain::new(keyring::SERVICE);
    let mut session = keychain.load(&profile).await.unwrap().unwrap();
    session.lifetime = None;
    session.expires_at = Some(unix_now() - 5);
    keychain.save(&profile, &session).await.unwrap();
    let lock_path = renewal_lock_path(&profile);
    let held = hold_renewal_lock(&profile);
    let commands = tokio::spawn({
        let config = config.clone();
        async move { harness::cli::concurrent_runs(&config, &["token", "--min-ttl", "900"], 20).await }
    });
    wait_for("twenty processes at the renewal lock", Duration::from_secs(30), || async {
        (processes_with_open(&lock_path) == 20).then_some(())
    })
    .await;
    drop(held);
    let runs = commands.await.unwrap();
    assert!(runs.iter().all(|run| run.code == 6), "{runs:?}");
    assert_eq!(idp.events_named("grant.success", Some("refresh_token")).await.len(), 1, "one renewal for twenty");
    assert_eq!(idp.introspect(&stored(&profile, "refresh_token")).await["active"], true, "the grant is alive");
    gatehouse(&config, &["sign-out"]).await;
    std::fs::remove_file(&config).unwrap();
}

/// A session saved for another provider can be cleared from the command line, and an issuer that differs only
/// by a trailing slash is the same provider.
#[tokio::test]
async fn sign_out_clears_a_session_saved_for_another_provider() {
    let (idp, config) = signed_in("other-provider").await;
    let profile = profile_of("other-provider");
    let keychain = gatehouse_lib::tokens::keychain::Keychain::new(keyring::SERVICE);

    // Saved when the issuer was written with (or without) a trailing slash: the same provider.
    let mut session = keychain.load(&profile).await.unwrap().unwrap();
    let binding = session.binding.as_mut().unwrap();
    assert!(binding.provider.ends_with('/'), "{binding:?}");
    binding.provider = binding.provider.trim_end_matches('/').to_owned();
    keychain.save(&profile, &session).await.unwrap();
    let status = gatehouse(&config, &["status"]).await;
    assert!(status.stdout.contains("signed in as Alice"), "{status:?}");

    // Saved for another provider: status says so, token refuses, and sign-out removes it.
    let elsewhere =
        std::fs::read_to_string(&config).unwrap().replace(&idp.issuer(), &format!("{}/other", idp.issuer()));
    let moved = config.with_extension("moved.toml");
    std::fs::write(&moved, elsewhere).unwrap();
    let token = gatehouse(&moved, &["token"]).await;
    assert_eq!(token.code, 3, "{token:?}");
    assert!(
        token.stderr.contains("error[session_for_other_provider]") && token.stderr.contains("sign-out"),
        "{token:?}"
    );
    assert!(!token.stderr.contains("Press"), "the command line has no buttons: {token:?}");
    let signed_out = gatehouse(&moved, &["sign-out"]).await;
    assert_eq!(signed_out.code, 0, "{signed_out:?}");
    assert!(signed_out.stderr.contains("Removed the session saved for"), "{signed_out:?}");
    assert!(keyring::lookup(&profile).is_none(), "the entry is gone");
    let again = gatehouse(&moved, &["sign-out"]).await;
    assert!(again.stderr.contains("Not signed in"), "{again:?}");
    std::fs::remove_file(&moved).unwrap();
    std::fs::remove_file(&config).unwrap();
}

/// git's `username` picks the account: with two profiles signed in at one host, each user gets their own token,
/// another user gets nothing (git asks its next helper), and no username is ambiguous there; a single profile
/// answers for no username, the fixed `oauth2`, or its own account, and nobody else.
#[tokio::test]
async fn the_credential_helper_answers_only_for_the_user_git_asks_about() {
    keyring::require_secret_service();
    let idp = Idp::start(&artifacts_dir("cli-credential-users").join("idp.log"));
    let (work, home) = ("cli-credential-users-work", "cli-credential-users-home");
    let config = config_path("cli-credential-users");
    let tables =
        format!("[[profile]]\n{}\n[[profile]]\n{}", idp.bearer_profile_toml(work), idp.bearer_profile_toml(home));
    std::fs::write(&config, &tables).unwrap();
    for (profile, login) in [(work, "alice"), (home, "bob")] {
        let (service, browser) = common::service(&idp.bearer_profile_toml(profile));
        service.start(Vec::new()).await;
        common::sign_in(&service, &browser, login).await;
    }
    let host = idp.issuer().trim_start_matches("http://").to_owned();
    let ask = |args: Vec<&'static str>, user: Option<&'static str>| {
        let (config, host) = (config.clone(), host.clone());
        async move {
            let user = user.map(|u| format!("username={u}\n")).unwrap_or_default();
            let input = format!("protocol=http\nhost={host}\n{user}\n");
            let mut all = vec!["credential", "get"];
            all.extend(args);
            let run = gatehouse_with_input(&config, &all, &input).await;
            assert_eq!(run.code, 0, "{run:?}");
            run.stdout
        }
    };
    let answer = |user: &str, profile: &str| format!("username={user}\npassword={}\n", stored(profile, "access_token"));
    assert!(ask(vec![], Some("bob")).await.starts_with(&answer("bob", home)));
    assert!(ask(vec![], Some("alice")).await.starts_with(&answer("alice", work)));
    assert_eq!(ask(vec![], Some("carol")).await, "", "another user gets nothing");
    assert_eq!(ask(vec![], None).await, "", "two accounts and no username: not Gatehouse's to guess");
    assert_eq!(ask(vec![], Some("oauth2")).await, "");
    // One profile: its own account, the fixed name, or none; never another user's name.
    assert_eq!(ask(vec!["--profile", work], Some("bob")).await, "", "USER_B never gets USER_A's token");
    assert!(ask(vec!["--profile", work], None).await.starts_with(&answer("oauth2", work)));
    assert!(ask(vec!["--profile", work], Some("oauth2")).await.starts_with(&answer("oauth2", work)));
    assert!(ask(vec!["--profile", work], Some("alice")).await.starts_with(&answer("alice", work)));
    for profile in [work, home] {
        gatehouse(&config, &["sign-out", "--profile", profile]).await;
    }
    std::fs::remove_file(&config).unwrap();
}

/// Another program's item beside Gatehouse's for one profile, or an entry Gatehouse can't read: every command
/// says what is wrong and what to do, in words (never D-Bus object paths or Rust `Debug` text), and
/// `gatehouse sign-out` clears it, revoking the grant of each item it can read first.
#[tokio::test]
async fn duplicate_or_unreadable_entries_are_explained_and_cleared_by_sign_out() {
    let (idp, config) = signed_in("duplicates").await;
    let profile = profile_of("duplicates");
    let refresh_token = stored(&profile, "refresh_token");
    keyring::store_duplicate(&profile, "{}");
    assert_eq!(keyring::count_entries(&profile), 2);
    for (args, code) in [(vec!["token"], 5), (vec!["status"], 0)] {
        let run = gatehouse(&config, &args).await;
        assert_eq!(run.code, code, "{run:?}");
        let said = format!("{}{}", run.stdout, run.stderr);
        assert!(said.contains("more than one saved session") && said.contains("sign-out"), "{run:?}");
        for debug in ["/org/freedesktop", "Entry {", "Ambiguous", "Wrapper", "credentials: ["] {
            assert!(!said.contains(debug), "{debug}: {run:?}");
        }
    }
    let cleared = gatehouse(&config, &["sign-out"]).await;
    assert_eq!(cleared.code, 0, "{cleared:?}");
    assert_eq!(keyring::count_entries(&profile), 0, "both items are gone");
    // The good one among them was signed out at the provider first, not orphaned alive.
    assert_eq!(idp.introspect(&refresh_token).await["active"], false, "{cleared:?}");

    keyring::store_raw(&profile, "{\"v\": 99, \"truncated");
    let token = gatehouse(&config, &["token"]).await;
    assert_eq!(token.code, 5, "{token:?}");
    assert!(token.stderr.contains("error[keychain_corrupt]"), "{token:?}");
    let cleared = gatehouse(&config, &["sign-out"]).await;
    assert_eq!(cleared.code, 0, "{cleared:?}");
    assert!(cleared.stderr.contains("couldn't be read"), "{cleared:?}");
    assert!(keyring::lookup(&profile).is_none());
    std::fs::remove_file(&config).unwrap();
}

/// Large group claims make large tokens. The Secret Service has no limit of its own that a session comes near,
/// so a 20 KB access token stays in the entry (twenty `gatehouse token` at once spend no refresh grant on it),
/// and a 17 KB refresh token is kept whole.
#[tokio::test]
async fn large_tokens_are_kept_whole_and_cost_no_renewal() {
    let (idp, config) = signed_in("large-tokens").await;
    let profile = profile_of("large-tokens");
    let keychain = gatehouse_lib::tokens::keychain::Keychain::new(keyring::SERVICE);
    let mut session = keychain.load(&profile).await.unwrap().unwrap();
    let real_refresh_token = session.refresh_token.clone();
    let large_access = "a".repeat(20 * 1024);
    session.access_token = Some(oauth2::AccessToken::new(large_access.clone()));
    session.refresh_token = Some(oauth2::RefreshToken::new("r".repeat(17 * 1024)));
    keychain.save(&profile, &session).await.unwrap();
    let back = gatehouse_lib::tokens::keychain::Keychain::new(keyring::SERVICE).load(&profile).await.unwrap().unwrap();
    assert_eq!(back.access_token.unwrap().secret().len(), 20 * 1024, "the access token is kept");
    assert_eq!(back.refresh_token.unwrap().secret().len(), 17 * 1024, "the refresh token is kept whole");

    session.refresh_token = real_refresh_token;
    keychain.save(&profile, &session).await.unwrap();
    let runs = concurrent_tokens(&config, 20).await;
    assert!(runs.iter().all(|run| run.code == 0 && run.stdout.trim_end() == large_access), "every call gets it");
    assert!(idp.events_named("grant.success", Some("refresh_token")).await.is_empty(), "no renewal for it");
    gatehouse(&config, &["sign-out"]).await;
    std::fs::remove_file(&config).unwrap();
}

/// A reader that went away (`gatehouse token | head -c0`, a closed pipe): Gatehouse says it couldn't write and
/// exits with an error code. `println!` would panic there, and with the release build's `panic = "abort"` abort a
/// process holding tokens.
#[tokio::test]
async fn a_closed_stdout_is_an_error_not_a_panic() {
    let (_idp, config) = signed_in("closed-stdout").await;
    for args in [vec!["status"], vec!["token"]] {
        let config = config.clone();
        let output = tokio::task::spawn_blocking(move || {
            let (reader, writer) = std::io::pipe().unwrap();
            drop(reader);
            std::process::Command::new(harness::desktop::app_binary())
                .args(&args)
                .env("GATEHOUSE_CONFIG", &config)
                .stdout(writer)
                .stderr(std::process::Stdio::piped())
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("couldn't write to standard output") && !stderr.contains("panicked"), "{stderr}");
    }
    gatehouse(&config, &["sign-out"]).await;
    std::fs::remove_file(&config).unwrap();
}

/// `gatehouse sign-in` with no browser to open (none on `PATH`), as over SSH: it prints the link on stderr
/// first, says that no browser could be opened and what to do, and takes the address the browser ended on
/// pasted on stdin, checked as the loopback listener checks it: a forged one is refused and the sign-in waits on;
/// the real one signs in. Nothing but the sign-in's own words reaches the terminal, and stdout stays empty.
#[tokio::test]
async fn sign_in_prints_the_link_and_takes_the_redirect_pasted_back() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    keyring::require_secret_service();
    let idp = Idp::start(&artifacts_dir("cli-paste").join("idp.log"));
    let config = config_path("cli-paste");
    let profile = profile_of("cli-paste");
    std::fs::write(
        &config,
        idp.profile_toml(&profile).replace("com.example.gatehouse:/callback", "http://127.0.0.1/callback"),
    )
    .unwrap();
    let no_browsers = config.with_extension("empty-path");
    std::fs::create_dir_all(&no_browsers).unwrap();
    let mut child = tokio::process::Command::new(harness::desktop::app_binary())
        .arg("sign-in")
        .env("GATEHOUSE_CONFIG", &config)
        .env("PATH", &no_browsers)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stderr = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut said = Vec::new();
    let link = loop {
        let line = tokio::time::timeout(Duration::from_secs(30), stderr.next_line()).await.unwrap().unwrap().unwrap();
        said.push(line.clone());
        if let Some(link) = line.trim().strip_prefix("http://127.0.0.1:") {
            break format!("http://127.0.0.1:{link}");
        }
    };
    assert_eq!(said.first().map(String::as_str), Some("To sign in, open this link in a browser:"), "{said:?}");
    loop {
        let line = tokio::time::timeout(Duration::from_secs(30), stderr.next_line()).await.unwrap().unwrap().unwrap();
        said.push(line.clone());
        if line.contains("paste that page's address here") {
            break;
        }
    }
    let said_text = said.join("\n");
    assert!(said_text.contains("No browser could be opened here"), "{said_text}");

    // The person signs in on another computer; its browser ends on the loopback address, which doesn't load there.
    let answer = harness::user_agent::authorize(&link, "carol", harness::user_agent::Decision::Approve).await.unwrap();
    assert!(answer.starts_with("http://127.0.0.1:"), "{answer}");
    let forged = harness::with_param(&answer, "state", "forged-state");
    stdin.write_all(format!("{forged}\n").as_bytes()).await.unwrap();
    let refused = loop {
        let line = tokio::time::timeout(Duration::from_secs(30), stderr.next_line()).await.unwrap().unwrap().unwrap();
        if line.starts_with("That address wasn't taken") {
            break line;
        }
    };
    assert!(refused.contains("from an earlier or another sign-in"), "{refused}");
    assert!(idp.events_named("grant.success", Some("authorization_code")).await.is_empty(), "nothing exchanged");

    stdin.write_all(format!("  {answer}  \n").as_bytes()).await.unwrap();
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait()).await.unwrap().unwrap();
    let mut rest = String::new();
    while let Ok(Some(line)) = stderr.next_line().await {
        rest.push_str(&line);
        rest.push('\n');
    }
    assert!(status.success(), "{status}: {rest}");
    assert!(rest.contains("Signed in as Carol"), "{rest}");
    let mut stdout = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut child.stdout.take().unwrap(), &mut stdout).await.unwrap();
    assert_eq!(stdout, "", "stdout is for what was asked");
    assert_eq!(idp.events_named("grant.success", Some("authorization_code")).await.len(), 1);
    assert!(keyring::session(&profile).is_some());
    assert_eq!(gatehouse(&config, &["sign-out"]).await.code, 0);
}

/// Every library the dynamic loader reported loading into the runs whose `LD_DEBUG=libs` output went to files
/// named `prefix.<pid>`, at start or later (`dlopen`).
fn loaded_libraries(prefix: &std::path::Path) -> String {
    let dir = prefix.parent().unwrap();
    let name = prefix.file_name().unwrap().to_string_lossy().into_owned();
    let mut loaded = String::new();
    for entry in std::fs::read_dir(dir).unwrap().filter_map(Result::ok) {
        if entry.file_name().to_string_lossy().starts_with(&format!("{name}.")) {
            let text = std::fs::read_to_string(entry.path()).unwrap();
            for line in text.lines().filter(|l| l.contains("calling init:")) {
                loaded.push_str(line.trim());
                loaded.push('\n');
            }
        }
    }
    loaded
}

/// `gatehouse status`, `token`, `credential`, `sign-in` (loopback and device) and `sign-out` run without GTK or
/// WebKitGTK: the program they run has neither among its libraries (`ldd`), the dynamic loader loads neither
/// into any of them, at start or later (`LD_DEBUG=libs`), and a sign-in waiting for its browser has neither
/// mapped (`/proc/PID/maps`). The window program, which `gatehouse` hands everything else to, has them all.
#[tokio::test]
async fn the_command_line_loads_no_window_toolkit() {
    let ldd = |binary: std::path::PathBuf| {
        let output = std::process::Command::new("ldd").arg(&binary).output().unwrap();
        assert!(output.status.success(), "ldd {}", binary.display());
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let window = ldd(harness::desktop::window_binary());
    for lib in ["libgtk-", "libwebkit2gtk"] {
        assert!(window.contains(lib), "the window program links {lib}:\n{window}");
    }
    let command_line = ldd(harness::desktop::app_binary());
    assert!(command_line.contains("libc.so"), "{command_line}");
    assert_eq!(desktop::toolkit_in(&command_line), Vec::<&str>::new(), "gatehouse links no window toolkit");

    let (idp, config) = signed_in("no-toolkit").await;
    let profile = profile_of("no-toolkit");
    let traces = config.with_extension("ld");
    std::fs::create_dir_all(&traces).unwrap();
    let traced = |name: &str| {
        vec![
            ("LD_DEBUG".to_owned(), "libs".to_owned()),
            ("LD_DEBUG_OUTPUT".to_owned(), traces.join(name).display().to_string()),
        ]
    };
    let expect_none = |name: &str| {
        let loaded = loaded_libraries(&traces.join(name));
        assert!(loaded.contains("libc.so"), "{name}: the loader's trace is read:\n{loaded}");
        assert_eq!(desktop::toolkit_in(&loaded), Vec::<&str>::new(), "{name} loaded the window toolkit");
    };

    for (name, args) in [("status", vec!["status"]), ("token", vec!["token"])] {
        let run = harness::cli::gatehouse_with(&config, &args, &traced(name)).await;
        assert_eq!(run.code, 0, "{run:?}");
        expect_none(name);
    }
    let host = idp.issuer().trim_start_matches("http://").to_owned();
    let credential = std::process::Command::new(harness::desktop::app_binary())
        .args(["credential", "get"])
        .env("GATEHOUSE_CONFIG", &config)
        .envs(traced("credential"))
        .stdin(
            std::fs::File::open({
                let asked = traces.join("asked");
                std::fs::write(&asked, format!("protocol=http\nhost={host}\n\n")).unwrap();
                asked
            })
            .unwrap(),
        )
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&credential.stdout).contains("password="), "{credential:?}");
    expect_none("credential");
    let run = harness::cli::gatehouse_with(&config, &["sign-out"], &traced("sign-out")).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(keyring::lookup(&profile).is_none());
    expect_none("sign-out");

    // A sign-in with a loopback redirect, waiting for the browser: its listener is up, its libraries all mapped.
    let loopback = config.with_extension("loopback.toml");
    std::fs::write(
        &loopback,
        idp.bearer_profile_toml(&profile).replace("com.example.gatehouse:/callback", "http://127.0.0.1/callback"),
    )
    .unwrap();
    let no_browsers = traces.join("empty-path");
    std::fs::create_dir_all(&no_browsers).unwrap();
    let mut child = tokio::process::Command::new(harness::desktop::app_binary())
        .arg("sign-in")
        .env("GATEHOUSE_CONFIG", &loopback)
        .env("PATH", &no_browsers)
        .envs(traced("sign-in"))
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    {
        use tokio::io::AsyncBufReadExt;
        let mut stderr = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
        while let Some(line) = tokio::time::timeout(Duration::from_secs(30), stderr.next_line()).await.unwrap().unwrap()
        {
            if line.contains("paste that page's address here") {
                break;
            }
        }
    }
    let maps = std::fs::read_to_string(format!("/proc/{}/maps", child.id().unwrap())).unwrap();
    assert!(maps.contains("libc.so"), "{maps}");
    assert_eq!(desktop::toolkit_in(&maps), Vec::<&str>::new(), "a waiting sign-in maps no window toolkit");
    child.kill().await.unwrap();
    expect_none("sign-in");

    // A sign-in with a code, approved on "another device", to the end.
    let run = harness::cli::device_sign_in_with(&config, "alice", &traced("device")).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(keyring::lookup(&profile).is_some());
    expect_none("device");
    harness::cli::gatehouse(&config, &["sign-out"]).await;
    let _ = std::fs::remove_dir_all(&traces);
    std::fs::remove_file(&loopback).unwrap();
    std::fs::remove_file(&config).unwrap();
}
