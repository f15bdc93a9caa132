//! The token cache on disk: every account's refresh and access token, their expiry and the last
//! refresh error, sealed with AES-256-GCM under a key the admin provides. Written whole to a
//! temporary file (mode 0600) and renamed over the old one, so a crash leaves either the old
//! or the new cache, never half of one.
//!
//! File layout: the magic line (also the AEAD's associated data), a fresh random 96-bit nonce
//! per write, then the sealed JSON.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use proto::Secret;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::error::CacheError;
use crate::lifetime::{Lifetime, TokenKey};
use crate::settings::CacheKeySource;

const MAGIC: &[u8] = b"mailtls token cache v1\n";
const NONCE_LEN: usize = 12;

/// The cache's 32-byte AES-256 key.
pub struct CacheKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CacheKey(<redacted>)")
    }
}

impl CacheKey {
    /// Reads the base64 key from its file or environment variable.
    pub fn load(source: &CacheKeySource) -> Result<Self, CacheError> {
        let (text, origin) = match source {
            CacheKeySource::File(path) => (
                Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
                    CacheError::Key(format!(
                        "cannot read key file {}: {e}; create one with `openssl rand -base64 32 > {}` (mode 0600)",
                        path.display(),
                        path.display()
                    ))
                })?),
                format!("key file {}", path.display()),
            ),
            CacheKeySource::Env(name) => (
                Zeroizing::new(std::env::var(name).map_err(|_| {
                    CacheError::Key(format!(
                        "environment variable {name} is not set; set it to a base64 key from `openssl rand -base64 32`"
                    ))
                })?),
                format!("environment variable {name}"),
            ),
        };
        Self::from_base64(&text).map_err(|problem| CacheError::Key(format!("{origin} {problem}")))
    }

    /// A key from its base64 text (whitespace around it ignored).
    pub fn from_base64(text: &str) -> Result<Self, String> {
        let bytes =
            Zeroizing::new(STANDARD.decode(text.trim()).map_err(|_| {
                "is not base64; make one with `openssl rand -base64 32`".to_string()
            })?);
        let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
            format!(
                "holds {} bytes, not 32; make one with `openssl rand -base64 32`",
                bytes.len()
            )
        })?;
        Ok(CacheKey(Zeroizing::new(key)))
    }
}

/// When and why the last attempt to get a token failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshFailure {
    /// When it failed.
    pub at: SystemTime,
    /// The error, as [`crate::TokenError`] displays it (it holds no secret).
    pub message: String,
}

/// What the cache holds for one (app, mailbox, scope).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedToken {
    /// The cache key.
    pub key: TokenKey,
    /// The current access token and its lifetime.
    pub access: Option<(Secret, Lifetime)>,
    /// The refresh token (device-code accounts).
    pub refresh: Option<Secret>,
    /// The last failure to obtain a token, cleared by the next success.
    pub last_error: Option<RefreshFailure>,
    /// When this entry last changed; of two processes' versions of an entry, the later wins
    /// (see [`TokenCacheFile::merge_write`]).
    pub updated_at: SystemTime,
}

/// The JSON form of a [`CachedToken`]; wiped when dropped, as it holds tokens in clear.
#[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
struct StoredToken {
    app: String,
    mailbox: String,
    scope: String,
    access_token: Option<String>,
    issued_at: Option<u64>,
    expires_at: Option<u64>,
    refresh_token: Option<String>,
    last_error: Option<String>,
    last_error_at: Option<u64>,
    /// Milliseconds since 1970; absent in files written before entries were merged.
    #[serde(default)]
    updated_at_ms: Option<u64>,
}

#[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
struct StoredCache {
    tokens: Vec<StoredToken>,
}

fn unix(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

fn from_unix(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

fn unix_ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn text(secret: &Secret) -> String {
    String::from_utf8_lossy(secret.expose()).into_owned()
}

impl From<&CachedToken> for StoredToken {
    fn from(token: &CachedToken) -> Self {
        StoredToken {
            app: token.key.app.clone(),
            mailbox: token.key.mailbox.clone(),
            scope: token.key.scope.clone(),
            access_token: token.access.as_ref().map(|(s, _)| text(s)),
            issued_at: token.access.as_ref().map(|(_, l)| unix(l.issued_at)),
            expires_at: token.access.as_ref().map(|(_, l)| unix(l.expires_at)),
            refresh_token: token.refresh.as_ref().map(text),
            last_error: token.last_error.as_ref().map(|e| e.message.clone()),
            last_error_at: token.last_error.as_ref().map(|e| unix(e.at)),
            updated_at_ms: Some(unix_ms(token.updated_at)),
        }
    }
}

impl From<&StoredToken> for CachedToken {
    fn from(stored: &StoredToken) -> Self {
        let access = match (&stored.access_token, stored.issued_at, stored.expires_at) {
            (Some(token), Some(issued), Some(expires)) => Some((
                Secret::new(token.as_bytes()),
                Lifetime {
                    issued_at: from_unix(issued),
                    expires_at: from_unix(expires),
                },
            )),
            _ => None,
        };
        CachedToken {
            key: TokenKey {
                app: stored.app.clone(),
                mailbox: stored.mailbox.clone(),
                scope: stored.scope.clone(),
            },
            access,
            refresh: stored
                .refresh_token
                .as_ref()
                .map(|r| Secret::new(r.as_bytes())),
            last_error: stored.last_error.as_ref().map(|message| RefreshFailure {
                at: from_unix(stored.last_error_at.unwrap_or(0)),
                message: message.clone(),
            }),
            updated_at: UNIX_EPOCH + Duration::from_millis(stored.updated_at_ms.unwrap_or(0)),
        }
    }
}

/// The lock file of the cache at `path`, `<file>.lock`, created empty when missing.
fn lock_file(path: &Path) -> std::io::Result<std::fs::File> {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path.with_file_name(name))
}

/// `ours` with each entry of `theirs` that is newer or that `ours` lacks, in key order.
fn merge(ours: &[CachedToken], theirs: Vec<CachedToken>) -> Vec<CachedToken> {
    let mut merged: std::collections::BTreeMap<TokenKey, CachedToken> =
        ours.iter().map(|t| (t.key.clone(), t.clone())).collect();
    for token in theirs {
        match merged.get(&token.key) {
            Some(mine) if mine.updated_at >= token.updated_at => {}
            _ => {
                merged.insert(token.key.clone(), token);
            }
        }
    }
    merged.into_values().collect()
}

/// Seals `tokens` with `nonce`: the bytes of a cache file.
fn seal(cipher: &Aes256Gcm, nonce: [u8; NONCE_LEN], tokens: &[CachedToken]) -> Vec<u8> {
    let stored = StoredCache {
        tokens: tokens.iter().map(StoredToken::from).collect(),
    };
    let plain = Zeroizing::new(serde_json::to_vec(&stored).expect("plain data serialises"));
    let sealed = cipher
        .encrypt(
            &Nonce::from(nonce),
            Payload {
                msg: &plain,
                aad: MAGIC,
            },
        )
        .expect("AES-GCM seals any message of this size");
    [MAGIC, &nonce, &sealed].concat()
}

/// Opens the bytes of a cache file.
fn unseal(cipher: &Aes256Gcm, path: &Path, bytes: &[u8]) -> Result<Vec<CachedToken>, CacheError> {
    let not_a_cache = |reason: &str| CacheError::NotACache {
        path: path.display().to_string(),
        reason: reason.to_string(),
    };
    let rest = bytes
        .strip_prefix(MAGIC)
        .ok_or_else(|| not_a_cache("its first line is not the mailtls cache header"))?;
    if rest.len() < NONCE_LEN {
        return Err(not_a_cache("it is truncated"));
    }
    let (nonce, sealed) = rest.split_at(NONCE_LEN);
    let nonce: [u8; NONCE_LEN] = nonce.try_into().expect("split at the nonce length");
    let plain = Zeroizing::new(
        cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: sealed,
                    aad: MAGIC,
                },
            )
            .map_err(|_| CacheError::WrongKey {
                path: path.display().to_string(),
            })?,
    );
    let stored: StoredCache = serde_json::from_slice(&plain)
        .map_err(|_| not_a_cache("it decrypts but holds no token list"))?;
    Ok(stored.tokens.iter().map(CachedToken::from).collect())
}

/// The encrypted cache file.
pub struct TokenCacheFile {
    path: PathBuf,
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for TokenCacheFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCacheFile")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl TokenCacheFile {
    /// Opens the cache at `path` with `key` and returns what it holds. A missing file is an
    /// empty cache (the first start); a file the key does not open is an error, never a reset.
    pub fn open(path: &Path, key: &CacheKey) -> Result<(Self, Vec<CachedToken>), CacheError> {
        let file = TokenCacheFile::new(path, key);
        let tokens = match std::fs::read(path) {
            Ok(bytes) => file.decode(&bytes)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => {
                return Err(CacheError::Io {
                    path: path.display().to_string(),
                    reason: format!("cannot read: {e}"),
                })
            }
        };
        Ok((file, tokens))
    }

    /// The cache at `path` under `key`, without reading it.
    pub fn new(path: &Path, key: &CacheKey) -> Self {
        TokenCacheFile {
            path: path.to_path_buf(),
            cipher: Aes256Gcm::new(&(*key.0).into()),
        }
    }

    /// The tokens in `bytes`, the content of a cache file.
    pub fn decode(&self, bytes: &[u8]) -> Result<Vec<CachedToken>, CacheError> {
        unseal(&self.cipher, &self.path, bytes)
    }

    /// The content of a cache file holding `tokens`, sealed with a fresh random nonce.
    pub fn encode(&self, tokens: &[CachedToken]) -> Result<Vec<u8>, CacheError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|e| CacheError::Io {
            path: self.path.display().to_string(),
            reason: format!("no randomness for the nonce: {e}"),
        })?;
        Ok(seal(&self.cipher, nonce, tokens))
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Fails unless whoever runs can write the cache at `path`: open its lock file and
    /// create a file in its folder (what every write does). A gateway that dropped root
    /// checks this at start, rather than losing every token it fetches to a failed write.
    pub fn check_writable(path: &Path) -> Result<(), CacheError> {
        let io = |what: &str, e: std::io::Error| CacheError::Io {
            path: path.display().to_string(),
            reason: format!("{what}: {e}"),
        };
        let mut probe_name = path.file_name().unwrap_or_default().to_os_string();
        probe_name.push(format!(".probe{}", std::process::id()));
        let probe = path.with_file_name(probe_name);
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&probe)
            .map_err(|e| io("cannot create a file beside it", e))?;
        let _ = std::fs::remove_file(&probe);
        lock_file(path)
            .map(drop)
            .map_err(|e| io("cannot open the lock file beside it", e))
    }

    /// Writes `ours` merged with what the file holds now, and returns the merged tokens.
    ///
    /// The running gateway and `mailtls oauth login` both write the file: each entry is kept
    /// in whichever version changed last (ours on a tie), and entries only the file holds are
    /// kept, so neither process overwrites the other's sign-in or refresh. An exclusive lock
    /// on `<file>.lock` makes the read and the write one step.
    pub fn merge_write(&self, ours: &[CachedToken]) -> Result<Vec<CachedToken>, CacheError> {
        let io = |what: &str, e: std::io::Error| CacheError::Io {
            path: self.path.display().to_string(),
            reason: format!("{what}: {e}"),
        };
        let lock =
            lock_file(&self.path).map_err(|e| io("cannot open the lock file beside it", e))?;
        lock.lock().map_err(|e| io("cannot lock", e))?;
        let theirs = match std::fs::read(&self.path) {
            Ok(bytes) => self.decode(&bytes)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io("cannot read", e)),
        };
        let merged = merge(ours, theirs);
        self.write(&merged)?;
        // Dropping `lock` closes it, which releases the lock.
        Ok(merged)
    }

    /// Replaces the file's content with `tokens`: a temporary file, mode 0600, flushed to disk,
    /// then renamed over the cache.
    pub fn write(&self, tokens: &[CachedToken]) -> Result<(), CacheError> {
        let io = |what: &str, e: std::io::Error| CacheError::Io {
            path: self.path.display().to_string(),
            reason: format!("{what}: {e}"),
        };
        let bytes = self.encode(tokens)?;
        let mut temp_name = self.path.file_name().unwrap_or_default().to_os_string();
        temp_name.push(format!(".tmp{}", std::process::id()));
        let temp = self.path.with_file_name(temp_name);
        let _ = std::fs::remove_file(&temp);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)
            .map_err(|e| io("cannot create a temporary file beside it", e))?;
        let written = file
            .write_all(&bytes)
            .and_then(|()| file.sync_all())
            .map_err(|e| io("cannot write", e))
            .and_then(|()| std::fs::rename(&temp, &self.path).map_err(|e| io("cannot replace", e)));
        if written.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        written
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> CacheKey {
        CacheKey::from_base64(&STANDARD.encode([byte; 32])).unwrap()
    }

    fn sample() -> Vec<CachedToken> {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        vec![CachedToken {
            key: TokenKey {
                app: "contoso".into(),
                mailbox: "scanner@contoso.com".into(),
                scope: "https://outlook.office365.com/.default".into(),
            },
            access: Some((
                Secret::new("eyJ-access-token-value"),
                Lifetime::starting(now, Some(Duration::from_secs(3600))),
            )),
            refresh: Some(Secret::new("refresh-token-value")),
            last_error: Some(RefreshFailure {
                at: now,
                message: "token endpoint refused: invalid_grant".into(),
            }),
            updated_at: now,
        }]
    }

    fn temp_path(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("mailtls-cache-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("tokens.enc")
    }

    #[test]
    fn two_writers_keep_each_others_newer_entries() {
        let path = temp_path("merge");
        let gateway = TokenCacheFile::new(&path, &key(7));
        let login = TokenCacheFile::new(&path, &key(7));
        let mut shared = sample()[0].clone();
        let mut other = shared.clone();
        other.key.mailbox = "frontdesk@contoso.com".into();
        gateway.merge_write(&[shared.clone()]).unwrap();

        // `oauth login` signs a second mailbox in and refreshes the first one later.
        shared.refresh = Some(Secret::new("newer-refresh-token"));
        shared.updated_at += Duration::from_secs(60);
        login.merge_write(&[shared.clone(), other.clone()]).unwrap();

        // The gateway, still holding its older copy of the first mailbox only, writes.
        let older = sample()[0].clone();
        let merged = gateway.merge_write(&[older]).unwrap();
        assert_eq!(merged, vec![other.clone(), shared.clone()]);
        let (_, on_disk) = TokenCacheFile::open(&path, &key(7)).unwrap();
        assert_eq!(on_disk, vec![other, shared]);
    }

    #[test]
    fn a_written_cache_reads_back_whole_and_holds_no_token_in_clear() {
        let path = temp_path("roundtrip");
        let (file, tokens) = TokenCacheFile::open(&path, &key(7)).unwrap();
        assert!(tokens.is_empty(), "a missing file is an empty cache");
        file.write(&sample()).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let haystack = String::from_utf8_lossy(&bytes);
        for secret in [
            "eyJ-access-token-value",
            "refresh-token-value",
            "scanner@contoso.com",
        ] {
            assert!(!haystack.contains(secret), "{secret} in clear");
        }
        let (_, tokens) = TokenCacheFile::open(&path, &key(7)).unwrap();
        assert_eq!(tokens, sample());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn each_write_uses_a_new_nonce() {
        let path = temp_path("nonce");
        let (file, _) = TokenCacheFile::open(&path, &key(1)).unwrap();
        file.write(&sample()).unwrap();
        let first = std::fs::read(&path).unwrap();
        file.write(&sample()).unwrap();
        let second = std::fs::read(&path).unwrap();
        assert_ne!(
            first[MAGIC.len()..MAGIC.len() + NONCE_LEN],
            second[MAGIC.len()..MAGIC.len() + NONCE_LEN]
        );
    }

    #[test]
    fn a_wrong_key_is_an_error_that_says_so_not_an_empty_cache() {
        let path = temp_path("wrongkey");
        let (file, _) = TokenCacheFile::open(&path, &key(1)).unwrap();
        file.write(&sample()).unwrap();
        let err = TokenCacheFile::open(&path, &key(2)).unwrap_err();
        assert!(matches!(err, CacheError::WrongKey { .. }), "{err}");
        assert!(err.to_string().contains("wrong key"), "{err}");
    }

    #[test]
    fn an_altered_file_is_refused() {
        let path = temp_path("altered");
        let (file, _) = TokenCacheFile::open(&path, &key(1)).unwrap();
        file.write(&sample()).unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert!(TokenCacheFile::open(&path, &key(1)).is_err());
        std::fs::write(&path, b"something else").unwrap();
        let err = TokenCacheFile::open(&path, &key(1)).unwrap_err();
        assert!(matches!(err, CacheError::NotACache { .. }), "{err}");
    }

    #[test]
    fn keys_must_be_32_bytes_of_base64() {
        assert!(CacheKey::from_base64(&STANDARD.encode([0u8; 32])).is_ok());
        assert!(CacheKey::from_base64(&format!(" {}\n", STANDARD.encode([0u8; 32]))).is_ok());
        assert!(CacheKey::from_base64(&STANDARD.encode([0u8; 16]))
            .unwrap_err()
            .contains("16 bytes"));
        assert!(CacheKey::from_base64("not base64!").is_err());
        let err =
            CacheKey::load(&CacheKeySource::Env("MAILTLS_TEST_UNSET_KEY".into())).unwrap_err();
        assert!(err.to_string().contains("MAILTLS_TEST_UNSET_KEY"), "{err}");
    }
}
