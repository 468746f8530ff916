//! Narrowed tokens from `gatehouse token --resource URL --scope S` against the demo provider, whose resources
//! `/api/a` and `/api/b` each take only a token for their own audience (RFC 8707).

use super::*;

/// [`Idp::bearer_profile_toml`] with the scopes of both resources, and both listed as `resources`.
pub(super) fn narrowing_profile(idp: &Idp, profile: &str) -> String {
    let issuer = idp.issuer();
    let base = idp.bearer_profile_toml(profile).replace(
        r#"scopes = ["openid", "profile", "offline_access"]"#,
        r#"scopes = ["openid", "profile", "offline_access", "a:read", "a:write", "b:read"]"#,
    );
    format!("{base}resources = [\"{issuer}/api/a\", \"{issuer}/api/b\"]\n")
}

/// A token narrowed to A is taken by A and refused by B, and the other way round; the session's own token is
/// taken by neither, and is not what either narrowing printed.
#[tokio::test]
async fn each_resource_takes_only_the_token_narrowed_to_it() {
    let (idp, config) = signed_in_with("narrow-ab", narrowing_profile).await;
    let issuer = idp.issuer();
    let for_a = gatehouse(&config, &["token", "--resource", &format!("{issuer}/api/a"), "--scope", "a:read"]).await;
    let for_b = gatehouse(&config, &["token", "--resource", &format!("{issuer}/api/b")]).await;
    let broad = gatehouse(&config, &["token"]).await;
    for run in [&for_a, &for_b, &broad] {
        assert_eq!(run.code, 0, "{run:?}");
    }
    let (a, b, broad) = (for_a.stdout.trim_end(), for_b.stdout.trim_end(), broad.stdout.trim_end());
    let (status, said) = resource_answer(&issuer, "/api/a", a).await;
    assert_eq!((status, said["scope"].as_str()), (200, Some("a:read")), "A takes its token, with the scope asked");
    assert_eq!(resource_answer(&issuer, "/api/b", a).await.0, 401, "B refuses A's token");
    assert_eq!(resource_answer(&issuer, "/api/b", b).await.0, 200, "B takes its token");
    assert_eq!(resource_answer(&issuer, "/api/a", b).await.0, 401, "A refuses B's token");
    assert_eq!(resource_answer(&issuer, "/api/a", broad).await.0, 401, "the session's own token is for neither");
    assert_eq!(resource_status(&issuer, broad).await, 200, "and still serves its own resource");
    assert!(a != broad && b != broad);
    // The log says who was given what: this test's process, for each resource; and in words a person reads.
    let log = gatehouse(&config, &["log", "--profile", &profile_of("narrow-ab")]).await;
    assert_eq!(log.code, 0, "{log:?}");
    let me = std::env::current_exe().unwrap().canonicalize().unwrap();
    for resource in [format!("{issuer}/api/a scope \"a:read\": renewed"), format!("{issuer}/api/b: renewed")] {
        assert!(
            log.stdout.lines().any(|l| l.contains(&format!("{} (pid ", me.display())) && l.contains(&resource)),
            "{}",
            log.stdout
        );
    }
    assert!(!log.stdout.contains(a) && !log.stdout.contains(b));
    std::fs::remove_file(&config).unwrap();
}

/// Twenty processes asking for A and twenty for B at once make exactly two grants: one per resource, shared
/// through the profile's lock and the keychain entry.
#[tokio::test]
async fn forty_concurrent_requests_for_two_resources_make_two_grants() {
    let (idp, config) = signed_in_with("narrow-forty", narrowing_profile).await;
    let issuer = idp.issuer();
    let before = idp.events_named("grant.success", Some("refresh_token")).await.len();
    let (a, b) = (format!("{issuer}/api/a"), format!("{issuer}/api/b"));
    let (args_a, args_b) = (["token", "--resource", a.as_str()], ["token", "--resource", b.as_str()]);
    let (for_a, for_b) = tokio::join!(concurrent_runs(&config, &args_a, 20), concurrent_runs(&config, &args_b, 20));
    let grants = idp.events_named("grant.success", Some("refresh_token")).await.len() - before;
    assert_eq!(grants, 2, "one grant per resource");
    for (runs, path) in [(&for_a, "/api/a"), (&for_b, "/api/b")] {
        for run in runs.iter() {
            assert_eq!(run.code, 0, "{run:?}");
        }
        assert!(runs.iter().all(|run| run.stdout == runs[0].stdout), "every process got the one token");
        assert_eq!(resource_answer(&issuer, path, runs[0].stdout.trim_end()).await.0, 200);
    }
    std::fs::remove_file(&config).unwrap();
}

/// A resource the profile doesn't list is refused before any request reaches the provider, with what to do.
#[tokio::test]
async fn an_unlisted_resource_makes_no_request() {
    let (idp, config) = signed_in_with("narrow-unlisted", narrowing_profile).await;
    let before = idp.events().await.len();
    let run = gatehouse(&config, &["token", "--resource", "https://elsewhere.example/api"]).await;
    assert_eq!(run.code, 4, "{run:?}");
    assert!(run.stderr.contains("error[resource_not_listed]") && run.stderr.contains("resources"), "{}", run.stderr);
    assert!(run.stdout.is_empty());
    let scope =
        gatehouse(&config, &["token", "--resource", &format!("{}/api/a", idp.issuer()), "--scope", "admin"]).await;
    assert_eq!(scope.code, 4, "{scope:?}");
    assert!(scope.stderr.contains("error[scope_not_granted]"), "{}", scope.stderr);
    assert_eq!(idp.events().await.len(), before, "the provider heard nothing");
    std::fs::remove_file(&config).unwrap();
}

/// A session without a refresh token gets its narrowed token by token exchange (RFC 8693), which the demo
/// provider lists; signing out drops it from the keychain along with the session, after asking the provider to
/// revoke it.
#[tokio::test]
async fn without_a_refresh_token_the_session_s_token_is_exchanged() {
    fn no_refresh(idp: &Idp, profile: &str) -> String {
        narrowing_profile(idp, profile).replace("gatehouse-desktop", "gatehouse-no-refresh")
    }
    let (idp, config) = signed_in_with("narrow-exchange", no_refresh).await;
    let issuer = idp.issuer();
    let run = gatehouse(&config, &["token", "--resource", &format!("{issuer}/api/b")]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let token = run.stdout.trim_end().to_owned();
    assert_eq!(resource_answer(&issuer, "/api/b", &token).await.0, 200);
    assert_eq!(idp.events_named("token_exchange.success", None).await.len(), 1);
    let profile = profile_of("narrow-exchange");
    assert!(keyring::lookup(&profile).unwrap().contains("narrowed"), "kept with the session");
    let out = gatehouse(&config, &["sign-out"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(keyring::lookup(&profile).is_none(), "gone with the session");
    std::fs::remove_file(&config).unwrap();
}
