//! Sessions of every kind: signed in with a code, DPoP-bound, several profiles, a lifetime the provider can't meet, another provider's, duplicate entries, large tokens.

use super::*;

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
    assert_eq!((home.code, home.stdout.trim_end()), (0, keyring::stored(second, "access_token").as_str()), "{home:?}");
    let default = gatehouse(&config, &["token"]).await;
    assert_eq!(default.stdout.trim_end(), keyring::stored(first, "access_token"), "without --profile, the first one");
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
    let keychain = gatehouse_core::tokens::keychain::Keychain::new(keyring::SERVICE);
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
    assert_eq!((met.code, met.stdout.trim_end()), (0, keyring::stored(&profile, "access_token").as_str()), "{met:?}");
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
    let keychain = gatehouse_core::tokens::keychain::Keychain::new(keyring::SERVICE);
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
    assert_eq!(idp.introspect(&keyring::stored(&profile, "refresh_token")).await["active"], true, "the grant is alive");
    gatehouse(&config, &["sign-out"]).await;
    std::fs::remove_file(&config).unwrap();
}

/// A session saved for another provider can be cleared from the command line, and an issuer that differs only
/// by a trailing slash is the same provider.
#[tokio::test]
async fn sign_out_clears_a_session_saved_for_another_provider() {
    let (idp, config) = signed_in("other-provider").await;
    let profile = profile_of("other-provider");
    let keychain = gatehouse_core::tokens::keychain::Keychain::new(keyring::SERVICE);

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
