//! Tests of [`super`].

use super::*;

const GOOD: &str = r#"
    profile = "work"
    issuer = "https://id.example.com"
    client_id = "abc"
    scopes = ["openid", "offline_access"]
    redirect_uri = "com.example.gatehouse:/callback"
    resource_url = "https://api.example.com/me"
"#;

fn field_of(text: &str) -> String {
    Config::parse(text, "test").unwrap_err().field
}

#[test]
fn several_profiles_sit_side_by_side_in_profile_tables() {
    let text = r#"
        [[profile]]
        profile = "work"
        issuer = "https://id.example.com"
        client_id = "abc"
        redirect_uri = "com.example.gatehouse:/callback"
        resource_url = "https://api.example.com/me"

        [[profile]]
        profile = "home"
        preset = "github"
        client_id = "Iv1.home"
        client_secret = "not-secret-in-a-desktop-app"
    "#;
    let profiles = Config::parse_all(text, "test").unwrap();
    let names: Vec<&str> = profiles.iter().map(|c| c.profile.as_str()).collect();
    assert_eq!(names, ["work", "home"]);
    assert_eq!(profiles[1].preset, Some(Preset::named("github").unwrap()));
    // The one-profile file is still what it was.
    let single = Config::parse_all(GOOD, "test").unwrap();
    assert_eq!((single.len(), single[0].profile.as_str()), (1, "work"));
}

#[test]
fn several_profiles_each_need_a_name_of_their_own() {
    let table = |name: &str| {
        format!(
            "[[profile]]\n{name}issuer = \"https://id.example.com\"\nclient_id = \"abc\"\n\
             redirect_uri = \"com.example.gatehouse:/callback\"\nresource_url = \"https://api.example.com/me\"\n"
        )
    };
    let unnamed = format!("{}{}", table("profile = \"a\"\n"), table(""));
    let e = Config::parse_all(&unnamed, "test").unwrap_err();
    assert_eq!(e.field, "[[profile]] number 2, profile", "{e}");
    let twice = format!("{}{}", table("profile = \"a\"\n"), table("profile = \"a\"\n"));
    let e = Config::parse_all(&twice, "test").unwrap_err();
    assert_eq!(e.field, "[[profile]] number 2, profile", "{e}");
    assert!(e.problem.contains("earlier profile"), "{e}");
    let broken = format!("{}{}", table("profile = \"a\"\n"), table("profile = \"b\"\nscopes = [\"bad scope\"]\n"));
    let e = Config::parse_all(&broken, "test").unwrap_err();
    assert_eq!(e.field, "[[profile]] number 2, scopes", "{e}");
    // Top-level keys beside the tables are a mistake, not silently ignored.
    let e = Config::parse_all(&format!("client_id = \"x\"\n{}", table("profile = \"a\"\n")), "test").unwrap_err();
    assert!(e.problem.contains("client_id"), "{e}");
}

#[test]
fn demo_profile_is_valid() {
    let demo = Config::parse(include_str!("../../../../tests/idp/demo.toml"), "demo").unwrap();
    assert_eq!(demo.profile, "demo");
    assert_eq!(demo.redirect_scheme(), Some("com.example.gatehouse"));
    assert!(matches!(demo.endpoints, Endpoints::Discover { .. }));
}

#[test]
fn good_profile_parses() {
    let config = Config::parse(GOOD, "test").unwrap();
    assert_eq!(config.profile, "work");
    assert_eq!(config.display_name, "id.example.com");
    assert_eq!(config.scopes, ["openid", "offline_access"]);
    assert_eq!(config.sign_in_timeout, DEFAULT_SIGN_IN_TIMEOUT);
    assert!(config.client_secret.is_none());
}

#[test]
fn explicit_endpoints_parse() {
    let text = r#"
        authorization_endpoint = "https://id.example.com/authorize"
        token_endpoint = "https://id.example.com/token"
        revocation_endpoint = "https://id.example.com/revoke"
        client_id = "abc"
        client_secret = "not-so-secret"
        redirect_uri = "com.example.gatehouse:/callback"
        resource_url = "https://api.example.com/me"
    "#;
    let config = Config::parse(text, "test").unwrap();
    let Endpoints::Explicit(e) = config.endpoints else { panic!("expected explicit endpoints") };
    assert_eq!(e.revocation.unwrap().path(), "/revoke");
    assert!(e.issuer.is_none());
    assert_eq!(config.client_secret.unwrap().secret(), "not-so-secret");
}

#[test]
fn bad_inputs_name_the_field() {
    assert_eq!(field_of(&GOOD.replace("https://id.example.com", "http://id.example.com")), "issuer");
    assert_eq!(field_of(&GOOD.replace("https://id.example.com", "ftp://id.example.com")), "issuer");
    assert_eq!(field_of(&GOOD.replace("https://id.example.com", "not a url")), "issuer");
    assert_eq!(field_of(&GOOD.replace("https://id.example.com", "https://id.example.com/?x=1")), "issuer");
    assert_eq!(field_of(&GOOD.replace("com.example.gatehouse:/callback", "gatehouse:/callback")), "redirect_uri");
    assert_eq!(
        field_of(&GOOD.replace("com.example.gatehouse:/callback", "com.example.gatehouse:/cb?x=1")),
        "redirect_uri"
    );
    assert_eq!(field_of(&GOOD.replace("com.example.gatehouse:/callback", "")), "redirect_uri");
    assert_eq!(field_of(&GOOD.replace("\"offline_access\"", "\"bad scope\"")), "scopes");
    assert_eq!(field_of(&GOOD.replace("\"abc\"", "\"  \"")), "client_id");
    assert_eq!(field_of(&GOOD.replace("\"work\"", "\"../etc\"")), "profile");
    assert_eq!(field_of(&GOOD.replace("https://api.example.com/me", "http://api.example.com/me")), "resource_url");
    assert_eq!(field_of(&format!("{GOOD}\nsign_in_timeout_secs = 5")), "sign_in_timeout_secs");
    assert_eq!(field_of(&format!("{GOOD}\nhttp_timeout_secs = 0")), "http_timeout_secs");
    assert_eq!(field_of(&GOOD.replace("issuer = \"https://id.example.com\"", "")), "issuer");
    assert_eq!(field_of(&GOOD.replace("issuer", "authorization_endpoint")), "token_endpoint");
}

#[test]
fn syntax_and_unknown_fields_are_reported_with_a_line() {
    let unknown = Config::parse(&format!("{GOOD}\nclient_secert = \"x\"\n"), "test").unwrap_err();
    assert_eq!(unknown.field, "line 9 (client_secert)", "{unknown:?}");
    assert!(unknown.problem.contains("client_secert"), "{unknown:?}");
    let broken = Config::parse("issuer = ", "test").unwrap_err();
    assert_eq!(broken.field, "line 1 (issuer)");
    let missing = Config::parse("issuer = \"https://a.example\"", "test").unwrap_err();
    assert!(missing.problem.contains("client_id"), "{missing:?}");
    let wrong_type =
        Config::parse(&GOOD.replace("[\"openid\", \"offline_access\"]", "\"openid\""), "test").unwrap_err();
    assert_eq!(wrong_type.field, "line 5 (scopes)");
    assert!(wrong_type.problem.contains("expected a sequence"), "{wrong_type:?}");
}

#[test]
fn presets_fill_in_the_provider() {
    let parse = |text: &str| Config::parse(text, "test").unwrap();
    let google = parse("preset = \"google\"\nclient_id = \"1-x.apps.googleusercontent.com\"\nclient_secret = \"s\"\n");
    assert_eq!(google.preset, Some(Preset::Google));
    assert_eq!(google.display_name, "Google");
    assert!(
        matches!(&google.endpoints, Endpoints::Discover { issuer } if issuer.url.as_str() == "https://accounts.google.com/")
    );
    assert_eq!(google.redirect_uri.as_str(), "http://127.0.0.1/callback");
    assert_eq!(google.loopback(), Some("127.0.0.1".parse().unwrap()));
    assert_eq!(google.resource_url.as_str(), "https://openidconnect.googleapis.com/v1/userinfo");
    assert_eq!(google.scopes, ["openid", "email", "profile"]);
    assert!(!google.tenant_issuer);

    let github = parse("preset = \"github\"\nclient_id = \"Iv1.x\"\nclient_secret = \"s\"\n");
    let Endpoints::Explicit(e) = &github.endpoints else { panic!("GitHub has no discovery") };
    assert_eq!(e.issuer.as_ref().map(Url::as_str), Some("https://github.com/login/oauth"));
    assert_eq!(e.token.as_str(), "https://github.com/login/oauth/access_token");
    assert!(e.revocation.is_none(), "GitHub has no RFC 7009 endpoint");

    let microsoft = parse("preset = \"microsoft\"\nclient_id = \"00000000-0000-0000-0000-000000000000\"\n");
    assert!(microsoft.tenant_issuer);
    assert_eq!(microsoft.redirect_uri.as_str(), "http://127.0.0.1/callback");

    // The profile may choose its own scopes and resource.
    let own = parse(
        "preset = \"gitlab\"\nclient_id = \"x\"\nscopes = [\"openid\", \"read_user\"]\nresource_url = \"https://gitlab.com/api/v4/user\"\n",
    );
    assert_eq!(own.scopes, ["openid", "read_user"]);
    assert_eq!(own.resource_url.as_str(), "https://gitlab.com/api/v4/user");
    assert_eq!(own.redirect_uri.as_str(), "com.example.gatehouse:/callback");
}

#[test]
fn presets_refuse_what_they_cannot_take() {
    let field = |text: &str| Config::parse(text, "test").unwrap_err().field;
    assert_eq!(field("preset = \"facebook\"\nclient_id = \"x\"\n"), "preset");
    assert_eq!(field("preset = \"google\"\nclient_id = \"x\"\n"), "client_secret");
    let scheme = "preset = \"google\"\nclient_id = \"x\"\nclient_secret = \"s\"\nredirect_uri = \"com.example.gatehouse:/callback\"\n";
    assert_eq!(field(scheme), "redirect_uri");
    assert_eq!(field("preset = \"okta\"\nclient_id = \"x\"\n"), "domain");
    assert_eq!(
        field("preset = \"okta\"\ndomain = \"a.okta.com\"\nissuer = \"https://a.okta.com\"\nclient_id = \"x\"\n"),
        "issuer"
    );
    assert_eq!(field(&format!("{GOOD}\ndomain = \"a.example\"\n")), "domain");
    assert_eq!(field(&GOOD.replace("redirect_uri = \"com.example.gatehouse:/callback\"", "")), "redirect_uri");
}

#[test]
fn loopback_redirects() {
    let with = |redirect: &str| Config::parse(&GOOD.replace("com.example.gatehouse:/callback", redirect), "test");
    let v4 = with("http://127.0.0.1/callback").unwrap();
    assert_eq!(v4.loopback(), Some("127.0.0.1".parse().unwrap()));
    assert_eq!(v4.redirect_scheme(), None);
    assert_eq!(with("http://[::1]/cb").unwrap().loopback(), Some("::1".parse().unwrap()));
    for bad in [
        "http://localhost/callback",
        "http://127.0.0.1:0/callback",
        "http://127.0.0.2/callback",
        "http://0.0.0.0/callback",
        "http://example.com/callback",
        "http://127.0.0.1/callback?x=1",
        "https://127.0.0.1/callback",
    ] {
        let error = with(bad).unwrap_err();
        assert_eq!(error.field, "redirect_uri", "{bad}");
        assert!(error.problem.contains("RFC"), "{bad}: {}", error.problem);
    }
    let scheme = Config::parse(GOOD, "test").unwrap();
    assert_eq!((scheme.loopback(), scheme.redirect_scheme()), (None, Some("com.example.gatehouse")));
}

/// Some providers match a loopback redirect's port exactly, and an SSH tunnel needs a known one: a port
/// written in the profile is kept (the port-less form stays the default).
#[test]
fn a_loopback_redirect_may_name_a_fixed_port() {
    let with = |redirect: &str| Config::parse(&GOOD.replace("com.example.gatehouse:/callback", redirect), "test");
    let fixed = with("http://127.0.0.1:8765/callback").unwrap();
    assert_eq!(fixed.loopback(), Some("127.0.0.1".parse().unwrap()));
    assert_eq!(fixed.redirect_uri.port(), Some(8765));
    assert_eq!(with("http://[::1]:8765/callback").unwrap().redirect_uri.port(), Some(8765));
    assert_eq!(with("http://127.0.0.1/callback").unwrap().redirect_uri.port(), None);
}

/// What is written is what the provider receives: a redirect URI that `Url` would send in another form is
/// refused, with the form to write (and register) instead.
#[test]
fn a_redirect_uri_is_sent_exactly_as_written_or_refused_with_the_fix() {
    let with = |redirect: &str| Config::parse(&GOOD.replace("com.example.gatehouse:/callback", redirect), "test");
    for (written, sent) in [
        ("com.Example.Gatehouse:/callback", "com.example.gatehouse:/callback"),
        ("COM.EXAMPLE.GATEHOUSE:/callback", "com.example.gatehouse:/callback"),
        ("http://127.0.0.1:80/callback", "http://127.0.0.1/callback"),
        ("http://127.0.0.1", "http://127.0.0.1/"),
        ("http://127.0.0.1/a/../callback", "http://127.0.0.1/callback"),
        ("com.example.gatehouse:/call back", "com.example.gatehouse:/call%20back"),
    ] {
        let error = with(written).unwrap_err();
        assert_eq!(error.field, "redirect_uri", "{written}");
        assert!(error.problem.contains(&format!("redirect_uri = {sent:?}")), "{written}: {}", error.problem);
    }
    for exact in ["com.example.gatehouse:/callback", "com.example.gatehouse://callback/x", "http://127.0.0.1/cb"] {
        assert_eq!(with(exact).unwrap().redirect_uri.as_str(), exact);
    }
}

/// A secret kept in the keychain is a secret for the rules of the file, and never one written in it too.
#[test]
fn a_secret_in_the_keychain_stands_for_one_in_the_file() {
    let text =
        format!("{GOOD}\nclient_secret_in_keychain = true\ntoken_endpoint_auth_method = \"client_secret_basic\"\n");
    let config = Config::parse(&text, "test").unwrap();
    assert!(config.client_secret_in_keychain && config.client_secret.is_none());
    let both = format!("{GOOD}\nclient_secret = \"s\"\nclient_secret_in_keychain = true\n");
    assert_eq!(field_of(&both), "client_secret_in_keychain");
    let google = "preset = \"google\"\nclient_id = \"x\"\nclient_secret_in_keychain = true\n";
    assert!(Config::parse(google, "test").is_ok(), "a preset that needs a secret takes one in the keychain");
}

#[test]
fn client_authentication_is_one_the_provider_lists() {
    let listed = |methods: &[&str]| methods.iter().map(|m| m.to_string()).collect::<Vec<_>>();
    let choose = |configured, secret, supported: Option<Vec<String>>| {
        ClientAuth::choose(configured, secret, supported.as_deref())
    };
    // RFC 8414 §2: Basic when the metadata lists nothing; Post when it lists only Post.
    assert_eq!(choose(None, true, None), ClientAuth::Basic);
    assert_eq!(choose(None, true, Some(listed(&["client_secret_post"]))), ClientAuth::Post);
    assert_eq!(choose(None, true, Some(listed(&["client_secret_post", "client_secret_basic"]))), ClientAuth::Basic);
    assert_eq!(choose(None, false, Some(listed(&["client_secret_post"]))), ClientAuth::None);
    // A provider that lists only methods Gatehouse lacks is said to want one of them: nothing is sent.
    let unsupported = |configured, supported: &[&str]| ClientAuth::unsupported(configured, Some(&listed(supported)));
    assert_eq!(unsupported(None, &["private_key_jwt"]).as_deref(), Some("private_key_jwt"));
    assert_eq!(
        unsupported(None, &["private_key_jwt", "tls_client_auth"]).as_deref(),
        Some("private_key_jwt, tls_client_auth")
    );
    assert_eq!(unsupported(None, &["private_key_jwt", "client_secret_post"]), None);
    assert_eq!(unsupported(None, &["none", "client_secret_jwt"]), None);
    assert_eq!(unsupported(Some(ClientAuth::Basic), &["private_key_jwt"]), None, "the profile decides");
    assert_eq!(ClientAuth::unsupported(None, None), None, "nothing listed: the RFC 8414 default");
    assert_eq!(ClientAuth::unsupported(None, Some(&[])), None);
    // The profile decides when it says.
    assert_eq!(choose(Some(ClientAuth::Post), true, None), ClientAuth::Post);
    let text = format!("{GOOD}\nclient_secret = \"s\"\ntoken_endpoint_auth_method = \"client_secret_post\"\n");
    assert_eq!(Config::parse(&text, "test").unwrap().token_endpoint_auth_method, Some(ClientAuth::Post));
    for (extra, field) in [
        ("token_endpoint_auth_method = \"client_secret_jwt\"", "token_endpoint_auth_method"),
        ("token_endpoint_auth_method = \"client_secret_basic\"", "token_endpoint_auth_method"),
    ] {
        assert_eq!(field_of(&format!("{GOOD}\n{extra}\n")), field, "{extra}");
    }
}

/// OIDC Core §11: offline_access goes with prompt=consent unless the profile says otherwise.
#[test]
fn offline_access_asks_for_consent_unless_the_profile_says_otherwise() {
    assert_eq!(Config::parse(GOOD, "test").unwrap().prompt.as_deref(), Some("consent"));
    let without = GOOD.replace(", \"offline_access\"", "");
    assert_eq!(Config::parse(&without, "test").unwrap().prompt, None);
    assert_eq!(Config::parse(&format!("{GOOD}\nprompt = \"\"\n"), "test").unwrap().prompt, None);
    assert_eq!(
        Config::parse(&format!("{GOOD}\nprompt = \"login  consent\"\n"), "test").unwrap().prompt.as_deref(),
        Some("login consent")
    );
    assert_eq!(field_of(&format!("{GOOD}\nprompt = \"always\"\n")), "prompt");
}

/// GitHub says a refresh token is dead with `bad_refresh_token`; its preset records that, and any profile can
/// list its provider's own codes.
#[test]
fn a_preset_or_profile_names_its_providers_dead_refresh_token_errors() {
    let github = "preset = \"github\"\nclient_id = \"x\"\nclient_secret = \"y\"\n";
    assert_eq!(Config::parse(github, "test").unwrap().session_ended_errors, ["bad_refresh_token"]);
    let own = format!("{GOOD}\nsession_ended_errors = [\"token_revoked\"]\n");
    assert_eq!(Config::parse(&own, "test").unwrap().session_ended_errors, ["token_revoked"]);
    assert!(Config::parse(GOOD, "test").unwrap().session_ended_errors.is_empty());
    let google = "preset = \"google\"\nclient_id = \"x\"\nclient_secret = \"y\"\n";
    assert_eq!(Config::parse(google, "test").unwrap().issuer_aliases, ["accounts.google.com"]);
}

/// RFC 8252 §8.3: plain http only for loopback IP literals, never for names that a resolver could send
/// elsewhere; and no user information in any URL.
#[test]
fn only_loopback_ip_literals_may_use_plain_http_and_no_url_carries_a_user() {
    for (url, allowed) in [
        ("http://127.0.0.1:4470", true),
        ("http://[::1]:4470", true),
        ("http://127.5.6.7", true),
        ("http://localhost:4470", false),
        ("http://LOCALHOST.", false),
        ("http://id.localhost", false),
        ("https://localhost", true),
        ("https://user@id.example.com", false),
        ("https://id.example.com:pw@evil.example", false),
        ("http://user:pw@127.0.0.1", false),
    ] {
        let text = GOOD.replace("https://id.example.com", url);
        assert_eq!(Config::parse(&text, "test").is_ok(), allowed, "{url}");
        if !allowed {
            assert_eq!(field_of(&text), "issuer", "{url}");
        }
    }
    let resource = GOOD.replace("https://api.example.com/me", "http://localhost:8080/me");
    assert!(field_of(&resource).contains("resource_url"));
}

#[test]
fn loopback_http_is_allowed() {
    let text = GOOD
        .replace("https://id.example.com", "http://127.0.0.1:4470")
        .replace("https://api.example.com", "http://[::1]:9");
    assert!(Config::parse(&text, "test").is_ok());
}

#[test]
fn load_picks_the_right_source() {
    let dir = std::env::temp_dir().join(format!("gatehouse-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("config.toml");
    std::fs::write(&file, GOOD).unwrap();
    let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();

    assert_eq!(Config::load(&args(&["gh"]), None, Some(dir.clone())).unwrap()[0].profile, "work");
    // No file is nothing set up yet (the window's setup view), never a built-in profile.
    assert!(Config::load(&args(&["gh"]), None, Some(dir.join("none"))).unwrap().is_empty());
    let flag = format!("--config={}", file.display());
    assert_eq!(Config::load(&args(&["gh", &flag]), None, None).unwrap()[0].profile, "work");
    let missing = Config::load(&args(&["gh", "--config", "/nonexistent/x.toml"]), Some(file.clone()), None);
    assert!(missing.unwrap().is_empty());
    assert_eq!(
        Config::file_path(&args(&["gh"]), Some(PathBuf::new()), Some(dir.clone())),
        Some(dir.join("config.toml")),
        "an empty GATEHOUSE_CONFIG is no choice"
    );
    assert_eq!(Config::load(&args(&["gh"]), Some(file.clone()), None).unwrap()[0].profile, "work");
    std::fs::write(&file, "# every provider was removed\n").unwrap();
    assert!(Config::load(&args(&["gh"]), Some(file), None).unwrap().is_empty());
    std::fs::remove_dir_all(dir).unwrap();
}

/// The endpoint fields a config file (and a metadata document) may give, for the property tests.
pub(crate) const ENDPOINT_FIELDS: [&str; 7] = [
    "authorization_endpoint",
    "token_endpoint",
    "revocation_endpoint",
    "userinfo_endpoint",
    "jwks_uri",
    "device_authorization_endpoint",
    "pushed_authorization_request_endpoint",
];

/// Generated profiles (`proptest`; 10,000 cases each in CI, more with `tests/bin/fuzz`).
mod properties {
    use proptest::prelude::*;

    use super::*;

    /// URLs of every kind a person might type: https, http to loopback and elsewhere, `localhost`, private
    /// schemes with and without a period, ports, queries and fragments, and junk.
    fn url_text() -> impl Strategy<Value = String> {
        let scheme = proptest::sample::select(vec!["https", "http", "com.example.app", "myapp", "ftp", ""]);
        let host = proptest::sample::select(vec!["id.example.com", "127.0.0.1", "[::1]", "localhost", "10.0.0.1", ""]);
        let port = proptest::option::of(1u16..);
        let path = "(/[a-z{}]{0,6}){0,2}";
        let tail = proptest::sample::select(vec!["", "?x=1", "#f", "?"]);
        prop_oneof![
            4 => (scheme, host, port, path, tail).prop_map(|(scheme, host, port, path, tail)| {
                let port = port.map(|p| format!(":{p}")).unwrap_or_default();
                if scheme.contains('.') || scheme == "myapp" {
                    format!("{scheme}:{path}{tail}")
                } else {
                    format!("{scheme}://{host}{port}{path}{tail}")
                }
            }),
            1 => any::<String>(),
        ]
    }

    fn toml_string(text: &str) -> String {
        toml::Value::String(text.to_owned()).to_string()
    }

    /// A profile: any subset of the fields, each with a plausible or an odd value.
    fn profile() -> impl Strategy<Value = String> {
        let mut urls = vec!["issuer", "redirect_uri", "resource_url"];
        urls.extend(ENDPOINT_FIELDS);
        let words = ["profile", "preset", "tenant", "domain", "realm", "name", "client_id", "client_secret"];
        let word_fields = proptest::option::weighted(
            0.3,
            (
                proptest::sample::select(words.to_vec()),
                prop_oneof![
                    Just("google".to_owned()),
                    Just("microsoft".to_owned()),
                    Just("github".to_owned()),
                    Just("keycloak".to_owned()),
                    "[a-z0-9.-]{0,12}",
                    any::<String>()
                ],
            ),
        )
        .prop_map(|field| field.into_iter().collect::<Vec<_>>());
        let numbers = proptest::option::weighted(
            0.3,
            (
                proptest::sample::select(vec!["sign_in_timeout_secs", "http_timeout_secs"]),
                prop_oneof![3 => 10i64..300, 1 => any::<i64>()],
            ),
        );
        // Mostly a working skeleton, so that many profiles pass and the rules below are tested on them; each
        // part is sometimes replaced by anything.
        let skeleton = (
            prop_oneof![3 => Just("https://id.example.com".to_owned()), 1 => url_text()],
            prop_oneof![
                4 => Just("com.example.app:/callback".to_owned()),
                2 => Just("http://127.0.0.1/callback".to_owned()),
                1 => Just("http://[::1]/callback".to_owned()),
                // The near misses RFC 8252 §7.3 and §8.3 rule out.
                1 => proptest::sample::select(vec![
                    "http://localhost/callback", "http://10.0.0.1/callback", "http://127.0.0.1:8080/callback",
                    "http://[::2]/callback", "https://127.0.0.1/callback", "myapp:/callback",
                    "com.example.app:/callback?x=1",
                ]).prop_map(str::to_owned),
                2 => url_text()
            ],
            prop_oneof![3 => Just("https://api.example.com/me".to_owned()), 1 => url_text()],
            prop_oneof![4 => "[a-z0-9-]{1,12}", 1 => any::<String>()],
            proptest::bool::weighted(0.85),
        )
            .prop_map(|(issuer, redirect, resource, client, with_issuer)| {
                let mut fields = vec![("redirect_uri", redirect), ("resource_url", resource), ("client_id", client)];
                if with_issuer {
                    fields.push(("issuer", issuer));
                }
                fields
            });
        let url_fields = proptest::option::weighted(0.4, (proptest::sample::select(urls.to_vec()), url_text()))
            .prop_map(|field| field.into_iter().collect::<Vec<_>>());
        (skeleton, url_fields, word_fields, numbers).prop_map(|(skeleton, urls, words, number)| {
            let mut seen = std::collections::HashSet::new();
            let mut text = String::new();
            for (key, value) in skeleton.iter().chain(urls.iter()).chain(words.iter()) {
                if seen.insert(*key) {
                    text.push_str(&format!("{key} = {}\n", toml_string(value)));
                }
            }
            if let Some((key, value)) = number {
                text.push_str(&format!("{key} = {value}\n"));
            }
            text
        })
    }

    /// The property below means something only if many generated profiles are accepted.
    #[test]
    fn the_generator_reaches_accepted_profiles() {
        use proptest::strategy::ValueTree;
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let strategy = profile();
        let accepted = (0..2000)
            .filter(|_| {
                let text = strategy.new_tree(&mut runner).unwrap().current();
                Config::parse(&text, "fuzz.toml").is_ok()
            })
            .count();
        // About a fifth are (426 of 2000 with this seed); the rest exercise the errors.
        assert!(accepted >= 300, "only {accepted} of 2000 generated profiles were accepted");
    }

    proptest! {
        #![proptest_config(crate::proptest_config())]

        #[test]
        fn never_panics_on_any_text(text in any::<String>()) {
            let _ = Config::parse(&text, "fuzz.toml");
        }

        /// Whatever it accepts keeps the rules of RFC 8252 and RFC 9700; whatever it refuses names the file.
        #[test]
        fn accepted_profiles_keep_the_rules(text in profile()) {
            match Config::parse(&text, "fuzz.toml") {
                Ok(config) => {
                    // RFC 8252 §7.1 or §7.3: a reverse-DNS private scheme, or an http loopback IP literal.
                    match config.loopback() {
                        Some(ip) => {
                            prop_assert!(ip.is_loopback());
                            // No port (a fresh one each time), or a fixed one; never port 0.
                            prop_assert_ne!(config.redirect_uri.port(), Some(0));
                        }
                        None => prop_assert!(config.redirect_uri.scheme().contains('.'), "{}", config.redirect_uri),
                    }
                    prop_assert!(config.redirect_uri.query().is_none() && config.redirect_uri.fragment().is_none());
                    // RFC 6749 §3.1.2.3: what is sent is exactly what was written.
                    let written = format!("redirect_uri = {:?}", config.redirect_uri.as_str());
                    prop_assert!(text.contains(&written), "{} is not in {}", written, text);
                    // RFC 9700 §2.6: TLS, or the loopback interface by its address (RFC 8252 §8.3), checked
                    // here by a rule of the test's own, not the code's, for every URL, the resource's too.
                    let mut urls: Vec<&Url> = match &config.endpoints {
                        Endpoints::Discover { issuer } => vec![&issuer.url],
                        Endpoints::Explicit(e) => [Some(&e.authorization), Some(&e.token), e.revocation.as_ref(),
                            e.userinfo.as_ref(), e.jwks.as_ref(), e.device_authorization.as_ref(),
                            e.pushed_authorization.as_ref(), e.issuer.as_ref()]
                            .into_iter().flatten().collect(),
                    };
                    urls.push(&config.resource_url);
                    for url in urls {
                        // An IPv4 literal in 127/8 (all four parts numbers: `127.evil.example` is a name), or
                        // the IPv6 one.
                        let host = url.host_str().unwrap_or_default();
                        let parts: Vec<&str> = host.split('.').collect();
                        let v4_loopback = parts.len() == 4
                            && parts[0] == "127"
                            && parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
                        let literal_loopback = v4_loopback || host == "[::1]";
                        prop_assert!(url.scheme() == "https" || (url.scheme() == "http" && literal_loopback), "{url}");
                        prop_assert!(url.username().is_empty() && url.password().is_none(), "{url}");
                    }
                    // The profile names a keychain entry and a lock file: nothing that could be a path.
                    prop_assert!(config.profile.len() <= 64 && config.profile.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
                }
                // The message names the file, and a field (one of the profile's keys, or a line of it),
                // never the whole refusal as one unlocated sentence.
                Err(e) => {
                    prop_assert!(!e.field.is_empty() && !e.problem.is_empty(), "{e:?}");
                    let located = format!("The config file fuzz.toml is invalid: {}: ", e.field);
                    prop_assert!(e.to_string().starts_with(&located), "{e}");
                }
            }
        }
    }
}
