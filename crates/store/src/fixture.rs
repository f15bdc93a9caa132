//! Test scaffolding: throwaway database directories and realistic records.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, UNIX_EPOCH};

use wire::TlsVersion;

use crate::{OfferedHello, Outcome, SessionRecord, Source};

/// A fresh directory under the system temp dir, removed with everything in it (the database and
/// its `-wal`/`-shm` files) when dropped.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(label: &str) -> TempDir {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let unique = format!(
            "mailtls-store-{label}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(unique);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }

    pub(crate) fn db_path(&self) -> PathBuf {
        self.0.join("sessions.db")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A TLS 1.0 Outlook session, distinguished by `n` (port, times, byte counts). Times are whole
/// milliseconds so the record survives storage unchanged.
pub(crate) fn sample_record(n: u16) -> SessionRecord {
    let start = UNIX_EPOCH + Duration::from_millis(1_784_448_000_000 + u64::from(n) * 1_001);
    SessionRecord {
        source: Source::Gateway,
        started_at: start,
        ended_at: start + Duration::from_millis(4_250),
        listener: "imaps-legacy".into(),
        protocol: "imap".into(),
        client_addr: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 17)),
        client_port: n,
        tls_version: Some(TlsVersion::Tls10),
        tls_cipher: Some("ECDHE-RSA-AES128-SHA".into()),
        offered_max_tls: Some(TlsVersion::Tls10),
        sni: Some("mail.example.org".into()),
        ja4: Some("t10d1305h1_c866b44c5a26_e8a9a4eba7c6".into()),
        offered: OfferedHello {
            versions: vec![0x0301],
            cipher_suites: vec![0xc013, 0xc014, 0x002f],
            groups: vec![0x001d, 0x0017],
            signature_algorithms: Vec::new(),
            alpn: vec!["imap".into()],
            ja3: Some("c6dbf3152a545382a95425e390e2d2e8".into()),
        },
        client_id: vec![
            ("name".into(), Some("Outlook".into())),
            ("version".into(), Some("12.0".into())),
            ("vendor".into(), None),
        ],
        login: Some("alice".into()),
        upstream: "imap.example.org:993".into(),
        upstream_tls_version: Some(TlsVersion::Tls13),
        outcome: Outcome::Ok,
        detail: None,
        bytes_from_client: 1_000 + u64::from(n),
        bytes_to_client: 250_000 + u64::from(n),
        policy: Some(crate::PolicyDecision {
            verdict: "warn".into(),
            rule: "sunset/window".into(),
            exception: None,
        }),
        envelope_sender: None,
        messages_submitted: None,
    }
}
