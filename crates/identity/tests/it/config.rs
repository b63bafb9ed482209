//! Provider configuration as a user writes it (TOML): presets expand to the right issuer, key
//! source and audience; invalid tables are refused with a message naming the problem.

use claimdb_identity::config::{IssuerMatch, KeySource};
use claimdb_identity::{Alg, ProviderConfig, validate_providers};

fn parse(text: &str) -> Result<ProviderConfig, String> {
    toml::from_str(text).map_err(|e| e.to_string())
}

#[test]
fn presets_fill_issuer_keys_and_audience() {
    // (TOML, issuer, key source, audiences)
    let cases: &[(&str, &str, KeySource, &[&str])] = &[
        (
            "name = \"fb\"\npreset = \"firebase\"\nproject_id = \"my-proj\"",
            "https://securetoken.google.com/my-proj",
            KeySource::X509(
                "https://www.googleapis.com/robot/v1/metadata/x509/securetoken@system.gserviceaccount.com".into(),
            ),
            &["my-proj"],
        ),
        (
            "name = \"a0\"\npreset = \"auth0\"\ndomain = \"example.eu.auth0.com\"\naudience = \"https://api.example.com\"",
            "https://example.eu.auth0.com/",
            KeySource::Jwks("https://example.eu.auth0.com/.well-known/jwks.json".into()),
            &["https://api.example.com"],
        ),
        (
            "name = \"e\"\npreset = \"entra\"\ntenant = \"72f988bf-86f1-41af-91ab-2d7cd011db47\"\naudience = \"api://x\"",
            "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0",
            KeySource::Jwks(
                "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/discovery/v2.0/keys".into(),
            ),
            &["api://x"],
        ),
        (
            "name = \"e\"\npreset = \"entra\"\ntenant = \"common\"\naudience = \"app\"",
            "https://login.microsoftonline.com/{tenantid}/v2.0",
            KeySource::Jwks("https://login.microsoftonline.com/common/discovery/v2.0/keys".into()),
            &["app"],
        ),
        (
            "name = \"o\"\npreset = \"okta\"\ndomain = \"dev-1.okta.com\"\naudience = \"api://default\"",
            "https://dev-1.okta.com/oauth2/default",
            KeySource::Discovery("https://dev-1.okta.com/oauth2/default/.well-known/openid-configuration".into()),
            &["api://default"],
        ),
        (
            "name = \"k\"\npreset = \"keycloak\"\nrealm_url = \"https://kc.example.com/realms/main/\"\naudience = [\"a\", \"b\"]",
            "https://kc.example.com/realms/main",
            KeySource::Discovery("https://kc.example.com/realms/main/.well-known/openid-configuration".into()),
            &["a", "b"],
        ),
        (
            "name = \"g\"\npreset = \"google\"\naudience = \"123.apps.googleusercontent.com\"",
            "https://accounts.google.com",
            KeySource::Jwks("https://www.googleapis.com/oauth2/v3/certs".into()),
            &["123.apps.googleusercontent.com"],
        ),
    ];
    for (text, issuer, keys, aud) in cases {
        let p = parse(text).and_then(|c| c.validate().map_err(|e| e.to_string()));
        let p = p.unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(p.issuer.display(), *issuer, "{text}");
        assert_eq!(&p.keys, keys, "{text}");
        assert_eq!(
            p.audiences,
            aud.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            "{text}"
        );
        assert_eq!(p.algorithms, vec![Alg::RS256]);
        assert_eq!(p.uid_claim, "sub");
        assert_eq!(p.clock_skew.as_secs(), 60);
    }
}

#[test]
fn explicit_fields_and_defaults() {
    let text = r#"
name = "auth0"
issuer = "https://example.eu.auth0.com/"
jwks_uri = "https://example.eu.auth0.com/.well-known/jwks.json"
audience = ["https://api.example.com"]
algorithms = ["RS256", "ES256", "EdDSA", "PS512"]
uid_claim = "email"
clock_skew = 10
client_id = "c"
scopes = ["openid"]
"#;
    let p = parse(text).unwrap().validate().unwrap();
    assert_eq!(
        p.issuer,
        IssuerMatch::Exact("https://example.eu.auth0.com/".into())
    );
    assert_eq!(
        p.algorithms,
        vec![Alg::RS256, Alg::ES256, Alg::EdDSA, Alg::PS512]
    );
    assert_eq!(p.uid_claim, "email");
    assert_eq!(p.clock_skew.as_secs(), 10);
}

#[test]
fn invalid_configurations_say_what_is_wrong() {
    let base = "name = \"p\"\nissuer = \"https://i.example/\"\njwks_uri = \"https://i.example/jwks\"\naudience = \"api\"\n";
    // (TOML, a fragment the error must contain)
    let cases: &[(String, &str)] = &[
        (
            format!("{base}algorithms = [\"HS256\"]"),
            "unknown variant `HS256`",
        ),
        (
            format!("{base}algorithms = [\"none\"]"),
            "unknown variant `none`",
        ),
        (format!("{base}algorithms = []"), "at least one algorithm"),
        (format!("{base}colour = \"blue\""), "unknown field `colour`"),
        (
            base.replace("audience = \"api\"\n", ""),
            "audience is required",
        ),
        (
            base.replace("audience = \"api\"", "audience = []"),
            "audience is required",
        ),
        (
            base.replace("issuer = \"https://i.example/\"\n", ""),
            "issuer is required",
        ),
        (
            base.replace("jwks_uri = \"https://i.example/jwks\"\n", ""),
            "one of discovery, jwks_uri or x509_uri",
        ),
        (
            format!("{base}x509_uri = \"https://i.example/x509\""),
            "only one of",
        ),
        (
            base.replace("https://i.example/jwks", "http://i.example/jwks"),
            "must use https",
        ),
        (
            base.replace("https://i.example/jwks", "file:///etc/passwd"),
            "must use https",
        ),
        (format!("{base}clock_skew = 3600"), "at most 600"),
        (
            format!("{base}uid_claim = \"\""),
            "uid_claim must not be empty",
        ),
        (
            base.replace("name = \"p\"", "name = \"a b\""),
            "name must be",
        ),
        (
            base.replace(
                "https://i.example/\"",
                "https://i.example/{tenantid}/{tenantid}\"",
            ),
            "at most once",
        ),
        (
            base.replace("https://i.example/\"", "https://i.example/x{tenantid}/v2\""),
            "whole path segment",
        ),
        (
            format!("{base}project_id = \"x\""),
            "only used with preset firebase",
        ),
        (
            "name = \"e\"\nissuer = \"https://login.microsoftonline.com/{tenantid}/v2.0\"\n\
             discovery = \"https://login.microsoftonline.com/common/v2.0/.well-known/openid-configuration\"\n\
             audience = \"a\""
                .to_owned(),
            "needs jwks_uri, not discovery",
        ),
        (format!("{base}tenants = [\"t\"]"), "tenants is only used with an issuer containing"),
        (
            "name = \"fb\"\npreset = \"firebase\"".to_owned(),
            "needs project_id",
        ),
        (
            "name = \"a\"\npreset = \"auth0\"\ndomain = \"x.auth0.com\"".to_owned(),
            "audience is required",
        ),
        (
            "name = \"k\"\npreset = \"keycloak\"\nrealm_url = \"https://kc\"\naudience = \"a\""
                .to_owned(),
            "/realms/",
        ),
        (
            "name = \"x\"\npreset = \"cognito\"".to_owned(),
            "unknown variant `cognito`",
        ),
        (
            format!("{base}[[roles]]\nrole = \"r\"\nclaim = \"c\""),
            "exactly one of equals and contains",
        ),
    ];
    for (text, fragment) in cases {
        let err = match parse(text) {
            Err(e) => e,
            Ok(c) => match c.validate() {
                Err(e) => e.to_string(),
                Ok(p) => panic!("accepted {text:?} as {p:?}"),
            },
        };
        assert!(
            err.contains(fragment),
            "{text:?}: error {err:?} lacks {fragment:?}"
        );
    }
}

#[test]
fn a_provider_list_needs_unique_names_and_issuers() {
    let one = |name: &str, iss: &str| {
        parse(&format!("name = \"{name}\"\nissuer = \"{iss}\"\njwks_uri = \"https://k.example/\"\naudience = \"a\""))
            .unwrap()
    };
    let same_name =
        validate_providers(&[one("a", "https://x/"), one("a", "https://y/")]).unwrap_err();
    assert!(
        same_name.to_string().contains("two providers are named"),
        "{same_name}"
    );
    let same_iss =
        validate_providers(&[one("a", "https://x/"), one("b", "https://x/")]).unwrap_err();
    assert!(
        same_iss.to_string().contains("both have issuer"),
        "{same_iss}"
    );
    assert!(validate_providers(&[one("a", "https://x/"), one("b", "https://x")]).is_ok());
    let mut alias = one("b", "https://y/");
    alias.additional_issuers = Some(vec!["https://x/".into()]);
    let via_alias = validate_providers(&[one("a", "https://x/"), alias]).unwrap_err();
    assert!(
        via_alias
            .to_string()
            .contains("both have issuer \"https://x/\""),
        "{via_alias}"
    );
}

#[test]
fn google_accepts_both_issuer_spellings() {
    let p = parse("name = \"g\"\npreset = \"google\"\naudience = \"c\"")
        .unwrap()
        .validate()
        .unwrap();
    assert_eq!(
        p.exact_issuers(),
        vec!["https://accounts.google.com", "accounts.google.com"]
    );
    // An explicit issuer replaces the preset's spellings.
    let p = parse("name = \"g\"\npreset = \"google\"\nissuer = \"https://x\"\naudience = \"c\"")
        .unwrap();
    assert_eq!(p.validate().unwrap().exact_issuers(), vec!["https://x"]);
}
