//! [`EncryptedStore`]: AES-256-GCM at rest over any store, with a key ring.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use bytes::Bytes;
use parking_lot::RwLock;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::{CasOutcome, Exclusive, Expiry, L2Store, Store, Update, UpdateFn, Version, VersionedBlob, VersionedStore};
use crate::error::{Error, ErrorKind, Result};

const MAGIC: &[u8; 4] = b"TCE\x01";
const KEY_ID_LEN: usize = 8;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const HEADER_LEN: usize = MAGIC.len() + KEY_ID_LEN;
/// Length of an envelope around an empty plaintext.
pub const ENVELOPE_OVERHEAD: usize = HEADER_LEN + NONCE_LEN + TAG_LEN;

/// A key id: a fingerprint of the key, safe to show.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId([u8; KEY_ID_LEN]);

impl KeyId {
    /// The id as stored in an envelope.
    pub fn bytes(&self) -> [u8; KEY_ID_LEN] {
        self.0
    }
}

impl std::fmt::Display for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl std::fmt::Debug for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// One AES-256 key. The bytes are held only inside the cipher, which wipes them on
/// drop; `Debug` shows the key id alone.
#[derive(Clone)]
pub struct EncryptionKey {
    id: KeyId,
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncryptionKey").field("id", &self.id).finish_non_exhaustive()
    }
}

fn bad_key(source: &str, why: &str) -> Error {
    Error::new(ErrorKind::InvalidArgument, format!("{source}: {why}"))
}

impl EncryptionKey {
    /// A key from exactly 32 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        if bytes.len() != 32 {
            return Err(bad_key("encryption key", &format!("expected 32 bytes, got {}", bytes.len())));
        }
        let mut h = Sha256::new();
        h.update(b"tokencache-key-id\0");
        h.update(bytes);
        let digest = h.finalize();
        let mut id = [0; KEY_ID_LEN];
        id.copy_from_slice(&digest[..KEY_ID_LEN]);
        let cipher = Aes256Gcm::new_from_slice(bytes).map_err(|_| bad_key("encryption key", "rejected by AES"))?;
        Ok(EncryptionKey { id: KeyId(id), cipher })
    }

    /// A key from text: 64 hex digits or the base64 (standard or URL-safe, padded or
    /// not) of 32 bytes. Surrounding whitespace is ignored.
    pub fn parse(text: &str) -> Result<Self> {
        Self::parse_from(text, "encryption key")
    }

    fn parse_from(text: &str, source: &str) -> Result<Self> {
        let text = text.trim();
        let bytes =
            decode_key_text(text).ok_or_else(|| bad_key(source, "expected 32 bytes as 64 hex digits or base64"))?;
        if bytes.len() != 32 {
            return Err(bad_key(source, &format!("expected 32 bytes, got {}", bytes.len())));
        }
        Self::from_bytes(&bytes)
    }

    /// A new random key.
    pub fn generate() -> Result<Self> {
        Self::from_bytes(&random_key_bytes()?[..])
    }

    /// A new random key as base64 text, for [`parse`](Self::parse), an environment
    /// variable or a key file. The caller owns a secret: don't log it.
    pub fn generate_text() -> Result<String> {
        Ok(base64::engine::general_purpose::STANDARD.encode(&random_key_bytes()?[..]))
    }

    /// This key's id.
    pub fn id(&self) -> KeyId {
        self.id
    }
}

fn random_key_bytes() -> Result<Zeroizing<[u8; 32]>> {
    let mut k = Zeroizing::new([0u8; 32]);
    getrandom::fill(&mut k[..]).map_err(|e| Error::new(ErrorKind::Io, format!("OS random generator: {e}")))?;
    Ok(k)
}

fn decode_key_text(text: &str) -> Option<Zeroizing<Vec<u8>>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        let bytes = (0..32).map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()).collect::<Option<Vec<u8>>>();
        return bytes.map(Zeroizing::new);
    }
    [STANDARD, URL_SAFE, STANDARD_NO_PAD, URL_SAFE_NO_PAD].iter().find_map(|e| e.decode(text).ok().map(Zeroizing::new))
}

/// The keys an [`EncryptedStore`] knows: it encrypts with the primary and decrypts
/// with whichever key a blob names. To rotate, make the new key primary and keep
/// the old one until everything written under it has been rewritten or expired.
#[derive(Clone, Debug)]
pub struct KeyRing {
    /// The primary first; no two with the same id.
    keys: Vec<EncryptionKey>,
}

impl KeyRing {
    /// A ring of one key, the primary.
    pub fn new(primary: EncryptionKey) -> Self {
        KeyRing { keys: vec![primary] }
    }

    /// This ring plus `key`, used only to decrypt (ignored if already present).
    pub fn with_key(mut self, key: EncryptionKey) -> Self {
        if !self.keys.iter().any(|k| k.id == key.id) {
            self.keys.push(key);
        }
        self
    }

    /// Keys from text: separated by whitespace or commas, the first one primary.
    pub fn parse(text: &str) -> Result<Self> {
        Self::parse_from(text, "key ring")
    }

    fn parse_from(text: &str, source: &str) -> Result<Self> {
        let mut keys = text.split(|c: char| c == ',' || c.is_whitespace()).filter(|s| !s.is_empty());
        let first = keys.next().ok_or_else(|| bad_key(source, "no key"))?;
        let mut ring = KeyRing::new(EncryptionKey::parse_from(first, source)?);
        for (i, k) in keys.enumerate() {
            ring = ring.with_key(EncryptionKey::parse_from(k, &format!("{source} (key {})", i + 2))?);
        }
        Ok(ring)
    }

    /// Keys from the environment variable `var`, as [`parse`](Self::parse) reads them.
    pub fn from_env(var: &str) -> Result<Self> {
        let source = format!("environment variable {var}");
        let text = Zeroizing::new(std::env::var(var).map_err(|e| bad_key(&source, &e.to_string()))?);
        Self::parse_from(&text, &source)
    }

    /// Keys from a file: either exactly 32 raw bytes (one key), or text as
    /// [`parse`](Self::parse) reads it.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = Zeroizing::new(std::fs::read(path).map_err(|e| Error::io(path, "read key file", &e))?);
        let source = format!("key file {}", path.display());
        if bytes.len() == 32 {
            return Ok(KeyRing::new(EncryptionKey::from_bytes(&bytes)?));
        }
        let text = std::str::from_utf8(&bytes).map_err(|_| bad_key(&source, "neither 32 raw bytes nor text"))?;
        Self::parse_from(text, &source)
    }

    /// The key new blobs are encrypted with.
    pub fn primary(&self) -> &EncryptionKey {
        &self.keys[0]
    }

    /// Every key id, the primary's first.
    pub fn key_ids(&self) -> Vec<KeyId> {
        self.keys.iter().map(|k| k.id).collect()
    }

    /// Seals `plaintext` for storage under `partition_key` with the primary key.
    pub fn encrypt(&self, partition_key: &str, plaintext: &[u8]) -> Result<Vec<u8>> {
        let key = self.primary();
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|e| Error::new(ErrorKind::Io, format!("OS random generator: {e}")))?;
        let mut out = Vec::with_capacity(ENVELOPE_OVERHEAD + plaintext.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&key.id.0);
        let aad = aad(&out, partition_key);
        out.extend_from_slice(&nonce);
        let sealed = key
            .cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad: &aad })
            .map_err(|_| Error::new(ErrorKind::InvalidArgument, "blob too large to encrypt"))?;
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Opens a blob stored under `partition_key`.
    ///
    /// Errors: [`ErrorKind::KeyMismatch`] if sealed with a key not in this ring;
    /// [`ErrorKind::DecryptionFailed`] if it is not an envelope, was altered or
    /// truncated, or was sealed for another partition key.
    pub fn decrypt(&self, partition_key: &str, blob: &[u8]) -> Result<Vec<u8>> {
        if blob.len() < ENVELOPE_OVERHEAD || !blob.starts_with(MAGIC) {
            return Err(Error::new(
                ErrorKind::DecryptionFailed,
                "not a tokencache encrypted blob (bad magic or length)",
            ));
        }
        let mut id = KeyId([0; KEY_ID_LEN]);
        id.0.copy_from_slice(&blob[MAGIC.len()..HEADER_LEN]);
        let Some(key) = self.keys.iter().find(|k| k.id == id) else {
            let known: Vec<String> = self.keys.iter().map(|k| k.id.to_string()).collect();
            return Err(Error::new(
                ErrorKind::KeyMismatch,
                format!("blob encrypted with key {id}, which is not in the key ring ({})", known.join(", ")),
            ));
        };
        let aad = aad(&blob[..HEADER_LEN], partition_key);
        let nonce = Nonce::from_slice(&blob[HEADER_LEN..HEADER_LEN + NONCE_LEN]);
        key.cipher.decrypt(nonce, Payload { msg: &blob[HEADER_LEN + NONCE_LEN..], aad: &aad }).map_err(|_| {
            Error::new(
                ErrorKind::DecryptionFailed,
                format!(
                    "blob under key id {id} failed authentication: altered, truncated, or stored under another partition key"
                ),
            )
        })
    }
}

/// The id of the key `blob` was sealed with, if it is an [`EncryptedStore`]
/// envelope; `None` for anything else (plaintext). Needs no key, reveals nothing secret.
pub fn envelope_key_id(blob: &[u8]) -> Option<KeyId> {
    if blob.len() < ENVELOPE_OVERHEAD || !blob.starts_with(MAGIC) {
        return None;
    }
    let mut id = KeyId([0; KEY_ID_LEN]);
    id.0.copy_from_slice(&blob[MAGIC.len()..HEADER_LEN]);
    Some(id)
}

fn aad(header: &[u8], partition_key: &str) -> Vec<u8> {
    let mut a = Vec::with_capacity(header.len() + partition_key.len());
    a.extend_from_slice(header);
    a.extend_from_slice(partition_key.as_bytes());
    a
}

/// How an [`EncryptedStore`] treats blobs it cannot open.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EncryptionOptions {
    /// A blob sealed with a key not in the ring reads as absent (still counted and
    /// logged) instead of failing with [`ErrorKind::KeyMismatch`]. Default false.
    pub key_mismatch_as_miss: bool,
    /// A blob without the envelope's magic is returned as is (counted and logged),
    /// so a store written before encryption was turned on stays readable until
    /// rewritten. Default false: such a blob fails with
    /// [`ErrorKind::DecryptionFailed`], since anyone who can write to the store
    /// could otherwise plant plaintext.
    pub allow_unencrypted: bool,
}

/// Counters of an [`EncryptedStore`] since creation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EncryptionStats {
    /// Blobs sealed with a key the ring lacks.
    pub key_mismatches: u64,
    /// Blobs that failed authentication or were not envelopes.
    pub decryption_failures: u64,
    /// Plaintext blobs passed through under
    /// [`allow_unencrypted`](EncryptionOptions::allow_unencrypted).
    pub unencrypted_reads: u64,
}

/// Encrypts blobs on their way into `S` and decrypts them on the way out, with
/// AES-256-GCM (RustCrypto's `aes-gcm`) and a [`KeyRing`] for rotation.
/// Thread-safe; the key ring can be replaced while in use.
///
/// A stored blob is an envelope:
///
/// ```text
/// magic "TCE\x01" (4) | key id (8) | nonce (12) | ciphertext + GCM tag (16)
/// ```
///
/// The key id is a fingerprint of the key (the first 8 bytes of
/// SHA-256(`"tokencache-key-id\0"` ‖ key)), so a reader knows which key of its ring
/// to use without trying them all, and a key it lacks is reported as
/// [`ErrorKind::KeyMismatch`] rather than as tampering. The associated data is the
/// envelope header and the partition key the blob is stored under: a blob copied to
/// another partition's key (another user's) fails authentication
/// ([`ErrorKind::DecryptionFailed`]). Nonces are 96 random bits from the OS; rotate
/// the primary key well before 2^32 writes under it.
///
/// Key bytes never appear in `Debug` output, logs or errors: only key ids do.
///
/// ```
/// use bytes::Bytes;
/// use tokencache::store::{EncryptedStore, EncryptionKey, Expiry, KeyRing, MemoryStore, Store};
///
/// let old = EncryptionKey::generate()?;
/// let store = EncryptedStore::new(MemoryStore::default(), KeyRing::new(old.clone()));
/// store.set("uid.utid", Bytes::from_static(b"{}"), Expiry::NEVER)?;
/// // Rotate: a new primary, the old key kept for what it wrote.
/// store.set_key_ring(KeyRing::new(EncryptionKey::generate()?).with_key(old));
/// assert_eq!(store.get("uid.utid")?.as_deref(), Some(&b"{}"[..]));
/// # Ok::<(), tokencache::Error>(())
/// ```
pub struct EncryptedStore<S: Store> {
    inner: S,
    ring: RwLock<Arc<KeyRing>>,
    options: EncryptionOptions,
    key_mismatches: AtomicU64,
    decryption_failures: AtomicU64,
    unencrypted_reads: AtomicU64,
}

impl<S: Store + std::fmt::Debug> std::fmt::Debug for EncryptedStore<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncryptedStore")
            .field("inner", &self.inner)
            .field("key_ids", &self.ring.read().key_ids())
            .field("options", &self.options)
            .finish()
    }
}

impl<S: Store> EncryptedStore<S> {
    /// Encrypts into `inner` with `ring`, default options.
    pub fn new(inner: S, ring: KeyRing) -> Self {
        Self::with_options(inner, ring, EncryptionOptions::default())
    }

    /// Encrypts into `inner` with `ring`.
    pub fn with_options(inner: S, ring: KeyRing, options: EncryptionOptions) -> Self {
        EncryptedStore {
            inner,
            ring: RwLock::new(Arc::new(ring)),
            options,
            key_mismatches: AtomicU64::new(0),
            decryption_failures: AtomicU64::new(0),
            unencrypted_reads: AtomicU64::new(0),
        }
    }

    /// Replaces the key ring (rotation): later writes use its primary.
    pub fn set_key_ring(&self, ring: KeyRing) {
        *self.ring.write() = Arc::new(ring);
    }

    /// The key ring in use.
    pub fn key_ring(&self) -> Arc<KeyRing> {
        self.ring.read().clone()
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// The counters now.
    pub fn stats(&self) -> EncryptionStats {
        EncryptionStats {
            key_mismatches: self.key_mismatches.load(Ordering::Relaxed),
            decryption_failures: self.decryption_failures.load(Ordering::Relaxed),
            unencrypted_reads: self.unencrypted_reads.load(Ordering::Relaxed),
        }
    }
}

impl<S: Store> EncryptedStore<S> {
    fn open_blob(&self, key: &str, blob: Bytes) -> Result<Option<Bytes>> {
        if self.options.allow_unencrypted && !blob.starts_with(MAGIC) {
            self.unencrypted_reads.fetch_add(1, Ordering::Relaxed);
            log::warn!("encrypted store: returned an unencrypted blob as is (allow_unencrypted)");
            return Ok(Some(blob));
        }
        let ring = self.key_ring();
        match ring.decrypt(key, &blob) {
            Ok(plain) => Ok(Some(Bytes::from(plain))),
            Err(e) if e.kind() == ErrorKind::KeyMismatch => {
                self.key_mismatches.fetch_add(1, Ordering::Relaxed);
                if self.options.key_mismatch_as_miss {
                    log::warn!("encrypted store: {e}; read as a miss (key_mismatch_as_miss)");
                    Ok(None)
                } else {
                    log::warn!("encrypted store: {e}");
                    Err(e)
                }
            }
            Err(e) => {
                self.decryption_failures.fetch_add(1, Ordering::Relaxed);
                log::warn!("encrypted store: {e}");
                Err(e)
            }
        }
    }
}

/// The deadline is the inner store's: an L1 above may cache the decrypted blob
/// exactly as long.
impl<S: L2Store> L2Store for EncryptedStore<S> {
    fn get_with_deadline(&self, key: &str) -> Result<Option<(Bytes, Option<i64>)>> {
        let Some((blob, deadline)) = self.inner.get_with_deadline(key)? else { return Ok(None) };
        Ok(self.open_blob(key, blob)?.map(|b| (b, deadline)))
    }
}

impl<S: Store> Store for EncryptedStore<S> {
    fn get(&self, key: &str) -> Result<Option<Bytes>> {
        match self.inner.get(key)? {
            Some(blob) => self.open_blob(key, blob),
            None => Ok(None),
        }
    }

    fn set(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<()> {
        let sealed = self.key_ring().encrypt(key, &value)?;
        self.inner.set(key, Bytes::from(sealed), expiry)
    }

    fn remove(&self, key: &str) -> Result<()> {
        self.inner.remove(key)
    }

    fn purge_expired(&self) -> Result<u64> {
        self.inner.purge_expired()
    }

    fn as_versioned(&self) -> Option<&dyn VersionedStore> {
        self.inner.as_versioned().map(|_| self as &dyn VersionedStore)
    }
}

impl<S: Store> EncryptedStore<S> {
    fn versioned_inner(&self) -> Result<&dyn VersionedStore> {
        self.inner.as_versioned().ok_or_else(|| {
            Error::new(ErrorKind::InvalidArgument, "the store under this EncryptedStore keeps no versions")
        })
    }

    /// A versioned blob decrypted. One read as a miss (a foreign key, with
    /// `key_mismatch_as_miss`) is an empty blob at its version, so a conditional
    /// write can replace it.
    fn open_versioned(&self, key: &str, b: VersionedBlob) -> Result<VersionedBlob> {
        let value = self.open_blob(key, b.value)?.unwrap_or_default();
        Ok(VersionedBlob { value, ..b })
    }
}

/// Versions pass through: the inner store versions the envelopes.
impl<S: Store> VersionedStore for EncryptedStore<S> {
    fn get_versioned(&self, key: &str) -> Result<Option<VersionedBlob>> {
        self.versioned_inner()?.get_versioned(key)?.map(|b| self.open_versioned(key, b)).transpose()
    }

    fn version(&self, key: &str) -> Result<Option<Version>> {
        self.versioned_inner()?.version(key)
    }

    fn compare_and_set(
        &self,
        key: &str,
        expected: Option<Version>,
        value: Bytes,
        expiry: Expiry,
    ) -> Result<CasOutcome> {
        let sealed = self.key_ring().encrypt(key, &value)?;
        self.versioned_inner()?.compare_and_set(key, expected, Bytes::from(sealed), expiry)
    }

    fn compare_and_remove(&self, key: &str, expected: Version) -> Result<bool> {
        self.versioned_inner()?.compare_and_remove(key, expected)
    }

    fn update_exclusive(&self, key: &str, update: &mut UpdateFn<'_>) -> Result<Exclusive> {
        let inner = self.versioned_inner()?;
        inner.update_exclusive(key, &mut |current: Option<&VersionedBlob>| {
            let plain = current.cloned().map(|b| self.open_versioned(key, b)).transpose()?;
            Ok(match update(plain.as_ref())? {
                Update::Write(value, expiry) => {
                    Update::Write(Bytes::from(self.key_ring().encrypt(key, &value)?), expiry)
                }
                other => other,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_name_their_key() {
        let ring = KeyRing::new(EncryptionKey::generate().unwrap());
        let sealed = ring.encrypt("p", b"{}").unwrap();
        assert_eq!(envelope_key_id(&sealed), Some(ring.primary().id()));
        assert_eq!(envelope_key_id(b"{\"AccessToken\": {}}"), None);
        assert_eq!(envelope_key_id(&sealed[..ENVELOPE_OVERHEAD - 1]), None);
    }

    #[test]
    fn key_text_forms() {
        let hex = "00".repeat(31) + "ff";
        let k1 = EncryptionKey::parse(&hex).unwrap();
        let mut raw = [0u8; 32];
        raw[31] = 0xff;
        let b64 = base64::engine::general_purpose::STANDARD.encode(raw);
        let k2 = EncryptionKey::parse(&format!("  {b64}\n")).unwrap();
        assert_eq!(k1.id(), k2.id());
        assert_eq!(k1.id(), EncryptionKey::from_bytes(&raw).unwrap().id());
        assert!(EncryptionKey::parse("c2hvcnQ=").is_err());
        let text = EncryptionKey::generate_text().unwrap();
        assert!(EncryptionKey::parse(&text).is_ok());
    }

    #[test]
    fn debug_and_errors_hold_no_key_bytes() {
        let raw = [0x5au8; 32];
        let key = EncryptionKey::from_bytes(&raw).unwrap();
        let shown = format!("{key:?} {:?}", KeyRing::new(key.clone()));
        let b64 = base64::engine::general_purpose::STANDARD.encode(raw);
        assert!(!shown.contains(&b64) && !shown.contains("5a5a5a"), "{shown}");
        let short = EncryptionKey::parse(&b64[..20]).unwrap_err();
        assert!(!short.message().contains(&b64[..20]), "{short:?}");
    }

    #[test]
    fn header_is_authenticated() {
        let ring = KeyRing::new(EncryptionKey::generate().unwrap());
        let mut blob = ring.encrypt("p", b"hello").unwrap();
        assert_eq!(blob.len(), ENVELOPE_OVERHEAD + 5);
        assert_eq!(ring.decrypt("p", &blob).unwrap(), b"hello");
        let last = blob.len() - 1;
        blob[last] ^= 1;
        assert_eq!(ring.decrypt("p", &blob).unwrap_err().kind(), ErrorKind::DecryptionFailed);
    }
}
