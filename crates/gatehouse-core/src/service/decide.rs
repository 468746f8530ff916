//! The service's decisions, apart from its effects: pure functions from what the keychain holds, what this
//! process holds and what the provider answered to what the service does next. The service reads the keychain,
//! takes the lock, talks to the provider and reads the clock; these only say what the answers mean. Each is tested
//! case by case below, with no network, keychain or clock.

use std::time::Duration;

use crate::config::Config;
use crate::error::Error;
use crate::state::Notice;
use crate::tokens::keychain::KeychainError;
use crate::tokens::{Binding, StoredSession, FORMAT_VERSION};

/// Whether `stored` is a session of `config`'s provider, client and resource (or a version 1 entry, which the
/// profile adopts).
pub(super) fn belongs_to(stored: &StoredSession, config: &Config) -> bool {
    stored.binding.as_ref().is_none_or(|binding| binding.same_as(&Binding::of(config)))
}

/// Whether `stored` is the account `held` is, as far as can be shown: the same subject where both name one, else
/// the same grant (one sign-in, renewed by any process). Two sessions that name neither are not taken for the
/// same account: that would be a guess.
pub(super) fn same_account(stored: &StoredSession, held: &StoredSession) -> bool {
    match (&stored.account.subject, &held.account.subject) {
        (Some(stored), Some(held)) => stored == held,
        (None, None) => stored.grant.is_some() && stored.grant == held.grant,
        _ => false,
    }
}

/// Whether two sessions hold the same tokens: the same session, as one process wrote it.
pub(super) fn same_tokens(a: &StoredSession, b: &StoredSession) -> bool {
    let secret = |token: Option<&oauth2::AccessToken>| token.map(|t| t.secret().clone());
    a.refresh_token.as_ref().map(|t| t.secret()) == b.refresh_token.as_ref().map(|t| t.secret())
        && secret(a.access_token.as_ref()) == secret(b.access_token.as_ref())
}

/// Takes a stored session for the profile `config` if it is bound to what the profile names now. A version 1
/// entry has no binding: the profile that finds it adopts it, as the only owner it can have had.
///
/// # Errors
/// [`Error::OtherProvider`] when the session belongs to another provider, client or resource.
pub(super) fn adopt(config: &Config, mut stored: StoredSession) -> Result<StoredSession, Error> {
    let expected = Binding::of(config);
    match &stored.binding {
        Some(binding) if binding.same_as(&expected) => Ok(stored),
        Some(binding) => Err(other_provider(binding, &expected)),
        None => {
            stored.binding = Some(expected);
            stored.v = FORMAT_VERSION;
            Ok(stored)
        }
    }
}

/// The notice for a stored session bound to something else than the profile: it names what differs.
pub(super) fn other_provider(stored: &Binding, configured: &Binding) -> Error {
    let describe = |b: &Binding| {
        let text = if stored.provider.trim_end_matches('/') != configured.provider.trim_end_matches('/') {
            b.provider.clone()
        } else if stored.client_id != configured.client_id {
            format!("client {} at {}", b.client_id, b.provider)
        } else if stored.resource_origin != configured.resource_origin {
            format!("the resource at {}", b.resource_origin)
        } else {
            format!("the token endpoint {}", b.token_endpoint.as_deref().unwrap_or(&b.provider))
        };
        crate::error::clean_for_display(&text, 120)
    };
    Error::OtherProvider { stored: describe(stored), configured: describe(configured) }
}

/// What to do with a grant just issued, once the keychain has been read again under the profile's lock.
#[derive(Debug)]
pub(super) enum NewGrant {
    /// Write it: the entry is empty, unreadable, or holds another provider's session, which it replaces.
    Keep,
    /// Another process signed in to this profile meanwhile: keep its session, and undo this grant, so that
    /// neither grant is left alive with nobody holding it.
    Yield(Box<StoredSession>),
    /// What the entry holds can't be told (it may be another process's new session): never overwrite on a guess;
    /// undo this grant, and say why.
    Undo(Error),
}

/// What a grant just issued for `config` becomes, given what the entry holds now.
pub(super) fn new_grant(found: Result<Option<StoredSession>, KeychainError>, config: &Config) -> NewGrant {
    match found {
        Ok(Some(existing)) if belongs_to(&existing, config) => NewGrant::Yield(Box::new(existing)),
        Ok(_) => NewGrant::Keep,
        // Unreadable: nothing there can be another process's usable session.
        Err(KeychainError::Corrupt(_)) => NewGrant::Keep,
        Err(e) => NewGrant::Undo(e.into()),
    }
}

/// How the write of a new session turned out.
#[derive(Debug)]
pub(super) enum Written {
    /// Saved.
    Saved,
    /// The keychain didn't confirm it: the write may have landed, or may still land (the keychain keeps its calls
    /// in order). Claiming failure and revoking now could leave a dead session in the keychain: go on, and say so.
    Unconfirmed,
    /// Nothing was written, so the tokens can't be kept: revoke them, and say why.
    NotSaved(Error),
}

/// What the keychain's answer to the write of a new session means.
pub(super) fn written(saved: Result<(), KeychainError>) -> Written {
    match saved {
        Ok(()) => Written::Saved,
        Err(e) if !e.nothing_written() => Written::Unconfirmed,
        Err(e) => Written::NotSaved(e.into()),
    }
}

/// What another process did to the entry, as far as a renewal goes.
#[derive(Debug)]
pub(super) enum Elsewhere {
    /// Nobody else renewed: renew here.
    Nobody,
    /// Another process renewed, and its tokens serve: use them, and spend no refresh token.
    Renewed(StoredSession),
    /// Another process renewed, but its tokens are due as well: renew them here, with their refresh token, which
    /// is the live one.
    RenewTheirs(StoredSession),
}

/// Whether another process renewed the session `held`, given the entry as read under the renewal lock (`None`
/// when it is as this process left it, `Some(None)` when it is gone), at `now`, for tokens that must last
/// `fresh_for`. A keychain as this process left it means nobody else renewed, even when this process holds newer
/// tokens it couldn't save.
///
/// # Errors
/// [`Error::SignedOutElsewhere`] when the entry was deleted (signed out elsewhere: never renewed back into being),
/// or holds another account's or provider's session (never adopted silently); the keychain's error when the entry
/// can't be read, which is not "unchanged": another process may have rotated the refresh token held here (spending
/// it again would end the grant, RFC 9700 §4.14.2), or signed out.
pub(super) fn elsewhere(
    read: Result<Option<Option<StoredSession>>, KeychainError>,
    held: &StoredSession,
    now: u64,
    fresh_for: Duration,
) -> Result<Elsewhere, Error> {
    let stored = match read? {
        None => return Ok(Elsewhere::Nobody),
        Some(None) => return Err(Error::SignedOutElsewhere),
        Some(Some(stored)) => stored,
    };
    let same_binding = match (&stored.binding, &held.binding) {
        (Some(stored), Some(held)) => stored.same_as(held),
        (stored, held) => stored == held,
    };
    if !same_binding || !same_account(&stored, held) {
        return Err(Error::SignedOutElsewhere);
    }
    // Due as well: renew it. Unless it is still valid and no renewal could do better (the provider's tokens don't
    // live `fresh_for`): then another process's renewal is as good as this one's would be, and no grant is spent.
    let still_valid = !stored.due_within(now, Duration::ZERO);
    if stored.due_within(now, fresh_for) && !(still_valid && stored.outlives_tokens(fresh_for)) {
        return Ok(Elsewhere::RenewTheirs(stored));
    }
    Ok(Elsewhere::Renewed(stored))
}

/// What becomes of the entry of a session that has ended here.
#[derive(Debug)]
pub(super) enum EndedEntry {
    /// It still holds the ended tokens: delete it.
    Delete,
    /// Another process renewed or signed in meanwhile: leave its session.
    Newer,
    /// It is gone already.
    Gone,
    /// It can't be read: leave it, rather than delete on a guess.
    Unreadable(KeychainError),
}

/// What to do with the entry, read under the lock, of the session `ended`.
pub(super) fn ended_entry(read: Result<Option<StoredSession>, KeychainError>, ended: &StoredSession) -> EndedEntry {
    match read {
        Ok(Some(stored)) if same_tokens(&stored, ended) => EndedEntry::Delete,
        Ok(Some(_)) => EndedEntry::Newer,
        Ok(None) => EndedEntry::Gone,
        Err(e) => EndedEntry::Unreadable(e),
    }
}

/// What a failed session action does to the session.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum AfterFailure {
    /// It can't go on: end it, revoking first where a sign-in is needed anyway (the provider may still honour the
    /// access token).
    End { revoke: bool },
    /// Another process signed out or replaced it: forget this process's copy, and leave the entry alone.
    Forget,
    /// Anything else (the network, the keychain, a provider's hiccup) keeps it.
    Keep,
}

/// What `e`, the failure of a session action, does to the session.
pub(super) fn after_failure(e: &Error) -> AfterFailure {
    match e {
        Error::SessionEnded => AfterFailure::End { revoke: false },
        Error::SignInNeeded => AfterFailure::End { revoke: true },
        Error::SignedOutElsewhere => AfterFailure::Forget,
        _ => AfterFailure::Keep,
    }
}

/// What a sign-out finds in the profile's entry, read under the lock.
#[derive(Debug)]
pub(super) enum SignOutEntry {
    /// The grants to revoke before the entry is deleted: the profile's session, or none (no entry, or one that
    /// can't be read and so holds nothing that could be revoked or used).
    Grants(Vec<StoredSession>),
    /// Another provider's session, never in use here: neither revoked (its provider is not this profile's) nor
    /// deleted, so that only a sign-in that succeeds replaces it.
    OtherProvider,
    /// Several items for the profile (another program wrote one): each one of them that is this profile's is
    /// revoked, then all are removed, so that none is orphaned alive.
    Several,
    /// What is stored can't be told (a locked keychain, one that didn't answer): deleting it blind could drop
    /// another process's new session unrevoked. Nothing is signed out.
    Refuse(KeychainError),
}

/// What a sign-out of `config`'s profile does with what the entry holds.
pub(super) fn sign_out_entry(read: Result<Option<StoredSession>, KeychainError>, config: &Config) -> SignOutEntry {
    match read {
        Ok(Some(stored)) if belongs_to(&stored, config) => SignOutEntry::Grants(vec![stored]),
        Ok(Some(_)) => SignOutEntry::OtherProvider,
        Ok(None) | Err(KeychainError::Corrupt(_)) => SignOutEntry::Grants(Vec::new()),
        Err(KeychainError::Duplicates) => SignOutEntry::Several,
        Err(e) => SignOutEntry::Refuse(e),
    }
}

/// What a sign-out says: whether the entry was `deleted`, whether the provider `revoked` a grant (RFC 7009), whether
/// there was a session at all, and the revocation endpoint's `host`, to name it when it couldn't be reached.
pub(super) fn signed_out(
    deleted: &Result<(), KeychainError>,
    revoked: &Result<bool, Error>,
    had_session: bool,
    host: Option<&str>,
) -> Notice {
    match (deleted, revoked) {
        (Err(e), _) => Notice::error(&Error::Keychain(e.clone())),
        (Ok(()), Err(e @ Error::RevocationRefused(_))) => Notice::info(
            "revocation_refused",
            format!(
                "Signed out on this computer, but {e}, so the session stays valid there until it expires. To end it \
                 now, sign out on the provider's website."
            ),
        ),
        (Ok(()), Err(e)) => Notice::info("revocation_failed", not_told(e, host)),
        (Ok(()), Ok(false)) if had_session => Notice::info(
            "not_revoked",
            "Signed out on this computer. The provider offers no way to end the session, so it stays valid there \
             until it expires.",
        ),
        (Ok(()), Ok(true)) => {
            Notice::info("signed_out", "The session has ended, here and at the provider. Sign in to start a new one.")
        }
        (Ok(()), Ok(false)) => Notice::info("signed_out", "No session is kept here. Sign in to start one."),
    }
}

/// A sign-out's notice when the provider couldn't be told to end the session: where it couldn't be reached (or
/// what it said), and what stays true.
pub(super) fn not_told(error: &Error, host: Option<&str>) -> String {
    let why = match (error, host) {
        (Error::Network(_), Some(host)) => format!("Gatehouse couldn't reach {host} to end the session there"),
        (Error::Network(_), None) => "Gatehouse couldn't reach the provider to end the session there".to_owned(),
        // What it answered instead is in the log; here it matters only that it didn't say yes.
        (_, Some(host)) => format!("{host} didn't confirm that it ended the session"),
        (_, None) => "The provider didn't confirm that it ended the session".to_owned(),
    };
    format!(
        "Signed out here. {why}, so it stays valid there until it expires, or until you sign out on the provider's \
         website."
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::Account;

    const PROFILE: &str = "issuer = \"https://id.example.com\"\nclient_id = \"abc\"\n\
        redirect_uri = \"com.example.gatehouse:/callback\"\nresource_url = \"https://api.example.com/me\"\n";

    fn config() -> Config {
        Config::parse(PROFILE, "test").unwrap()
    }

    fn session(subject: Option<&str>, grant: Option<&str>) -> StoredSession {
        StoredSession {
            v: FORMAT_VERSION,
            binding: None,
            access_token: None,
            refresh_token: None,
            expires_at: None,
            scopes: Vec::new(),
            account: Account { subject: subject.map(str::to_owned), name: None, login: None },
            dpop_key: None,
            bearer_access: false,
            lifetime: None,
            grant: grant.map(str::to_owned),
            narrowed: Vec::new(),
        }
    }

    /// A session of `config()`'s binding for `subject`, with tokens `tokens` that expire at `expires_at`.
    fn bound(subject: &str, tokens: &str, expires_at: u64) -> StoredSession {
        StoredSession {
            binding: Some(Binding::of(&config())),
            access_token: Some(oauth2::AccessToken::new(format!("access-{tokens}"))),
            refresh_token: Some(oauth2::RefreshToken::new(format!("refresh-{tokens}"))),
            expires_at: Some(expires_at),
            lifetime: Some(3600),
            ..session(Some(subject), Some("g1"))
        }
    }

    fn elsewhere_binding() -> Binding {
        let other = PROFILE.replace("https://id.example.com", "https://other.example.com");
        Binding::of(&Config::parse(&other, "other").unwrap())
    }

    /// Whose session another process stored is never guessed: the subject decides where both have
    /// one; with none, only the same grant (one sign-in, renewed by any process) is the same account, and two
    /// sessions that name nobody are not.
    #[test]
    fn two_sessions_that_name_nobody_are_not_the_same_account() {
        let same = |a: &StoredSession, b: &StoredSession| same_account(a, b);
        assert!(same(&session(Some("alice"), None), &session(Some("alice"), Some("g1"))));
        assert!(!same(&session(Some("alice"), Some("g1")), &session(Some("bob"), Some("g1"))));
        assert!(same(&session(None, Some("g1")), &session(None, Some("g1"))), "a renewal elsewhere");
        assert!(!same(&session(None, Some("g2")), &session(None, Some("g1"))), "another sign-in");
        assert!(!same(&session(None, None), &session(None, None)), "None == None is no answer");
        assert!(!same(&session(None, None), &session(None, Some("g1"))));
        assert!(!same(&session(Some("alice"), Some("g1")), &session(None, Some("g1"))));
    }

    #[test]
    fn a_session_is_adopted_only_by_the_profile_it_is_bound_to() {
        let adopted = adopt(&config(), bound("alice", "1", 100)).unwrap();
        assert_eq!(adopted.account.subject.as_deref(), Some("alice"));
        let unbound = adopt(&config(), StoredSession { v: 1, ..session(Some("alice"), None) }).unwrap();
        assert_eq!(unbound.binding, Some(Binding::of(&config())), "a version 1 entry takes the profile's binding");
        assert_eq!(unbound.v, FORMAT_VERSION);
        let foreign = StoredSession { binding: Some(elsewhere_binding()), ..bound("alice", "1", 100) };
        let Err(Error::OtherProvider { stored, .. }) = adopt(&config(), foreign) else { panic!("adopted") };
        assert_eq!(stored, "https://other.example.com/");
    }

    /// A new grant never overwrites what can't be read for sure, and never replaces another process's sign-in to
    /// the same profile; it replaces an empty, corrupt, or other provider's entry.
    #[test]
    fn a_new_grant_is_kept_only_over_an_entry_known_to_be_nobodys_session_here() {
        assert!(matches!(new_grant(Ok(None), &config()), NewGrant::Keep));
        assert!(matches!(new_grant(Err(KeychainError::Corrupt("x".into())), &config()), NewGrant::Keep));
        let foreign = StoredSession { binding: Some(elsewhere_binding()), ..bound("bob", "2", 100) };
        assert!(matches!(new_grant(Ok(Some(foreign)), &config()), NewGrant::Keep));
        let Yield(theirs) = new_grant(Ok(Some(bound("bob", "2", 100))), &config()) else { panic!("overwritten") };
        assert_eq!(theirs.account.subject.as_deref(), Some("bob"));
        let unbound = session(Some("bob"), None);
        assert!(matches!(new_grant(Ok(Some(unbound)), &config()), NewGrant::Yield(_)), "a version 1 entry is ours");
        for unknown in [KeychainError::Locked, KeychainError::TimedOut, KeychainError::Duplicates] {
            let kind = unknown.kind();
            assert!(matches!(new_grant(Err(unknown), &config()), NewGrant::Undo(_)), "{kind}");
        }
    }

    use NewGrant::Yield;

    #[test]
    fn a_write_of_unknown_outcome_is_kept_and_said_and_only_a_write_that_never_happened_is_undone() {
        assert!(matches!(written(Ok(())), Written::Saved));
        assert!(matches!(written(Err(KeychainError::TimedOut)), Written::Unconfirmed));
        assert!(matches!(
            written(Err(KeychainError::Locked)),
            Written::NotSaved(Error::Keychain(KeychainError::Locked))
        ));
    }

    /// One renewal at a time across processes (RFC 9700 §4.14.2): what another process stored is used, renewed
    /// further, or refused, and never guessed.
    #[test]
    fn a_renewal_elsewhere_is_used_renewed_further_or_refused() {
        let now = 1_000;
        let held = bound("alice", "1", now - 10);
        let fresh = Duration::from_secs(60);
        assert!(matches!(elsewhere(Ok(None), &held, now, fresh), Ok(Elsewhere::Nobody)));
        let renewed = bound("alice", "2", now + 3600);
        let Ok(Elsewhere::Renewed(used)) = elsewhere(Ok(Some(Some(renewed))), &held, now, fresh) else {
            panic!("another process's fresh renewal is used")
        };
        assert_eq!(used.refresh_token.unwrap().secret(), "refresh-2");
        let due = bound("alice", "3", now + 30);
        assert!(matches!(elsewhere(Ok(Some(Some(due.clone()))), &held, now, fresh), Ok(Elsewhere::RenewTheirs(_))));
        // Its tokens never last `fresh_for` anyway: as good as a renewal here would be.
        let short = StoredSession { lifetime: Some(45), ..due };
        assert!(matches!(elsewhere(Ok(Some(Some(short))), &held, now, fresh), Ok(Elsewhere::Renewed(_))));
        assert!(matches!(elsewhere(Ok(Some(None)), &held, now, fresh), Err(Error::SignedOutElsewhere)));
        let bob = bound("bob", "4", now + 3600);
        assert!(matches!(elsewhere(Ok(Some(Some(bob))), &held, now, fresh), Err(Error::SignedOutElsewhere)));
        let foreign = StoredSession { binding: Some(elsewhere_binding()), ..bound("alice", "5", now + 3600) };
        assert!(matches!(elsewhere(Ok(Some(Some(foreign))), &held, now, fresh), Err(Error::SignedOutElsewhere)));
        let unread = elsewhere(Err(KeychainError::Locked), &held, now, fresh);
        assert!(matches!(unread, Err(Error::Keychain(KeychainError::Locked))), "an unreadable entry is not unchanged");
    }

    #[test]
    fn an_ended_session_deletes_only_its_own_tokens() {
        let ended = bound("alice", "1", 100);
        assert!(matches!(ended_entry(Ok(Some(ended.clone())), &ended), EndedEntry::Delete));
        assert!(matches!(ended_entry(Ok(Some(bound("alice", "2", 200))), &ended), EndedEntry::Newer));
        assert!(matches!(ended_entry(Ok(None), &ended), EndedEntry::Gone));
        assert!(matches!(ended_entry(Err(KeychainError::Locked), &ended), EndedEntry::Unreadable(_)));
    }

    #[test]
    fn only_a_session_that_cannot_go_on_is_ended_and_a_transient_failure_keeps_it() {
        assert_eq!(after_failure(&Error::SessionEnded), AfterFailure::End { revoke: false });
        assert_eq!(after_failure(&Error::SignInNeeded), AfterFailure::End { revoke: true });
        assert_eq!(after_failure(&Error::SignedOutElsewhere), AfterFailure::Forget);
        for transient in [Error::Network("down".into()), Error::Keychain(KeychainError::Locked), Error::RenewalBusy] {
            assert_eq!(after_failure(&transient), AfterFailure::Keep, "{transient:?}");
        }
    }

    /// A sign-out never deletes blind: an entry it can't read for sure is left, with the session, and said.
    #[test]
    fn a_sign_out_revokes_what_is_this_profiles_and_refuses_what_it_cannot_tell() {
        let ours = bound("alice", "1", 100);
        let SignOutEntry::Grants(grants) = sign_out_entry(Ok(Some(ours)), &config()) else { panic!("not revoked") };
        assert_eq!(grants.len(), 1);
        assert!(matches!(sign_out_entry(Ok(None), &config()), SignOutEntry::Grants(g) if g.is_empty()));
        let corrupt = sign_out_entry(Err(KeychainError::Corrupt("x".into())), &config());
        assert!(matches!(corrupt, SignOutEntry::Grants(g) if g.is_empty()), "an unreadable entry holds no grant");
        let foreign = StoredSession { binding: Some(elsewhere_binding()), ..bound("bob", "2", 100) };
        assert!(matches!(sign_out_entry(Ok(Some(foreign)), &config()), SignOutEntry::OtherProvider));
        assert!(matches!(sign_out_entry(Err(KeychainError::Duplicates), &config()), SignOutEntry::Several));
        for unknown in [KeychainError::Locked, KeychainError::TimedOut, KeychainError::Busy] {
            let kind = unknown.kind();
            assert!(matches!(sign_out_entry(Err(unknown), &config()), SignOutEntry::Refuse(_)), "{kind}");
        }
    }

    /// The words after a sign-out say what happened here and at the provider, and never claim more.
    #[test]
    fn a_sign_out_says_what_happened_here_and_at_the_provider() {
        let kind = |deleted: Result<(), KeychainError>, revoked: Result<bool, Error>, had: bool| {
            signed_out(&deleted, &revoked, had, Some("id.example:8443")).kind
        };
        assert_eq!(kind(Ok(()), Ok(true), true), "signed_out");
        assert_eq!(kind(Ok(()), Ok(false), true), "not_revoked");
        assert_eq!(kind(Ok(()), Ok(false), false), "signed_out");
        assert_eq!(kind(Ok(()), Err(Error::RevocationRefused("it said no".into())), true), "revocation_refused");
        assert_eq!(kind(Ok(()), Err(Error::Network("refused".into())), true), "revocation_failed");
        assert_eq!(kind(Err(KeychainError::Locked), Ok(true), true), "keychain_locked");
        let told = signed_out(&Ok(()), &Ok(true), true, None).message;
        assert!(told.contains("here and at the provider"), "{told}");
        let not_told = signed_out(&Ok(()), &Err(Error::Network("refused".into())), true, Some("id.example:8443"));
        assert!(not_told.message.contains("id.example:8443"), "{}", not_told.message);
        let nothing = signed_out(&Ok(()), &Ok(false), false, None).message;
        assert!(!nothing.contains("provider"), "nothing was there to end at the provider: {nothing}");
    }

    /// A sign-out the provider couldn't be told of says where, and what stays true, in one plain sentence.
    #[test]
    fn a_sign_out_the_provider_did_not_hear_says_where_and_what_stays_true() {
        let down = not_told(&Error::Network("refused".into()), Some("127.0.0.1:8000"));
        assert_eq!(
            down,
            "Signed out here. Gatehouse couldn't reach 127.0.0.1:8000 to end the session there, so it stays valid \
             there until it expires, or until you sign out on the provider's website."
        );
        let garbled = not_told(&Error::BadResponse("not JSON".into()), None);
        assert!(garbled.starts_with("Signed out here. The provider didn't confirm that it ended the session, so"));
        for text in [down, garbled] {
            for word in ["config", "(", "Try again", ".)"] {
                assert!(!text.contains(word), "{word:?} in {text:?}");
            }
        }
    }
}
