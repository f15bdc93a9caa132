//! Client-side TLS through OpenSSL: the one maintained stack that still speaks TLS 1.0/1.1.
//! Legacy versions are switched on per listener, never by default.

use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::Duration;

use openssl::dh::Dh;
use openssl::ssl::{
    SslAcceptor, SslAcceptorBuilder, SslConnector, SslFiletype, SslMethod, SslOptions,
    SslVerifyMode, SslVersion,
};
use wire::TlsVersion;

use crate::error::SetupError;
use crate::settings::ListenerSettings;

/// Suites for listeners that accept TLS 1.0/1.1, named one by one so the order is exactly what
/// is written here, in the server's order of preference (OpenSSL drops the ones a version or
/// the certificate's key type cannot use):
/// 1. ECDHE with AES-GCM, then ChaCha20-Poly1305: TLS 1.2 clients;
/// 2. ECDHE with AES-CBC and SHA-1: forward secrecy for TLS 1.0/1.1 clients;
/// 3. DHE-RSA with AES-CBC: forward secrecy for old clients without elliptic curves;
/// 4. RSA key exchange with AES-CBC, last, for devices that know nothing else.
///
/// OpenSSL 3 offers the legacy versions only at security level 0.
const LEGACY_CIPHERS: &str = "\
    ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:\
    ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:\
    ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:\
    ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA:ECDHE-RSA-AES256-SHA:\
    DHE-RSA-AES128-SHA:DHE-RSA-AES256-SHA:\
    AES128-SHA:AES256-SHA:\
    @SECLEVEL=0";

/// The 2048-bit finite-field group of RFC 7919 (`ffdhe2048`) for DHE, exactly as OpenSSL 3.0
/// prints its built-in group (`openssl genpkey -genparam -algorithm DH -pkeyopt
/// group:ffdhe2048`). Chosen over `Dh::get_2048_256` (RFC 5114's group, whose subgroup and origin
/// cannot be checked, and which OpenSSL 3.0 keeps only for compatibility) and over OpenSSL's
/// automatic choice (which picks a 1024-bit group for a 1024-bit RSA key at security level 0).
const FFDHE2048: &[u8] = b"-----BEGIN DH PARAMETERS-----
MIIBCAKCAQEA//////////+t+FRYortKmq/cViAnPTzx2LnFg84tNpWp4TZBFGQz
+8yTnc4kmz75fS/jY2MMddj2gbICrsRhetPfHtXV/WVhJDP1H18GbtCFY2VVPe0a
87VXE15/V8k1mE8McODmi3fipona8+/och3xWKE2rec1MKzKT0g6eXq8CrGCsyT7
YdEIqUuyyOP7uWrat2DX9GgdT0Kj3jlN9K5W7edjcrsZCwenyO4KbXCeAvzhzffi
7MA0BM0oNC9hkXL+nOmFg/+OTxIy7vKBg8P+OxtMb61zO7X8vC7CIAXFjvGDfRaD
ssbzSibBsu/6iGtCOGEoXJf//////////wIBAg==
-----END DH PARAMETERS-----
";

/// Builds the OpenSSL acceptor for a TLS listener.
pub fn acceptor_for(listener: &ListenerSettings) -> Result<Arc<SslAcceptor>, SetupError> {
    Ok(Arc::new(builder_for(listener)?.build()))
}

fn builder_for(listener: &ListenerSettings) -> Result<SslAcceptorBuilder, SetupError> {
    let key = |field: &str| format!("listener[{}].{field}", listener.name);
    let tls_err = |field: &str, what: &str, e: openssl::error::ErrorStack| {
        SetupError::new(key(field), format!("{what}: {e}"))
    };

    if listener.min_tls < TlsVersion::Tls10 {
        return Err(SetupError::new(
            key("min_tls"),
            "SSLv3 is broken and never offered; use 1.0 or later",
        ));
    }
    let mut builder = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())
        .map_err(|e| tls_err("min_tls", "cannot create an OpenSSL context", e))?;
    // Renegotiation is off in OpenSSL 3 only by default; a client must never restart the
    // handshake inside a session. Server preference, because with clients in charge an old
    // device listing RSA key exchange first would get no forward secrecy.
    builder.set_options(SslOptions::NO_RENEGOTIATION | SslOptions::CIPHER_SERVER_PREFERENCE);
    if listener.min_tls < TlsVersion::Tls12 {
        // The v5 profile turns TLS 1.0/1.1 off through options and offers AEAD suites only;
        // undo both on this listener alone. TLS 1.2 and 1.3 clients still get the modern
        // suites first.
        builder.clear_options(SslOptions::NO_TLSV1 | SslOptions::NO_TLSV1_1);
        builder.set_security_level(0);
        builder
            .set_cipher_list(LEGACY_CIPHERS)
            .map_err(|e| tls_err("min_tls", "OpenSSL refused the legacy cipher list", e))?;
        // Set here rather than left to the profile: the DHE suites above depend on it.
        let dh = Dh::params_from_pem(FFDHE2048)
            .map_err(|e| tls_err("min_tls", "OpenSSL refused the DH group", e))?;
        builder
            .set_tmp_dh(&dh)
            .map_err(|e| tls_err("min_tls", "OpenSSL refused the DH group", e))?;
    }
    builder
        .set_min_proto_version(Some(openssl_version(listener.min_tls)))
        .map_err(|e| tls_err("min_tls", "OpenSSL cannot use this minimum version", e))?;
    // The openssl crate's acceptor profiles already set SSL_MODE_RELEASE_BUFFERS, so idle
    // sessions hold no TLS record buffers.

    let cert = listener
        .certificate
        .as_ref()
        .ok_or_else(|| SetupError::new(key("certificate"), "a TLS listener needs a certificate"))?;
    let private_key = listener
        .key
        .as_ref()
        .ok_or_else(|| SetupError::new(key("key"), "a TLS listener needs a private key"))?;
    builder.set_certificate_chain_file(cert).map_err(|e| {
        tls_err(
            "certificate",
            &format!("cannot load the PEM chain {}", cert.display()),
            e,
        )
    })?;
    builder
        .set_private_key_file(private_key, SslFiletype::PEM)
        .map_err(|e| {
            tls_err(
                "key",
                &format!("cannot load the PEM key {}", private_key.display()),
                e,
            )
        })?;
    builder
        .check_private_key()
        .map_err(|e| tls_err("key", "the key does not match the certificate", e))?;
    Ok(builder)
}

/// Every TLS 1.3 suite OpenSSL 3.0 knows: the probe offers all of them.
const ALL_TLS13_SUITES: [&str; 5] = [
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
    "TLS_AES_128_CCM_SHA256",
    "TLS_AES_128_CCM_8_SHA256",
];

/// A listener can never offer more suites than this; the probe stops there whatever happens.
const MAX_PROBED_SUITES: usize = 64;

/// How long one probe handshake may take: both ends are in this process.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// The suites `acceptor` negotiates at `version`, most preferred first; empty when it does
/// not speak that version.
///
/// Found by asking OpenSSL itself rather than by reading the cipher string: a client in this
/// process offers every suite OpenSSL knows, the acceptor picks one (server preference is on),
/// the pick is struck from the next offer, until no handshake succeeds. So the list holds only
/// what a client can really get: suites the version, the security level and the listener's
/// certificate (RSA or ECDSA) allow.
pub fn negotiated_suites(
    acceptor: &SslAcceptor,
    version: TlsVersion,
) -> std::io::Result<Vec<&'static str>> {
    let mut found: Vec<&'static str> = Vec::new();
    while found.len() < MAX_PROBED_SUITES {
        let mut client =
            SslConnector::builder(SslMethod::tls_client()).map_err(std::io::Error::other)?;
        client.set_verify(SslVerifyMode::NONE);
        let pinned = Some(openssl_version(version));
        client
            .set_min_proto_version(pinned)
            .and_then(|()| client.set_max_proto_version(pinned))
            .map_err(std::io::Error::other)?;
        let offered = if version == TlsVersion::Tls13 {
            let rest: Vec<&str> = ALL_TLS13_SUITES
                .into_iter()
                .filter(|s| !found.contains(s))
                .collect();
            if rest.is_empty() {
                break;
            }
            client.set_ciphersuites(&rest.join(":"))
        } else {
            let struck: String = found.iter().map(|s| format!(":!{s}")).collect();
            client.set_cipher_list(&format!("ALL:COMPLEMENTOFALL{struck}:@SECLEVEL=0"))
        };
        if offered.is_err() {
            // Nothing left that OpenSSL would offer.
            break;
        }
        let Some(suite) = probe_handshake(acceptor, &client.build())? else {
            break;
        };
        found.push(suite);
    }
    Ok(found)
}

/// One handshake between `acceptor` and `connector` over a socket pair: the suite agreed on,
/// or `None` when they agree on none.
fn probe_handshake(
    acceptor: &SslAcceptor,
    connector: &SslConnector,
) -> std::io::Result<Option<&'static str>> {
    let (server_end, client_end) = UnixStream::pair()?;
    for end in [&server_end, &client_end] {
        end.set_read_timeout(Some(PROBE_TIMEOUT))?;
        end.set_write_timeout(Some(PROBE_TIMEOUT))?;
    }
    std::thread::scope(|scope| {
        // The server's side ends on its own once the client has its answer or gives up.
        scope.spawn(move || drop(acceptor.accept(server_end)));
        let client = connector
            .configure()
            .map_err(std::io::Error::other)?
            .verify_hostname(false)
            .use_server_name_indication(false)
            .connect("probe", client_end);
        Ok(client
            .ok()
            .and_then(|stream| stream.ssl().current_cipher().map(|c| c.name())))
    })
}

fn openssl_version(version: TlsVersion) -> SslVersion {
    match version {
        TlsVersion::Ssl3 | TlsVersion::Tls10 => SslVersion::TLS1,
        TlsVersion::Tls11 => SslVersion::TLS1_1,
        TlsVersion::Tls12 => SslVersion::TLS1_2,
        TlsVersion::Tls13 => SslVersion::TLS1_3,
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use openssl::asn1::Asn1Time;
    use openssl::bn::BigNum;
    use openssl::ec::{EcGroup, EcKey};
    use openssl::hash::MessageDigest;
    use openssl::nid::Nid;
    use openssl::pkey::{PKey, Private};
    use openssl::rsa::Rsa;
    use openssl::x509::{X509NameBuilder, X509};

    use super::*;
    use crate::settings::{ClientTlsMode, Protocol};

    /// A certificate and key written for one test, removed with their folder when dropped.
    struct CertFiles {
        dir: PathBuf,
        cert: PathBuf,
        key: PathBuf,
    }

    impl Drop for CertFiles {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    /// A self-signed certificate and key for `localhost` in a fresh folder.
    fn certificate(label: &str, key: &PKey<Private>) -> CertFiles {
        let dir =
            std::env::temp_dir().join(format!("mailtls-client-tls-{label}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut name = X509NameBuilder::new().unwrap();
        name.append_entry_by_nid(Nid::COMMONNAME, "localhost")
            .unwrap();
        let name = name.build();
        let mut cert = X509::builder().unwrap();
        cert.set_version(2).unwrap();
        cert.set_subject_name(&name).unwrap();
        cert.set_issuer_name(&name).unwrap();
        cert.set_pubkey(key).unwrap();
        cert.set_serial_number(&BigNum::from_u32(1).unwrap().to_asn1_integer().unwrap())
            .unwrap();
        cert.set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        cert.set_not_after(&Asn1Time::days_from_now(1).unwrap())
            .unwrap();
        cert.sign(key, MessageDigest::sha256()).unwrap();
        let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert_path, cert.build().to_pem().unwrap()).unwrap();
        std::fs::write(&key_path, key.private_key_to_pem_pkcs8().unwrap()).unwrap();
        CertFiles {
            dir,
            cert: cert_path,
            key: key_path,
        }
    }

    fn rsa_certificate() -> CertFiles {
        certificate(
            "rsa",
            &PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap(),
        )
    }

    fn ecdsa_certificate() -> CertFiles {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
        certificate(
            "ecdsa",
            &PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap(),
        )
    }

    fn listener(min_tls: TlsVersion, files: &CertFiles) -> ListenerSettings {
        ListenerSettings {
            name: "probe".into(),
            protocol: Protocol::Imap,
            bind: "127.0.0.1:993".parse().unwrap(),
            tls: ClientTlsMode::Implicit,
            min_tls,
            certificate: Some(files.cert.clone()),
            key: Some(files.key.clone()),
            upstream: "up".into(),
            greeting: "hi".into(),
            proxy_protocol: None,
            relay: None,
        }
    }

    fn suites(acceptor: &SslAcceptor, version: TlsVersion) -> Vec<&'static str> {
        negotiated_suites(acceptor, version).unwrap()
    }

    #[test]
    fn a_legacy_rsa_listener_prefers_ecdhe_then_dhe_then_rsa_key_exchange() {
        let files = rsa_certificate();
        let acceptor = acceptor_for(&listener(TlsVersion::Tls10, &files)).unwrap();
        let cbc = [
            "ECDHE-RSA-AES128-SHA",
            "ECDHE-RSA-AES256-SHA",
            "DHE-RSA-AES128-SHA",
            "DHE-RSA-AES256-SHA",
            "AES128-SHA",
            "AES256-SHA",
        ];
        assert_eq!(suites(&acceptor, TlsVersion::Tls10), cbc);
        assert_eq!(suites(&acceptor, TlsVersion::Tls11), cbc);
        let mut tls12 = vec![
            "ECDHE-RSA-AES128-GCM-SHA256",
            "ECDHE-RSA-AES256-GCM-SHA384",
            "ECDHE-RSA-CHACHA20-POLY1305",
        ];
        tls12.extend(cbc);
        assert_eq!(suites(&acceptor, TlsVersion::Tls12), tls12);
        assert_eq!(
            suites(&acceptor, TlsVersion::Tls13),
            [
                "TLS_AES_128_GCM_SHA256",
                "TLS_AES_256_GCM_SHA384",
                "TLS_CHACHA20_POLY1305_SHA256"
            ]
        );
    }

    #[test]
    fn a_legacy_ecdsa_listener_offers_only_ecdhe_ecdsa() {
        let files = ecdsa_certificate();
        let acceptor = acceptor_for(&listener(TlsVersion::Tls10, &files)).unwrap();
        assert_eq!(
            suites(&acceptor, TlsVersion::Tls10),
            ["ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA"]
        );
        assert_eq!(
            suites(&acceptor, TlsVersion::Tls12),
            [
                "ECDHE-ECDSA-AES128-GCM-SHA256",
                "ECDHE-ECDSA-AES256-GCM-SHA384",
                "ECDHE-ECDSA-CHACHA20-POLY1305",
                "ECDHE-ECDSA-AES128-SHA",
                "ECDHE-ECDSA-AES256-SHA",
            ]
        );
    }

    #[test]
    fn a_default_listener_speaks_no_legacy_version_and_only_aead_suites() {
        let files = rsa_certificate();
        let acceptor = acceptor_for(&listener(TlsVersion::Tls12, &files)).unwrap();
        assert!(suites(&acceptor, TlsVersion::Tls10).is_empty());
        assert!(suites(&acceptor, TlsVersion::Tls11).is_empty());
        assert_eq!(
            suites(&acceptor, TlsVersion::Tls12),
            [
                "ECDHE-RSA-AES128-GCM-SHA256",
                "ECDHE-RSA-AES256-GCM-SHA384",
                "ECDHE-RSA-CHACHA20-POLY1305",
                "DHE-RSA-AES128-GCM-SHA256",
                "DHE-RSA-AES256-GCM-SHA384",
            ]
        );
    }

    #[test]
    fn renegotiation_is_refused_and_the_server_chooses_on_every_listener() {
        let files = rsa_certificate();
        for min_tls in [TlsVersion::Tls10, TlsVersion::Tls12, TlsVersion::Tls13] {
            let options = builder_for(&listener(min_tls, &files)).unwrap().options();
            assert!(options.contains(SslOptions::NO_RENEGOTIATION), "{min_tls}");
            assert!(
                options.contains(SslOptions::CIPHER_SERVER_PREFERENCE),
                "{min_tls}"
            );
        }
    }

    #[test]
    fn the_dh_group_is_openssls_own_ffdhe2048() {
        let output = std::process::Command::new("openssl")
            .args(["genpkey", "-genparam", "-algorithm", "DH"])
            .args(["-pkeyopt", "group:ffdhe2048"])
            .output()
            .expect("the openssl command (lab/install.sh installs it)");
        assert!(output.status.success(), "{output:?}");
        let builtin = Dh::params_from_pem(&output.stdout).unwrap();
        let ours = Dh::params_from_pem(FFDHE2048).unwrap();
        assert_eq!(ours.prime_p(), builtin.prime_p());
        assert_eq!(ours.generator(), builtin.generator());
        assert_eq!(ours.prime_p().num_bits(), 2048);
    }
}
