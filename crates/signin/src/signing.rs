//! claimdb's own signing keys: generation (ES256 on P-256, or RS256 with 2048-bit RSA, through
//! aws-lc-rs), the public JWK of each with its RFC 7638 thumbprint as `kid`, JWS signing, and
//! the key file — its JSON form and where it lives ([`KeyStorage`], asynchronous, written only
//! by a read-modify-write under the storage's lock; [`DirKeyStorage`] writes `keys.json` with
//! mode 0600 in a 0700 directory, atomically: temp file, fsync, rename, fsync of the directory,
//! on tokio's blocking threads; [`MemoryKeyStorage`] keeps it in memory).
//!
//! When keys rotate and which are published is the issuer's business (`issuer.rs`); this file
//! holds no policy.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::IssuerError;

/// The algorithms claimdb signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SigningAlg {
    ES256,
    RS256,
}

impl SigningAlg {
    pub fn name(self) -> &'static str {
        match self {
            SigningAlg::ES256 => "ES256",
            SigningAlg::RS256 => "RS256",
        }
    }
}

/// A private signing key with its public JWK.
pub struct SigningKey {
    pub kid: String,
    pub alg: SigningAlg,
    pub created: SystemTime,
    pair: Pair,
    pkcs8: Vec<u8>,
    jwk: Value,
}

enum Pair {
    Ec(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("created", &self.created)
            .finish_non_exhaustive()
    }
}

fn crypto(what: &str) -> IssuerError {
    IssuerError::Crypto(what.to_owned())
}

impl SigningKey {
    /// A fresh key pair from the system CSPRNG.
    pub fn generate(alg: SigningAlg, created: SystemTime) -> Result<SigningKey, IssuerError> {
        let pkcs8 = match alg {
            SigningAlg::ES256 => {
                let kp = EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING)
                    .map_err(|_| crypto("generating a P-256 key failed"))?;
                kp.to_pkcs8v1()
                    .map_err(|_| crypto("encoding a P-256 key failed"))?
                    .as_ref()
                    .to_vec()
            }
            SigningAlg::RS256 => {
                let kp = RsaKeyPair::generate(KeySize::Rsa2048)
                    .map_err(|_| crypto("generating an RSA key failed"))?;
                AsDer::<Pkcs8V1Der>::as_der(&kp)
                    .map_err(|_| crypto("encoding an RSA key failed"))?
                    .as_ref()
                    .to_vec()
            }
        };
        SigningKey::from_pkcs8(alg, &pkcs8, created)
    }

    /// Parses a PKCS#8 (v1) private key.
    pub fn from_pkcs8(
        alg: SigningAlg,
        pkcs8: &[u8],
        created: SystemTime,
    ) -> Result<SigningKey, IssuerError> {
        let (pair, jwk) = match alg {
            SigningAlg::ES256 => {
                let kp =
                    EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8)
                        .map_err(|_| crypto("the stored ES256 key is not a P-256 PKCS#8 key"))?;
                let point = kp.public_key().as_ref();
                if point.len() != 65 || point[0] != 4 {
                    return Err(crypto("unexpected P-256 public key encoding"));
                }
                let (x, y) = point[1..].split_at(32);
                let jwk = json!({"crv": "P-256", "kty": "EC", "x": b64(x), "y": b64(y)});
                (Pair::Ec(kp), jwk)
            }
            SigningAlg::RS256 => {
                let kp = RsaKeyPair::from_pkcs8(pkcs8)
                    .map_err(|_| crypto("the stored RS256 key is not an RSA PKCS#8 key"))?;
                if kp.public_modulus_len() < 256 {
                    return Err(crypto("the stored RSA key is shorter than 2048 bits"));
                }
                let comps = PublicKeyComponents::<Vec<u8>>::from(kp.public_key());
                let jwk = json!({"e": b64(&comps.e), "kty": "RSA", "n": b64(&comps.n)});
                (Pair::Rsa(kp), jwk)
            }
        };
        // RFC 7638: SHA-256 over the required members in lexicographic order, no whitespace.
        // serde_json's Map is ordered by key (no preserve_order feature), so to_string is that.
        let thumbprint =
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, jwk.to_string().as_bytes());
        let kid = b64(thumbprint.as_ref());
        let mut jwk = jwk;
        if let Value::Object(m) = &mut jwk {
            m.insert("kid".into(), Value::String(kid.clone()));
            m.insert("alg".into(), Value::String(alg.name().into()));
            m.insert("use".into(), Value::String("sig".into()));
        }
        Ok(SigningKey {
            kid,
            alg,
            created,
            pair,
            pkcs8: pkcs8.to_vec(),
            jwk,
        })
    }

    /// The public JWK (`kty`, `kid`, `alg`, `use: sig` and the key's public members).
    pub fn public_jwk(&self) -> &Value {
        &self.jwk
    }

    /// A compact JWS over these exact header and payload objects.
    pub fn sign_jws(&self, header: &Value, payload: &Value) -> Result<String, IssuerError> {
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(payload.to_string().as_bytes())
        );
        let rng = SystemRandom::new();
        let sig = match &self.pair {
            Pair::Ec(kp) => kp
                .sign(&rng, input.as_bytes())
                .map_err(|_| crypto("ECDSA signing failed"))?
                .as_ref()
                .to_vec(),
            Pair::Rsa(kp) => {
                let mut sig = vec![0; kp.public_modulus_len()];
                kp.sign(
                    &signature::RSA_PKCS1_SHA256,
                    &rng,
                    input.as_bytes(),
                    &mut sig,
                )
                .map_err(|_| crypto("RSA signing failed"))?;
                sig
            }
        };
        Ok(format!("{input}.{}", b64(&sig)))
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// One key as stored in the key file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoredKey {
    pub kid: String,
    pub alg: SigningAlg,
    /// Unix seconds.
    pub created: i64,
    /// Unix seconds at which it stopped signing; `None` for the active key.
    pub retired: Option<i64>,
    /// PKCS#8 DER, standard base64.
    pub pkcs8: String,
}

/// The key file's content.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct KeyFile {
    pub version: u32,
    pub keys: Vec<StoredKey>,
}

pub(crate) fn to_time(secs: i64) -> SystemTime {
    match u64::try_from(secs) {
        Ok(s) => SystemTime::UNIX_EPOCH + Duration::from_secs(s),
        Err(_) => SystemTime::UNIX_EPOCH,
    }
}

impl StoredKey {
    pub(crate) fn of(key: &SigningKey, retired: Option<i64>) -> StoredKey {
        StoredKey {
            kid: key.kid.clone(),
            alg: key.alg,
            created: claimdb_identity::io::unix_secs(key.created),
            retired,
            pkcs8: STANDARD.encode(&key.pkcs8),
        }
    }

    pub(crate) fn load(&self) -> Result<SigningKey, IssuerError> {
        let der = STANDARD
            .decode(&self.pkcs8)
            .map_err(|_| IssuerError::KeyFile(format!("key {:?} is not base64", self.kid)))?;
        let key = SigningKey::from_pkcs8(self.alg, &der, to_time(self.created))?;
        if key.kid != self.kid {
            return Err(IssuerError::KeyFile(format!(
                "key {:?} does not match its stored key id (the file was edited?)",
                self.kid
            )));
        }
        Ok(key)
    }
}

/// What [`KeyStorage::update`] runs under the lock: given the key file's current content
/// (`None`: there is none yet), the content to save (`None`: leave it as it is).
pub type KeyFileEdit<'a> =
    dyn FnMut(Option<Vec<u8>>) -> Result<Option<Vec<u8>>, IssuerError> + Send + 'a;

/// Where the key file lives. Implementations must make a save atomic (a reader sees the old
/// or the new content, never a mix) and durable, and keep the content from other users.
///
/// Asynchronous, so that a storage reached over the network (the store's records,
/// `store_keys.rs`) is simply awaited; a storage that must block (the file system,
/// [`DirKeyStorage`]) does so on tokio's blocking threads itself, never on its caller's.
///
/// The issuer's only writes are read-modify-writes (first key, rotation, pruning, a copy
/// adopted from elsewhere), so that is the one write operation: [`KeyStorage::update`] takes
/// the lock, loads, runs the edit and saves its answer as one step. A separate
/// `lock` / `load` / `save` would let a caller save without the lock or hold the lock across
/// awaits of its own; here the edit is synchronous and short (the issuer generates keys before
/// calling, never under the lock), so the lock is held only for the storage's own IO.
#[async_trait]
pub trait KeyStorage: Send + Sync {
    /// The key file's content, if there is one. Takes no lock (saves are atomic).
    async fn load(&self) -> Result<Option<Vec<u8>>, IssuerError>;

    /// Holding an exclusive lock against everyone else sharing the storage (so a CLI rotation
    /// and the server's schedule, or two nodes, do not both write): loads the content, calls
    /// `edit` once with it, and saves what `edit` returns, if anything. An error from `edit`
    /// is returned, with nothing saved.
    async fn update(&self, edit: &mut KeyFileEdit<'_>) -> Result<(), IssuerError>;
}

/// The key file in memory (tests, or an issuer whose keys die with the process).
#[derive(Debug, Default)]
pub struct MemoryKeyStorage(std::sync::Mutex<Option<Vec<u8>>>);

impl MemoryKeyStorage {
    fn content(&self) -> Result<std::sync::MutexGuard<'_, Option<Vec<u8>>>, IssuerError> {
        self.0
            .lock()
            .map_err(|_| IssuerError::KeyFile("poisoned".into()))
    }
}

#[async_trait]
impl KeyStorage for MemoryKeyStorage {
    async fn load(&self) -> Result<Option<Vec<u8>>, IssuerError> {
        Ok(self.content()?.clone())
    }

    async fn update(&self, edit: &mut KeyFileEdit<'_>) -> Result<(), IssuerError> {
        // The mutex is the lock; nothing is awaited while it is held.
        let mut content = self.content()?;
        if let Some(new) = edit(content.clone())? {
            *content = Some(new);
        }
        Ok(())
    }
}

/// `keys.json` in a directory of its own (e.g. `<data_dir>/issuer`), mode 0600 in a 0700
/// directory; written through a temp file, fsync and rename. Its file IO runs on tokio's
/// blocking threads.
#[derive(Debug, Clone)]
pub struct DirKeyStorage {
    dir: PathBuf,
}

/// File name of the key file inside the directory.
pub const KEY_FILE: &str = "keys.json";
const LOCK_FILE: &str = "keys.lock";
/// A lock file older than this is taken to be left by a crashed process.
const STALE_LOCK: Duration = Duration::from_secs(30);
/// How long `update` waits for a lock file held by another process.
const LOCK_WAIT: Duration = Duration::from_secs(10);

impl DirKeyStorage {
    /// Creates the directory (0700) if needed; refuses one that others may read or write.
    /// (Two small synchronous file-system calls: it is opened once, at startup.)
    pub fn open(dir: impl Into<PathBuf>) -> Result<DirKeyStorage, IssuerError> {
        let dir = dir.into();
        let io = |what: &str, e: std::io::Error| {
            IssuerError::KeyFile(format!("{what} {}: {e}", dir.display()))
        };
        if !dir.exists() {
            let mut b = std::fs::DirBuilder::new();
            b.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
            b.create(&dir).map_err(|e| io("cannot create", e))?;
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let meta = std::fs::metadata(&dir).map_err(|e| io("cannot read", e))?;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(IssuerError::KeyFile(format!(
                    "{} has mode {mode:o}; the signing-key directory must be private to its owner (chmod 700)",
                    dir.display()
                )));
            }
        }
        Ok(DirKeyStorage { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Runs `op` on this directory on a blocking thread.
    async fn blocking<T: Send + 'static>(
        &self,
        op: impl FnOnce(&Path) -> Result<T, IssuerError> + Send + 'static,
    ) -> Result<T, IssuerError> {
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || op(&dir))
            .await
            .map_err(|e| IssuerError::KeyFile(format!("the key file's IO task stopped: {e}")))?
    }
}

#[async_trait]
impl KeyStorage for DirKeyStorage {
    async fn load(&self) -> Result<Option<Vec<u8>>, IssuerError> {
        self.blocking(read_key_file).await
    }

    async fn update(&self, edit: &mut KeyFileEdit<'_>) -> Result<(), IssuerError> {
        let (lock, content) = self
            .blocking(|dir| {
                let lock = LockFile::acquire(dir)?;
                Ok((lock, read_key_file(dir)?))
            })
            .await?;
        // Dropping the lock (on a blocking thread below, or wherever this future is dropped)
        // removes the lock file.
        let new = match edit(content) {
            Ok(new) => new,
            Err(e) => {
                self.blocking(move |_| {
                    drop(lock);
                    Ok(())
                })
                .await?;
                return Err(e);
            }
        };
        self.blocking(move |dir| {
            let saved = match new {
                Some(content) => write_key_file(dir, &content),
                None => Ok(()),
            };
            drop(lock);
            saved
        })
        .await
    }
}

fn read_key_file(dir: &Path) -> Result<Option<Vec<u8>>, IssuerError> {
    let path = dir.join(KEY_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(IssuerError::KeyFile(format!(
                "cannot read {}: {e}",
                path.display()
            )));
        }
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path)
            .map_err(|e| IssuerError::KeyFile(format!("cannot stat {}: {e}", path.display())))?
            .permissions()
            .mode()
            & 0o777;
        if mode & 0o077 != 0 {
            return Err(IssuerError::KeyFile(format!(
                "{} has mode {mode:o}; signing keys must be readable by their owner only (chmod 600)",
                path.display()
            )));
        }
    }
    Ok(Some(bytes))
}

fn write_key_file(dir: &Path, content: &[u8]) -> Result<(), IssuerError> {
    let path = dir.join(KEY_FILE);
    let tmp = dir.join(format!(".{KEY_FILE}.{}.tmp", std::process::id()));
    let io = |what: &str, p: &Path, e: std::io::Error| {
        IssuerError::KeyFile(format!("cannot {what} {}: {e}", p.display()))
    };
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(&tmp).map_err(|e| io("create", &tmp, e))?;
    #[cfg(unix)]
    {
        // A temp file left by an earlier crash keeps its old mode; make sure.
        use std::os::unix::fs::PermissionsExt as _;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| io("chmod", &tmp, e))?;
    }
    f.write_all(content).map_err(|e| io("write", &tmp, e))?;
    f.sync_all().map_err(|e| io("fsync", &tmp, e))?;
    drop(f);
    std::fs::rename(&tmp, &path).map_err(|e| io("rename into", &path, e))?;
    if let Ok(d) = std::fs::File::open(dir) {
        d.sync_all().map_err(|e| io("fsync", dir, e))?;
    }
    Ok(())
}

/// The lock file, held from [`LockFile::acquire`] until dropped (which removes it).
struct LockFile(PathBuf);

impl LockFile {
    /// Creates the lock file, waiting (this thread sleeps: call it on a blocking thread) while
    /// another process holds it, and taking over one older than [`STALE_LOCK`].
    fn acquire(dir: &Path) -> Result<LockFile, IssuerError> {
        let lock = dir.join(LOCK_FILE);
        let deadline = std::time::Instant::now() + LOCK_WAIT;
        loop {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&lock)
            {
                Ok(_) => return Ok(LockFile(lock)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let stale = std::fs::metadata(&lock)
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| t.elapsed().ok())
                        .is_some_and(|age| age > STALE_LOCK);
                    if stale {
                        let _ = std::fs::remove_file(&lock);
                        continue;
                    }
                    if std::time::Instant::now() > deadline {
                        return Err(IssuerError::KeyFile(format!(
                            "{} is held by another process (remove it if no claimdb is running)",
                            lock.display()
                        )));
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => {
                    return Err(IssuerError::KeyFile(format!(
                        "cannot create {}: {e}",
                        lock.display()
                    )));
                }
            }
        }
    }
}

impl Drop for LockFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_pkcs8_with_stable_kids() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        for alg in [SigningAlg::ES256, SigningAlg::RS256] {
            let k = SigningKey::generate(alg, t).unwrap();
            let stored = StoredKey::of(&k, None);
            let back = stored.load().unwrap();
            assert_eq!(back.kid, k.kid);
            assert_eq!(back.public_jwk(), k.public_jwk());
            assert_eq!(k.public_jwk()["alg"], alg.name());
            let mut tampered = stored.clone();
            tampered.kid = "other".into();
            assert!(tampered.load().is_err());
        }
    }

    #[test]
    fn thumbprint_matches_rfc7638_example() {
        // RFC 7638 section 3.1 gives the thumbprint of this RSA key.
        let jwk = json!({"e": "AQAB", "kty": "RSA", "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"});
        let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, jwk.to_string().as_bytes());
        assert_eq!(
            b64(d.as_ref()),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn dir_storage_is_private_and_atomic() {
        use std::os::unix::fs::PermissionsExt as _;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("issuer");
        let s = DirKeyStorage::open(&dir).unwrap();
        assert_eq!(s.load().await.unwrap(), None);
        let save = |content: &'static [u8]| {
            let s = s.clone();
            async move { s.update(&mut |_| Ok(Some(content.to_vec()))).await }
        };
        save(b"{\"a\":1}").await.unwrap();
        save(b"{\"a\":2}").await.unwrap();
        assert_eq!(s.load().await.unwrap().as_deref(), Some(&b"{\"a\":2}"[..]));
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join(KEY_FILE)), 0o600);
        let leftovers: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temp or lock files remain");
        // A key file others can read is refused, not used.
        std::fs::set_permissions(dir.join(KEY_FILE), std::fs::Permissions::from_mode(0o644))
            .unwrap();
        assert!(
            s.load()
                .await
                .unwrap_err()
                .to_string()
                .contains("chmod 600")
        );
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(DirKeyStorage::open(&dir).is_err());
        // The lock is held while the edit runs and released after, whether the edit saved,
        // left the file alone or failed.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::set_permissions(dir.join(KEY_FILE), std::fs::Permissions::from_mode(0o600))
            .unwrap();
        let mut seen = None;
        s.update(&mut |content| {
            assert!(dir.join(LOCK_FILE).exists());
            seen = content;
            Ok(None)
        })
        .await
        .unwrap();
        assert_eq!(seen.as_deref(), Some(&b"{\"a\":2}"[..]));
        assert!(!dir.join(LOCK_FILE).exists());
        let err = s
            .update(&mut |_| Err(IssuerError::KeyFile("refused".into())))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("refused"), "{err}");
        assert!(!dir.join(LOCK_FILE).exists());
        assert_eq!(s.load().await.unwrap().as_deref(), Some(&b"{\"a\":2}"[..]));
    }

    /// While one `update` holds the lock, another waits for it instead of writing meanwhile.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dir_storage_updates_exclude_each_other() {
        let tmp = tempfile::tempdir().unwrap();
        let s = DirKeyStorage::open(tmp.path().join("issuer")).unwrap();
        let inside = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let holder = {
            let (s, inside) = (s.clone(), inside.clone());
            tokio::spawn(async move {
                s.update(&mut |_| {
                    inside.store(true, std::sync::atomic::Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(300));
                    inside.store(false, std::sync::atomic::Ordering::SeqCst);
                    Ok(Some(b"first".to_vec()))
                })
                .await
            })
        };
        while !inside.load(std::sync::atomic::Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let mut seen = None;
        s.update(&mut |content| {
            assert!(
                !inside.load(std::sync::atomic::Ordering::SeqCst),
                "both held the lock"
            );
            seen = content;
            Ok(None)
        })
        .await
        .unwrap();
        assert_eq!(seen.as_deref(), Some(&b"first"[..]));
        holder.await.unwrap().unwrap();
    }
}
