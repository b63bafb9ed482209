//! Server-generated document ids: 20 random alphanumeric characters, as Firestore makes them
//! (62^20 ≈ 2^119 possibilities, so collisions are not a practical concern).

use rand::Rng as _;
use rand::distr::Alphanumeric;

/// Length of a generated document id.
pub(crate) const ID_LEN: usize = 20;

/// A fresh random document id.
pub fn generate_id() -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(ID_LEN)
        .map(char::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_twenty_alphanumerics_and_differ() {
        let a = generate_id();
        let b = generate_id();
        assert_eq!(a.len(), ID_LEN);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()), "{a}");
        assert_ne!(a, b);
    }
}
