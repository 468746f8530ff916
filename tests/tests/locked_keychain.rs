//! The keychain locked under a running Gatehouse, against the real provider and the real Secret Service.
//! Locking affects the whole test keyring, so these tests live in their own binary and run one at a time.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed assertion

mod common;

use std::sync::Arc;

use common::{notice_kind, Browser};
use gatehouse_core::service::ProfileService;
use gatehouse_core::state::Phase;
use harness::idp::Idp;
use harness::user_agent::Decision;
use harness::{artifacts_dir, keyring, sha256_hex};

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn start(idp: &Idp, profile: &str) -> (Arc<ProfileService>, Arc<Browser>) {
    common::service(&idp.profile_toml(profile))
}

/// A change to the test keyring (locked, or its login collection gone) that a fresh, unlocked login keyring
/// undoes when dropped, so that a failed assertion does not leave it changed for the next test.
struct Changed;

impl Changed {
    fn by(change: fn()) -> Changed {
        change();
        Changed
    }
}

impl Drop for Changed {
    fn drop(&mut self) {
        keyring::unlock();
    }
}

/// A renewal whose re-read of the keychain fails (locked, here) can't know what another process stored since:
/// it spends nothing, keeps the session and says why (review M2). Here another Gatehouse has rotated the refresh
/// token meanwhile, so spending the one this process holds would be a replay, which ends the whole grant at a
/// provider with reuse detection (RFC 9700 §4.14.2). Once the keychain is unlocked, the next refresh takes the
/// other process's session and no grant is ever refused.
#[tokio::test]
async fn a_renewal_that_cannot_read_the_keychain_spends_nothing() {
    let _serial = ONE_AT_A_TIME.lock().await;
    keyring::require_secret_service();
    let idp = Idp::start(&artifacts_dir("locked").join("idp-refresh.log"));
    let profile = "locked-refresh";
    let (service, opened) = start(&idp, profile);
    service.start(Vec::new()).await;
    service.sign_in().await.unwrap();
    service.handle_callback(&opened.answer("kim", Decision::Approve).await).await;
    assert_eq!(service.view().phase, Phase::SignedIn, "{:?}", service.view().notice);
    // Another Gatehouse (git's credential helper, say) renews: the refresh token this window holds is spent.
    let (other, _) = start(&idp, profile);
    other.start(Vec::new()).await;
    other.refresh().await.unwrap();
    assert_eq!(idp.events_named("grant.success", Some("refresh_token")).await.len(), 1);
    let entry = keyring::lookup(profile).unwrap();

    let locked = Changed::by(keyring::lock);
    let result = service.refresh().await;
    drop(locked);
    assert!(result.is_err(), "a renewal on a guess: {result:?}");
    let view = service.view();
    assert_eq!(view.phase, Phase::SignedIn, "the session is kept");
    assert!(notice_kind(&service).is_some_and(|k| k.starts_with("keychain_")), "{:?}", view.notice);
    assert_eq!(idp.events_named("grant.success", Some("refresh_token")).await.len(), 1, "nothing spent");
    assert!(idp.refused_grants().await.is_empty(), "{:?}", idp.refused_grants().await);
    assert_eq!(keyring::lookup(profile).unwrap(), entry, "nothing written");

    // Unlocked: the other process's renewal is found and used; the provider never sees a spent token.
    service.refresh().await.unwrap();
    assert!(idp.refused_grants().await.is_empty(), "{:?}", idp.refused_grants().await);
    assert_eq!(service.view().resource.unwrap()["greeting"], "Hello, Kim!");
    service.sign_out().await.unwrap();
}

/// After a locked keychain at launch, a sign-in starts in the browser. When the keychain is unlocked and Sign
/// in finds the stored session, the sign-in still waiting is cancelled: its answer, when it comes, replaces
/// nothing and is never exchanged.
#[tokio::test]
async fn a_session_found_after_unlocking_cancels_the_waiting_sign_in() {
    let _serial = ONE_AT_A_TIME.lock().await;
    keyring::require_secret_service();
    let idp = Idp::start(&artifacts_dir("locked").join("idp-pending.log"));
    let profile = "locked-pending";
    let (first, opened) = start(&idp, profile);
    first.start(Vec::new()).await;
    first.sign_in().await.unwrap();
    first.handle_callback(&opened.answer("leo", Decision::Approve).await).await;
    assert_eq!(first.view().phase, Phase::SignedIn);
    drop(first);
    let entry = keyring::lookup(profile).unwrap();

    let locked = Changed::by(keyring::lock);
    let (service, opened) = start(&idp, profile);
    service.start(Vec::new()).await;
    assert!(notice_kind(&service).is_some_and(|k| k.starts_with("keychain_")), "{:?}", service.view().notice);
    // Still locked: Sign in goes to the browser, where the person signs in as someone else.
    service.sign_in().await.unwrap();
    assert_eq!(service.view().phase, Phase::WaitingForBrowser);
    let late = opened.answer("mallory", Decision::Approve).await;
    drop(locked);

    service.sign_in().await.unwrap();
    let view = service.view();
    assert_eq!(view.phase, Phase::SignedIn, "{:?}", view.notice);
    assert_eq!(view.account.and_then(|a| a.name).as_deref(), Some("Leo"));

    service.handle_callback(&late).await;
    let view = service.view();
    assert_eq!(view.phase, Phase::SignedIn);
    assert_eq!(view.account.and_then(|a| a.name).as_deref(), Some("Leo"));
    let notice = view.notice.unwrap();
    assert_eq!(notice.kind, "callback_rejected");
    assert!(notice.message.contains("no sign-in was in progress"), "{}", notice.message);
    assert_eq!(idp.events_named("grant.success", Some("authorization_code")).await.len(), 1, "not exchanged");
    assert_eq!(keyring::lookup(profile).unwrap(), entry);
    service.sign_out().await.unwrap();
}

/// Sign out (from the tray, say) after a launch that found the keychain locked, once it is unlocked: the stored
/// session is revoked at the provider before it is deleted, not just deleted.
#[tokio::test]
async fn signing_out_after_a_locked_launch_revokes_the_stored_session() {
    let _serial = ONE_AT_A_TIME.lock().await;
    keyring::require_secret_service();
    let idp = Idp::start(&artifacts_dir("locked").join("idp-sign-out.log"));
    let profile = "locked-sign-out";
    let (first, opened) = start(&idp, profile);
    first.start(Vec::new()).await;
    common::sign_in(&first, &opened, "nina").await;
    assert_eq!(first.view().phase, Phase::SignedIn);
    drop(first);
    let refresh = keyring::session(profile).unwrap()["refresh_token"].as_str().unwrap().to_owned();

    let locked = Changed::by(keyring::lock);
    let (service, _) = start(&idp, profile);
    service.start(Vec::new()).await;
    assert_eq!(service.view().phase, Phase::SignedOut);
    drop(locked);

    service.sign_out().await.unwrap();
    assert_eq!(notice_kind(&service).as_deref(), Some("signed_out"), "{:?}", service.view().notice);
    assert!(keyring::lookup(profile).is_none());
    assert_eq!(idp.introspect(&refresh).await["active"], false, "the stored grant must be revoked");
}

/// A Secret Service with no `default` collection (WSL, KeePassXC with no default database, a deleted login
/// keyring) is not a locked one. Nothing is locked here, so Gatehouse keeps the session in the collection that
/// is unlocked (gnome-keyring's session collection) and says it lasts until log-out; the fresh grant is not
/// revoked, a refresh saves its rotated token there too, and sign-out removes it.
#[tokio::test]
async fn a_keyring_without_a_default_collection_keeps_the_session_where_it_can() {
    let _serial = ONE_AT_A_TIME.lock().await;
    keyring::require_secret_service();
    let idp = Idp::start(&artifacts_dir("locked").join("idp-no-default.log"));
    let profile = "no-default-collection";
    let _restore = Changed::by(keyring::delete_login_collection);
    let (service, opened) = start(&idp, profile);
    service.start(Vec::new()).await;
    service.sign_in().await.unwrap();
    service.handle_callback(&opened.answer("kim", Decision::Approve).await).await;
    let view = service.view();
    assert_eq!(view.phase, Phase::SignedIn, "{:?}", view.notice);
    let notice = view.notice.unwrap();
    assert_eq!(notice.kind, "keychain_session_only");
    assert!(!notice.message.contains("locked") && notice.message.contains("default collection"), "{notice:?}");
    let paths = keyring::item_paths(profile);
    assert_eq!(paths.len(), 1, "{paths:?}");
    assert!(paths[0].starts_with("/org/freedesktop/secrets/collection/session/"), "{paths:?}");
    let refresh_token = keyring::session(profile).unwrap()["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(idp.introspect(&refresh_token).await["active"], true, "the fresh grant must not be revoked");
    assert!(idp.events_named("grant.revoked", None).await.is_empty());

    service.refresh().await.unwrap();
    let rotated = keyring::session(profile).unwrap()["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(rotated, refresh_token);
    assert_eq!(keyring::item_paths(profile).len(), 1, "the refresh updates the one entry");
    service.sign_out().await.unwrap();
    assert!(keyring::lookup(profile).is_none());
    assert_eq!(idp.introspect(&rotated).await["active"], false, "sign-out revokes");
}

/// Kim signed in to `profile` (Bearer tokens) at a provider whose token endpoint is behind a fault proxy, with the
/// access token expired: the provider, the proxy, the profile's text and the service.
async fn signed_in_behind_a_proxy(profile: &str) -> (Idp, harness::faults::FaultProxy, String, Arc<ProfileService>) {
    let idp = Idp::start(&artifacts_dir("locked").join(format!("idp-{profile}.log")));
    let proxy = harness::faults::FaultProxy::start(idp.issuer()).await;
    let toml = format!(
        "{}token_endpoint = \"{}/token\"\nauthorization_endpoint = \"{}/auth\"\njwks_uri = \"{}/jwks\"\n",
        idp.bearer_profile_toml(profile),
        proxy.url(),
        idp.issuer(),
        idp.issuer()
    );
    let (service, opened) = common::service(&toml);
    service.start(Vec::new()).await;
    service.sign_in().await.unwrap();
    service.handle_callback(&opened.answer("kim", Decision::Approve).await).await;
    assert_eq!(service.view().phase, Phase::SignedIn, "{:?}", service.view().notice);
    common::expire_access_token(profile).await;
    (idp, proxy, toml, service)
}

/// A keychain write whose outcome is unknown (the keychain stopped answering mid-save, and Gatehouse stopped
/// waiting for it) keeps the renewal lock until the write has landed: until then, another process could read
/// the old entry and replay the refresh token just spent (RFC 9700 §4.14.2).
#[tokio::test]
async fn a_save_of_unknown_outcome_keeps_the_renewal_lock_until_it_lands() {
    use harness::faults::Fault;
    let _serial = ONE_AT_A_TIME.lock().await;
    keyring::require_secret_service();
    let profile = "locked-unknown-save";
    let (idp, proxy, toml, service) = signed_in_behind_a_proxy(profile).await;

    // The refresh reads the keychain under the lock, then waits for the provider; meanwhile the keychain stops.
    proxy.inject(Fault::Delay(1500), &["/token"]);
    let refresh = tokio::spawn({
        let service = Arc::clone(&service);
        async move { service.refresh().await }
    });
    harness::wait_for("the refresh request", std::time::Duration::from_secs(10), || async {
        (proxy.requests("/token") == 1).then_some(())
    })
    .await;
    // A `gatehouse token`, as git's credential helper would run it, reads the (old, expired) entry while the
    // keychain still answers, and queues at the renewal lock the window holds.
    let lock_path = harness::cli::renewal_lock_path(profile);
    let config = harness::artifacts_dir("locked").join("unknown-save.toml");
    std::fs::write(&config, &toml).unwrap();
    let command = tokio::spawn(async move { harness::cli::gatehouse(&config, &["token"]).await });
    harness::wait_for("the command at the renewal lock", std::time::Duration::from_secs(15), || async {
        (harness::cli::processes_with_open(&lock_path) == 1).then_some(())
    })
    .await;
    let paused = keyring::Paused::now();
    // Past the keychain's 10 s deadline: Gatehouse no longer waits for the save, but it may still land.
    tokio::time::sleep(gatehouse_core::tokens::keychain::KEYCHAIN_TIMEOUT + std::time::Duration::from_secs(3)).await;
    let lock_file = || std::fs::File::open(&lock_path).unwrap();
    assert!(lock_file().try_lock().is_err(), "the renewal lock is held while the write may still land");
    assert!(!refresh.is_finished());
    // Still queued at the lock, not past it: let go early, it would read the old entry and spend the refresh token
    // the window just spent (and its read would now fail, or hang, against the stopped keychain).
    assert!(!command.is_finished(), "the command must wait while the window's save may still land");
    assert_eq!(harness::cli::processes_with_open(&lock_path), 1, "the command waits at the lock");
    assert!(idp.events_named("grant.success", Some("refresh_token")).await.len() <= 1, "no second renewal meanwhile");

    drop(paused);
    let result = refresh.await.unwrap();
    // The waiting command takes the lock as soon as the window lets go of it, then lets go in turn.
    let command = command.await.unwrap();
    assert!(lock_file().try_lock().is_ok(), "released once the write has landed");
    let issued = idp.events_named("grant.success", Some("refresh_token")).await;
    let stored = keyring::session(profile).unwrap();
    let refresh_token = stored["refresh_token"].as_str().unwrap();
    assert_eq!(issued[0]["refresh_token_sha256"], sha256_hex(refresh_token), "the rotated token landed: {result:?}");
    assert_eq!(command.code, 0, "{command:?}");
    assert_eq!(command.stdout.trim(), stored["access_token"].as_str().unwrap(), "the command uses the renewed token");
    assert_eq!(issued.len(), 1, "one renewal in all");
    assert!(idp.refused_grants().await.is_empty(), "{:?}", idp.refused_grants().await);
    service.sign_out().await.unwrap();
}

/// A `gatehouse token` whose renewal the keychain can't save (it locked while the token request was under way)
/// ends with the only copy of the rotated refresh token: it asks the keychain once more, then says so, exit 5,
/// and prints no token as if all were well.
#[tokio::test]
async fn a_command_whose_renewal_cannot_be_saved_says_so() {
    use harness::faults::Fault;
    let _serial = ONE_AT_A_TIME.lock().await;
    keyring::require_secret_service();
    let profile = "locked-unsaved-command";
    let (idp, proxy, toml, service) = signed_in_behind_a_proxy(profile).await;
    drop(service);
    let entry = keyring::lookup(profile).unwrap();

    // The command reads the keychain, then waits for the provider; meanwhile the keychain locks.
    proxy.inject(Fault::Delay(1500), &["/token"]);
    let config = harness::artifacts_dir("locked").join("unsaved-command.toml");
    std::fs::write(&config, &toml).unwrap();
    let before = proxy.requests("/token");
    let command = tokio::spawn(async move { harness::cli::gatehouse(&config, &["token"]).await });
    harness::wait_for("the command's token request", std::time::Duration::from_secs(10), || async {
        (proxy.requests("/token") == before + 1).then_some(())
    })
    .await;
    let locked = Changed::by(keyring::lock);
    let run = command.await.unwrap();
    drop(locked);
    assert_eq!(run.code, 5, "{run:?}");
    assert_eq!(run.stdout, "", "no token printed as if all were well");
    assert!(run.stderr.contains("error[renewal_not_saved]"), "{run:?}");
    assert!(run.stderr.contains("gatehouse sign-in"), "what to do next: {run:?}");
    assert_eq!(idp.events_named("grant.success", Some("refresh_token")).await.len(), 1, "one renewal");
    assert_eq!(keyring::lookup(profile).unwrap(), entry, "nothing else written");
}
