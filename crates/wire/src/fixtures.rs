//! Captured handshakes shared by the tests of several modules.
//!
//! The hellos come from real clients on this machine (`openssl s_client` and `curl` 7.88,
//! both on OpenSSL 3.0) pointed at a socket that only records what it receives.

/// `openssl s_client -tls1 -cipher 'DEFAULT:@SECLEVEL=0' -servername printer.example`
pub(crate) const OPENSSL_TLS10: &[u8] = include_bytes!("testdata/openssl_tls10_hello.bin");
/// `openssl s_client -tls1_3 -servername mail.example.org -alpn imap`
pub(crate) const OPENSSL_TLS13: &[u8] = include_bytes!("testdata/openssl_tls13_hello.bin");
/// `openssl s_client -max_send_frag 512` with a long ALPN list: a 600-byte hello in two records.
pub(crate) const OPENSSL_TWO_RECORDS: &[u8] =
    include_bytes!("testdata/openssl_two_record_hello.bin");
/// `curl --tlsv1.0 --tls-max 1.0 https://localhost.example:4443/`
pub(crate) const CURL_TLS10: &[u8] = include_bytes!("testdata/curl_tls10_hello.bin");
/// `curl https://mail.example.com:4443/` (TLS 1.3, padded to 512 bytes)
pub(crate) const CURL_DEFAULT: &[u8] = include_bytes!("testdata/curl_default_hello.bin");

/// Every captured hello.
pub(crate) const HELLOS: [&[u8]; 5] = [
    OPENSSL_TLS10,
    OPENSSL_TLS13,
    OPENSSL_TWO_RECORDS,
    CURL_TLS10,
    CURL_DEFAULT,
];

/// A ClientHello from FoxIO's JA4 test captures and the fingerprint FoxIO expects for it.
pub(crate) struct Ja4Vector {
    pub(crate) source: String,
    pub(crate) ja4: String,
    pub(crate) hello: Vec<u8>,
}

/// The vectors of `testdata/foxio_ja4_vectors.txt`.
pub(crate) fn foxio_vectors() -> Vec<Ja4Vector> {
    include_str!("testdata/foxio_ja4_vectors.txt")
        .lines()
        .filter(|line| !line.starts_with('#'))
        .map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let [source, ja4, hex] = fields[..] else {
                panic!("bad vector line {line:?}");
            };
            let hello = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                .collect();
            Ja4Vector {
                source: source.to_string(),
                ja4: ja4.to_string(),
                hello,
            }
        })
        .collect()
}
