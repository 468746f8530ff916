//! A first run without a manual: setup mistakes said beside their field, the command line's sign-in through the window, and the waiting view's words.

use super::*;

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
