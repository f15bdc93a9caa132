//! Real clients driven from a test: a line-oriented conversation over a plain TCP socket or
//! over the stdin/stdout of `openssl s_client`, and helpers that turn what a client received
//! back into message bytes.
//!
//! The conversation waits for the reply a step needs (a tagged line, a `+` continuation) before
//! sending the next command, as a well-behaved client does; nothing here sleeps and hopes.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

/// How long a conversation waits for an expected line before the test fails. Dovecot delays
/// failed logins by 2 s; everything else answers in milliseconds.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(20);

/// The cipher string OpenSSL 3 needs to speak TLS 1.0/1.1 at all (security level 0).
pub const LEGACY_CIPHERS: &str = "DEFAULT:@SECLEVEL=0";

/// One client connection: bytes go out through `send`, replies are read line by line.
pub struct Conversation {
    writer: Option<Box<dyn Write + Send>>,
    chunks: Receiver<Vec<u8>>,
    /// Everything received so far.
    received: Vec<u8>,
    /// How much of `received` earlier reads have returned.
    consumed: usize,
    /// The peer closed its side (or the client process ended its output).
    closed: bool,
    /// Our end of a TCP conversation: its port is the client port the gateway records.
    local_port: Option<u16>,
    /// The `openssl s_client` process, for s_client conversations.
    child: Option<Child>,
    stderr: Arc<Mutex<Vec<u8>>>,
    label: String,
}

impl Conversation {
    /// A plain TCP connection to a loopback port.
    pub fn tcp(port: u16) -> Conversation {
        let stream = TcpStream::connect(("127.0.0.1", port))
            .unwrap_or_else(|e| panic!("connect to 127.0.0.1:{port}: {e}"));
        let _ = stream.set_nodelay(true);
        let local_port = stream.local_addr().expect("local address").port();
        let reader = stream.try_clone().expect("clone the socket");
        let mut conversation = Conversation::over(
            Box::new(stream),
            reader,
            format!("tcp 127.0.0.1:{port} from port {local_port}"),
        );
        conversation.local_port = Some(local_port);
        conversation
    }

    /// `openssl s_client` against a loopback port, verifying the server as `localhost` with
    /// `ca_file`, with `extra` arguments such as `-tls1 -cipher ... -starttls imap`. It runs
    /// `-quiet` (no session dump, and end of input does not close the connection) and
    /// `-nocommands` (a line starting with `Q` or `R` is data, not a command).
    pub fn s_client(port: u16, ca_file: &Path, extra: &[&str]) -> Conversation {
        let mut command = s_client_command(port, ca_file, extra);
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let label = format!("{command:?}");
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {label}: {e}"));
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut stderr_pipe = child.stderr.take().expect("piped stderr");
        let mut conversation = Conversation::over(Box::new(stdin), stdout, label);
        let stderr = conversation.stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr_pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                stderr
                    .lock()
                    .expect("stderr buffer")
                    .extend_from_slice(&buf[..n]);
            }
        });
        conversation.child = Some(child);
        conversation
    }

    fn over(
        writer: Box<dyn Write + Send>,
        mut reader: impl Read + Send + 'static,
        label: String,
    ) -> Conversation {
        let (tx, rx) = mpsc::channel();
        // A reader thread turns the blocking stream into chunks we can wait for with a timeout.
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if tx.send(buf[..n].to_vec()).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        Conversation {
            writer: Some(writer),
            chunks: rx,
            received: Vec::new(),
            consumed: 0,
            closed: false,
            local_port: None,
            child: None,
            stderr: Arc::new(Mutex::new(Vec::new())),
            label,
        }
    }

    /// The local port of a TCP conversation: the `client_port` of its session record.
    pub fn local_port(&self) -> u16 {
        self.local_port.expect("a TCP conversation")
    }

    /// Sends bytes exactly as given (the caller writes the CRLFs).
    pub fn send(&mut self, bytes: &[u8]) {
        let writer = self.writer.as_mut().expect("input still open");
        if let Err(e) = writer.write_all(bytes).and_then(|()| writer.flush()) {
            panic!(
                "{}: sending {:?} failed: {e}\n{}",
                self.label,
                String::from_utf8_lossy(bytes),
                self.describe()
            );
        }
    }

    /// Reads until a complete line (ending in LF) satisfies `wanted`; returns everything from
    /// the end of the previous read up to and including that line. Lines inside literals are
    /// scanned too, so callers look for lines a message body cannot contain (tagged replies).
    pub fn read_until(&mut self, what: &str, wanted: impl Fn(&[u8]) -> bool) -> Vec<u8> {
        let deadline = Instant::now() + REPLY_TIMEOUT;
        let mut scan = self.consumed;
        loop {
            while let Some(eol) = self.received[scan..].iter().position(|&b| b == b'\n') {
                let line = &self.received[scan..scan + eol + 1];
                scan += eol + 1;
                if wanted(line) {
                    let reply = self.received[self.consumed..scan].to_vec();
                    self.consumed = scan;
                    return reply;
                }
            }
            if self.closed {
                panic!(
                    "{}: connection closed while waiting for {what}\n{}",
                    self.label,
                    self.describe()
                );
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.chunks.recv_timeout(left) {
                Ok(chunk) => self.received.extend_from_slice(&chunk),
                Err(RecvTimeoutError::Disconnected) => self.closed = true,
                Err(RecvTimeoutError::Timeout) => panic!(
                    "{}: no {what} within {REPLY_TIMEOUT:?}\n{}",
                    self.label,
                    self.describe()
                ),
            }
        }
    }

    /// Reads through the tagged IMAP reply for `tag`; returns the bytes read, untagged lines
    /// included.
    pub fn read_tagged(&mut self, tag: &str) -> Vec<u8> {
        let prefix = format!("{tag} ");
        self.read_until(&format!("the tagged reply {tag}"), |line| {
            line.starts_with(prefix.as_bytes())
        })
    }

    /// Reads through the next line, whatever it is.
    pub fn read_line(&mut self) -> Vec<u8> {
        self.read_until("a line", |_| true)
    }

    /// Reads through a continuation request (`+` in IMAP, `+ ` in POP3 SASL).
    pub fn read_continuation(&mut self) -> Vec<u8> {
        self.read_until("a continuation request", |line| line.starts_with(b"+"))
    }

    /// Reads until the peer closes; returns the rest.
    pub fn read_to_end(&mut self) -> Vec<u8> {
        let deadline = Instant::now() + REPLY_TIMEOUT;
        while !self.closed {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.chunks.recv_timeout(left) {
                Ok(chunk) => self.received.extend_from_slice(&chunk),
                Err(RecvTimeoutError::Disconnected) => self.closed = true,
                Err(RecvTimeoutError::Timeout) => panic!(
                    "{}: the peer did not close within {REPLY_TIMEOUT:?}\n{}",
                    self.label,
                    self.describe()
                ),
            }
        }
        let rest = self.received[self.consumed..].to_vec();
        self.consumed = self.received.len();
        rest
    }

    /// Everything received so far.
    pub fn transcript(&self) -> &[u8] {
        &self.received
    }

    /// Closes our input, waits for the peer to close and, for s_client, for the process to
    /// exit; returns its exit status (None for TCP).
    pub fn finish(mut self) -> Option<ExitStatus> {
        self.writer = None;
        self.read_to_end();
        let mut child = self.child.take()?;
        let deadline = Instant::now() + REPLY_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait().expect("wait for s_client") {
                return Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{}: did not exit after the server closed\n{}",
                    self.label,
                    self.describe()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The transcript and the client's stderr, for failure messages.
    pub fn describe(&self) -> String {
        format!(
            "--- received ---\n{}\n--- client stderr ---\n{}",
            String::from_utf8_lossy(&self.received),
            String::from_utf8_lossy(&self.stderr.lock().expect("stderr buffer"))
        )
    }
}

/// The `openssl s_client` command line [`Conversation::s_client`] runs, for tests that only
/// need its exit status (a refused handshake).
pub fn s_client_command(port: u16, ca_file: &Path, extra: &[&str]) -> Command {
    let mut command = Command::new("openssl");
    command
        .arg("s_client")
        .args(["-connect", &format!("127.0.0.1:{port}")])
        // SNI as a device configured with a host name sends it; the name is checked too.
        .args(["-servername", "localhost", "-verify_hostname", "localhost"])
        .arg("-CAfile")
        .arg(ca_file)
        .args(["-verify_return_error", "-quiet", "-nocommands"])
        .args(extra);
    command
}

impl Drop for Conversation {
    fn drop(&mut self) {
        // Only the s_client this conversation started, by its own handle.
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// One IMAP session through `s_client`: optional ID, LOGIN, EXAMINE, FETCH every message,
/// LOGOUT. Returns the fetched bodies. With `-starttls imap`, s_client itself reads the
/// greeting and runs CAPABILITY and STARTTLS before handing the connection over.
pub fn s_client_fetch_all(
    port: u16,
    ca: &Path,
    args: &[&str],
    send_id: bool,
) -> Vec<(u32, Vec<u8>)> {
    let starttls = args.contains(&"-starttls");
    let mut client = Conversation::s_client(port, ca, args);
    if !starttls {
        let greeting = client.read_line();
        assert!(
            greeting.starts_with(b"* OK"),
            "greeting: {}",
            client.describe()
        );
    }
    if send_id {
        client.send(b"a ID (\"name\" \"printer\" \"version\" \"1.0\")\r\n");
        let reply = client.read_tagged("a");
        assert!(
            last_line(&reply).starts_with("a OK"),
            "ID: {}",
            client.describe()
        );
    }
    client.send(b"b LOGIN alice secret\r\n");
    let reply = client.read_tagged("b");
    assert!(
        last_line(&reply).starts_with("b OK"),
        "login refused: {}",
        client.describe()
    );
    client.send(b"c EXAMINE INBOX\r\n");
    let reply = client.read_tagged("c");
    assert!(
        last_line(&reply).starts_with("c OK"),
        "{}",
        client.describe()
    );
    client.send(b"d FETCH 1:* BODY.PEEK[]\r\n");
    let reply = client.read_tagged("d");
    assert!(
        last_line(&reply).starts_with("d OK"),
        "{}",
        client.describe()
    );
    let bodies = imap_fetch_bodies(&reply);
    client.send(b"e LOGOUT\r\n");
    client.read_tagged("e");
    let status = client.finish().expect("s_client exit status");
    assert!(status.success(), "s_client exited with {status}");
    bodies
}

/// One IMAP session of alice through `openssl s_client` with `args` (e.g. `-tls1 -cipher ...
/// -brief`, or `-starttls imap`): greeting, LOGIN, LOGOUT, each answered OK, and s_client exits cleanly. Returns
/// what it received and printed on stderr (with `-brief`: the protocol, suite and temporary
/// key it negotiated).
pub fn s_client_imap_login(port: u16, ca_file: &Path, args: &[&str]) -> String {
    let mut client = Conversation::s_client(port, ca_file, args);
    // With `-starttls imap`, s_client reads the greeting itself.
    if !args.contains(&"-starttls") {
        let greeting = client.read_line();
        assert!(
            greeting.starts_with(b"* OK"),
            "{args:?}: {}",
            client.describe()
        );
    }
    client.send(b"a LOGIN alice secret\r\n");
    let reply = client.read_tagged("a");
    assert!(
        last_line(&reply).starts_with("a OK"),
        "{args:?}: login refused: {}",
        client.describe()
    );
    client.send(b"b LOGOUT\r\n");
    client.read_tagged("b");
    let report = client.describe();
    let status = client.finish().expect("s_client exit status");
    assert!(status.success(), "{args:?}: s_client exited with {status}");
    report
}

/// The message bodies in IMAP `FETCH ... BODY[] {n}` responses, by sequence number, exactly
/// as the literals carried them.
pub fn imap_fetch_bodies(transcript: &[u8]) -> Vec<(u32, Vec<u8>)> {
    let mut bodies = Vec::new();
    let mut pos = 0;
    while let Some(eol) = find(&transcript[pos..], b"\r\n") {
        let line = &transcript[pos..pos + eol];
        pos += eol + 2;
        let Some(rest) = line.strip_prefix(b"* ") else {
            continue;
        };
        let text = String::from_utf8_lossy(rest);
        let mut words = text.split(' ');
        let (Some(seq), Some("FETCH")) = (words.next(), words.next()) else {
            continue;
        };
        let (Some(open), true) = (text.rfind('{'), text.ends_with('}')) else {
            continue;
        };
        let len: usize = text[open + 1..text.len() - 1]
            .parse()
            .unwrap_or_else(|_| panic!("bad literal length in {text:?}"));
        assert!(
            text.contains("BODY[]"),
            "a FETCH literal that is not BODY[]: {text:?}"
        );
        let body = transcript
            .get(pos..pos + len)
            .unwrap_or_else(|| panic!("literal of {len} bytes cut short after {text:?}"));
        bodies.push((seq.parse().expect("sequence number"), body.to_vec()));
        pos += len;
    }
    bodies
}

/// A POP3 multi-line reply (status line, dot-stuffed lines, terminating `.`) turned back into
/// the message: RFC 1939 section 3 says a line starting with `.` is sent with one more `.`.
pub fn pop3_multiline_body(reply: &[u8]) -> Vec<u8> {
    let status_end = find(reply, b"\r\n").expect("a status line") + 2;
    assert!(
        reply.starts_with(b"+OK"),
        "not a positive reply: {:?}",
        String::from_utf8_lossy(reply)
    );
    let data = reply[status_end..]
        .strip_suffix(b".\r\n")
        .expect("a multi-line reply ends with .CRLF");
    let mut body = Vec::with_capacity(data.len());
    for line in data.split_inclusive(|&b| b == b'\n') {
        body.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
    }
    body
}

/// The last line of a reply without its line end: the tagged line of an IMAP reply read with
/// [`Conversation::read_tagged`], the status line of a POP3 one.
pub fn last_line(reply: &[u8]) -> String {
    let text = String::from_utf8_lossy(reply);
    text.trim_end().lines().last().unwrap_or("").to_string()
}

/// Position of `needle` in `haystack`. An empty needle is `None` rather than a panic
/// (`windows(0)` panics) or a match everywhere: a search for nothing proves nothing, so callers
/// that search for secrets refuse empty ones before they get here.
pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The SASL PLAIN response for `user` and `password` (RFC 4616, no authorisation identity),
/// base64-encoded with padding as IMAP `AUTHENTICATE` and POP3 `AUTH` carry it.
pub fn sasl_plain(user: &str, password: &[u8]) -> String {
    let mut blob = vec![0];
    blob.extend_from_slice(user.as_bytes());
    blob.push(0);
    blob.extend_from_slice(password);
    STANDARD.encode(blob)
}

/// One message fetched by curl pinned to TLS 1.0 with the legacy suites, logged in with
/// `login` ("user:password"): `url` names the message (`imaps://…/INBOX;MAILINDEX=1`,
/// `pop3s://…/1`). With `starttls_verb` (`STARTTLS`, `STLS`) the URL is plaintext, TLS is
/// required, and curl's trace must show it sent that command. `extra` goes on curl's command
/// line (e.g. `--login-options AUTH=LOGIN`). Asserts curl itself reports TLS 1.0; returns the
/// message and curl's trace.
pub fn curl_tls10_fetch(
    ca: &Path,
    url: &str,
    out: &Path,
    login: &OsStr,
    starttls_verb: Option<&str>,
    extra: &[&str],
) -> (Vec<u8>, String) {
    let mut curl = Command::new("curl");
    curl.args(["-sS", "-v", "--max-time", "20"])
        .args(["--tlsv1.0", "--tls-max", "1.0", "--ciphers", LEGACY_CIPHERS])
        .arg("--cacert")
        .arg(ca)
        .arg("-u")
        .arg(login)
        .args(extra)
        .arg("-o")
        .arg(out)
        .arg(url);
    if starttls_verb.is_some() {
        // curl sends STARTTLS/STLS and refuses to go on without TLS.
        curl.arg("--ssl-reqd");
    }
    let output = crate::run_ok(&mut curl);
    let trace = String::from_utf8_lossy(&output.stderr);
    assert!(
        trace.contains("SSL connection using TLSv1 /"),
        "curl did not negotiate TLS 1.0 for {url}:\n{trace}"
    );
    if let Some(verb) = starttls_verb {
        let sent = trace
            .lines()
            .any(|l| l.starts_with("> ") && l.trim_end().ends_with(&format!(" {verb}")));
        assert!(sent, "curl did not send {verb} for {url}:\n{trace}");
    }
    let message = std::fs::read(out).expect("curl wrote the message");
    (message, trace.into_owned())
}

/// Runs a Python fetch driver from `tests/clients/` (`imap_fetch.py`, `pop3_fetch.py`) with
/// `args`; it writes messages 1 to `count` as `N.eml` into `out_dir` and reports the TLS
/// version it negotiated, which must be `python_tls` (Python spells TLS 1.0 "TLSv1").
/// Returns the messages, numbered.
pub fn python_driver_fetch(
    driver: &str,
    args: &[String],
    python_tls: &str,
    out_dir: PathBuf,
    count: usize,
) -> Vec<(u32, Vec<u8>)> {
    let output = crate::run_ok(
        Command::new("python3")
            .arg(crate::repo_root().join("tests/clients").join(driver))
            .args(args)
            .arg("--out")
            .arg(&out_dir),
    );
    let report = String::from_utf8_lossy(&output.stdout);
    // The client's own view: it negotiated the old version it was pinned to.
    assert!(
        report.contains(&format!("tls_version={python_tls} ")),
        "{driver} report: {report}"
    );
    (1..=count)
        .map(|n| {
            let file = out_dir.join(format!("{n}.eml"));
            let body = std::fs::read(&file)
                .unwrap_or_else(|e| panic!("{}: {e}; report: {report}", file.display()));
            (n as u32, body)
        })
        .collect()
}

/// Runs `tests/clients/smtp_submit.py` (a legacy SMTP device, Python smtplib) with `args`,
/// submitting the message in the file `message`. Returns its exit status's success and its
/// report (key=value lines: `tls_version=`, `ehlo_auth=`, `login=`, `mail=`, `queued=yes`).
pub fn smtp_submit(message: &Path, args: &[&str]) -> (bool, String) {
    let output = crate::run(
        Command::new("python3")
            .arg(crate::repo_root().join("tests/clients/smtp_submit.py"))
            .args(args)
            .arg("--message")
            .arg(message),
    );
    let mut report = String::from_utf8_lossy(&output.stdout).into_owned();
    report.push_str(&String::from_utf8_lossy(&output.stderr));
    (output.status.success(), report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sasl_plain_is_nul_separated_and_padded() {
        assert_eq!(sasl_plain("alice", b"secret"), "AGFsaWNlAHNlY3JldA==");
    }

    #[test]
    fn find_finds_the_first_match_and_never_an_empty_needle() {
        assert_eq!(find(b"a OK b OK", b"OK"), Some(2));
        assert_eq!(find(b"short", b"longer than it"), None);
        assert_eq!(find(b"anything", b""), None);
    }

    #[test]
    fn fetch_literals_are_cut_exactly() {
        let wire = b"* 1 FETCH (BODY[] {5}\r\nab\r\nc)\r\n* 2 FETCH (FLAGS (\\Seen) BODY[] {0}\r\n)\r\na OK done\r\n";
        assert_eq!(
            imap_fetch_bodies(wire),
            vec![(1, b"ab\r\nc".to_vec()), (2, Vec::new())]
        );
    }

    #[test]
    fn pop3_dot_stuffing_is_undone() {
        let wire = b"+OK 9 octets\r\nA\r\n..\r\n... x\r\n.\r\n";
        assert_eq!(pop3_multiline_body(wire), b"A\r\n.\r\n.. x\r\n");
    }
}
