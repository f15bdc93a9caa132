//! Bounds on what a client controls (issue 10, item 4), against the real gateway and the lab
//! Dovecot: a user name with a Unicode format character or over 255 bytes, a NUL in a password,
//! an IMAP ID beyond RFC 2971's limits, an SNI over 255 bytes.
//!
//! Each case shows the attacker's view (the exact bytes it gets back), the bystander's view (a
//! normal client of the same gateway logs in within a second while the attacker's connection is
//! still open), that the gateway's open descriptors return to what they were before the
//! attack, that no field of any record is over its bound, and, from Dovecot's own log, that
//! a refused login never reached it: each test also makes one login Dovecot does see fail, so
//! the log check is shown able to find one.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use e2e::clients::REPLY_TIMEOUT;
use e2e::fault_lab::{record_of, standard_listeners, Lab};
use e2e::legacy_client::Client;
use e2e::run_ok;
use store::{Outcome, SessionRecord};

/// How long a bystander's whole login may take while an attacker is being refused.
const BYSTANDER_LIMIT: Duration = Duration::from_secs(1);

/// The lines of Dovecot's auth process about failed logins (`auth_verbose = yes` in the lab:
/// `auth: Info: passwd-file(alice,...): Password mismatch`, or `unknown user`): one per
/// attempt that reached it and failed.
fn dovecot_auth_failures(lab: &Lab) -> Vec<String> {
    lab.dovecot()
        .log()
        .lines()
        .filter(|l| l.contains(" auth: ") && l.contains("passwd-file("))
        .map(str::to_owned)
        .collect()
}

/// A normal IMAP or POP3 login on `listener`, whole, within [`BYSTANDER_LIMIT`].
fn bystander_logs_in(lab: &Lab, listener: &str) {
    let started = Instant::now();
    match listener.starts_with("imap") {
        true => lab.imap_login_works(listener),
        false => lab.pop3_login_works(listener),
    }
    let took = started.elapsed();
    assert!(
        took < BYSTANDER_LIMIT,
        "{listener}: a normal login took {took:?}"
    );
}

/// Every client-controlled field of every record within its bound.
fn assert_bounded(records: &[SessionRecord]) {
    for r in records {
        assert!(r.sni.as_ref().is_none_or(|s| s.len() <= 255), "{r:?}");
        assert!(r.login.as_ref().is_none_or(|l| l.len() <= 255), "{r:?}");
        assert!(r.client_id.len() <= 30, "{r:?}");
        for (name, value) in &r.client_id {
            assert!(name.len() <= 30, "{r:?}");
            assert!(value.as_ref().is_none_or(|v| v.len() <= 1024), "{r:?}");
        }
    }
}

/// A wrong password through the gateway: Dovecot must log exactly one more failure, which
/// proves that [`dovecot_auth_failures`] sees an attempt that reaches it.
fn one_wrong_password(lab: &Lab) -> u16 {
    let before = dovecot_auth_failures(lab).len();
    let mut c = lab.connect("imap-plain");
    c.expect_greeting_imap();
    c.send(b"w1 LOGIN alice wrong\r\n");
    assert_eq!(
        c.line(),
        "w1 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"
    );
    c.send(b"w2 LOGOUT\r\n");
    c.tagged("w2");
    let deadline = Instant::now() + Duration::from_secs(10);
    while dovecot_auth_failures(lab).len() == before {
        assert!(
            Instant::now() < deadline,
            "Dovecot logged no failure:\n{}",
            lab.dovecot().log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    c.port
}

/// What a case compares against at its end.
struct Baseline {
    /// The client port of [`one_wrong_password`].
    wrong: u16,
    /// The gateway's open descriptors once that session was recorded.
    descriptors: usize,
}

/// The gateway's open file descriptors.
fn open_descriptors(lab: &Lab) -> usize {
    let dir = format!("/proc/{}/fd", lab.gateway.pid());
    std::fs::read_dir(&dir).map_or_else(|e| panic!("{dir}: {e}"), Iterator::count)
}

/// The lab for one case, with [`one_wrong_password`] already made and recorded.
fn lab_with_one_wrong_password(label: &str) -> (Lab, Baseline) {
    let lab = Lab::start(label, "", Vec::new(), standard_listeners());
    let wrong = one_wrong_password(&lab);
    lab.wait_for_records(1);
    let descriptors = open_descriptors(&lab);
    (lab, Baseline { wrong, descriptors })
}

/// Waits until the gateway holds no more descriptors than at `baseline`: nothing of the
/// attackers' sessions stays open.
fn assert_descriptors_back_to(lab: &Lab, baseline: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let now = open_descriptors(lab);
        if now <= baseline {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{now} descriptors open, {baseline} before"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The IMAP reply to credentials the gateway refuses because `why`.
fn imap_refusal(tag: &str, why: &str) -> String {
    format!("{tag} NO [CANNOT] Login refused: {why}\r\n")
}

/// The POP3 reply to credentials the gateway refuses because `why`.
fn pop3_refusal(why: &str) -> String {
    format!("-ERR [AUTH] login refused: {why}\r\n")
}

/// Checks the gateway's descriptors are back to `baseline`, stops it and checks every record:
/// the attackers' (`refused`) without a login, the wrong password's as an authentication
/// failure, every field within bounds.
fn finish(mut lab: Lab, refused: &[u16], baseline: Baseline) -> Vec<SessionRecord> {
    assert_descriptors_back_to(&lab, baseline.descriptors);
    let (records, _) = lab.finish();
    for &port in refused {
        let r = record_of(&records, port);
        assert_eq!(r.login, None, "{r:?}");
        assert_eq!(r.outcome, Outcome::ClientClosed, "{r:?}");
    }
    assert_eq!(
        record_of(&records, baseline.wrong).outcome,
        Outcome::AuthFailed
    );
    assert_bounded(&records);
    records
}

/// The attacker's side: after the greeting, each command and the exact bytes it gets back.
/// Returns the connection, still open.
fn attack(lab: &Lab, listener: &str, exchanges: &[(&[u8], &str)]) -> Client {
    let mut c = lab.connect(listener);
    match listener.starts_with("imap") {
        true => c.expect_greeting_imap(),
        false => drop(c.expect_line_starting("+OK ")),
    }
    for (command, expected) in exchanges {
        c.send(command);
        let mut reply = String::new();
        while reply.len() < expected.len() {
            reply += &c.line();
        }
        assert_eq!(
            reply,
            *expected,
            "{listener}: {}",
            String::from_utf8_lossy(command)
        );
    }
    c
}

/// The attacker leaves politely once the bystander is done; returns its client port.
fn leave(mut attacker: Client, listener: &str) -> u16 {
    match listener.starts_with("imap") {
        true => attacker.send(b"z LOGOUT\r\n"),
        false => attacker.send(b"QUIT\r\n"),
    }
    attacker.rest_until_closed(REPLY_TIMEOUT);
    attacker.port
}

/// Dovecot saw exactly the one wrong password, and none of `names` anywhere in its log.
fn assert_dovecot_saw_none_of(lab: &Lab, names: &[&str]) {
    let failures = dovecot_auth_failures(lab);
    assert_eq!(failures.len(), 1, "{failures:#?}");
    let log = lab.dovecot().log();
    for name in names {
        assert!(!log.contains(name), "Dovecot saw {name:?}:\n{log}");
    }
}

/// Python's poplib logs in as `user` with USER/PASS on `listener` (plaintext) and prints the
/// server's answer to PASS.
const POPLIB_LOGIN: &str = r#"
import poplib, sys
client = poplib.POP3("127.0.0.1", int(sys.argv[1]), timeout=20)
client.user(sys.argv[2])
try:
    print(client.pass_("secret").decode())
except poplib.error_proto as e:
    print(e.args[0].decode())
client.quit()
"#;

/// Python's imaplib logs in as `user` on `listener` (plaintext) and prints the text of the
/// tagged reply.
const IMAPLIB_LOGIN: &str = r#"
import imaplib, sys
client = imaplib.IMAP4("127.0.0.1", int(sys.argv[1]), timeout=20)
try:
    print(client.login(sys.argv[2], "secret")[1][0].decode())
except imaplib.IMAP4.error as e:
    print(e.args[0].decode() if isinstance(e.args[0], bytes) else e.args[0])
client.logout()
"#;

/// Runs one of the Python login scripts against `listener` as `user`; returns what it printed.
fn python_login(lab: &Lab, script: &str, listener: &str, user: &str) -> String {
    lab.count_outside_connection();
    let port = lab.gateway.port(listener).to_string();
    let output = run_ok(Command::new("python3").args(["-c", script, &port, user]));
    String::from_utf8(output.stdout).expect("UTF-8")
}

fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

#[test]
fn a_user_name_with_a_right_to_left_override_is_refused_in_every_protocol() {
    let (lab, baseline) = lab_with_one_wrong_password("bounds-rlo");
    let refused = "the user name contains control or invisible formatting characters";
    let imap_no = imap_refusal("a1", refused);
    let pop3_err = pop3_refusal(refused);
    // "mallory" + U+202E + "gpj.exe" reads as "malloryexe.jpg"; U+200B is a zero-width space.
    let login = "a1 LOGIN \"mallory\u{202e}gpj.exe\" secret\r\n";
    let plain = format!(
        "AUTH PLAIN {}\r\n",
        b64("\0mallory\u{200b}\0secret".as_bytes())
    );
    let mut ports = Vec::new();
    for listener in ["imap-tls", "imap-plain"] {
        let attacker = attack(&lab, listener, &[(login.as_bytes(), &imap_no)]);
        bystander_logs_in(&lab, listener);
        ports.push(leave(attacker, listener));
    }
    for listener in ["pop3-tls", "pop3-plain"] {
        let user = "USER mallory\u{202e}gpj.exe\r\n";
        let attacker = attack(
            &lab,
            listener,
            &[
                (user.as_bytes(), "+OK send PASS\r\n"),
                (b"PASS secret\r\n", &pop3_err),
                (plain.as_bytes(), &pop3_err),
            ],
        );
        bystander_logs_in(&lab, listener);
        ports.push(leave(attacker, listener));
    }
    // Python's poplib, as a script would send it (poplib strips the CRLF).
    assert_eq!(
        python_login(&lab, POPLIB_LOGIN, "pop3-plain", "mallory\u{202e}gpj.exe"),
        pop3_err.replace("\r\n", "\n")
    );
    assert_dovecot_saw_none_of(&lab, &["mallory"]);
    finish(lab, &ports, baseline);
}

/// A NUL in the password of AUTHENTICATE PLAIN (where it would make a fourth field), of
/// AUTHENTICATE LOGIN (where Dovecot would cut the password at it) and of POP3 AUTH PLAIN and
/// LOGIN: refused by the gateway, and Dovecot never sees alice try.
#[test]
fn a_nul_in_a_password_is_refused_before_anything_goes_upstream() {
    let (lab, baseline) = lab_with_one_wrong_password("bounds-nul");
    let refused = "the password contains a NUL byte";
    let imap_no = |tag: &str| imap_refusal(tag, refused);
    let pop3_err = pop3_refusal(refused);
    // The right password with a NUL after it: cut at the NUL, Dovecot would take it.
    let plain = b64(b"\0alice\0secret\0more");
    let user = format!("{}\r\n", b64(b"alice"));
    let password = format!("{}\r\n", b64(b"secret\0more"));
    let mut ports = Vec::new();
    for listener in ["imap-tls", "imap-plain"] {
        let with_ir = format!("a1 AUTHENTICATE PLAIN {plain}\r\n");
        let continued = format!("{plain}\r\n");
        let attacker = attack(
            &lab,
            listener,
            &[
                (with_ir.as_bytes(), &imap_no("a1")),
                (b"a2 AUTHENTICATE PLAIN\r\n", "+ \r\n"),
                (continued.as_bytes(), &imap_no("a2")),
                (b"a3 AUTHENTICATE LOGIN\r\n", "+ VXNlcm5hbWU6\r\n"),
                (user.as_bytes(), "+ UGFzc3dvcmQ6\r\n"),
                (password.as_bytes(), &imap_no("a3")),
            ],
        );
        bystander_logs_in(&lab, listener);
        ports.push(leave(attacker, listener));
    }
    for listener in ["pop3-tls", "pop3-plain"] {
        let with_ir = format!("AUTH PLAIN {plain}\r\n");
        let attacker = attack(
            &lab,
            listener,
            &[
                (with_ir.as_bytes(), &pop3_err),
                (b"AUTH LOGIN\r\n", "+ VXNlcm5hbWU6\r\n"),
                (user.as_bytes(), "+ UGFzc3dvcmQ6\r\n"),
                (password.as_bytes(), &pop3_err),
            ],
        );
        bystander_logs_in(&lab, listener);
        ports.push(leave(attacker, listener));
    }
    assert_dovecot_saw_none_of(&lab, &[]);
    finish(lab, &ports, baseline);
}

/// An IMAP ID command of `pairs` pairs, the names padded with `x` to `name_len` octets, the
/// values `value_len` octets of `v`.
fn id_command(tag: &str, pairs: usize, name_len: usize, value_len: usize) -> Vec<u8> {
    let fields: Vec<String> = (0..pairs)
        .map(|i| {
            let name = format!("{:x<name_len$}", format!("n{i}"));
            format!("\"{name}\" \"{}\"", "v".repeat(value_len))
        })
        .collect();
    format!("{tag} ID ({})\r\n", fields.join(" ")).into_bytes()
}

/// RFC 2971's limits: 31 pairs, a 31-octet name or a 1025-octet value get a tagged BAD and
/// nothing of them is stored; an ID at the limits that follows on the same connection is.
#[test]
fn an_id_with_31_pairs_gets_bad_and_is_not_stored() {
    let (lab, baseline) = lab_with_one_wrong_password("bounds-id");
    let too_many = id_command("a1", 31, 2, 8);
    let long_name = id_command("a2", 1, 31, 8);
    let long_value = id_command("a3", 1, 4, 1025);
    let at_limits = id_command("a4", 30, 30, 200);
    let mut ports = Vec::new();
    for listener in ["imap-tls", "imap-plain"] {
        let mut attacker = attack(
            &lab,
            listener,
            &[
                (
                    &too_many,
                    "a1 BAD ID takes at most 30 field-value pairs (RFC 2971)\r\n",
                ),
                (
                    &long_name,
                    "a2 BAD ID field names are at most 30 octets long (RFC 2971)\r\n",
                ),
                (
                    &long_value,
                    "a3 BAD ID values are at most 1024 octets long (RFC 2971)\r\n",
                ),
            ],
        );
        bystander_logs_in(&lab, listener);
        attacker.send(&at_limits);
        assert_eq!(attacker.tagged("a4"), "* ID NIL\r\na4 OK ID completed\r\n");
        ports.push(leave(attacker, listener));
    }
    // An attacker that stops at the refused ID leaves nothing of it either.
    let attacker = attack(
        &lab,
        "imap-plain",
        &[(
            &too_many,
            "a1 BAD ID takes at most 30 field-value pairs (RFC 2971)\r\n",
        )],
    );
    let refused_only = leave(attacker, "imap-plain");
    assert_dovecot_saw_none_of(&lab, &[]);
    let records = finish(lab, &[&ports[..], &[refused_only]].concat(), baseline);
    for port in ports {
        let r = record_of(&records, port);
        assert_eq!(r.client_id.len(), 30, "{r:?}");
        assert!(r.client_id.iter().all(|(name, value)| name.len() == 30
            && name.starts_with('n')
            && value.as_ref().is_some_and(|v| v.len() == 200)));
    }
    assert_eq!(record_of(&records, refused_only).client_id, vec![]);
}

/// A 256-byte user name is refused (IMAP LOGIN as an atom and as a literal, POP3 USER/PASS);
/// a 255-byte one goes to Dovecot, which says it knows no such user: the limit is exactly 255.
#[test]
fn a_256_byte_user_name_is_refused() {
    let (lab, baseline) = lab_with_one_wrong_password("bounds-long-user");
    let long = "m".repeat(256);
    let refused = "the user name is longer than 255 bytes";
    let imap_no = |tag: &str| imap_refusal(tag, refused);
    let pop3_err = pop3_refusal(refused);
    let atom = format!("a1 LOGIN {long} secret\r\n");
    let literal = format!("a2 LOGIN {{256+}}\r\n{long} secret\r\n");
    let mut ports = Vec::new();
    for listener in ["imap-tls", "imap-plain"] {
        let attacker = attack(
            &lab,
            listener,
            &[
                (atom.as_bytes(), &imap_no("a1")),
                (literal.as_bytes(), &imap_no("a2")),
            ],
        );
        bystander_logs_in(&lab, listener);
        ports.push(leave(attacker, listener));
    }
    for listener in ["pop3-tls", "pop3-plain"] {
        let user = format!("USER {long}\r\n");
        let attacker = attack(
            &lab,
            listener,
            &[
                (user.as_bytes(), "+OK send PASS\r\n"),
                (b"PASS secret\r\n", &pop3_err),
            ],
        );
        bystander_logs_in(&lab, listener);
        ports.push(leave(attacker, listener));
    }
    assert_eq!(
        python_login(&lab, IMAPLIB_LOGIN, "imap-plain", &long),
        format!("[CANNOT] Login refused: {refused}\n")
    );
    // Dovecot shortens long names in its log, so the count of failures is the evidence here.
    assert_dovecot_saw_none_of(&lab, &[]);

    // At the limit the gateway asks Dovecot, which refuses a user it does not know.
    let at_limit = "m".repeat(255);
    let mut c = lab.connect("imap-plain");
    c.expect_greeting_imap();
    c.send(format!("b1 LOGIN {at_limit} secret\r\n").as_bytes());
    assert_eq!(
        c.line(),
        "b1 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"
    );
    let at_limit_port = leave(c, "imap-plain");
    let deadline = Instant::now() + Duration::from_secs(10);
    while dovecot_auth_failures(&lab).len() < 2 {
        assert!(Instant::now() < deadline, "{}", lab.dovecot().log());
        std::thread::sleep(Duration::from_millis(50));
    }
    let seen = &dovecot_auth_failures(&lab)[1];
    assert!(
        seen.contains("passwd-file(mmmmmmmm") && seen.ends_with("unknown user"),
        "{seen}"
    );

    let records = finish(lab, &ports, baseline);
    let r = record_of(&records, at_limit_port);
    assert_eq!(r.login.as_deref(), Some(at_limit.as_str()), "{r:?}");
}

/// A TLS 1.2 ClientHello naming `server_name`, built by hand: OpenSSL, and so `openssl
/// s_client -servername` and Python's `server_hostname`, refuse to send a name over 255 bytes.
fn client_hello_with_server_name(server_name: &str) -> Vec<u8> {
    fn vec16(bytes: &[u8]) -> Vec<u8> {
        let len = u16::try_from(bytes.len()).expect("fits 16 bits");
        [&len.to_be_bytes()[..], bytes].concat()
    }
    fn extension(kind: u16, data: &[u8]) -> Vec<u8> {
        [&kind.to_be_bytes()[..], &vec16(data)].concat()
    }
    let u16s =
        |values: &[u16]| -> Vec<u8> { values.iter().flat_map(|v| v.to_be_bytes()).collect() };
    let sni_entry = [&[0u8][..], &vec16(server_name.as_bytes())].concat();
    let extensions = [
        extension(0x0000, &vec16(&sni_entry)),
        // supported_groups: x25519, secp256r1; ec_point_formats: uncompressed.
        extension(0x000a, &vec16(&u16s(&[0x001d, 0x0017]))),
        extension(0x000b, &[1, 0]),
        // signature_algorithms: RSA-PSS, RSA PKCS#1, ECDSA, all SHA-256.
        extension(0x000d, &vec16(&u16s(&[0x0804, 0x0401, 0x0403]))),
    ]
    .concat();
    // ECDHE-RSA-AES128-GCM-SHA256, ECDHE-RSA-AES256-GCM-SHA384, AES128-SHA.
    let suites = u16s(&[0xc02f, 0xc030, 0x002f]);
    let body = [
        &[0x03, 0x03][..],
        &[0x42; 32],
        &[0],
        &vec16(&suites),
        &[1, 0],
        &vec16(&extensions),
    ]
    .concat();
    let len = u32::try_from(body.len()).expect("small").to_be_bytes();
    let handshake = [&[0x01][..], &len[1..], &body].concat();
    [&[0x16, 0x03, 0x01][..], &vec16(&handshake)].concat()
}

/// A ClientHello with a 300-byte server name: OpenSSL answers with a fatal
/// unrecognized_name alert, and the record keeps the name cut to 255 bytes, `[cut]` included.
#[test]
fn a_300_byte_server_name_is_recorded_cut_to_255_bytes() {
    let mut lab = Lab::start("bounds-sni", "", Vec::new(), standard_listeners());
    // Once a session is recorded, the store's files are open as they stay.
    bystander_logs_in(&lab, "imap-tls");
    lab.wait_for_records(1);
    let baseline = open_descriptors(&lab);
    let name = format!("{}.example.org", "s".repeat(300 - ".example.org".len()));
    assert_eq!(name.len(), 300);
    let mut ports = Vec::new();
    for listener in ["imap-tls", "pop3-tls"] {
        let mut attacker: TcpStream = lab.connect_tcp(listener);
        attacker
            .set_read_timeout(Some(REPLY_TIMEOUT))
            .expect("read timeout");
        attacker
            .write_all(&client_hello_with_server_name(&name))
            .expect("send the hello");
        let mut reply = Vec::new();
        attacker.read_to_end(&mut reply).expect("read to close");
        // One TLS 1.2 record: a fatal (2) unrecognized_name (112) alert, then the close.
        assert_eq!(
            reply,
            [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x70],
            "{listener}"
        );
        ports.push(attacker.local_addr().expect("local address").port());
        bystander_logs_in(&lab, listener);
    }
    assert_descriptors_back_to(&lab, baseline);
    let (records, _) = lab.finish();
    let cut = format!("{}[cut]", &name[..250]);
    for port in ports {
        let r = record_of(&records, port);
        assert_eq!(r.sni.as_deref(), Some(cut.as_str()), "{r:?}");
        assert_eq!(r.sni.as_ref().map(String::len), Some(255));
        assert_eq!(r.outcome, Outcome::ClientTlsFailed, "{r:?}");
    }
    assert_bounded(&records);
}
