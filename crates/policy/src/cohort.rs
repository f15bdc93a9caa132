//! Rollout cohorts: each client gets a fixed place in `[0, 1)` from a keyed hash of its
//! identity, and is refused once the window's progress passes that place. Progress only grows,
//! so a client refused once stays refused, and the refused share grows linearly.

use std::hash::Hasher;
use std::net::IpAddr;

use sha2::{Digest, Sha256};
use siphasher::sip::SipHasher13;

/// The 128-bit SipHash key that places clients in cohorts. Keyed, so that who is refused
/// first cannot be predicted (or gamed) from the login alone without the deployment's key.
#[derive(Clone, PartialEq, Eq)]
pub struct CohortKey([u8; 16]);

impl CohortKey {
    /// A key from a deployment secret (`cohort_key` in the config): the first 16 bytes of its
    /// SHA-256, so any text makes a full-width key.
    pub fn from_secret(secret: &str) -> CohortKey {
        CohortKey::derive(b"mailtls cohort key\0", secret)
    }

    /// The key used when the config sets none: derived from the policy's name, so cohorts are
    /// stable across restarts but differ between policies.
    pub fn from_policy_name(name: &str) -> CohortKey {
        CohortKey::derive(b"mailtls cohort of policy\0", name)
    }

    fn derive(domain: &[u8], text: &str) -> CohortKey {
        let digest = Sha256::new()
            .chain_update(domain)
            .chain_update(text.as_bytes())
            .finalize();
        let mut key = [0u8; 16];
        key.copy_from_slice(&digest[..16]);
        CohortKey(key)
    }

    /// The client's place: a 64-bit fraction of the whole (`place / 2^64`). The identity is
    /// the login when known (ASCII case folded, as mail servers compare them), else the address.
    pub(crate) fn place(&self, login: Option<&str>, address: IpAddr) -> u64 {
        let mut hasher = SipHasher13::new_with_key(&self.0);
        match login {
            Some(login) => {
                hasher.write_u8(b'u');
                for byte in login.bytes() {
                    hasher.write_u8(byte.to_ascii_lowercase());
                }
            }
            None => {
                hasher.write_u8(b'a');
                match address {
                    IpAddr::V4(v4) => hasher.write(&v4.octets()),
                    IpAddr::V6(v6) => hasher.write(&v6.octets()),
                }
            }
        }
        hasher.finish()
    }
}

// The key is a deployment secret: Debug never shows it.
impl std::fmt::Debug for CohortKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CohortKey(..)")
    }
}
