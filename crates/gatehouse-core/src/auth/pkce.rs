//! The one-time secrets of a sign-in attempt: the PKCE pair, `state` and `nonce`.

use oauth2::{CsrfToken, PkceCodeChallenge, PkceCodeVerifier};

/// Bytes of randomness in `state` and `nonce`: 256 bits, well past RFC 6749 §10.10's 2^-128 guessing bound.
const RANDOM_BYTES: u32 = 32;

/// The secrets one authorization request is bound to. Each is `Debug`-redacted by its type.
#[derive(Debug)]
pub struct AttemptSecrets {
    /// The PKCE verifier, sent only to the token endpoint (RFC 7636 §4.5).
    pub verifier: PkceCodeVerifier,
    /// The S256 challenge sent in the authorization request (RFC 7636 §4.2; RFC 9700 §2.1.1).
    pub challenge: PkceCodeChallenge,
    /// The one-time `state` (RFC 6749 §10.12).
    pub state: CsrfToken,
    /// The OpenID Connect `nonce`, when `openid` is requested (OIDC Core §3.1.2.1).
    pub nonce: Option<CsrfToken>,
}

impl AttemptSecrets {
    /// Fresh secrets from the OS's CSPRNG (RFC 7636 §7.1).
    pub fn generate(scopes: &[String]) -> AttemptSecrets {
        // RFC 7636 §4.1: 32 random octets, base64url-encoded to a 43-character verifier.
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let wants_nonce = scopes.iter().any(|s| s == "openid");
        AttemptSecrets {
            verifier,
            challenge,
            state: CsrfToken::new_random_len(RANDOM_BYTES),
            nonce: wants_nonce.then(|| CsrfToken::new_random_len(RANDOM_BYTES)),
        }
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use sha2::Digest;

    use super::*;

    fn scopes(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn challenge_is_s256_of_verifier() {
        let s = AttemptSecrets::generate(&scopes(&["openid"]));
        assert_eq!(s.challenge.method().as_str(), "S256");
        let digest = sha2::Sha256::digest(s.verifier.secret().as_bytes());
        let expected = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
        assert_eq!(s.challenge.as_str(), expected);
    }

    #[test]
    fn verifier_has_the_rfc_7636_shape() {
        let s = AttemptSecrets::generate(&[]);
        let v = s.verifier.secret();
        assert_eq!(v.len(), 43);
        assert!(v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b)), "{v}");
    }

    #[test]
    fn state_and_nonce_are_long_and_unique() {
        let a = AttemptSecrets::generate(&scopes(&["openid", "profile"]));
        let b = AttemptSecrets::generate(&scopes(&["openid", "profile"]));
        assert_eq!(a.state.secret().len(), 43);
        assert_ne!(a.state.secret(), b.state.secret());
        assert_ne!(a.verifier.secret(), b.verifier.secret());
        let (na, nb) = (a.nonce.unwrap(), b.nonce.unwrap());
        assert_ne!(na.secret(), nb.secret());
        assert_ne!(na.secret(), a.state.secret());
    }

    #[test]
    fn nonce_only_with_openid() {
        assert!(AttemptSecrets::generate(&scopes(&["profile"])).nonce.is_none());
    }

    #[test]
    fn debug_output_is_redacted() {
        let s = AttemptSecrets::generate(&scopes(&["openid"]));
        let debug = format!("{s:?}");
        assert!(!debug.contains(s.verifier.secret()));
        assert!(!debug.contains(s.state.secret()));
    }
}
