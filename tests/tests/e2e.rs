//! The product as a person meets it: clicks in the real window (WebKitGTK over WebDriver), the real demo
//! provider's pages in the "browser", the OS routing the deep link back through xdg-open and a .desktop
//! handler into the running instance, and the real keychain. The test reaches the app only through its
//! window, the OS and the provider.
//!
//! The scenarios share one display, bus and keyring and the app is single-instance, so they run one at a time.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed assertion

mod common;

use harness::desktop::{self, App, BareBus, Desktop, Launch};
use harness::idp::Idp;
use harness::{keyring, sha256_hex, wait_for, with_param};

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

fn stored(desktop: &Desktop, field: &str) -> String {
    let session =
        keyring::session(&desktop.profile).unwrap_or_else(|| panic!("no keychain entry for {}", desktop.profile));
    session[field].as_str().unwrap_or_else(|| panic!("no {field} in the keychain entry")).to_owned()
}

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
    let access = stored(&desktop, "access_token");
    let refresh = stored(&desktop, "refresh_token");
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
    let refresh_before = stored(&desktop, "refresh_token");
    assert!(idp.events_named("grant.success", Some("refresh_token")).await.is_empty());

    app.click("refresh").await;
    wait_for("the provider to record a refresh", desktop::UI_TIMEOUT, || async {
        (!idp.events_named("grant.success", Some("refresh_token")).await.is_empty()).then_some(())
    })
    .await;
    app.wait_for_phase("signedIn").await;
    let access_after = wait_for("the new access token to be used", desktop::UI_TIMEOUT, || async {
        let access = stored(&desktop, "access_token");
        let served = idp.events_named("resource.served", None).await;
        (served.last().map(|e| e["tokenSha256"] == sha256_hex(&access)) == Some(true)).then_some(access)
    })
    .await;
    assert_eq!(idp.events_named("grant.success", Some("refresh_token")).await.len(), 1);
    let refresh_after = stored(&desktop, "refresh_token");
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
    let refresh = stored(&desktop, "refresh_token");

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

fn accepts_connections(port: u16) -> bool {
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    std::net::TcpStream::connect_timeout(&address, std::time::Duration::from_secs(1)).is_ok()
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

/// `xdg-mime`'s default handler for Gatehouse's scheme, as the OS would pick it.
fn scheme_handler() -> String {
    let output = std::process::Command::new("xdg-mime")
        .args(["query", "default", "x-scheme-handler/com.example.gatehouse"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
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
    let menu = wait_for("the app's tray item to register", desktop::UI_TIMEOUT, || async {
        if host.registered() > before {
            host.latest_menu()
        } else {
            None
        }
    })
    .await;
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
    let refresh = stored(&desktop, "refresh_token");
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
    let menu = wait_for("the app's tray item to register", desktop::UI_TIMEOUT, || async {
        (host.registered() > before).then(|| host.latest_menu()).flatten()
    })
    .await;
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
    let menu = wait_for("the login start's tray item", desktop::UI_TIMEOUT, || async {
        (host.registered() > before).then(|| host.latest_menu()).flatten()
    })
    .await;
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
    let menu = wait_for("the app's tray item", desktop::UI_TIMEOUT, || async {
        (host.registered() > before).then(|| host.latest_menu()).flatten()
    })
    .await;
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
    let access = stored(&desktop, "access_token");
    menu.click("Refresh");
    wait_for("the tray's refresh with no window", desktop::UI_TIMEOUT, || async {
        (stored(&desktop, "access_token") != access).then_some(())
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
    let config = desktop.config.clone();
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
    assert_eq!(idp.introspect(&stored(&desktop, "refresh_token")).await["active"], true, "the grant is alive");
    // The window's next Refresh renews with the live refresh token.
    app.click("refresh").await;
    wait_for("the window's own renewal", desktop::UI_TIMEOUT, || async {
        (idp.events_named("grant.success", Some("refresh_token")).await.len() == 2).then_some(())
    })
    .await;
    app.wait_for_phase("signedIn").await;
    assert_eq!(app.notice_kind().await, None);
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
    let menu = wait_for("the app's tray item", desktop::UI_TIMEOUT, || async {
        (host.registered() > before).then(|| host.latest_menu()).flatten()
    })
    .await;
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
        let menu = wait_for("the tray item", desktop::UI_TIMEOUT, || async {
            (host.registered() > before).then(|| host.latest_menu()).flatten()
        })
        .await;
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
    let menu = wait_for("the app's tray item to register", desktop::UI_TIMEOUT, || async {
        if host.registered() > before {
            host.latest_menu()
        } else {
            None
        }
    })
    .await;

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
    let access = stored(&desktop, "access_token");
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
    let refresh_before = stored(&desktop, "refresh_token");
    app.click("refresh").await;
    wait_for("the refresh grant", desktop::UI_TIMEOUT, || async {
        (idp.events_named("grant.success", Some("refresh_token")).await.len() == 1).then_some(())
    })
    .await;
    app.wait_for_phase("signedIn").await;
    let renewed = stored(&desktop, "access_token");
    assert_ne!(renewed, access);
    wait_for("the resource to be served with the renewed token", desktop::UI_TIMEOUT, || async {
        let served = idp.events_named("resource.served", None).await;
        (served.last().unwrap()["tokenSha256"] == sha256_hex(&renewed)).then_some(())
    })
    .await;
    assert_eq!(keyring::session(&desktop.profile).unwrap()["dpop_key"].as_str(), Some(key), "one key per session");

    // Sign out revokes with the key, and the keychain entry (key included) goes.
    let refresh = stored(&desktop, "refresh_token");
    assert_ne!(refresh, refresh_before);
    app.click("sign-out").await;
    app.wait_for_phase("signedOut").await;
    assert!(keyring::lookup(&desktop.profile).is_none());
    assert_eq!(idp.introspect(&refresh).await["active"], false);
    app.quit().await;
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

/// From a clean home: the setup view, the demo provider set up by its issuer URL with no client ID (Gatehouse
/// registers itself, RFC 7591), a sign-in, a restart that restores it, then Remove provider, which signs out
/// (revoking), deletes the registration (RFC 7592) and the profile, and leaves the user's comment in the file.
#[tokio::test]
async fn s29_a_clean_home_sets_up_a_provider_by_issuer_with_registration() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let (idp, desktop) = start("s29-setup-by-issuer");
    let (launch, config_file) = clean_home(&desktop);
    let app = desktop.launch_with(launch).await;
    assert!(app.execute("return !document.getElementById('setup').hidden").await.as_bool().unwrap());
    assert_eq!(app.execute("return document.querySelectorAll('[data-testid=account-card]').length").await, 0);
    assert_eq!(app.execute("return document.activeElement.dataset.testid").await, "setup-preset");
    app.screenshot("setup").await;
    app.audit_accessibility("setup").await;

    app.choose("setup-preset", "other").await;
    app.type_into("setup-issuer", &idp.issuer()).await;
    app.click("setup-check").await;
    let findings = app.wait_for_text("setup-findings", "register itself").await;
    for found in [
        "stolen code",
        "address bar",
        "tied to a key",
        "ends the session at the provider",
        "a code on another device",
        "keep you signed in",
    ] {
        assert!(findings.contains(found), "{found}: {findings}");
    }
    // The standards behind them are one click away, not in the way.
    assert!(!findings.contains("RFC"), "{findings}");
    app.click("setup-details").await;
    let detailed = app.text("setup-findings").await;
    assert!(detailed.contains("RFC 9449") && detailed.contains("RFC 7636"), "{detailed}");
    assert!(!findings.contains("Won't work"), "{findings}");
    assert!(idp.events_named("registration_create.success", None).await.is_empty(), "Check registers nothing");
    app.screenshot("setup-findings").await;
    app.audit_accessibility("setup-findings").await;

    app.click("setup-save").await;
    let profile = only_profile(&app).await;
    app.card(&profile).wait_for_phase("signedOut").await;
    let registered = idp.events_named("registration_create.success", None).await;
    assert_eq!(registered.len(), 1, "{registered:?}");
    assert_eq!(
        (registered[0]["applicationType"].as_str(), registered[0]["authMethod"].as_str()),
        (Some("native"), Some("none"))
    );
    let client_id = registered[0]["clientId"].as_str().unwrap().to_owned();
    let text = std::fs::read_to_string(&config_file).unwrap();
    assert!(text.contains(&format!("client_id = \"{client_id}\"")), "{text}");
    assert!(text.contains(&format!("issuer = \"{}\"", idp.issuer())), "{text}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&config_file).unwrap().permissions().mode() & 0o777, 0o600);
    let registration =
        keyring::lookup_in(keyring::REGISTRATION_SERVICE, &profile).expect("the registration's token is kept");
    let registration: serde_json::Value = serde_json::from_str(&registration).unwrap();
    let access_token = registration["access_token"].as_str().unwrap();
    assert!(access_token.len() > 8, "{registration}");
    assert!(!text.contains(access_token), "the registration access token is in the config file: {text}");

    app.card(&profile).click("sign-in").await;
    app.card(&profile).wait_for_phase("signedIn").await;
    app.card(&profile).wait_for_text("account", "Alice").await;
    assert_eq!(keyring::count_entries(&profile), 1);
    app.quit().await;

    // A restart reads the file the window wrote, and restores the session without the browser. A comment the
    // person wrote into the file meanwhile is kept by what the window does next.
    std::fs::write(&config_file, format!("# My providers, set up in Gatehouse\n{text}")).unwrap();
    let launches = desktop.browser_launches();
    let app = desktop.launch_with(clean_home(&desktop).0).await;
    app.card(&profile).wait_for_phase("signedIn").await;
    app.card(&profile).wait_for_text("account", "Alice").await;
    assert_eq!(desktop.browser_launches(), launches);
    let refresh_token = keyring::session(&profile).unwrap()["refresh_token"].as_str().unwrap().to_owned();

    // Edited to another client (an empty client ID registers Gatehouse again): the session can't go on with the
    // new client, so it is signed out first and revoked at the provider, never left alive with nobody holding it;
    // the registration it replaces is deleted.
    app.card(&profile).click("edit-provider").await;
    app.type_into("setup-client-id", "").await;
    app.click("setup-save").await;
    wait_for("the edit to register a new client", desktop::UI_TIMEOUT, || async {
        (idp.events_named("registration_create.success", None).await.len() == 2).then_some(())
    })
    .await;
    app.card(&profile).wait_for_phase("signedOut").await;
    assert_eq!(idp.introspect(&refresh_token).await["active"], false, "the old client's session was revoked");
    assert!(keyring::lookup(&profile).is_none(), "and removed from the keychain");
    wait_for("the replaced registration to be deleted", desktop::UI_TIMEOUT, || async {
        (idp.events_named("registration_delete.success", None).await.len() == 1).then_some(())
    })
    .await;
    app.card(&profile).click("sign-in").await;
    app.card(&profile).wait_for_phase("signedIn").await;
    let refresh_token = keyring::session(&profile).unwrap()["refresh_token"].as_str().unwrap().to_owned();

    app.card(&profile).click("remove-provider").await;
    app.card(&profile).click("remove-provider-confirm").await;
    wait_for("the provider's card to go", desktop::UI_TIMEOUT, || async {
        app.card(&profile).phase().await.is_empty().then_some(())
    })
    .await;
    assert!(app.execute("return !document.getElementById('setup').hidden").await.as_bool().unwrap());
    assert!(keyring::lookup(&profile).is_none(), "the session is gone from the keychain");
    assert_eq!(idp.introspect(&refresh_token).await["active"], false, "the session was revoked at the provider");
    assert_eq!(idp.events_named("registration_delete.success", None).await.len(), 2, "the registration is deleted");
    assert!(keyring::lookup_in(keyring::REGISTRATION_SERVICE, &profile).is_none());
    let text = std::fs::read_to_string(&config_file).unwrap();
    assert!(text.starts_with("# My providers, set up in Gatehouse"), "{text}");
    assert!(!text.contains("client_id"), "{text}");
    app.quit().await;
}

/// A preset set up in the window: the fields it needs, a problem said plainly (Google without its secret), then
/// GitHub's findings (documented endpoints, no metadata) and its card; then Edit with a new client ID asks for
/// that client's secret (the saved one stays with its own client), keeps a saved secret when the client is the
/// same, and Remove provider takes it out of the file again.
#[tokio::test]
async fn s30_a_preset_is_set_up_checked_edited_and_removed_in_the_window() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let (_idp, desktop) = start("s30-setup-preset");
    let (launch, config_file) = clean_home(&desktop);
    let app = desktop.launch_with(launch).await;

    app.choose("setup-preset", "google").await;
    app.type_into("setup-client-id", "1234.apps.googleusercontent.com").await;
    app.click("setup-check").await;
    let problem = field_problem(&app, "setup-client-secret").await;
    assert!(problem.message.contains("Google requires the client secret"), "{problem:?}");
    assert!(problem.marked && problem.focused && problem.beside, "{problem:?}");
    assert_eq!(app.text("setup-redirect").await, "http://127.0.0.1/callback");

    app.choose("setup-preset", "github").await;
    assert_eq!(app.text("setup-findings").await, "", "a new choice clears the old findings");
    for hidden in ["setup-issuer", "setup-tenant", "setup-domain", "setup-realm"] {
        let shown = format!("return document.querySelector('[data-testid={hidden}]').offsetParent !== null");
        assert_eq!(app.execute(&shown).await, false, "{hidden} is not a GitHub field");
    }
    app.type_into("setup-client-id", "Iv1.0123456789abcdef").await;
    app.type_into("setup-client-secret", "not-really-secret").await;
    app.click("setup-check").await;
    let findings = app.wait_for_text("setup-findings", "can be used").await;
    assert!(findings.contains("https://github.com/login/oauth/authorize"), "{findings}");
    assert!(findings.contains("publishes no metadata"), "{findings}");
    app.screenshot("setup-preset-findings").await;
    app.audit_accessibility("setup-preset-findings").await;
    app.click("setup-save").await;
    let profile = only_profile(&app).await;
    assert_eq!(profile, "github");
    app.card(&profile).wait_for_phase("signedOut").await;
    let text = std::fs::read_to_string(&config_file).unwrap();
    assert!(text.contains("preset = \"github\"") && text.contains("client_secret = \"not-really-secret\""), "{text}");

    // Edit: the secret is never shown. A secret belongs to one client: with a new client ID, an empty secret
    // field doesn't carry the saved one over, so the edit needs a secret of its own and saves nothing until then.
    app.card(&profile).click("edit-provider").await;
    assert_eq!(app.execute("return document.querySelector('[data-testid=setup-client-secret]').value").await, "");
    app.type_into("setup-client-id", "Iv1.fedcba9876543210").await;
    app.click("setup-save").await;
    let refused = field_problem(&app, "setup-client-secret").await;
    assert!(refused.message.contains("client secret") && refused.marked && refused.focused, "{refused:?}");
    assert!(!refused.message.contains("not-really-secret"), "{refused:?}");
    assert_eq!(app.text("setup-progress").await, "Nothing was saved.");
    let text = std::fs::read_to_string(&config_file).unwrap();
    assert!(text.contains("client_id = \"Iv1.0123456789abcdef\""), "nothing saved: {text}");
    app.type_into("setup-client-secret", "the-new-clients-secret").await;
    app.click("setup-save").await;
    let text = wait_for("the edit to be saved", desktop::UI_TIMEOUT, || async {
        std::fs::read_to_string(&config_file).ok().filter(|t| t.contains("Iv1.fedcba9876543210"))
    })
    .await;
    app.card(&profile).wait_for_phase("signedOut").await;
    assert!(text.contains("client_id = \"Iv1.fedcba9876543210\""), "{text}");
    assert!(text.contains("client_secret = \"the-new-clients-secret\""), "{text}");
    assert!(!text.contains("not-really-secret"), "{text}");
    // The same client, edited again with the field left empty: the saved secret stays.
    app.card(&profile).click("edit-provider").await;
    app.click("setup-save").await;
    wait_for("the setup view to close", desktop::UI_TIMEOUT, || async {
        app.execute("return document.getElementById('setup').hidden").await.as_bool().filter(|s| *s)
    })
    .await;
    app.card(&profile).wait_for_phase("signedOut").await;
    let text = std::fs::read_to_string(&config_file).unwrap();
    assert!(text.contains("client_secret = \"the-new-clients-secret\""), "{text}");

    app.card(&profile).click("remove-provider").await;
    app.card(&profile).click("remove-provider-confirm").await;
    wait_for("the setup view", desktop::UI_TIMEOUT, || async {
        app.execute("return !document.getElementById('setup').hidden").await.as_bool().filter(|s| *s)
    })
    .await;
    assert!(!std::fs::read_to_string(&config_file).unwrap().contains("github"));
    app.quit().await;
}

/// Never stuck waiting for a browser: the waiting view shows the link it opened (Copy link) and takes the address
/// the browser ended on, pasted back (a forged one is refused and the sign-in waits on); and "Use a code instead"
/// signs in with the device grant (RFC 8628) from the window, showing the code, the link and a QR code, with Cancel.
#[tokio::test]
async fn s31_the_waiting_view_offers_the_link_a_pasted_redirect_and_a_code() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let (idp, desktop) = start("s31-never-stuck");
    let app = desktop.launch().await;
    app.wait_for_phase("signedOut").await;

    // The browser is on another computer: it gets the provider's answer, but can't hand it to this one.
    desktop.browser_decides("capture");
    app.click("sign-in").await;
    app.wait_for_phase("waitingForBrowser").await;
    let opened =
        wait_for("the browser to be opened", desktop::UI_TIMEOUT, || async { desktop.try_last_authorize() }).await;
    let shown = app.execute("return document.querySelector('[data-testid=sign-in-link]').value").await;
    assert_eq!(shown.as_str(), Some(opened.trim()), "the window shows the link it opened");
    // A pushed request's link works once (RFC 9126 §4): the button says it starts over, and the hint says so.
    assert_eq!(app.text("sign-in").await, "Start over");
    let hint = app.execute("return document.querySelector('.no-browser').textContent").await;
    let hint = hint.as_str().unwrap_or_default();
    assert!(hint.contains("use a code on another device") && hint.contains("stops working"), "{hint}");
    app.click("copy-link").await;
    wait_for("Copy link to answer", desktop::UI_TIMEOUT, || async {
        let said = app.execute("return document.querySelector('.copy-result').textContent").await;
        said.as_str().filter(|s| !s.is_empty()).map(str::to_owned)
    })
    .await;
    let answer = wait_for("the browser to get the provider's answer", desktop::UI_TIMEOUT, || async {
        desktop.try_last_redirect()
    })
    .await;
    // Pasted back by mistake, the sign-in link itself is said to be that, beside the field.
    app.type_into("paste-redirect", opened.trim()).await;
    app.click("paste-submit").await;
    let said = app.wait_for_text("paste-error", "the link to open").await;
    assert!(said.contains("com.example.gatehouse:/callback?code="), "{said}");
    assert_eq!(app.focused().await, "paste-redirect");
    let marked = "return document.querySelector('[data-testid=paste-redirect]').getAttribute('aria-invalid')";
    assert_eq!(app.execute(marked).await, "true");
    app.type_into("paste-redirect", &with_param(&answer, "state", "forged-state")).await;
    app.click("paste-submit").await;
    app.wait_for_text("paste-error", "earlier or another sign-in").await;
    assert_eq!(app.notice_kind().await, None, "said beside the field, and only there");
    assert_eq!(app.phase().await, "waitingForBrowser");
    assert!(idp.events_named("grant.success", Some("authorization_code")).await.is_empty());
    app.screenshot("waiting").await;
    app.audit_accessibility("waiting").await;
    app.type_into("paste-redirect", &answer).await;
    app.click("paste-submit").await;
    app.wait_for_phase("signedIn").await;
    app.wait_for_text("account", "Alice").await;
    app.click("sign-out").await;
    app.wait_for_phase("signedOut").await;

    // A code instead: shown with its link and QR code; Cancel stops it.
    app.click("sign-in").await;
    app.wait_for_phase("waitingForBrowser").await;
    app.click("use-code").await;
    wait_for("the code", desktop::UI_TIMEOUT, || async {
        Some(app.text("device-code").await).filter(|c| !c.is_empty())
    })
    .await;
    app.click("cancel").await;
    app.wait_for_phase("signedOut").await;
    app.wait_for_notice("sign_in_cancelled").await;
    assert_eq!(app.text("device-code").await, "", "the code is gone");

    app.click("sign-in").await;
    app.wait_for_phase("waitingForBrowser").await;
    app.click("use-code").await;
    let code = wait_for("the code", desktop::UI_TIMEOUT, || async {
        Some(app.text("device-code").await).filter(|c| !c.is_empty())
    })
    .await;
    let link = app.text("device-link").await;
    assert!(link.starts_with(&idp.issuer()), "{link}");
    let qr = app.execute("return document.querySelector('[data-testid=device-qr]').getAttribute('src')").await;
    assert!(qr.as_str().is_some_and(|q| q.starts_with("data:image/svg+xml;base64,")), "{qr}");
    app.screenshot("waiting-with-code").await;
    app.audit_accessibility("waiting-with-code").await;
    harness::user_agent::approve_device(&link, &code, "bob").await.unwrap();
    app.wait_for_phase("signedIn").await;
    app.wait_for_text("account", "Bob").await;
    assert_eq!(idp.events_named("grant.success", Some("urn:ietf:params:oauth:grant-type:device_code")).await.len(), 1);
    assert_eq!(idp.events_named("grant.success", Some("authorization_code")).await.len(), 1, "the pasted one only");
    app.quit().await;
}

/// The keyboard alone, from a clean home: the setup view opens with the focus on its first control; the demo
/// provider is chosen, its issuer typed and saved (Gatehouse registers itself) without a mouse; the focus lands
/// on the new account's Sign in, Enter signs in, and the focus then rests on the signed-in view's first action.
/// Each view is audited with axe-core on the way.
#[tokio::test]
async fn s32_setting_up_and_signing_in_by_keyboard_alone() {
    use fantoccini::key::Key;
    let _serial = ONE_AT_A_TIME.lock().await;
    let (idp, desktop) = start("s32-keyboard");
    let (launch, _config_file) = clean_home(&desktop);
    let app = desktop.launch_with(launch).await;
    assert_eq!(app.focused().await, "setup-preset", "the setup view's first control has the focus");
    app.audit_accessibility("setup").await;

    // The generic choice comes first, right after "Choose your provider…": Down in a closed select picks it.
    assert_eq!(app.execute("return document.querySelector('[data-testid=setup-preset]').value").await, "");
    app.press(&[&Key::Down.to_string()]).await;
    let chosen = app.execute("return document.querySelector('[data-testid=setup-preset]').value").await;
    assert_eq!(chosen, "other");
    assert_eq!(app.tab_to("setup-issuer", 2).await, Some(1), "the issuer comes next");
    app.press(&[&idp.issuer()]).await;
    assert!(app.tab_to("setup-check", 8).await.is_some(), "Check is reachable by Tab");
    app.press(&[&Key::Enter.to_string()]).await;
    app.wait_for_text("setup-findings", "register itself").await;
    app.audit_accessibility("setup-findings-keyboard").await;
    let focused = app.focused().await;
    assert_eq!(focused, "setup-check", "the focus stays where the person was");
    assert_eq!(app.tab_to("setup-save", 2).await, Some(1), "Save comes after Check");
    app.press(&[&Key::Enter.to_string()]).await;

    let profile = only_profile(&app).await;
    app.card(&profile).wait_for_phase("signedOut").await;
    wait_for("the focus on the new account's Sign in", desktop::UI_TIMEOUT, || async {
        (app.focused().await == "sign-in").then_some(())
    })
    .await;
    app.audit_accessibility("signed-out-keyboard").await;
    app.press(&[&Key::Enter.to_string()]).await;
    app.card(&profile).wait_for_phase("signedIn").await;
    app.card(&profile).wait_for_text("account", "Alice").await;
    wait_for("the focus on the signed-in view's first action", desktop::UI_TIMEOUT, || async {
        (app.focused().await == "refresh").then_some(())
    })
    .await;
    // Every action of the signed-in view is reachable by Tab, and shows where the focus is.
    for action in ["sign-out", "edit-provider", "remove-provider"] {
        assert!(app.tab_to(action, 12).await.is_some(), "{action} is reachable by Tab");
        let outline = app.execute("return getComputedStyle(document.activeElement).outlineStyle").await;
        assert_ne!(outline, "none", "{action} shows the focus");
    }
    app.audit_accessibility("signed-in-keyboard").await;
    app.quit().await;
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

/// The usual mistakes of a first setup, each said beside its field, in the form's own words, with the field
/// marked, described by the message and focused, and, where the fix is unambiguous, one click to apply it:
/// nothing chosen, an empty issuer, no scheme, `localhost`, the discovery address pasted for the issuer, https to
/// an http server, a port where nothing listens, a wrong path (Save says what Check says), and the same provider
/// added twice. Findings go when a field changes; Esc closes the form and gives the focus back; the provider is
/// named by host and port, and renamed in Edit.
#[tokio::test]
async fn s36_the_usual_setup_mistakes_are_said_beside_their_field_with_the_fix() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let (idp, desktop) = start("s36-setup-mistakes");
    let (launch, config_file) = clean_home(&desktop);
    let app = desktop.launch_with(launch).await;
    let lead = app.text("setup-lead").await;
    assert!(lead.contains("keeps you signed in") && lead.contains("client ID"), "{lead}");
    let no_words = |text: &str| {
        for word in ["config file", "the file", "restart", "_endpoint", "client_id", "toml"] {
            assert!(!text.to_lowercase().contains(word), "{word:?} in {text:?}");
        }
    };

    // Nothing chosen yet.
    app.click("setup-check").await;
    let problem = field_problem(&app, "setup-preset").await;
    assert_eq!(problem.message, "Choose your provider.");
    assert!(problem.marked && problem.focused && problem.beside, "{problem:?}");

    // An empty issuer, with Save: Save runs Check's examination and says the same.
    app.choose("setup-preset", "other").await;
    app.click("setup-save").await;
    let problem = field_problem(&app, "setup-issuer").await;
    assert!(problem.message.starts_with("Enter the provider's issuer URL"), "{problem:?}");
    assert!(problem.marked && problem.focused && problem.beside, "{problem:?}");
    no_words(&setup_text(&app).await);
    app.screenshot("setup-problem").await;
    app.audit_accessibility("setup-problem").await;

    // No scheme: the fix is one click, and Check runs again.
    let port = idp.issuer().rsplit(':').next().unwrap().to_owned();
    app.type_into("setup-issuer", &format!("127.0.0.1:{port}")).await;
    app.click("setup-check").await;
    let problem = field_problem(&app, "setup-issuer").await;
    assert!(problem.message.contains("Start the address with https://"), "{problem:?}");
    assert!(problem.marked && problem.focused && problem.beside, "{problem:?}");
    app.click("setup-issuer-fix").await;
    app.wait_for_text("setup-findings", "can be used").await;
    let issuer = app.execute("return document.querySelector('[data-testid=setup-issuer]').value").await;
    assert_eq!(issuer.as_str(), Some(idp.issuer().as_str()));
    assert_eq!(app.execute("return document.querySelectorAll('#setup [aria-invalid]').length").await, 0);

    // Findings go as soon as a field changes: they were for the values as they were.
    app.type_into("setup-client-id", "x").await;
    assert_eq!(app.text("setup-findings").await, "", "stale findings are gone");
    app.type_into("setup-client-id", "").await;

    // localhost, with Save.
    app.type_into("setup-issuer", &format!("http://localhost:{port}")).await;
    app.click("setup-save").await;
    let problem = field_problem(&app, "setup-issuer").await;
    assert!(problem.message.starts_with("Use 127.0.0.1 instead of localhost"), "{problem:?}");
    assert!(problem.marked && problem.focused, "{problem:?}");
    let fix = app.text("setup-issuer-fix").await;
    assert_eq!(fix, format!("Use {}", idp.issuer()));
    app.screenshot("setup-fix").await;
    app.audit_accessibility("setup-fix").await;

    // The discovery address pasted for the issuer, saved with Enter in the client ID field.
    app.type_into("setup-issuer", &format!("{}/.well-known/openid-configuration", idp.issuer())).await;
    app.execute("document.querySelector('[data-testid=setup-client-id]').focus()").await;
    app.press(&[&fantoccini::key::Key::Enter.to_string()]).await;
    let problem = field_problem(&app, "setup-issuer").await;
    assert!(
        problem.message.contains(&format!("This is the provider's discovery address. Its issuer is {}", idp.issuer())),
        "{problem:?}"
    );
    assert!(problem.focused, "{problem:?}");

    // https to a server that speaks only http.
    app.type_into("setup-issuer", &format!("https://127.0.0.1:{port}")).await;
    app.click("setup-check").await;
    let problem = field_problem(&app, "setup-issuer").await;
    assert!(problem.message.contains("doesn't speak https"), "{problem:?}");
    assert_eq!(app.text("setup-issuer-fix").await, format!("Use {}", idp.issuer()));

    // A port where nothing listens.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    app.type_into("setup-issuer", &format!("http://127.0.0.1:{closed}")).await;
    app.click("setup-check").await;
    let problem = field_problem(&app, "setup-issuer").await;
    assert!(problem.message.contains(&format!("Nothing answers at 127.0.0.1:{closed}")), "{problem:?}");

    // A wrong path: Check and Save say the same thing, and Save saves nothing.
    app.type_into("setup-issuer", &format!("{}/oo", idp.issuer())).await;
    app.click("setup-check").await;
    let checked = field_problem(&app, "setup-issuer").await;
    assert!(checked.message.contains("Nothing at this address looks like an OpenID provider"), "{checked:?}");
    app.click("setup-save").await;
    wait_for("Save's answer", desktop::UI_TIMEOUT, || async {
        (app.text("setup-progress").await == "Nothing was saved.").then_some(())
    })
    .await;
    assert_eq!(field_problem(&app, "setup-issuer").await.message, checked.message);
    assert!(!config_file.exists(), "nothing was saved");
    no_words(&setup_text(&app).await);

    // Right at last: named by host and port.
    app.type_into("setup-issuer", &idp.issuer()).await;
    app.click("setup-save").await;
    let profile = only_profile(&app).await;
    app.card(&profile).wait_for_phase("signedOut").await;
    assert_eq!(header(&app).await, format!("Provider: 127.0.0.1:{port}"));

    // The same provider again (a trailing slash is no difference): said, and not saved twice. Esc closes the
    // form, and the focus goes back to the button that opened it.
    app.click("add-provider").await;
    app.choose("setup-preset", "other").await;
    app.type_into("setup-issuer", &format!("{}/", idp.issuer())).await;
    app.click("setup-check").await;
    let problem = field_problem(&app, "setup-issuer").await;
    assert!(
        problem.message.starts_with(&format!("You already have this provider, as “127.0.0.1:{port}”")),
        "{problem:?}"
    );
    app.press(&[&fantoccini::key::Key::Escape.to_string()]).await;
    wait_for("the form to close", desktop::UI_TIMEOUT, || async {
        app.execute("return document.getElementById('setup').hidden").await.as_bool().filter(|h| *h)
    })
    .await;
    assert_eq!(app.focused().await, "add-provider", "the focus is back where it was");
    assert_eq!(std::fs::read_to_string(&config_file).unwrap().matches("issuer = ").count(), 1, "one profile");

    // Renamed in Edit.
    app.card(&profile).click("edit-provider").await;
    app.type_into("setup-name", "Demo sign-in").await;
    app.click("setup-save").await;
    wait_for("the new name", desktop::UI_TIMEOUT, || async {
        (header(&app).await == "Provider: Demo sign-in").then_some(())
    })
    .await;
    app.card(&profile).wait_for_phase("signedOut").await;
    wait_for("the focus back on Edit provider", desktop::UI_TIMEOUT, || async {
        (app.focused().await == "edit-provider").then_some(())
    })
    .await;
    assert!(std::fs::read_to_string(&config_file).unwrap().contains("name = \"Demo sign-in\""));
    app.quit().await;
}

/// A profile whose redirect is the app's own link, signed in from the command line: only the window's program
/// receives that link, so `gatehouse sign-in` hands the sign-in to the running window, which opens the browser
/// and takes the answer through the desktop's routing; the command waits for the session and says who signed in.
#[tokio::test]
async fn s35_the_command_line_signs_in_a_scheme_profile_through_the_running_window() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let (idp, desktop) = start("s35-cli-scheme");
    let app = desktop.launch().await;
    app.wait_for_phase("signedOut").await;
    let run = harness::cli::gatehouse_with(&desktop.config, &["sign-in"], &desktop.app_env()).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains("through Gatehouse's window") && run.stderr.contains("Signed in as Alice."), "{run:?}");
    app.wait_for_phase("signedIn").await;
    app.wait_for_text("account", "Alice").await;
    assert_eq!(desktop.browser_launches(), 1);
    assert_eq!(idp.events_named("grant.success", Some("authorization_code")).await.len(), 1);
    assert_eq!(keyring::count_entries(&desktop.profile), 1);
    app.quit().await;
}

/// The waiting view and the signed-in view say what is true: without pushed requests, "Open the browser again"
/// opens the same link (a copy elsewhere keeps working, and its answer signs in); without a device grant, no code
/// is offered; Refresh says it renewed, and until when; Sign out says the session ended at the provider; and a
/// provider that is down is said before any browser opens.
#[tokio::test]
async fn s37_the_waiting_view_reopens_the_same_sign_in_and_every_state_says_what_is_true() {
    let _serial = ONE_AT_A_TIME.lock().await;
    keyring::require_secret_service();
    let name = "s37-true-words";
    let mut idp =
        Idp::start_with(&harness::artifacts_dir(name).join("idp.log"), &[("IDP_PAR", "off"), ("IDP_DEVICE", "off")]);
    let desktop = Desktop::new(name, &idp);
    let app = desktop.launch().await;
    app.wait_for_phase("signedOut").await;

    desktop.browser_decides("ignore");
    app.click("sign-in").await;
    app.wait_for_phase("waitingForBrowser").await;
    let first =
        wait_for("the browser to be opened", desktop::UI_TIMEOUT, || async { desktop.try_last_authorize() }).await;
    let hint = app.execute("return document.querySelector('.no-browser').textContent").await;
    let hint = hint.as_str().unwrap_or_default().to_owned();
    assert!(hint.starts_with("No browser window appeared?") && !hint.contains("code"), "{hint}");
    let offered = "return document.querySelector('[data-testid=use-code]').offsetParent !== null";
    assert_eq!(app.execute(offered).await, false, "no code is offered");
    assert_eq!(app.text("sign-in").await, "Open the browser again");

    desktop.browser_decides("capture");
    app.click("sign-in").await;
    wait_for("the browser to be opened again", desktop::UI_TIMEOUT, || async {
        (desktop.browser_launches() == 2).then_some(())
    })
    .await;
    assert_eq!(desktop.try_last_authorize().as_deref(), Some(first.as_str()), "the same link");
    assert_eq!(app.phase().await, "waitingForBrowser");
    let answer = wait_for("the browser to get the provider's answer", desktop::UI_TIMEOUT, || async {
        desktop.try_last_redirect()
    })
    .await;
    app.type_into("paste-redirect", &answer).await;
    app.click("paste-submit").await;
    app.wait_for_phase("signedIn").await;
    app.wait_for_text("account", "Alice").await;

    app.click("refresh").await;
    let said = app.wait_for_text("refreshed", "Renewed at").await;
    assert!(said.contains("access is now valid until"), "{said}");
    assert_eq!(idp.events_named("grant.success", Some("refresh_token")).await.len(), 1);
    app.screenshot("refreshed").await;
    app.audit_accessibility("refreshed").await;

    app.click("sign-out").await;
    app.wait_for_phase("signedOut").await;
    let said = app.wait_for_notice("signed_out").await;
    assert!(said.contains("The session has ended, here and at the provider"), "{said}");
    assert_eq!(app.text("refreshed").await, "", "the Refresh line goes with the session");

    idp.stop();
    app.click("sign-in").await;
    let said = app.wait_for_notice("network").await;
    let port = idp.issuer().rsplit(':').next().unwrap().to_owned();
    assert!(said.contains(&format!("nothing answers at 127.0.0.1:{port}")), "{said}");
    assert_eq!(desktop.browser_launches(), 2, "no browser for a provider that is down");
    assert_eq!(app.phase().await, "signedOut");
    app.quit().await;
}
