//! Several accounts: side by side, added in the window, and one bound to a DPoP key.

use super::*;

/// Two profiles side by side, in one window and one tray: both sign in at once, each link reaches the sign-in
/// it answers although they come back crossed, a link that answers neither changes neither, signing out of one
/// leaves the other, and a profile taken out of the config leaves its session until the person forgets it.
#[tokio::test]
async fn s26_two_accounts_side_by_side_in_the_window_and_the_tray() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let host = harness::tray::TrayHost::start();
    let before = host.registered();
    let (idp, desktop) = start("s26-two-accounts");
    let (work, home) = (format!("{}-work", desktop.profile), format!("{}-home", desktop.profile));
    let both = format!("[[profile]]\n{}\n[[profile]]\n{}", idp.profile_toml(&work), idp.profile_toml(&home));
    std::fs::write(&desktop.config, both).unwrap();
    let app = desktop.launch().await;
    app.card(&work).wait_for_phase("signedOut").await;
    app.card(&home).wait_for_phase("signedOut").await;
    let menu = host.menu_after(before).await;

    // Both sign-ins wait at once: Alice at work, Bob at home. The browser keeps each redirect for the test.
    desktop.browser_decides("capture");
    let mut links = Vec::new();
    for (profile, login) in [(&work, "alice"), (&home, "bob")] {
        desktop.browser_signs_in_as(login);
        let redirects = desktop.browser_log().lines().count();
        app.card(profile).click("sign-in").await;
        app.card(profile).wait_for_phase("waitingForBrowser").await;
        wait_for("the browser to finish", desktop::UI_TIMEOUT, || async {
            (desktop.browser_log().lines().count() > redirects).then_some(())
        })
        .await;
        links.push(desktop.last_redirect());
    }

    // Crossed: Bob's redirect comes back first, through the OS.
    desktop.xdg_open(&links[1]);
    app.card(&home).wait_for_phase("signedIn").await;
    app.card(&home).wait_for_text("account", "Bob").await;
    app.card(&home).wait_for_text("resource", "Hello, Bob!").await;
    assert_eq!(app.card(&work).phase().await, "waitingForBrowser", "the other sign-in must still wait");
    assert_eq!(app.card(&work).notice_kind().await, None);

    // Bob's redirect again answers no sign-in: the window says so, and neither account changes.
    let home_entry = keyring::lookup(&home).unwrap();
    desktop.xdg_open(&links[1]);
    wait_for("the window's notice", desktop::UI_TIMEOUT, || async {
        (app.window_notice_kind().await.as_deref() == Some("callback_rejected")).then_some(())
    })
    .await;
    assert_eq!(app.card(&work).phase().await, "waitingForBrowser");
    assert_eq!(app.card(&home).phase().await, "signedIn");
    assert_eq!((app.card(&work).notice_kind().await, app.card(&home).notice_kind().await), (None, None));
    assert_eq!(keyring::lookup(&home).unwrap(), home_entry);

    desktop.xdg_open(&links[0]);
    app.card(&work).wait_for_phase("signedIn").await;
    app.card(&work).wait_for_text("account", "Alice").await;
    app.card(&work).wait_for_text("resource", "Hello, Alice!").await;
    assert_eq!(app.card(&home).text("account").await, "Bob");
    assert_eq!((keyring::count_entries(&work), keyring::count_entries(&home)), (1, 1));
    app.screenshot("two-accounts").await;
    app.audit_accessibility("two-accounts").await;

    // The tray lists both, each with its own actions.
    let (w, h) = (work.as_str(), home.as_str());
    let signed_in = [
        format!("{w}: Signed in as Alice (disabled)"),
        format!("Refresh {w}"),
        format!("Sign out of {w}"),
        format!("{h}: Signed in as Bob (disabled)"),
        format!("Refresh {h}"),
        format!("Sign out of {h}"),
    ];
    let rest = ["Start at login [ ]", "Show Gatehouse", "Quit"].map(String::from);
    let want: Vec<&str> = signed_in.iter().chain(rest.iter()).map(String::as_str).collect();
    expect_tray(&menu, &want).await;

    // Signing out of home, from the tray, leaves work and its keychain entry as they were.
    let work_entry = keyring::lookup(&work).unwrap();
    let home_refresh = keyring::session(&home).unwrap()["refresh_token"].as_str().unwrap().to_owned();
    menu.click(&format!("Sign out of {h}"));
    app.card(&home).wait_for_phase("signedOut").await;
    assert!(keyring::lookup(&home).is_none());
    assert_eq!(idp.introspect(&home_refresh).await["active"], false);
    assert_eq!(keyring::lookup(&work).unwrap(), work_entry);
    assert_eq!(app.card(&work).phase().await, "signedIn");
    app.card(&work).wait_for_text("account", "Alice").await;
    app.quit().await;

    // Work is taken out of the config. Its session stays in the keychain, and the window says so and offers to
    // forget it; forgetting removes exactly that entry.
    std::fs::write(&desktop.config, format!("[[profile]]\n{}", idp.profile_toml(&home))).unwrap();
    let app = desktop.launch().await;
    app.card(&home).wait_for_phase("signedOut").await;
    app.wait_for_text("removed", &work).await;
    assert_eq!(keyring::lookup(&work).unwrap(), work_entry);
    app.screenshot("removed-profile").await;
    app.audit_accessibility("removed-profile").await;
    app.click(&format!("forget-{w}")).await;
    wait_for("the session to be forgotten", desktop::UI_TIMEOUT, || async {
        keyring::lookup(&work).is_none().then_some(())
    })
    .await;
    // Other scenarios' sessions may be listed too (they are removed profiles here as well); this one is gone.
    assert!(!app.text("removed").await.contains(w), "{}", app.text("removed").await);
    app.quit().await;
}

/// "Add account": a second account at the provider of the first, in the same window. The provider is asked to
/// let the person sign in as someone else (it lists no `select_account`, so `prompt=login`, beside the `consent`
/// that `offline_access` asks for), both accounts
/// survive a restart and are seen by the command line, and the added one can be signed out and removed.
#[tokio::test]
async fn s27_add_account_signs_in_a_second_account_at_the_same_provider() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let (idp, desktop) = start("s27-add-account");
    let app = launch_and_sign_in(&desktop).await;
    let (first, second) = (desktop.profile.clone(), format!("{}-2", desktop.profile));
    let data = std::env::var_os("XDG_DATA_HOME").map(std::path::PathBuf::from).unwrap();
    let added_list = data.join(keyring::SERVICE).join("added-accounts.json");
    let listed = || std::fs::read_to_string(&added_list).unwrap_or_default();

    // Add account asks first, and Cancel creates nothing.
    app.click("add-account").await;
    app.click("add-account-cancel").await;
    assert_eq!(app.card(&second).phase().await, "", "nothing was created");
    assert!(!listed().contains(&second));
    // A first sign-in that ends without signing in (declined at the provider) keeps no account.
    desktop.browser_decides("deny");
    app.click("add-account").await;
    app.click("add-account-confirm").await;
    wait_for("the window to say the account wasn't added", desktop::UI_TIMEOUT, || async {
        (app.window_notice_kind().await.as_deref() == Some("account_not_added")).then_some(())
    })
    .await;
    assert!(app.text("window-notice").await.contains("declined"), "{}", app.text("window-notice").await);
    wait_for("the unfinished account's card to go", desktop::UI_TIMEOUT, || async {
        app.card(&second).phase().await.is_empty().then_some(())
    })
    .await;
    assert!(!listed().contains(&second), "{}", listed());
    app.execute("document.querySelector('[data-testid=window-notice] button').click(); return 0").await;
    desktop.browser_decides("approve");

    desktop.browser_signs_in_as("bob");
    app.click("add-account").await;
    app.click("add-account-confirm").await;
    app.card(&second).wait_for_phase("signedIn").await;
    app.card(&second).wait_for_text("account", "Bob").await;
    app.card(&second).wait_for_text("resource", "Hello, Bob!").await;
    assert_eq!(app.card(&first).text("account").await, "Alice");
    let pushed = idp.events_named("par.success", None).await;
    assert_eq!(pushed.len(), 3, "Alice's, the declined one's and Bob's");
    // OIDC Core §11: the profile asks for offline_access, so each request says consent; an added account's
    // also asks to sign in as someone else.
    assert_eq!(pushed[0]["prompt"], "consent", "the first sign-in asks only for consent");
    assert_eq!(
        (pushed[1]["prompt"].as_str(), pushed[2]["prompt"].as_str()),
        (Some("consent login"), Some("consent login"))
    );
    assert_eq!((keyring::count_entries(&first), keyring::count_entries(&second)), (1, 1));
    app.screenshot("added-account").await;
    app.audit_accessibility("added-account").await;

    // The command line knows the added account too, and shows no token.
    let run = harness::cli::gatehouse_with(&desktop.config, &["status", "--json"], &desktop.app_env()).await;
    assert_eq!(run.code, 0, "{run:?}");
    let want = [(first.clone(), "Alice".to_owned()), (second.clone(), "Bob".to_owned())];
    assert_eq!(harness::cli::listed_accounts(&run.stdout), want);
    for profile in [&first, &second] {
        let session = keyring::session(profile).unwrap();
        for field in ["access_token", "refresh_token"] {
            assert!(!run.stdout.contains(session[field].as_str().unwrap()), "status shows {profile}'s {field}");
        }
    }

    // Both come back after a restart, without the browser.
    app.quit().await;
    let app = desktop.launch().await;
    app.card(&second).wait_for_phase("signedIn").await;
    app.card(&second).wait_for_text("account", "Bob").await;
    app.card(&first).wait_for_text("account", "Alice").await;
    assert_eq!(desktop.browser_launches(), 3);

    // Signed out, the added account can be removed; the first one stays as it was.
    let first_entry = keyring::lookup(&first).unwrap();
    app.card(&second).click("sign-out").await;
    app.card(&second).wait_for_phase("signedOut").await;
    assert!(keyring::lookup(&second).is_none());
    app.card(&second).click("remove").await;
    wait_for("the added account's card to go", desktop::UI_TIMEOUT, || async {
        app.card(&second).phase().await.is_empty().then_some(())
    })
    .await;
    assert_eq!(app.card(&first).phase().await, "signedIn");
    assert_eq!(keyring::lookup(&first).unwrap(), first_entry);
    assert!(!listed().contains(&second), "{}", listed());
    app.quit().await;
}

/// DPoP (RFC 9449) against the demo provider, which requires it with nonces: the window signs in and shows the
/// binding, the resource is served only with proofs of the session's key, an access token copied out of the
/// keychain is refused without that key, and the app's own Refresh and Sign out still work with it.
#[tokio::test]
async fn s28_a_dpop_bound_session_and_a_copied_token_that_is_useless_without_the_key() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let (idp, desktop) = start("s28-dpop");
    let app = launch_and_sign_in(&desktop).await;
    app.wait_for_text("protection", "bound to a key").await;
    let session = keyring::session(&desktop.profile).unwrap();
    assert_eq!(session["v"], 3);
    let key = session["dpop_key"].as_str().expect("the session's key is kept in its keychain entry");
    let private = serde_json::from_str::<serde_json::Value>(key).unwrap()["d"].as_str().unwrap().to_owned();
    assert!(!app.page_source().await.contains(&private), "the key's private part is in the page");

    // Both servers asked for a nonce first (§8, §9), and Gatehouse answered each with one retry.
    assert!(!idp.events_named("resource.nonce_required", None).await.is_empty());
    let challenged = idp.events_named("grant.error", None).await;
    assert!(challenged.iter().any(|e| e["error"] == "use_dpop_nonce"), "{challenged:?}");
    assert!(idp.refused_grants().await.is_empty());
    let served = idp.events_named("resource.served", None).await;
    let access = keyring::stored(&desktop.profile, "access_token");
    assert_eq!(served.last().unwrap()["tokenSha256"], sha256_hex(&access));
    assert_eq!(served.last().unwrap()["dpop"], true);

    // The token, copied out of the keychain, is refused without the key: as a Bearer token, and as a DPoP
    // token without a proof.
    let http = reqwest::Client::new();
    let resource = format!("{}/api/resource", idp.issuer());
    let bearer = http.get(&resource).bearer_auth(&access).send().await.unwrap();
    assert_eq!(bearer.status(), 401);
    let unproven = http.get(&resource).header("Authorization", format!("DPoP {access}")).send().await.unwrap();
    assert_eq!(unproven.status(), 401);
    let rejected = idp.events_named("resource.rejected", None).await;
    assert_eq!(rejected.len(), 2, "{rejected:?}");
    assert_eq!(rejected[0]["reason"], "a DPoP-bound token without its proof");
    assert_eq!(rejected[1]["reason"], "no DPoP proof");

    // The app's own requests go on working: Refresh renews with the key, and the resource takes the new token.
    let refresh_before = keyring::stored(&desktop.profile, "refresh_token");
    app.click("refresh").await;
    wait_for("the refresh grant", desktop::UI_TIMEOUT, || async {
        (idp.events_named("grant.success", Some("refresh_token")).await.len() == 1).then_some(())
    })
    .await;
    app.wait_for_phase("signedIn").await;
    let renewed = keyring::stored(&desktop.profile, "access_token");
    assert_ne!(renewed, access);
    wait_for("the resource to be served with the renewed token", desktop::UI_TIMEOUT, || async {
        let served = idp.events_named("resource.served", None).await;
        (served.last().unwrap()["tokenSha256"] == sha256_hex(&renewed)).then_some(())
    })
    .await;
    assert_eq!(keyring::session(&desktop.profile).unwrap()["dpop_key"].as_str(), Some(key), "one key per session");

    // Sign out revokes with the key, and the keychain entry (key included) goes.
    let refresh = keyring::stored(&desktop.profile, "refresh_token");
    assert_ne!(refresh, refresh_before);
    app.click("sign-out").await;
    app.wait_for_phase("signedOut").await;
    assert!(keyring::lookup(&desktop.profile).is_none());
    assert_eq!(idp.introspect(&refresh).await["active"], false);
    app.quit().await;
}
