//! Provider presets: what a profile with `preset = "…"` gets without writing it out. The user gives what is
//! theirs (`client_id`, and where the provider needs them `client_secret`, `tenant`, `domain` or `realm`); the
//! preset gives where the provider is, the redirect it lets a desktop client use, default scopes and resource,
//! and its quirks. Everything here is pure, and each preset's expansion is listed in the README.

use std::fmt;

/// The presets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// Google: "Desktop app" OAuth clients.
    Google,
    /// Microsoft Entra ID: "Mobile and desktop applications" platform.
    Microsoft,
    /// GitHub OAuth Apps.
    Github,
    /// GitLab (gitlab.com or self-managed): a non-confidential application.
    Gitlab,
    /// Keycloak: a public OpenID Connect client in a realm.
    Keycloak,
    /// Okta: a native application, with the "default" custom authorization server.
    Okta,
    /// Auth0: a native application.
    Auth0,
}

impl Preset {
    /// Every preset, in the README's order.
    pub const ALL: [Preset; 7] = [
        Preset::Google,
        Preset::Microsoft,
        Preset::Github,
        Preset::Gitlab,
        Preset::Keycloak,
        Preset::Okta,
        Preset::Auth0,
    ];

    /// The name used in the config file.
    pub fn name(self) -> &'static str {
        match self {
            Preset::Google => "google",
            Preset::Microsoft => "microsoft",
            Preset::Github => "github",
            Preset::Gitlab => "gitlab",
            Preset::Keycloak => "keycloak",
            Preset::Okta => "okta",
            Preset::Auth0 => "auth0",
        }
    }

    /// The preset called `name` in a config file.
    pub fn named(name: &str) -> Option<Preset> {
        Preset::ALL.into_iter().find(|p| p.name() == name)
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What the user gave beside the preset.
#[derive(Debug, Default, Clone, Copy)]
pub struct Input<'a> {
    /// Microsoft's tenant (a GUID or domain, or `common`, `organizations`, `consumers`).
    pub tenant: Option<&'a str>,
    /// The host of GitLab, Keycloak, Okta or Auth0.
    pub domain: Option<&'a str>,
    /// Keycloak's realm.
    pub realm: Option<&'a str>,
    /// Whether a client secret was given.
    pub has_secret: bool,
}

/// Where the provider's endpoints come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// Discovery from this issuer.
    Issuer(String),
    /// Fixed endpoints, with the issuer its authorization responses name in `iss` (RFC 9207).
    Endpoints {
        /// `iss` as the provider sends it.
        issuer: String,
        /// The authorization endpoint.
        authorization: String,
        /// The token endpoint.
        token: String,
    },
}

/// What a preset fills in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expansion {
    /// The provider's name, for the window.
    pub name: &'static str,
    /// Where the endpoints come from.
    pub location: Location,
    /// The redirect a desktop client may use there.
    pub redirect_uri: &'static str,
    /// Whether the provider accepts only a loopback redirect, so a profile can't choose a scheme.
    pub loopback_only: bool,
    /// Scopes, unless the profile lists its own.
    pub scopes: &'static [&'static str],
    /// The resource to show, unless the profile names one.
    pub resource_url: String,
    /// Microsoft: the metadata's issuer names the tenant in a template (`{tenantid}`) or by its GUID, not as the
    /// profile wrote it; the ID token's `iss` is checked against it with the token's own `tid`.
    pub tenant_issuer: bool,
    /// Other spellings of the issuer its ID tokens are documented to carry in `iss` (Google: both
    /// `https://accounts.google.com` and `accounts.google.com`). Only these; nothing else is relaxed.
    pub issuer_aliases: &'static [&'static str],
    /// Error codes with which its token endpoint says a refresh token is dead, beside RFC 6749's
    /// `invalid_grant` (GitHub: `bad_refresh_token`, answered with HTTP 200).
    pub session_ended_errors: &'static [&'static str],
    /// Whether a request for `offline_access` must say `prompt=consent` to get a refresh token (OIDC Core §11).
    /// Providers that grant it by their own policy instead (Microsoft, Okta, Auth0) would otherwise ask the
    /// person for consent at every sign-in.
    pub offline_access_needs_consent: bool,
}

/// The loopback redirect presets use (RFC 8252 §7.3; the port is chosen for each sign-in).
pub const LOOPBACK: &str = "http://127.0.0.1/callback";
/// The private-use scheme redirect presets use (RFC 8252 §7.1).
pub const SCHEME: &str = "com.example.gatehouse:/callback";

/// Expands `preset` with the user's `input`.
///
/// # Errors
/// The field at fault and what is wrong with it: a missing `domain`, `realm` or `client_secret`, or one that is
/// not a plain host name or identifier.
pub fn expand(preset: Preset, input: Input<'_>) -> Result<Expansion, (&'static str, String)> {
    let need = |field: &'static str, value: Option<&str>, what: &str| -> Result<String, (&'static str, String)> {
        let value = value.ok_or_else(|| (field, format!("the {preset} preset needs it: {what}")))?;
        let plain = !value.is_empty()
            && value.len() <= 253
            && value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
        if !plain {
            return Err((field, format!("{value:?} is not a plain {what}")));
        }
        Ok(value.to_owned())
    };
    let secret = |why: &str| -> Result<(), (&'static str, String)> {
        if input.has_secret {
            Ok(())
        } else {
            Err(("client_secret", format!("the {preset} preset needs it: {why}. It is not confidential in a desktop app (RFC 8252 §8.5), but the provider insists")))
        }
    };
    Ok(match preset {
        Preset::Google => {
            secret("Google issues one to \"Desktop app\" clients and requires it")?;
            Expansion {
                name: "Google",
                location: Location::Issuer("https://accounts.google.com".into()),
                redirect_uri: LOOPBACK,
                loopback_only: true,
                scopes: &["openid", "email", "profile"],
                resource_url: "https://openidconnect.googleapis.com/v1/userinfo".into(),
                tenant_issuer: false,
                issuer_aliases: &["accounts.google.com"],
                session_ended_errors: &[],
                offline_access_needs_consent: true,
            }
        }
        Preset::Microsoft => {
            let tenant = need("tenant", Some(input.tenant.unwrap_or("common")), "tenant ID or domain")?;
            Expansion {
                name: "Microsoft",
                location: Location::Issuer(format!("https://login.microsoftonline.com/{tenant}/v2.0")),
                redirect_uri: LOOPBACK,
                loopback_only: false,
                scopes: &["openid", "profile", "email", "offline_access"],
                resource_url: "https://graph.microsoft.com/oidc/userinfo".into(),
                tenant_issuer: true,
                issuer_aliases: &[],
                session_ended_errors: &[],
                offline_access_needs_consent: false,
            }
        }
        Preset::Github => {
            secret("GitHub's web flow requires it")?;
            Expansion {
                name: "GitHub",
                location: Location::Endpoints {
                    issuer: "https://github.com/login/oauth".into(),
                    authorization: "https://github.com/login/oauth/authorize".into(),
                    token: "https://github.com/login/oauth/access_token".into(),
                },
                redirect_uri: LOOPBACK,
                loopback_only: true,
                scopes: &["read:user"],
                resource_url: "https://api.github.com/user".into(),
                tenant_issuer: false,
                issuer_aliases: &[],
                session_ended_errors: &["bad_refresh_token"],
                offline_access_needs_consent: true,
            }
        }
        Preset::Gitlab => {
            let domain = need("domain", Some(input.domain.unwrap_or("gitlab.com")), "host name")?;
            Expansion {
                name: "GitLab",
                location: Location::Issuer(format!("https://{domain}")),
                redirect_uri: SCHEME,
                loopback_only: false,
                scopes: &["openid", "profile", "email"],
                resource_url: format!("https://{domain}/oauth/userinfo"),
                tenant_issuer: false,
                issuer_aliases: &[],
                session_ended_errors: &[],
                offline_access_needs_consent: true,
            }
        }
        Preset::Keycloak => {
            let domain = need("domain", input.domain, "host name, such as id.example.com")?;
            let realm = need("realm", input.realm, "realm name")?;
            let issuer = format!("https://{domain}/realms/{realm}");
            Expansion {
                name: "Keycloak",
                resource_url: format!("{issuer}/protocol/openid-connect/userinfo"),
                location: Location::Issuer(issuer),
                redirect_uri: SCHEME,
                loopback_only: false,
                scopes: &["openid", "profile", "email"],
                tenant_issuer: false,
                issuer_aliases: &[],
                session_ended_errors: &[],
                offline_access_needs_consent: true,
            }
        }
        Preset::Okta => {
            let domain = need("domain", input.domain, "host name, such as example.okta.com")?;
            let issuer = format!("https://{domain}/oauth2/default");
            Expansion {
                name: "Okta",
                resource_url: format!("{issuer}/v1/userinfo"),
                location: Location::Issuer(issuer),
                redirect_uri: SCHEME,
                loopback_only: false,
                scopes: &["openid", "profile", "email", "offline_access"],
                tenant_issuer: false,
                issuer_aliases: &[],
                session_ended_errors: &[],
                offline_access_needs_consent: false,
            }
        }
        Preset::Auth0 => {
            let domain = need("domain", input.domain, "host name, such as example.eu.auth0.com")?;
            Expansion {
                name: "Auth0",
                // Auth0's issuer identifier ends with a slash.
                location: Location::Issuer(format!("https://{domain}/")),
                redirect_uri: SCHEME,
                loopback_only: false,
                scopes: &["openid", "profile", "email", "offline_access"],
                resource_url: format!("https://{domain}/userinfo"),
                tenant_issuer: false,
                issuer_aliases: &[],
                session_ended_errors: &[],
                offline_access_needs_consent: false,
            }
        }
    })
}

/// Microsoft: whether `metadata_issuer` is an Entra v2.0 issuer, either the multi-tenant template
/// (`https://login.microsoftonline.com/{tenantid}/v2.0`) or one tenant's. Returns the template (with
/// `{tenantid}`) or the exact issuer.
pub fn tenant_issuer(metadata_issuer: &str) -> Option<&str> {
    let tenant = metadata_issuer.strip_prefix("https://login.microsoftonline.com/")?.strip_suffix("/v2.0")?;
    let valid =
        tenant == "{tenantid}" || (!tenant.is_empty() && tenant.chars().all(|c| c.is_ascii_hexdigit() || c == '-'));
    valid.then_some(metadata_issuer)
}

/// Microsoft: the issuer an ID token from tenant `tid` must name, given the metadata's `issuer`
/// (Microsoft's guidance for multi-tenant apps: substitute the token's `tid` into the template).
pub fn issuer_for_tenant(issuer: &str, tid: &str) -> Option<String> {
    let plain = !tid.is_empty() && tid.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
    plain.then(|| issuer.replace("{tenantid}", tid))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand_ok(preset: Preset, input: Input<'_>) -> Expansion {
        expand(preset, input).unwrap()
    }

    fn with_secret() -> Input<'static> {
        Input { has_secret: true, ..Input::default() }
    }

    #[test]
    fn names_round_trip() {
        for preset in Preset::ALL {
            assert_eq!(Preset::named(preset.name()), Some(preset));
        }
        assert_eq!(Preset::named("facebook"), None);
    }

    #[test]
    fn google_is_discovered_loopback_only_and_needs_its_secret() {
        let google = expand_ok(Preset::Google, with_secret());
        assert_eq!(google.location, Location::Issuer("https://accounts.google.com".into()));
        assert_eq!((google.redirect_uri, google.loopback_only), (LOOPBACK, true));
        assert_eq!(google.scopes, ["openid", "email", "profile"]);
        assert_eq!(expand(Preset::Google, Input::default()).unwrap_err().0, "client_secret");
    }

    #[test]
    fn microsoft_defaults_to_the_common_tenant_and_checks_issuers_by_tid() {
        let common = expand_ok(Preset::Microsoft, Input::default());
        assert_eq!(common.location, Location::Issuer("https://login.microsoftonline.com/common/v2.0".into()));
        assert!(common.tenant_issuer);
        assert!(common.scopes.contains(&"offline_access"));
        let one = expand_ok(Preset::Microsoft, Input { tenant: Some("contoso.onmicrosoft.com"), ..Input::default() });
        assert_eq!(
            one.location,
            Location::Issuer("https://login.microsoftonline.com/contoso.onmicrosoft.com/v2.0".into())
        );
        assert_eq!(
            expand(Preset::Microsoft, Input { tenant: Some("a/b"), ..Input::default() }).unwrap_err().0,
            "tenant"
        );

        let template = "https://login.microsoftonline.com/{tenantid}/v2.0";
        assert_eq!(tenant_issuer(template), Some(template));
        let guid = "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0";
        assert_eq!(tenant_issuer(guid), Some(guid));
        assert_eq!(tenant_issuer("https://evil.example/{tenantid}/v2.0"), None);
        assert_eq!(tenant_issuer("https://login.microsoftonline.com/../v2.0"), None);
        assert_eq!(
            issuer_for_tenant(template, "72f988bf-86f1-41af-91ab-2d7cd011db47").as_deref(),
            Some("https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0")
        );
        assert_eq!(issuer_for_tenant(template, "x/../y"), None);
        assert_eq!(issuer_for_tenant(template, ""), None);
    }

    #[test]
    fn github_has_fixed_endpoints_an_iss_and_needs_its_secret() {
        let github = expand_ok(Preset::Github, with_secret());
        assert_eq!(
            github.location,
            Location::Endpoints {
                issuer: "https://github.com/login/oauth".into(),
                authorization: "https://github.com/login/oauth/authorize".into(),
                token: "https://github.com/login/oauth/access_token".into(),
            }
        );
        assert_eq!(github.resource_url, "https://api.github.com/user");
        assert!(github.loopback_only);
        assert_eq!(expand(Preset::Github, Input::default()).unwrap_err().0, "client_secret");
    }

    #[test]
    fn discovery_presets_build_their_issuer_from_the_domain_realm_or_tenant() {
        let gitlab = expand_ok(Preset::Gitlab, Input::default());
        assert_eq!(gitlab.location, Location::Issuer("https://gitlab.com".into()));
        assert_eq!(gitlab.resource_url, "https://gitlab.com/oauth/userinfo");
        let own = expand_ok(Preset::Gitlab, Input { domain: Some("git.example.org"), ..Input::default() });
        assert_eq!(own.location, Location::Issuer("https://git.example.org".into()));

        let keycloak = expand_ok(
            Preset::Keycloak,
            Input { domain: Some("id.example.com"), realm: Some("staff"), ..Input::default() },
        );
        assert_eq!(keycloak.location, Location::Issuer("https://id.example.com/realms/staff".into()));
        assert_eq!(keycloak.resource_url, "https://id.example.com/realms/staff/protocol/openid-connect/userinfo");
        assert_eq!(
            expand(Preset::Keycloak, Input { domain: Some("id.example.com"), ..Input::default() }).unwrap_err().0,
            "realm"
        );

        let okta = expand_ok(Preset::Okta, Input { domain: Some("example.okta.com"), ..Input::default() });
        assert_eq!(okta.location, Location::Issuer("https://example.okta.com/oauth2/default".into()));
        let auth0 = expand_ok(Preset::Auth0, Input { domain: Some("example.eu.auth0.com"), ..Input::default() });
        assert_eq!(auth0.location, Location::Issuer("https://example.eu.auth0.com/".into()));
        for preset in [Preset::Keycloak, Preset::Okta, Preset::Auth0] {
            assert_eq!(expand(preset, Input::default()).unwrap_err().0, "domain", "{preset}");
            let bad = Input { domain: Some("evil.example/path?"), realm: Some("r"), ..Input::default() };
            assert_eq!(expand(preset, bad).unwrap_err().0, "domain", "{preset}");
        }
        for preset in [Preset::Gitlab, Preset::Keycloak, Preset::Okta, Preset::Auth0] {
            let input = Input { domain: Some("a.example"), realm: Some("r"), ..Input::default() };
            assert_eq!(expand_ok(preset, input).redirect_uri, SCHEME, "{preset}");
        }
    }
}
