//! Setting a provider up in the window: from a clean home, with a preset, the waiting view, and by keyboard alone.

use super::*;

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
