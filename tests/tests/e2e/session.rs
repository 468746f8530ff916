//! Signing in, the session it keeps, and what the window says when something goes wrong on the way.

use super::*;

#[tokio::test]
async fn s01_sign_in_shows_the_account_and_keeps_tokens_out_of_the_page() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let (idp, desktop) = start("s01-sign-in");
    let app = desktop.launch().await;
    app.wait_for_phase("signedOut").await;
    assert_eq!(app.text("status").await, "Signed out");
    app.screenshot("signed-out").await;
    app.audit_accessibility("signed-out").await;

    // A script in the page tries to hear the deep-link plugin's event, which carries the raw callback URL
    // with its code. The window may listen to no event at all, so it is refused, and nothing is ever heard.
    let listening = app
        .execute(
            "window.__heardLinks = []; \
             return window.__TAURI__.event.listen('deep-link://new-url', (e) => window.__heardLinks.push(e.payload)) \
               .then(() => 'listening', (e) => 'refused: ' + e);",
        )
        .await;
    assert!(listening.as_str().is_some_and(|s| s.starts_with("refused")), "{listening}");

    // The person takes their time in the browser: the window waits, with Cancel.
    desktop.hold_browser();
    app.click("sign-in").await;
    app.wait_for_text("status", "Waiting for the browser").await;
    assert_eq!(app.text("cancel").await, "Cancel");
    app.screenshot("waiting").await;
    app.audit_accessibility("waiting").await;
    // The request was pushed to the provider (RFC 9126): the browser's address bar and history hold only a
    // reference to it, and what OIDC Core §6.2 wants beside one (`response_type`, `scope=openid`), not the state,
    // the nonce, the PKCE challenge, the other scopes or the redirect URI.
    let authorize =
        wait_for("the browser to be opened", desktop::UI_TIMEOUT, || async { desktop.try_last_authorize() }).await;
    let authorize = url::Url::parse(&authorize).unwrap();
    let names: std::collections::BTreeSet<String> = authorize.query_pairs().map(|(k, _)| k.into_owned()).collect();
    let expected = ["client_id", "request_uri", "response_type", "scope"];
    assert_eq!(names, expected.map(String::from).into(), "{authorize}");
    assert!(authorize.query_pairs().any(|(k, v)| k == "scope" && v == "openid"), "openid alone: {authorize}");
    assert_eq!(idp.events_named("par.success", None).await.len(), 1);
    desktop.release_browser();

    app.wait_for_phase("signedIn").await;
    assert_eq!(app.wait_for_text("account", "Alice").await, "Alice");
    let resource = app.wait_for_text("resource", "Hello, Alice!").await;
    assert!(resource.contains("Username") && resource.contains("alice"), "{resource}");
    let status = app.text("status").await;
    assert_eq!(status, "Signed in");
    app.screenshot("signed-in").await;
    app.audit_accessibility("signed-in").await;

    // Exactly one keychain entry, and the resource was fetched with the stored token.
    assert_eq!(keyring::count_entries(&desktop.profile), 1);
    let access = keyring::stored(&desktop.profile, "access_token");
    let refresh = keyring::stored(&desktop.profile, "refresh_token");
    let served = idp.events_named("resource.served", None).await;
    assert_eq!(served.last().unwrap()["tokenSha256"], sha256_hex(&access));

    // No link reached a script in the page, and no token reaches the page.
    assert_eq!(app.execute("return window.__heardLinks.length").await, 0, "a script heard the callback URL");
    let source = app.page_source().await;
    assert!(source.contains("Hello, Alice!"));
    assert!(!source.contains(&access), "the access token is in the page");
    assert!(!source.contains(&refresh), "the refresh token is in the page");
    let log = app.log_path();
    app.quit().await;

    // Nor does any token, or the authorization code, reach the app's log.
    let code = url::Url::parse(&desktop.last_redirect())
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let log = std::fs::read_to_string(log).unwrap();
    assert!(log.contains("signed in; session stored in the keychain"), "the log is not the app's");
    for (name, secret) in [("access token", &access), ("refresh token", &refresh), ("code", &code)] {
        assert!(!log.contains(secret.as_str()), "the {name} is in the app's log");
    }
}

#[tokio::test]
async fn s02_restart_restores_the_session_without_the_browser() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let (idp, desktop) = start("s02-restart");
    let app = launch_and_sign_in(&desktop).await;
    let launches = desktop.browser_launches();
    let authorizations = idp.events_named("authorization.success", None).await.len();
    app.quit().await;
    assert!(keyring::lookup(&desktop.profile).is_some(), "quitting must keep the session");

    let app = desktop.launch_with(Launch { label: Some("restarted".into()), ..Launch::default() }).await;
    app.wait_for_phase("signedIn").await;
    app.wait_for_text("account", "Alice").await;
    app.wait_for_text("resource", "Hello, Alice!").await;
    app.screenshot("restored").await;
    assert_eq!(desktop.browser_launches(), launches, "restoring must not open the browser");
    assert_eq!(idp.events_named("authorization.success", None).await.len(), authorizations);
    app.quit().await;
}

#[tokio::test]
async fn s03_refresh_rotates_the_refresh_token() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let (idp, desktop) = start("s03-refresh");
    let app = launch_and_sign_in(&desktop).await;
    let refresh_before = keyring::stored(&desktop.profile, "refresh_token");
    assert!(idp.events_named("grant.success", Some("refresh_token")).await.is_empty());

    app.click("refresh").await;
    wait_for("the provider to record a refresh", desktop::UI_TIMEOUT, || async {
        (!idp.events_named("grant.success", Some("refresh_token")).await.is_empty()).then_some(())
    })
    .await;
    app.wait_for_phase("signedIn").await;
    let access_after = wait_for("the new access token to be used", desktop::UI_TIMEOUT, || async {
        let access = keyring::stored(&desktop.profile, "access_token");
        let served = idp.events_named("resource.served", None).await;
        (served.last().map(|e| e["tokenSha256"] == sha256_hex(&access)) == Some(true)).then_some(access)
    })
    .await;
    assert_eq!(idp.events_named("grant.success", Some("refresh_token")).await.len(), 1);
    let refresh_after = keyring::stored(&desktop.profile, "refresh_token");
    assert_ne!(refresh_after, refresh_before, "the rotated refresh token must be stored");
    assert_eq!(idp.introspect(&refresh_before).await["active"], false);
    assert_eq!(idp.introspect(&refresh_after).await["active"], true);
    assert!(!app.page_source().await.contains(&access_after));
    app.wait_for_text("account", "Alice").await;
    app.quit().await;
}

#[tokio::test]
async fn s04_sign_out_revokes_and_empties_the_keychain() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let (idp, desktop) = start("s04-sign-out");
    let app = launch_and_sign_in(&desktop).await;
    let refresh = keyring::stored(&desktop.profile, "refresh_token");

    app.click("sign-out").await;
    app.wait_for_phase("signedOut").await;
    assert_eq!(app.text("status").await, "Signed out");
    assert_eq!(app.text("account").await, "");
    assert!(keyring::lookup(&desktop.profile).is_none(), "the keychain entry must be gone");
    assert_eq!(idp.introspect(&refresh).await["active"], false, "the provider must report the token revoked");
    assert_eq!(app.notice_kind().await.as_deref(), Some("signed_out"));
    app.quit().await;
}

#[tokio::test]
async fn s05_denied_consent_says_so_and_sign_in_works_afterwards() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let (_idp, desktop) = start("s05-denied");
    let app = desktop.launch().await;
    app.wait_for_phase("signedOut").await;

    desktop.browser_decides("deny");
    app.click("sign-in").await;
    let message = app.wait_for_notice("access_denied").await;
    assert!(message.contains("declined access"), "{message}");
    app.wait_for_phase("signedOut").await;
    app.screenshot("error-access-denied").await;
    app.audit_accessibility("error-access-denied").await;
    assert!(keyring::lookup(&desktop.profile).is_none());

    desktop.browser_decides("approve");
    sign_in_as_alice(&app).await;
    app.quit().await;
}

#[tokio::test]
async fn s06_forged_and_replayed_links_are_rejected_while_signed_in() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let (idp, desktop) = start("s06-forged");
    let app = launch_and_sign_in(&desktop).await;
    let (first, second) = (desktop.profile.clone(), format!("{}-2", desktop.profile));
    let alice_entry = keyring::lookup(&first).unwrap();
    let alices_answer = desktop.last_redirect();

    // Alice is signed in and a second sign-in waits beside her (Add account), so a link whose state were not
    // checked would have a sign-in to complete: the checks below are what stop it. The browser gets the
    // provider's answer for the second account but hasn't handed it over yet.
    desktop.browser_signs_in_as("bob");
    desktop.browser_decides("capture");
    app.click("add-account").await;
    app.click("add-account-confirm").await;
    app.card(&second).wait_for_phase("waitingForBrowser").await;
    let real = wait_for("the browser to get the provider's answer", desktop::UI_TIMEOUT, || async {
        desktop.try_last_redirect().filter(|r| *r != alices_answer)
    })
    .await;
    let exchanges = idp.events_named("grant.success", Some("authorization_code")).await.len();

    // A keyboard user is on Alice's Sign out when the links come: the window updates, and they keep their place.
    let focus = format!(
        "document.querySelector(\"[data-profile='{first}'] [data-testid=sign-out]\").focus(); \
         return document.activeElement.dataset.testid"
    );
    assert_eq!(app.execute(&focus).await, "sign-out");
    for (what, link) in [
        (
            "a forged code and state",
            format!("com.example.gatehouse:/callback?code=forged-code&state=forged-state&iss={}", idp.issuer()),
        ),
        ("the waiting sign-in's code with a forged state", with_param(&real, "state", "forged-state")),
        ("Alice's own answer, replayed", alices_answer.clone()),
    ] {
        desktop.xdg_open(&link);
        wait_for("the window's notice", desktop::UI_TIMEOUT, || async {
            (app.window_notice_kind().await.as_deref() == Some("callback_rejected")).then_some(())
        })
        .await;
        let message = app.text("window-notice").await;
        assert!(message.contains("from an earlier or another sign-in"), "{what}: {message}");
        assert_eq!(
            app.execute("return document.activeElement.dataset.testid || ''").await,
            "sign-out",
            "{what}: the focus moved"
        );
        assert_eq!(app.card(&first).phase().await, "signedIn", "{what}");
        assert_eq!(app.card(&first).text("account").await, "Alice", "{what}");
        assert_eq!(app.card(&second).phase().await, "waitingForBrowser", "{what}: the real sign-in must still wait");
        app.screenshot("error-forged-link").await;
        app.audit_accessibility("error-forged-link").await;
        app.execute("document.querySelector('[data-testid=window-notice] button').click(); return 0").await;
        wait_for("the window's notice to go", desktop::UI_TIMEOUT, || async {
            app.window_notice_kind().await.is_none().then_some(())
        })
        .await;
    }
    assert_eq!(keyring::lookup(&first).unwrap(), alice_entry, "Alice's keychain entry must be unchanged");
    assert!(keyring::lookup(&second).is_none(), "nothing is stored for the waiting sign-in");
    assert_eq!(
        idp.events_named("grant.success", Some("authorization_code")).await.len(),
        exchanges,
        "no code was exchanged"
    );

    // The real answer still completes the waiting sign-in, and Alice stays as she was.
    desktop.xdg_open(&real);
    app.card(&second).wait_for_phase("signedIn").await;
    app.card(&second).wait_for_text("account", "Bob").await;
    assert_eq!(app.card(&first).text("account").await, "Alice");
    assert_eq!(keyring::lookup(&first).unwrap(), alice_entry);
    app.quit().await;
}

/// A link that starts the app is said to answer no sign-in, is kept out of the running process's command line,
/// and the app stays usable.
#[tokio::test]
async fn s07_a_link_that_starts_the_app_is_handled_and_the_app_stays_usable() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let (idp, desktop) = start("s07-cold-start");
    let forged = format!("com.example.gatehouse:/callback?code=cold&state=cold-start&iss={}", idp.issuer());
    let app = desktop.launch_with(Launch { via_link: Some(forged), ..Launch::default() }).await;
    let message = app.wait_for_notice("callback_rejected").await;
    assert!(message.contains("no sign-in was in progress"), "{message}");
    app.wait_for_phase("signedOut").await;
    // A link that started Gatehouse answers no sign-in, and never stays in the command line of the process that
    // goes on running, which every local user can read (/proc/PID/cmdline).
    let processes = desktop::app_processes();
    assert!(!processes.is_empty());
    for pid in processes {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        assert!(!cmdline.contains("code=cold") && !cmdline.contains("cold-start"), "{pid}: {cmdline}");
    }
    app.screenshot("cold-start-link").await;

    sign_in_as_alice(&app).await;
    app.quit().await;
}

#[tokio::test]
async fn s08_cancel_returns_to_signed_out_and_a_late_callback_is_rejected() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let (idp, desktop) = start("s08-cancel");
    let app = desktop.launch().await;
    app.wait_for_phase("signedOut").await;

    desktop.hold_browser();
    app.click("sign-in").await;
    app.wait_for_phase("waitingForBrowser").await;
    app.click("cancel").await;
    app.wait_for_phase("signedOut").await;
    app.wait_for_notice("sign_in_cancelled").await;
    app.audit_accessibility("cancelled").await;

    // The person finishes in the browser anyway; the redirect arrives after the cancel.
    desktop.release_browser();
    let message = app.wait_for_notice("callback_rejected").await;
    assert!(message.contains("no sign-in was in progress"), "{message}");
    assert_eq!(app.phase().await, "signedOut");
    assert!(keyring::lookup(&desktop.profile).is_none());
    assert!(
        idp.events_named("grant.success", Some("authorization_code")).await.is_empty(),
        "the code must not be exchanged"
    );
    app.quit().await;
}

#[tokio::test]
async fn s09_without_a_keychain_sign_in_fails_clearly_and_nothing_is_written() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let (idp, desktop) = start("s09-no-keychain");
    let bus = BareBus::start(&desktop.scratch);
    let env = vec![("DBUS_SESSION_BUS_ADDRESS".to_string(), bus.address.clone())];
    let app = desktop.launch_with(Launch { env, ..Launch::default() }).await;
    app.wait_for_phase("signedOut").await;
    // Gatehouse looks for a stored session at launch, and says at once that it can't keep one.
    app.wait_for_notice("keychain_unavailable").await;
    app.dismiss_notice().await;

    app.click("sign-in").await;
    wait_for("the provider to issue tokens", desktop::UI_TIMEOUT, || async {
        (!idp.events_named("grant.success", Some("authorization_code")).await.is_empty()).then_some(())
    })
    .await;
    let message = app.wait_for_notice("keychain_unavailable").await;
    assert!(message.contains("keychain isn't available"), "{message}");
    app.wait_for_phase("signedOut").await;
    app.screenshot("error-no-keychain").await;
    app.audit_accessibility("error-no-keychain").await;

    // Tokens were issued, and must be nowhere on disk: not under HOME, nor in the XDG data, config, cache or
    // runtime directories (tests/bin/test puts all of them in one scratch directory).
    let issued = desktop::issued_token_hashes(&idp.events().await);
    assert!(!issued.is_empty(), "the provider issued no tokens, so this test proves nothing");
    let scratch = std::env::var_os("GATEHOUSE_TEST_SCRATCH").or_else(|| std::env::var_os("HOME")).unwrap();
    let leaks = desktop::files_containing_tokens(std::path::Path::new(&scratch), &issued);
    assert!(leaks.is_empty(), "tokens written to {leaks:?}");
    // And the grant was not left alive at the provider.
    assert!(!idp.events_named("grant.revoked", None).await.is_empty(), "the unkept grant must be revoked");
    app.quit().await;
}

#[tokio::test]
async fn s10_provider_down_keeps_the_session_and_refresh_recovers() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let (mut idp, desktop) = start("s10-provider-down");
    let app = launch_and_sign_in(&desktop).await;
    let entry_before = keyring::lookup(&desktop.profile).unwrap();

    idp.stop();
    app.click("refresh").await;
    let message = app.wait_for_notice("network").await;
    assert!(message.contains("Couldn't reach the provider"), "{message}");
    app.wait_for_phase("signedIn").await;
    assert_eq!(app.text("account").await, "Alice");
    app.screenshot("error-provider-down").await;
    app.audit_accessibility("error-provider-down").await;
    assert_eq!(keyring::lookup(&desktop.profile).unwrap(), entry_before, "the session must be kept");

    idp.restart();
    app.click("refresh").await;
    wait_for("the notice to clear after a good refresh", desktop::UI_TIMEOUT, || async {
        app.notice_kind().await.is_none().then_some(())
    })
    .await;
    app.wait_for_phase("signedIn").await;
    assert_eq!(idp.events_named("grant.success", Some("refresh_token")).await.len(), 1);
    assert_ne!(keyring::lookup(&desktop.profile).unwrap(), entry_before);
    app.quit().await;
}

#[tokio::test]
async fn s11_a_broken_config_is_shown_with_the_field_at_fault() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let (_idp, desktop) = start("s11-broken-config");
    let text = std::fs::read_to_string(&desktop.config).unwrap();
    std::fs::write(&desktop.config, text.replace("com.example.gatehouse:/callback", "http://example.com/callback"))
        .unwrap();
    let app = desktop.launch().await;
    app.wait_for_phase("configError").await;
    let message = app.wait_for_notice("config_invalid").await;
    assert!(message.contains("redirect_uri") && message.contains("RFC 8252"), "{message}");
    assert_eq!(app.text("sign-in").await, "", "no sign-in with a broken config");
    app.screenshot("error-broken-config").await;
    app.audit_accessibility("error-broken-config").await;
    app.quit().await;
}

#[tokio::test]
async fn s12_a_sign_in_the_browser_never_finishes_times_out_with_a_message() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let (_idp, desktop) = start("s12-timeout");
    // The shortest wait a profile may set; the default is ten minutes.
    let mut text = std::fs::read_to_string(&desktop.config).unwrap();
    text.push_str("sign_in_timeout_secs = 10\n");
    std::fs::write(&desktop.config, text).unwrap();
    desktop.browser_decides("ignore");
    let app = desktop.launch().await;
    app.wait_for_phase("signedOut").await;

    app.click("sign-in").await;
    app.wait_for_phase("waitingForBrowser").await;
    let message = app.wait_for_notice("sign_in_timed_out").await;
    app.audit_accessibility("error-timed-out").await;
    assert!(message.contains("took too long"), "{message}");
    app.wait_for_phase("signedOut").await;
    assert_eq!(app.text("sign-in").await, "Sign in");
    app.quit().await;
}

#[tokio::test]
async fn s13_a_locked_keychain_is_reported_and_the_session_survives_it() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let (idp, desktop) = start("s13-locked-keychain");
    let app = launch_and_sign_in(&desktop).await;
    let entry = keyring::lookup(&desktop.profile).unwrap();
    app.quit().await;
    let launches = desktop.browser_launches();

    keyring::lock();
    let app = desktop.launch_with(Launch { label: Some("locked".into()), ..Launch::default() }).await;
    let message = wait_for("a keychain notice", desktop::UI_TIMEOUT, || async {
        let kind = app.notice_kind().await?;
        kind.starts_with("keychain_").then_some(kind)
    })
    .await;
    assert!(["keychain_locked", "keychain_timeout"].contains(&message.as_str()), "{message}");
    let text = app.text("error").await;
    assert!(text.contains("keychain"), "{text}");
    app.wait_for_phase("signedOut").await;
    app.screenshot("error-keychain-locked").await;
    app.audit_accessibility("error-keychain-locked").await;

    // The person unlocks the keyring and presses Sign in: the stored session is picked up, no browser.
    keyring::unlock();
    assert_eq!(
        keyring::lookup(&desktop.profile).as_deref(),
        Some(entry.as_str()),
        "a locked keychain must not cost the session"
    );
    app.click("sign-in").await;
    app.wait_for_phase("signedIn").await;
    app.wait_for_text("account", "Alice").await;
    assert_eq!(desktop.browser_launches(), launches, "the stored session must be used, not a new sign-in");
    assert_eq!(idp.events_named("authorization.success", None).await.len(), 1);
    app.quit().await;
}

#[tokio::test]
async fn s14_while_a_sign_in_waits_forged_mixed_up_and_replayed_links_change_nothing() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let (idp, desktop) = start("s14-pending-forged");
    let app = launch_and_sign_in(&desktop).await;
    let earlier = desktop.last_redirect();
    app.click("sign-out").await;
    app.wait_for_phase("signedOut").await;

    // The person signs in again; the browser gets the provider's answer but has not handed it over yet.
    desktop.browser_decides("capture");
    app.click("sign-in").await;
    app.wait_for_phase("waitingForBrowser").await;
    let real = wait_for("the browser to get the provider's answer", desktop::UI_TIMEOUT, || async {
        desktop.try_last_redirect().filter(|r| *r != earlier)
    })
    .await;

    for (what, link) in [
        ("the wrong state", with_param(&real, "state", "forged-state")),
        ("a wrong iss", with_param(&real, "iss", "https://evil.example")),
        ("an earlier sign-in's answer", earlier.clone()),
    ] {
        desktop.xdg_open(&link);
        app.wait_for_notice("callback_rejected").await;
        assert_eq!(app.phase().await, "waitingForBrowser", "{what}: the real sign-in must still wait");
        app.dismiss_notice().await;
    }
    app.screenshot("still-waiting-after-forged-links").await;
    app.audit_accessibility("still-waiting-after-forged-links").await;
    assert_eq!(idp.events_named("grant.success", Some("authorization_code")).await.len(), 1, "nothing exchanged");
    assert!(keyring::lookup(&desktop.profile).is_none());

    // The real answer still completes the sign-in.
    desktop.xdg_open(&real);
    app.wait_for_phase("signedIn").await;
    app.wait_for_text("account", "Alice").await;
    app.wait_for_text("resource", "Hello, Alice!").await;
    assert_eq!(idp.events_named("grant.success", Some("authorization_code")).await.len(), 2);
    app.quit().await;
}

#[tokio::test]
async fn s15_a_session_is_not_sent_to_the_provider_the_config_now_names() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let (first, desktop) = start("s15-other-provider");
    let app = launch_and_sign_in(&desktop).await;
    app.quit().await;
    let entry = keyring::lookup(&desktop.profile).unwrap();

    // The person points the same profile at another provider.
    let second = Idp::start(&harness::artifacts_dir("s15-other-provider").join("idp-second.log"));
    std::fs::write(&desktop.config, second.profile_toml(&desktop.profile)).unwrap();
    let app = desktop.launch_with(Launch { label: Some("moved".into()), ..Launch::default() }).await;
    let message = app.wait_for_notice("session_for_other_provider").await;
    assert!(message.contains(&first.issuer()) && message.contains(&second.issuer()), "{message}");
    app.wait_for_phase("signedOut").await;
    app.screenshot("error-other-provider").await;
    app.audit_accessibility("error-other-provider").await;
    assert!(second.events().await.is_empty(), "nothing may reach the provider the config now names");
    assert_eq!(keyring::lookup(&desktop.profile).unwrap(), entry);

    // Sign in replaces the saved session with one from the new provider.
    sign_in_as_alice(&app).await;
    let session = keyring::session(&desktop.profile).unwrap();
    assert_eq!(session["binding"]["provider"], format!("{}/", second.issuer()));
    assert_eq!(second.events_named("grant.success", Some("authorization_code")).await.len(), 1);
    app.quit().await;
}

#[tokio::test]
async fn s16_without_a_refresh_token_the_button_reloads_and_the_session_stays() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let (idp, desktop) = start("s16-no-refresh-token");
    std::fs::write(&desktop.config, idp.profile_toml_for(&desktop.profile, harness::idp::NO_REFRESH_CLIENT_ID))
        .unwrap();
    let app = launch_and_sign_in(&desktop).await;
    assert_eq!(app.text("refresh").await, "Reload");
    let renewal = app.text("renewal").await;
    assert!(renewal.contains("no refresh token"), "{renewal}");
    app.screenshot("signed-in-without-refresh-token").await;
    app.audit_accessibility("signed-in-without-refresh-token").await;
    let entry = keyring::lookup(&desktop.profile).unwrap();
    let served = idp.events_named("resource.served", None).await.len();

    app.click("refresh").await;
    wait_for("the data to be reloaded", desktop::UI_TIMEOUT, || async {
        (idp.events_named("resource.served", None).await.len() > served).then_some(())
    })
    .await;
    app.wait_for_phase("signedIn").await;
    assert_eq!(app.text("account").await, "Alice");
    assert!(idp.events_named("grant.success", Some("refresh_token")).await.is_empty());
    assert_eq!(keyring::lookup(&desktop.profile).unwrap(), entry, "the session must be kept as it is");
    app.quit().await;
}
