//! One session, many processes: the window (the service, in this process) and `gatehouse` commands
//! (child processes) share one keychain entry per profile, against the real provider and the real Secret
//! Service. Every action that changes a session takes the profile's lock, reads the entry again, decides on
//! what it finds, writes, and only then lets go: the entry is the truth, and a process's memory only a copy.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed assertion

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use gatehouse_core::service::ProfileService;
use gatehouse_core::state::Phase;
use harness::cli::{gatehouse, gatehouse_with, hold_renewal_lock, processes_with_open, renewal_lock_path};
use harness::idp::Idp;
use harness::user_agent::Decision;
use harness::{artifacts_dir, config_path, keyring, wait_for};

/// The window's service, and the browser it opens.
type Window = (Arc<ProfileService>, Arc<common::Browser>);

/// A provider, a Bearer profile for it written to a config file for the commands, and the window's service.
async fn window(name: &str, toml: impl Fn(&Idp, &str) -> String) -> (Idp, PathBuf, String, Window) {
    keyring::require_secret_service();
    let idp = Idp::start(&artifacts_dir("processes").join(format!("{name}.log")));
    let profile = format!("processes-{name}");
    let config = config_path(name);
    let text = toml(&idp, &profile);
    std::fs::write(&config, &text).unwrap();
    let (service, browser) = common::service(&text);
    service.start(Vec::new()).await;
    (idp, config, profile, (service, browser))
}

/// The window holds a refresh token that `gatehouse token` has since rotated: its Sign out revokes the live one
/// the entry holds, not only its own stale copy, and deletes the entry.
#[tokio::test]
async fn the_windows_sign_out_revokes_what_another_process_renewed() {
    let (idp, config, profile, (service, browser)) = window("stale-sign-out", Idp::bearer_profile_toml).await;
    common::sign_in(&service, &browser, "alice").await;
    let held = keyring::stored(&profile, "refresh_token");
    common::expire_access_token(&profile).await;
    assert_eq!(gatehouse(&config, &["token"]).await.code, 0);
    let live = keyring::stored(&profile, "refresh_token");
    assert_ne!(live, held, "the command rotated the refresh token");

    service.sign_out().await.unwrap();
    assert!(keyring::lookup(&profile).is_none());
    assert_eq!(idp.introspect(&live).await["active"], false, "the live refresh token is revoked");
    // This provider ends the grant whichever of its refresh tokens is presented; others don't. The one
    // presented must be the live one.
    let presented: Vec<_> = idp.events_named("revocation.requested", None).await;
    assert!(
        presented.iter().any(|e| e["tokenSha256"] == harness::sha256_hex(&live) && e["consumed"] == false),
        "the live refresh token was not the one revoked: {presented:?}"
    );
    std::fs::remove_file(&config).unwrap();
}

/// Signed out from the command line, at a provider with no revocation endpoint (so its grant stays alive
/// there): the window's next Refresh doesn't renew the session back into the keychain. It says the session
/// was ended elsewhere, and the entry stays gone.
#[tokio::test]
async fn a_session_signed_out_elsewhere_is_never_renewed_back() {
    let without_revocation = |idp: &Idp, profile: &str| {
        let issuer = idp.issuer();
        format!(
            "{}authorization_endpoint = \"{issuer}/auth\"\ntoken_endpoint = \"{issuer}/token\"\njwks_uri = \"{issuer}/jwks\"\n",
            idp.bearer_profile_toml(profile)
        )
    };
    let (idp, config, profile, (service, browser)) = window("signed-out-elsewhere", without_revocation).await;
    common::sign_in(&service, &browser, "alice").await;
    let refresh_token = keyring::stored(&profile, "refresh_token");
    let signed_out = gatehouse(&config, &["sign-out"]).await;
    assert_eq!(signed_out.code, 0, "{signed_out:?}");
    assert!(keyring::lookup(&profile).is_none());
    assert_eq!(idp.introspect(&refresh_token).await["active"], true, "no revocation endpoint: still alive there");

    let error = service.refresh().await.unwrap_err();
    assert_eq!(error.kind(), "signed_out_elsewhere", "{error}");
    assert_eq!(service.view().phase, Phase::SignedOut);
    assert!(keyring::lookup(&profile).is_none(), "the entry must not come back");
    assert!(idp.events_named("grant.success", Some("refresh_token")).await.is_empty(), "no renewal");
    std::fs::remove_file(&config).unwrap();
}

/// `gatehouse sign-in --device` as Bob completes while the window's sign-in as Alice waits for the browser.
/// When Alice's sign-in then completes, Bob's session (already in the keychain) is kept, and Alice's new grant
/// revoked: no grant is left alive that nobody holds, and the window says whose session it now shows.
#[tokio::test]
async fn a_sign_in_that_completes_second_keeps_the_first_and_revokes_its_own_grant() {
    let (idp, config, profile, (service, browser)) = window("two-sign-ins", Idp::bearer_profile_toml).await;
    service.sign_in().await.unwrap();
    let device = harness::cli::device_sign_in(&config, "bob").await;
    assert_eq!(device.code, 0, "{device:?}");
    let bobs = keyring::stored(&profile, "refresh_token");

    service.handle_callback(&browser.answer("alice", Decision::Approve).await).await;
    let view = service.view();
    let notice = view.notice.clone().unwrap();
    assert_eq!(notice.kind, "signed_in_elsewhere", "{notice:?}");
    assert!(notice.message.contains("Bob"), "{notice:?}");
    assert_eq!(view.phase, Phase::SignedIn);
    assert_eq!(view.account.and_then(|a| a.name).as_deref(), Some("Bob"), "it says so, and shows Bob's session");
    assert_eq!(keyring::stored(&profile, "refresh_token"), bobs, "Bob's entry is untouched");
    assert_eq!(idp.introspect(&bobs).await["active"], true, "Bob's grant is alive");
    let codes = idp.events_named("grant.success", Some("authorization_code")).await;
    let alices = codes.last().unwrap()["refresh_token_sha256"].as_str().unwrap().to_owned();
    assert_ne!(alices, harness::sha256_hex(&bobs));
    assert_eq!(idp.events_named("grant.revoked", None).await.len(), 1, "Alice's unkept grant is revoked");
    service.sign_out().await.unwrap();
    std::fs::remove_file(&config).unwrap();
}

/// A `gatehouse token` started without `XDG_RUNTIME_DIR` (from cron, `sudo -u`, `su`, or an IDE that cleans
/// its environment), or with a `TMPDIR` of its own, waits at the same renewal lock as every other process of the
/// user, so that two renewals never run at once.
#[tokio::test]
async fn a_command_without_xdg_runtime_dir_waits_at_the_same_lock() {
    let (idp, config, profile, (service, browser)) = window("no-runtime-dir", Idp::bearer_profile_toml).await;
    common::sign_in(&service, &browser, "alice").await;
    common::expire_access_token(&profile).await;
    let lock_path = renewal_lock_path(&profile);
    let held = hold_renewal_lock(&profile);
    let command = tokio::spawn({
        let config = config.clone();
        // An empty value is no value (the XDG Base Directory spec): as if it were unset. And a `TMPDIR` of its own
        // (pam_tmpdir, tmux, nix-shell), which must not move the lock either where there is no runtime directory.
        let tmpdir = std::env::temp_dir().join(format!("gatehouse-own-tmpdir-{}", std::process::id()));
        std::fs::create_dir_all(&tmpdir).unwrap();
        let env = [("XDG_RUNTIME_DIR".into(), String::new()), ("TMPDIR".into(), tmpdir.display().to_string())];
        async move { gatehouse_with(&config, &["token"], &env).await }
    });
    wait_for("the command at the renewal lock", Duration::from_secs(15), || async {
        (processes_with_open(&lock_path) == 1).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(idp.events_named("grant.success", Some("refresh_token")).await.is_empty(), "it waits for the lock");
    drop(held);
    let run = command.await.unwrap();
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(idp.events_named("grant.success", Some("refresh_token")).await.len(), 1);
    service.sign_out().await.unwrap();
    std::fs::remove_file(&config).unwrap();
}

/// A read-only command writes nothing: `gatehouse status` (and `token` with a fresh token) on an entry of the
/// oldest format leaves it byte for byte as it was; the window's start migrates it, under the lock.
#[tokio::test]
async fn read_only_commands_write_nothing_even_to_migrate() {
    let (_idp, config, profile, (service, browser)) = window("read-only", Idp::bearer_profile_toml).await;
    common::sign_in(&service, &browser, "alice").await;
    let mut entry = keyring::session(&profile).unwrap();
    let fields = entry.as_object_mut().unwrap();
    fields.remove("binding");
    fields.remove("lifetime");
    fields.insert("v".into(), 1.into());
    let version_1 = entry.to_string();
    keyring::store_raw(&profile, &version_1);
    assert_eq!(keyring::lookup(&profile).unwrap(), version_1);

    for args in [vec!["status"], vec!["status", "--json"], vec!["token"]] {
        let run = gatehouse(&config, &args).await;
        assert_eq!(run.code, 0, "{run:?}");
        assert_eq!(keyring::lookup(&profile).unwrap(), version_1, "{args:?} wrote to the keychain");
    }
    let (window, _) = common::service(&std::fs::read_to_string(&config).unwrap());
    window.start(Vec::new()).await;
    assert_eq!(keyring::session(&profile).unwrap()["v"], 3, "the window migrates it");
    window.sign_out().await.unwrap();
    std::fs::remove_file(&config).unwrap();
}

/// A session without a refresh token whose access token still works is never destroyed because a command
/// asked for more time than it has left: `gatehouse token --min-ttl` and the credential helper say so, and
/// the entry and the grant stay.
#[tokio::test]
async fn a_query_that_cannot_be_met_changes_nothing() {
    let no_refresh = |idp: &Idp, profile: &str| {
        format!("{}dpop = false\n", idp.profile_toml_for(profile, harness::idp::NO_REFRESH_CLIENT_ID))
    };
    let (idp, config, profile, (service, browser)) = window("unmet-query", no_refresh).await;
    common::sign_in(&service, &browser, "alice").await;
    // An entry that doesn't know its tokens' lifetime (saved by an earlier Gatehouse), so that nothing but the
    // token's own expiry decides.
    let mut entry = keyring::session(&profile).unwrap();
    entry.as_object_mut().unwrap().remove("lifetime");
    keyring::store_raw(&profile, &entry.to_string());
    let session = keyring::lookup(&profile).unwrap();
    let access_token = keyring::stored(&profile, "access_token");
    assert!(keyring::session(&profile).unwrap().get("refresh_token").is_none());

    let token = gatehouse(&config, &["token", "--min-ttl", "100000"]).await;
    assert_eq!((token.code, token.stdout.as_str()), (6, ""), "{token:?}");
    let host = idp.issuer().trim_start_matches("http://").to_owned();
    let asked = format!("protocol=http\nhost={host}\n\n");
    let helper = harness::cli::gatehouse_with_input(&config, &["credential", "get"], &asked).await;
    assert_eq!(helper.code, 0, "{helper:?}");
    assert_eq!(keyring::lookup(&profile).unwrap(), session, "the entry is untouched");
    assert_eq!(idp.introspect(&access_token).await["active"], true, "and the grant alive");
    assert!(idp.events_named("grant.revoked", None).await.is_empty());
    service.sign_out().await.unwrap();
    std::fs::remove_file(&config).unwrap();
}
