//! Where there is no window: no display, usage and config errors with their exit codes, and the token command's figures.

use super::*;

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
