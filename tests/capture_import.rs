//! `mailtls import pcap` on captures that real `tcpdump` recorded on loopback while real
//! clients (`openssl s_client`) talked to the lab Dovecot and Postfix, and through the gateway:
//! implicit TLS IMAP and POP3, IMAP STARTTLS, POP3 STLS, SMTP STARTTLS at TLS 1.0, TLS 1.3,
//! a TLS 1.0 client Dovecot refuses, a plaintext login, and TLS over IPv6 on `::1` (an OpenSSL
//! server). The same sessions captured on `lo` (Ethernet) and `any` (Linux cooked v2), converted
//! to pcapng by `editcap`, and rewritten by this test (raw IP, 802.1Q VLAN, BSD loopback, records
//! split into 7-byte segments, segments reordered and duplicated, the first packets cut off,
//! the file cut mid-block) give the same records; `tshark` finds the same ClientHellos with the
//! same JA3, and a JA4 computed from its fields equals ours; the gateway's own record of a
//! client equals the capture's; a store that fails mid-import (a file size limit) fails the
//! command with the reason and keeps the batch it committed.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use e2e::clients::{
    last_line, s_client_command, s_client_imap_login, Conversation, LEGACY_CIPHERS,
};
use e2e::{mailtls_bin, start_gateway, submission_lab, ListenerSpec, Scratch};
use sha2::{Digest, Sha256};
use store::{Outcome, SessionRecord, Source, SqliteStore};
use wire::TlsVersion;

/// The password every client sends (the lab's, as `s_client_imap_login` sends it); it must
/// appear in no record.
const PASSWORD: &str = "secret";
/// The password of the plaintext login Dovecot refuses.
const CLEAR_PASSWORD: &str = "Clear-Text-Pw-77";

/// A `tcpdump` writing `path`, stopped (SIGTERM, file flushed) by [`Tcpdump::stop`].
struct Tcpdump {
    child: Child,
}

impl Tcpdump {
    fn start(interface: &str, extra: &[&str], filter: &str, path: &Path) -> Tcpdump {
        let mut child = Command::new("tcpdump")
            .args(["-i", interface, "-U", "-s", "0", "-n"])
            .args(extra)
            .arg("-w")
            .arg(path)
            .arg(filter)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tcpdump is installed (lab/install.sh)");
        // It says "listening on ..." once the capture runs.
        e2e::process::await_stderr_line(&mut child, "listening on");
        Tcpdump { child }
    }

    /// Stops tcpdump once it has written what it captured: SIGTERM drops packets still in
    /// the kernel's buffer, and on a loaded machine tcpdump runs behind, so the file must have
    /// stopped growing first.
    fn stop(mut self, path: &Path) {
        let size = || std::fs::metadata(path).map_or(0, |m| m.len());
        let mut last = size();
        let mut stable_since = std::time::Instant::now();
        let began = std::time::Instant::now();
        while stable_since.elapsed() < Duration::from_millis(1500)
            && began.elapsed() < Duration::from_secs(20)
        {
            std::thread::sleep(Duration::from_millis(100));
            let now = size();
            if now != last {
                last = now;
                stable_since = std::time::Instant::now();
            }
        }
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill tcpdump");
        self.child.wait().expect("tcpdump exits");
    }
}

impl Drop for Tcpdump {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `args` for `s_client` with `-bind` to a free local port on `host` first; the port is the
/// session record's `client_port`.
fn bound(host: &str, args: &[&str]) -> (Vec<String>, u16) {
    let port = e2e::free_port_on(host);
    let address = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let mut all = vec!["-bind".to_string(), address];
    all.extend(args.iter().map(|a| a.to_string()));
    (all, port)
}

/// `s_client` to `port` on `host` from a port of its own; returns the conversation and that port.
fn s_client_from(host: &str, port: u16, ca: &Path, args: &[&str]) -> (Conversation, u16) {
    let (mut all, local) = bound(host, args);
    // A later -connect overrides the helper's 127.0.0.1.
    if host.contains(':') {
        all.extend(["-connect".to_string(), format!("[{host}]:{port}")]);
    }
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    (Conversation::s_client(port, ca, &refs), local)
}

/// One IMAP login and logout through `s_client` with `args`; returns its local port.
fn imap_session(port: u16, ca: &Path, args: &[&str]) -> u16 {
    let (all, local) = bound("127.0.0.1", args);
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    s_client_imap_login(port, ca, &refs);
    local
}

/// One POP3 login through `s_client` with `args`; returns its local port.
fn pop3_session(port: u16, ca: &Path, args: &[&str]) -> u16 {
    let (mut client, local) = s_client_from("127.0.0.1", port, ca, args);
    if !args.contains(&"-starttls") {
        assert!(
            client.read_line().starts_with(b"+OK"),
            "{}",
            client.describe()
        );
    }
    client.send(b"USER alice\r\n");
    assert!(
        client.read_line().starts_with(b"+OK"),
        "{}",
        client.describe()
    );
    client.send(format!("PASS {PASSWORD}\r\n").as_bytes());
    assert!(
        client.read_line().starts_with(b"+OK"),
        "{}",
        client.describe()
    );
    client.send(b"QUIT\r\n");
    client.read_line();
    client.finish();
    local
}

/// EHLO and QUIT over SMTP STARTTLS through `s_client` with `args`; returns its local port.
fn smtp_session(port: u16, ca: &Path, args: &[&str]) -> u16 {
    let (mut client, local) = s_client_from("127.0.0.1", port, ca, args);
    client.send(b"EHLO printer.lab\r\n");
    client.read_until("the last EHLO line", |r| {
        r.split(|&b| b == b'\n').any(|l| l.starts_with(b"250 "))
    });
    client.send(b"QUIT\r\n");
    client.read_line();
    client.finish();
    local
}

fn mailtls(args: &[&str]) -> Output {
    Command::new(mailtls_bin())
        .args(args)
        .output()
        .expect("run mailtls")
}

/// Imports `files` into a new store at `db`; returns the records and mailtls's output.
fn import(db: &Path, files: &[&Path], ports: &[String]) -> (Vec<SessionRecord>, Output) {
    let mut args = vec!["import".to_string(), "pcap".to_string()];
    args.extend(files.iter().map(|f| f.display().to_string()));
    args.extend(["--store".to_string(), db.display().to_string()]);
    for port in ports {
        args.extend(["--tls-port".to_string(), port.clone()]);
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = mailtls(&refs);
    let records = SqliteStore::open(db)
        .expect("open the store")
        .sessions()
        .expect("read sessions");
    (records, output)
}

/// What must agree between two imports of the same sessions, per client port.
fn essentials(records: &[SessionRecord]) -> BTreeMap<u16, String> {
    records
        .iter()
        .map(|r| {
            (
                r.client_port,
                format!(
                    "{} {} {} {:?} {:?} {:?} {:?} {:?} {:?}",
                    r.protocol,
                    r.client_addr,
                    r.upstream,
                    r.tls_version,
                    r.offered_max_tls,
                    r.ja4,
                    r.sni,
                    r.outcome,
                    r.login
                ),
            )
        })
        .collect()
}

fn record_of(records: &[SessionRecord], client_port: u16) -> &SessionRecord {
    records
        .iter()
        .find(|r| r.client_port == client_port)
        .unwrap_or_else(|| panic!("no record of client port {client_port} in {records:#?}"))
}

#[test]
fn real_sessions_captured_by_tcpdump_are_found_whatever_the_capture_looks_like() {
    let scratch = Scratch::new("capture-import");
    let lab = submission_lab(&scratch, "TLSv1");
    let dovecot = &lab.dovecot;
    let ca = dovecot.ca_file();
    let imaps = dovecot.port("IMAPS_PORT");
    let pop3s = dovecot.port("POP3S_PORT");
    let imap = dovecot.port("IMAP_PORT");
    let pop3 = dovecot.port("POP3_PORT");
    let smtp = lab.postfix.port("SMTP_PORT");
    let mut gateway = start_gateway(
        &scratch,
        dovecot,
        vec![ListenerSpec::new(
            "imaps-legacy",
            "imap",
            "implicit",
            Some("1.0"),
        )],
        "pre_auth_timeout_secs = 10",
    );
    let gateway_port = gateway.port("imaps-legacy");
    // An OpenSSL server on ::1 with the lab's certificate, for one IMAP-over-TLS session.
    let v6_port = e2e::free_port_on("::1");
    let certs = PathBuf::from(dovecot.var("CA_FILE")).with_file_name("server.pem");
    let mut v6_server = Command::new("openssl")
        .args([
            "s_server",
            "-accept",
            &format!("[::1]:{v6_port}"),
            "-naccept",
            "1",
        ])
        .arg("-cert")
        .arg(&certs)
        .arg("-key")
        .arg(certs.with_file_name("server.key"))
        .args(["-quiet"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl s_server");

    let ports = [imaps, pop3s, imap, pop3, smtp, gateway_port, v6_port];
    let filter = format!(
        "tcp and ({})",
        ports
            .iter()
            .map(|p| format!("port {p}"))
            .collect::<Vec<_>>()
            .join(" or ")
    );
    let on_lo = scratch.path().join("lo.pcap");
    let on_any = scratch.path().join("any.pcap");
    let lo_capture = Tcpdump::start("lo", &[], &filter, &on_lo);
    let any_capture = Tcpdump::start("any", &["-y", "LINUX_SLL2"], &filter, &on_any);

    let tls13 = imap_session(imaps, &ca, &[]);
    let pop3s_tls12 = pop3_session(pop3s, &ca, &["-tls1_2"]);
    let imap_starttls = imap_session(imap, &ca, &["-starttls", "imap"]);
    let pop3_stls = pop3_session(pop3, &ca, &["-starttls", "pop3"]);
    let smtp_tls10 = smtp_session(
        smtp,
        &ca,
        &["-starttls", "smtp", "-tls1", "-cipher", LEGACY_CIPHERS],
    );
    // Dovecot takes TLS 1.2 and newer: this TLS 1.0 client is refused.
    let (refused_args, refused_port) = bound("127.0.0.1", &["-tls1", "-cipher", LEGACY_CIPHERS]);
    let refused_args: Vec<&str> = refused_args.iter().map(String::as_str).collect();
    let mut refused = s_client_command(imaps, &ca, &refused_args);
    let refused_run = refused
        .stdin(Stdio::null())
        .output()
        .expect("s_client runs");
    assert!(!refused_run.status.success(), "Dovecot took TLS 1.0");
    // A login in the clear, which Dovecot refuses without TLS; its name is recorded, never
    // its password.
    let mut clear = Conversation::tcp(imap);
    clear.read_line();
    clear.send(format!("x LOGIN bob {CLEAR_PASSWORD}\r\n").as_bytes());
    let answer = clear.read_tagged("x");
    assert!(
        !last_line(&answer).starts_with("x OK"),
        "plaintext login taken"
    );
    let clear_port = clear.local_port();
    drop(clear);
    // A TLS 1.0 client through the gateway, which records it too.
    let through_gateway = imap_session(gateway_port, &ca, &["-tls1", "-cipher", LEGACY_CIPHERS]);
    // TLS 1.3 over IPv6.
    let (mut v6_client, v6_local) = s_client_from("::1", v6_port, &ca, &[]);
    v6_client.send(b"hello over v6\r\n");
    std::thread::sleep(Duration::from_millis(300));
    drop(v6_client);
    let _ = v6_server.kill();
    let _ = v6_server.wait();

    lo_capture.stop(&on_lo);
    any_capture.stop(&on_any);
    let gateway_records = gateway.stop_and_read_sessions();

    let tls_ports = vec![
        format!("{imaps}=imap"),
        format!("{pop3s}=pop3"),
        format!("{gateway_port}=imap"),
        format!("{v6_port}=imap"),
    ];
    let (records, output) = import(&scratch.path().join("lo.db"), &[&on_lo], &tls_ports);
    let summary = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "{summary}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(summary.contains("handshakes"), "{summary}");

    // Every client, with the protocol, version and outcome it had.
    let expect = |port: u16,
                  protocol: &str,
                  version: Option<TlsVersion>,
                  offered: TlsVersion,
                  outcome: Outcome| {
        let r = record_of(&records, port);
        assert_eq!(r.source, Source::Capture);
        assert_eq!(r.protocol, protocol, "{r:#?}");
        assert_eq!(r.tls_version, version, "{r:#?}");
        assert_eq!(r.offered_max_tls, Some(offered), "{r:#?}");
        assert_eq!(r.outcome, outcome, "{r:#?}");
        assert!(r.ja4.is_some() && r.offered.ja3.is_some(), "{r:#?}");
        r
    };
    let r = expect(
        tls13,
        "imap",
        Some(TlsVersion::Tls13),
        TlsVersion::Tls13,
        Outcome::Ok,
    );
    assert_eq!(r.upstream, format!("127.0.0.1:{imaps}"));
    assert_eq!(r.sni.as_deref(), Some("localhost"));
    expect(
        pop3s_tls12,
        "pop3",
        Some(TlsVersion::Tls12),
        TlsVersion::Tls12,
        Outcome::Ok,
    );
    expect(
        imap_starttls,
        "imap",
        Some(TlsVersion::Tls13),
        TlsVersion::Tls13,
        Outcome::Ok,
    );
    expect(
        pop3_stls,
        "pop3",
        Some(TlsVersion::Tls13),
        TlsVersion::Tls13,
        Outcome::Ok,
    );
    expect(
        smtp_tls10,
        "smtp",
        Some(TlsVersion::Tls10),
        TlsVersion::Tls10,
        Outcome::Ok,
    );
    let r = expect(
        refused_port,
        "imap",
        None,
        TlsVersion::Tls10,
        Outcome::ClientTlsFailed,
    );
    // Dovecot's OpenSSL hangs up without an alert; either way the record says why.
    let detail = r.detail.as_deref().unwrap_or("");
    assert!(
        detail.contains("alert") || detail.contains("closed"),
        "{r:#?}"
    );
    expect(
        through_gateway,
        "imap",
        Some(TlsVersion::Tls10),
        TlsVersion::Tls10,
        Outcome::Ok,
    );
    let r = expect(
        v6_local,
        "imap",
        Some(TlsVersion::Tls13),
        TlsVersion::Tls13,
        Outcome::Ok,
    );
    assert_eq!(r.client_addr, "::1".parse::<IpAddr>().unwrap());
    assert_eq!(r.upstream, format!("[::1]:{v6_port}"));
    let r = record_of(&records, clear_port);
    assert_eq!(
        (r.login.as_deref(), r.outcome, r.tls_version),
        (Some("bob"), Outcome::AuthFailed, None)
    );
    let db_bytes = std::fs::read(scratch.path().join("lo.db")).unwrap();
    for secret in [PASSWORD, CLEAR_PASSWORD] {
        assert!(
            !db_bytes
                .windows(secret.len())
                .any(|w| w == secret.as_bytes()),
            "{secret} in the store"
        );
    }

    // The gateway recorded the same TLS 1.0 client the same way.
    let seen = gateway_records
        .iter()
        .find(|g| g.client_port == through_gateway)
        .expect("the gateway recorded the client");
    let captured = record_of(&records, through_gateway);
    e2e::evidence::assert_same_client(captured, seen);

    let want = essentials(&records);
    let same = |label: &str, files: &[&Path], expect_ok: bool| {
        let db = scratch.path().join(format!("{label}.db"));
        let (found, output) = import(&db, files, &tls_ports);
        assert_eq!(
            output.status.success(),
            expect_ok,
            "{label}: {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        (essentials(&found), output)
    };
    // Linux cooked v2 on `any`, and pcapng.
    assert_eq!(
        PcapFile::read(&on_any).link_type,
        276,
        "-i any -y LINUX_SLL2"
    );
    assert_eq!(same("any", &[&on_any], true).0, want, "-i any (SLL2)");
    let pcapng = scratch.path().join("lo.pcapng");
    e2e::run_ok(
        Command::new("editcap")
            .args(["-F", "pcapng"])
            .arg(&on_lo)
            .arg(&pcapng),
    );
    assert_eq!(same("pcapng", &[&pcapng], true).0, want, "pcapng");

    // The same connections imported again, here as the pcapng copy into the first store, add
    // nothing: each is known by its digest.
    let lo_db = scratch.path().join("lo.db");
    let mut again = vec!["import", "pcap"];
    let pcapng_arg = pcapng.display().to_string();
    let lo_db_arg = lo_db.display().to_string();
    again.extend([pcapng_arg.as_str(), "--store", lo_db_arg.as_str(), "--json"]);
    for port in &tls_ports {
        again.extend(["--tls-port", port.as_str()]);
    }
    let output = mailtls(&again);
    assert!(output.status.success(), "{output:?}");
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(summary["records"], records.len(), "{summary}");
    assert_eq!(summary["new_records"], 0, "{summary}");
    assert_eq!(summary["already_imported"], records.len(), "{summary}");
    let stored = SqliteStore::open(&lo_db).unwrap().sessions().unwrap();
    assert_eq!(stored.len(), records.len());

    // Rewritten captures.
    let original = PcapFile::read(&on_lo);
    assert_eq!(original.link_type, 1, "tcpdump on lo writes Ethernet");
    for (label, rewritten) in [
        ("raw", original.relinked(101, |f| f[14..].to_vec())),
        (
            "vlan",
            original.relinked(1, |f| {
                let mut tagged = f[..12].to_vec();
                tagged.extend_from_slice(&[0x81, 0x00, 0x00, 0x2a]);
                tagged.extend_from_slice(&f[12..]);
                tagged
            }),
        ),
        (
            "null",
            original.relinked(0, |f| {
                let family: u32 = if f[12..14] == [0x86, 0xdd] { 30 } else { 2 };
                let mut framed = family.to_le_bytes().to_vec();
                framed.extend_from_slice(&f[14..]);
                framed
            }),
        ),
        ("split", original.split_segments(7)),
        ("reordered", original.reordered_and_duplicated()),
    ] {
        let path = scratch.path().join(format!("{label}.pcap"));
        rewritten.write(&path);
        assert_eq!(same(label, &[&path], true).0, want, "{label}");
    }

    // The first packets cut off: connections already open are joined mid-stream and counted;
    // those that start later are found all the same.
    let late = PcapFile {
        link_type: original.link_type,
        frames: original.frames[original.frames.len() / 3..].to_vec(),
    };
    let late_path = scratch.path().join("late.pcap");
    late.write(&late_path);
    let (late_found, output) = same("late", &[&late_path], true);
    assert!(String::from_utf8_lossy(&output.stdout).contains("joined mid-stream"));
    let late_start = late.frames[0].0;
    for (port, text) in &late_found {
        if want.contains_key(port) && record_of(&records, *port).started_at >= late_start {
            assert_eq!(Some(text), want.get(port), "late capture, port {port}");
        }
    }
    // The file cut inside a block: an error naming the byte offset, records before it kept.
    let whole = std::fs::read(&on_lo).unwrap();
    let cut_at = whole.len() * 2 / 3;
    let cut = scratch.path().join("cut.pcap");
    std::fs::write(&cut, &whole[..cut_at]).unwrap();
    let (cut_found, output) = same("cut", &[&cut], false);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("truncated") && stderr.contains("byte offset"),
        "{stderr}"
    );
    assert!(!cut_found.is_empty(), "nothing kept before the cut");
    for (port, text) in &cut_found {
        // A hello whose answer lies beyond the cut is recorded as unanswered.
        if !text.contains("ClientClosed") {
            assert_eq!(Some(text), want.get(port), "cut capture, port {port}");
        }
    }

    // tshark finds the same ClientHellos: same JA3, and a JA4 from its fields equal to ours.
    let hellos = tshark_hellos(
        &on_lo,
        &[imaps, pop3s, gateway_port, v6_port],
        imap,
        pop3,
        smtp,
    );
    let ours: BTreeMap<u16, (String, String)> = records
        .iter()
        .filter_map(|r| Some((r.client_port, (r.offered.ja3.clone()?, r.ja4.clone()?))))
        .collect();
    assert!(hellos.len() >= 9, "tshark found only {hellos:#?}");
    assert_eq!(
        hellos, ours,
        "tshark's ClientHellos (JA3, JA4) against mailtls's"
    );

    // A store that fails mid-import: the capture repeated into more than one batch of
    // records, written under a file size limit (SIGXFSZ ignored, so writes fail with EFBIG)
    // that the first batch fits in and the rest does not. The command fails with the reason
    // and the committed batch stays.
    let repeated = scratch.path().join("repeated.pcap");
    original.repeated(400, &ports).write(&repeated);
    let failed = (4..40).find_map(|hundred_kib| {
        let db = scratch.path().join(format!("limited-{hundred_kib}.db"));
        let output = e2e::run(
            Command::new("bash")
                .arg("-c")
                .arg(format!(
                    "trap '' XFSZ; ulimit -f {}; exec \"$0\" import pcap \"$1\" --store \"$2\"",
                    hundred_kib * 100
                ))
                .arg(mailtls_bin())
                .arg(&repeated)
                .arg(&db),
        );
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        stderr
            .contains("1000 records were stored before")
            .then_some((output, stderr, db))
    });
    let (output, stderr, db) = failed.expect("a limit that fails the second batch");
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("writing to the session store"), "{stderr}");
    let kept = SqliteStore::open(&db).unwrap().sessions().unwrap();
    assert_eq!(kept.len(), 1000);
}

/// The ClientHellos `tshark -Y tls.handshake.type==1` finds, by client port: JA3, and JA4
/// computed here from the fields it dissects.
fn tshark_hellos(
    capture: &Path,
    tls_ports: &[u16],
    imap: u16,
    pop3: u16,
    smtp: u16,
) -> BTreeMap<u16, (String, String)> {
    let mut command = Command::new("tshark");
    command.arg("-r").arg(capture);
    for port in tls_ports {
        command.args(["-d", &format!("tcp.port=={port},tls")]);
    }
    command.args(["-d", &format!("tcp.port=={imap},imap")]);
    command.args(["-d", &format!("tcp.port=={pop3},pop")]);
    command.args(["-d", &format!("tcp.port=={smtp},smtp")]);
    command.args([
        "-Y",
        "tls.handshake.type==1",
        "-T",
        "fields",
        "-E",
        "separator=|",
    ]);
    for field in [
        "tcp.srcport",
        "tls.handshake.ja3",
        "tls.handshake.version",
        "tls.handshake.extensions.supported_version",
        "tls.handshake.extensions_server_name",
        "tls.handshake.ciphersuite",
        "tls.handshake.extension.type",
        "tls.handshake.sig_hash_alg",
        "tls.handshake.extensions_alpn_str",
    ] {
        command.args(["-e", field]);
    }
    let output = e2e::run_ok(&mut command);
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| {
            let f: Vec<&str> = line.split('|').collect();
            let list = |i: usize| -> Vec<u16> {
                f[i].split(',')
                    .filter(|v| !v.is_empty())
                    .map(|v| {
                        let v = v.trim_start_matches("0x");
                        u16::from_str_radix(v, 16)
                            .or_else(|_| v.parse())
                            .unwrap_or_else(|_| panic!("tshark value {v} in {line}"))
                    })
                    .filter(|v| !wire::is_grease(*v))
                    .collect()
            };
            let port: u16 = f[0].parse().expect("port");
            let versions = list(3);
            let version = versions.iter().max().copied().unwrap_or(list(2)[0]);
            let ciphers = list(5);
            let extensions: Vec<u16> = f[6]
                .split(',')
                .filter(|v| !v.is_empty())
                .map(|v| v.parse().expect("extension type"))
                .filter(|v| !wire::is_grease(*v))
                .collect();
            let alpn = f[8].split(',').next().unwrap_or("");
            (
                port,
                (
                    f[1].to_string(),
                    ja4(
                        version,
                        !f[4].is_empty(),
                        &ciphers,
                        &extensions,
                        &list(7),
                        alpn,
                    ),
                ),
            )
        })
        .collect()
}

/// JA4 (FoxIO's specification, BSD-3) from the fields of a ClientHello.
fn ja4(
    version: u16,
    sni: bool,
    ciphers: &[u16],
    extensions: &[u16],
    signatures: &[u16],
    alpn: &str,
) -> String {
    let version = match version {
        0x0304 => "13",
        0x0303 => "12",
        0x0302 => "11",
        0x0301 => "10",
        0x0300 => "s3",
        _ => "00",
    };
    let alpn = match (alpn.chars().next(), alpn.chars().last()) {
        (Some(a), Some(b)) => format!("{a}{b}"),
        _ => "00".to_string(),
    };
    let hash = |text: String| -> String {
        if text.is_empty() {
            return "000000000000".to_string();
        }
        Sha256::digest(text.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()[..12]
            .to_string()
    };
    let hex = |values: &[u16]| {
        values
            .iter()
            .map(|v| format!("{v:04x}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let mut sorted_ciphers = ciphers.to_vec();
    sorted_ciphers.sort_unstable();
    let mut sorted_extensions: Vec<u16> = extensions
        .iter()
        .copied()
        .filter(|&e| e != 0 && e != 0x10)
        .collect();
    sorted_extensions.sort_unstable();
    let extension_text = if signatures.is_empty() {
        hex(&sorted_extensions)
    } else {
        format!("{}_{}", hex(&sorted_extensions), hex(signatures))
    };
    format!(
        "t{version}{}{:02}{:02}{alpn}_{}_{}",
        if sni { "d" } else { "i" },
        ciphers.len().min(99),
        extensions.len().min(99),
        hash(hex(&sorted_ciphers)),
        hash(extension_text)
    )
}

/// A classic pcap file held in memory for rewriting (the captures here are small).
#[derive(Clone)]
struct PcapFile {
    link_type: u32,
    /// (timestamp, frame)
    frames: Vec<(std::time::SystemTime, Vec<u8>)>,
}

impl PcapFile {
    fn read(path: &Path) -> PcapFile {
        let bytes = std::fs::read(path).expect("read the capture");
        assert_eq!(
            &bytes[..4],
            &[0xd4, 0xc3, 0xb2, 0xa1],
            "little-endian microsecond pcap"
        );
        let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
        let link_type = u32_at(20);
        let mut frames = Vec::new();
        let mut at = 24;
        while at + 16 <= bytes.len() {
            let time = std::time::UNIX_EPOCH
                + Duration::from_secs(u32_at(at).into())
                + Duration::from_micros(u32_at(at + 4).into());
            let length = u32_at(at + 8) as usize;
            frames.push((time, bytes[at + 16..at + 16 + length].to_vec()));
            at += 16 + length;
        }
        PcapFile { link_type, frames }
    }

    fn write(&self, path: &Path) {
        let mut out = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
        out.extend_from_slice(&[0; 8]);
        out.extend_from_slice(&262_144u32.to_le_bytes());
        out.extend_from_slice(&self.link_type.to_le_bytes());
        for (time, frame) in &self.frames {
            let since = time.duration_since(std::time::UNIX_EPOCH).unwrap();
            out.extend_from_slice(&(since.as_secs() as u32).to_le_bytes());
            out.extend_from_slice(&since.subsec_micros().to_le_bytes());
            out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
            out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
            out.extend_from_slice(frame);
        }
        std::fs::write(path, out).expect("write the capture");
    }

    /// The frames `copies` times, each copy's client ports (those not in `servers`) shifted
    /// and its time moved past the previous copy, so every copy is new connections.
    fn repeated(&self, copies: u32, servers: &[u16]) -> PcapFile {
        let span = self
            .frames
            .last()
            .unwrap()
            .0
            .duration_since(self.frames[0].0)
            .unwrap()
            + Duration::from_secs(2);
        let mut frames = Vec::new();
        for copy in 0..copies {
            for (time, frame) in &self.frames {
                let mut frame = frame.clone();
                let tcp = match frame[12..14] {
                    [0x08, 0x00] => 14 + usize::from(frame[14] & 0x0f) * 4,
                    [0x86, 0xdd] => 14 + 40,
                    _ => continue,
                };
                for at in [tcp, tcp + 2] {
                    let port = u16::from_be_bytes([frame[at], frame[at + 1]]);
                    if !servers.contains(&port) {
                        let shifted = 1024 + (u32::from(port) - 1024 + copy * 4099) % 64512;
                        frame[at..at + 2].copy_from_slice(&(shifted as u16).to_be_bytes());
                    }
                }
                frames.push((*time + span * copy, frame));
            }
        }
        PcapFile {
            link_type: self.link_type,
            frames,
        }
    }

    fn relinked(&self, link_type: u32, rewrite: impl Fn(&[u8]) -> Vec<u8>) -> PcapFile {
        PcapFile {
            link_type,
            frames: self.frames.iter().map(|(t, f)| (*t, rewrite(f))).collect(),
        }
    }

    /// Where the TCP payload of an Ethernet frame starts and the IP header's length field,
    /// or `None` for a frame without payload.
    fn tcp_layout(frame: &[u8]) -> Option<(usize, usize)> {
        let ip = 14;
        let (tcp, ip_header) = match frame[12..14] {
            [0x08, 0x00] => (ip + usize::from(frame[ip] & 0x0f) * 4, ip),
            [0x86, 0xdd] => (ip + 40, ip),
            _ => return None,
        };
        let payload = tcp + usize::from(frame[tcp + 12] >> 4) * 4;
        (payload < frame.len()).then_some((payload, ip_header))
    }

    /// Every TCP payload cut into segments of `size` bytes, sequence numbers and IP lengths
    /// adjusted.
    fn split_segments(&self, size: usize) -> PcapFile {
        let mut frames = Vec::new();
        for (time, frame) in &self.frames {
            let Some((payload_at, ip)) = PcapFile::tcp_layout(frame) else {
                frames.push((*time, frame.clone()));
                continue;
            };
            let v4 = frame[12..14] == [0x08, 0x00];
            let tcp = if v4 {
                ip + usize::from(frame[ip] & 0x0f) * 4
            } else {
                ip + 40
            };
            let sequence = u32::from_be_bytes(frame[tcp + 4..tcp + 8].try_into().unwrap());
            for (i, chunk) in frame[payload_at..].chunks(size).enumerate() {
                let mut piece = frame[..payload_at].to_vec();
                piece.extend_from_slice(chunk);
                let seq = sequence.wrapping_add((i * size) as u32);
                piece[tcp + 4..tcp + 8].copy_from_slice(&seq.to_be_bytes());
                if v4 {
                    let total = (piece.len() - ip) as u16;
                    piece[ip + 2..ip + 4].copy_from_slice(&total.to_be_bytes());
                } else {
                    let total = (piece.len() - ip - 40) as u16;
                    piece[ip + 4..ip + 6].copy_from_slice(&total.to_be_bytes());
                }
                frames.push((*time, piece));
            }
        }
        PcapFile {
            link_type: self.link_type,
            frames,
        }
    }

    /// Consecutive data segments of one direction of a connection swapped pairwise (only
    /// where the other side sent nothing in between, as reordering on a path does), then every
    /// data segment sent twice.
    fn reordered_and_duplicated(&self) -> PcapFile {
        let mut frames = self.split_segments(50).frames;
        // Per connection: the last data segment's index and direction, if not yet swapped.
        let mut last: BTreeMap<(u16, u16), (usize, u16)> = BTreeMap::new();
        for i in 0..frames.len() {
            let frame = &frames[i].1;
            let ip = 14;
            let tcp = match frame[12..14] {
                [0x08, 0x00] => ip + usize::from(frame[ip] & 0x0f) * 4,
                [0x86, 0xdd] => ip + 40,
                _ => continue,
            };
            let source = u16::from_be_bytes([frame[tcp], frame[tcp + 1]]);
            let destination = u16::from_be_bytes([frame[tcp + 2], frame[tcp + 3]]);
            let key = (source.min(destination), source.max(destination));
            // A FIN or RST (flags 0x01, 0x04) ends what may be swapped across.
            if frame[tcp + 13] & 0x05 != 0 {
                last.remove(&key);
                continue;
            }
            if PcapFile::tcp_layout(frame).is_none() {
                continue;
            }
            match last.remove(&key) {
                Some((j, from)) if from == source => {
                    let (a, b) = (frames[j].1.clone(), frames[i].1.clone());
                    frames[j].1 = b;
                    frames[i].1 = a;
                }
                _ => {
                    last.insert(key, (i, source));
                }
            }
        }
        let mut doubled = Vec::new();
        for (time, frame) in frames {
            if PcapFile::tcp_layout(&frame).is_some() {
                doubled.push((time, frame.clone()));
            }
            doubled.push((time, frame));
        }
        PcapFile {
            link_type: self.link_type,
            frames: doubled,
        }
    }
}
