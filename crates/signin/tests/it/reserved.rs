//! One list of reserved claim names and one custom-claims size limit, for the admin API's custom
//! claims (the engine's `users::validate_custom_claims`) and for what claimdb mints
//! (`issuer::check_custom_claims`).
//!
//! Regression: the two lists were separate copies and had drifted apart (the issuer's had
//! `provider` and `roles`, the engine's did not, with nothing saying whether that was meant).
//! Now both read `claimdb_identity::claim_names`; this test pins how they relate, so a name
//! added to one side only fails here.

use claimdb_engine::users::validate_custom_claims;
use claimdb_identity::claim_names::{
    ISSUER_WRITTEN_CLAIMS, MAX_CUSTOM_CLAIMS_BYTES, RESERVED_CLAIMS, reserved_for_minting,
};
use claimdb_signin::issuer::check_custom_claims;
use serde_json::{Map, Value, json};

fn one(name: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert(name.to_owned(), json!(true));
    m
}

/// A claims object whose serialization is exactly `bytes` long.
fn of_size(bytes: usize) -> Map<String, Value> {
    let empty = r#"{"x":""}"#.len();
    let mut m = Map::new();
    m.insert("x".into(), Value::String("a".repeat(bytes - empty)));
    assert_eq!(Value::Object(m.clone()).to_string().len(), bytes);
    m
}

#[test]
fn both_sides_refuse_every_reserved_name() {
    for name in RESERVED_CLAIMS {
        assert!(
            validate_custom_claims(&Value::Object(one(name))).is_err(),
            "the admin API accepts {name:?}"
        );
        assert!(
            check_custom_claims(&one(name)).is_err(),
            "the issuer accepts {name:?}"
        );
        assert!(reserved_for_minting(name));
    }
}

#[test]
fn names_the_issuer_writes_are_users_claims_but_never_minted_as_such() {
    for name in ISSUER_WRITTEN_CLAIMS {
        assert!(!RESERVED_CLAIMS.contains(name));
        assert!(
            validate_custom_claims(&Value::Object(one(name))).is_ok(),
            "a user may hold a custom claim {name:?}"
        );
        assert!(
            check_custom_claims(&one(name)).is_err(),
            "the issuer must not take {name:?} from custom claims"
        );
    }
    assert!(!reserved_for_minting("tier"));
    assert!(validate_custom_claims(&Value::Object(one("tier"))).is_ok());
    assert!(check_custom_claims(&one("tier")).is_ok());
}

#[test]
fn both_sides_share_the_size_limit() {
    let at = of_size(MAX_CUSTOM_CLAIMS_BYTES);
    assert!(validate_custom_claims(&Value::Object(at.clone())).is_ok());
    assert!(check_custom_claims(&at).is_ok());
    let over = of_size(MAX_CUSTOM_CLAIMS_BYTES + 1);
    assert!(validate_custom_claims(&Value::Object(over.clone())).is_err());
    assert!(check_custom_claims(&over).is_err());
}
