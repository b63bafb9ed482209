//! Unit tests of the engine's write conditions and precondition errors.

use super::*;

#[test]
fn conditional_writes_fail_with_failed_precondition() {
    let nf = EngineError::not_found("gone");
    assert_eq!(
        conditional(nf.clone(), Precondition::Version(3)).code(),
        "failed-precondition"
    );
    assert_eq!(
        conditional(nf.clone(), Precondition::Exists).code(),
        "failed-precondition"
    );
    assert_eq!(conditional(nf, Precondition::None).code(), "not-found");
    let ae = EngineError::AlreadyExists {
        message: "there".into(),
        write_index: Some(2),
    };
    let e = conditional(ae.clone(), Precondition::Missing);
    assert_eq!(
        (e.code(), e.write_index()),
        ("failed-precondition", Some(2))
    );
    assert_eq!(conditional(ae, Precondition::None).code(), "already-exists");
}

#[test]
fn write_conditions_come_from_preconditions() {
    assert_eq!(
        WriteCondition::from(Precondition::Version(4)),
        WriteCondition::VersionIn(vec![4])
    );
    assert_eq!(
        WriteCondition::from(Precondition::Missing),
        WriteCondition::Missing
    );
}
