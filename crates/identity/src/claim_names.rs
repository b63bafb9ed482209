//! The claim names claimdb's own tokens and users' custom claims are defined by, shared by the
//! issuer (`claimdb-signin`, which writes them) and the engine (which authenticates claimdb's
//! tokens and validates custom claims set through the admin API): one definition each, so the
//! two sides cannot drift apart.
//!
//! Does not check anything itself: the issuer and the admin API phrase their own refusals.

/// The verifier's name for claimdb's own tokens (`request.auth.provider`).
pub const ISSUER_PROVIDER_NAME: &str = "claimdb";
/// The claim holding the source provider's name in a claimdb token.
pub const PROVIDER_CLAIM: &str = "provider";
/// The claim holding the roles in a claimdb token.
pub const ROLES_CLAIM: &str = "roles";
/// The claim listing which claims of a claimdb token are the user's stored custom claims as
/// they were at minting. Whoever authenticates the token drops those names and overlays the
/// user's *current* custom claims instead, so a claim deleted through the admin API stops
/// working on the next request, not when the token expires.
pub const STORED_CLAIMS_CLAIM: &str = "claimdb_custom";

/// Custom claims, serialized as a JSON object, may be at most this long (Firebase's limit).
pub const MAX_CUSTOM_CLAIMS_BYTES: usize = 1000;

/// Claim names a user's custom claims may not use: the registered and OpenID names Firebase
/// reserves (`setCustomUserClaims`'s list) and [`STORED_CLAIMS_CLAIM`].
pub const RESERVED_CLAIMS: &[&str] = &[
    "acr",
    "amr",
    "at_hash",
    "aud",
    "auth_time",
    "azp",
    "cnf",
    "c_hash",
    "exp",
    "firebase",
    "iat",
    "iss",
    "jti",
    "nbf",
    "nonce",
    "sub",
    STORED_CLAIMS_CLAIM,
];

/// The names claimdb's issuer writes into every token beside [`RESERVED_CLAIMS`]. A user may
/// hold custom claims with these names (the request path overlays them like any other), but
/// they are left out of minted tokens, and a mint request naming one is refused.
pub const ISSUER_WRITTEN_CLAIMS: &[&str] = &[PROVIDER_CLAIM, ROLES_CLAIM];

/// Whether the issuer refuses `name` as a claim of a mint request: a [`RESERVED_CLAIMS`] or an
/// [`ISSUER_WRITTEN_CLAIMS`] name.
pub fn reserved_for_minting(name: &str) -> bool {
    RESERVED_CLAIMS.contains(&name) || ISSUER_WRITTEN_CLAIMS.contains(&name)
}
