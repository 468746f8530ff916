//! The commands a person types: status, token, sign-out, git's credential helper, and many token commands at once.

use super::*;

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
        let token = keyring::stored(&profile, field);
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
    let before = keyring::stored(&profile, "access_token");

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
    assert_eq!(keyring::stored(&profile, "access_token"), token, "saved before it was printed");
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
    let refresh = keyring::stored(&profile, "refresh_token");
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
    assert_eq!(
        lines[..2],
        ["username=oauth2".to_owned(), format!("password={}", keyring::stored(&profile, "access_token"))]
    );
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
    let refused = keyring::stored(&profile, "access_token");
    let erase = format!("protocol=http\nhost={host}\nusername=oauth2\npassword={refused}\n\n");
    let run = gatehouse_with_input(&config, &["credential", "erase"], &erase).await;
    assert_eq!((run.code, run.stdout.as_str()), (0, ""), "{run:?}");
    assert!(idp.events_named("grant.success", Some("refresh_token")).await.is_empty(), "erase itself spends nothing");
    let run = gatehouse_with_input(&config, &["credential", "get"], &asked).await;
    assert_eq!(run.code, 0, "{run:?}");
    let renewed = keyring::stored(&profile, "access_token");
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
    assert!(filled.contains(&format!("password={}", keyring::stored(&profile, "access_token"))), "{filled}");
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
    assert_eq!(idp.introspect(&keyring::stored(&profile, "refresh_token")).await["active"], true, "the grant is alive");
    std::fs::remove_file(&config).unwrap();
}
