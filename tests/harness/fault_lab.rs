//! The lab the fault tests run in: the lab Dovecot, and the real gateway with a config written
//! for the case (extra upstreams such as an unreachable or silent one, listeners bridging to
//! them), with in-process clients that count every connection made, so a test can prove the
//! store holds exactly one record per connection and that the gateway went on serving a
//! normal login after each fault.

use std::net::{Ipv4Addr, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use store::{Outcome, SessionRecord, SqliteStore};

use crate::clients::REPLY_TIMEOUT;
use crate::legacy_client::{connect_tcp, Client, Stream, LOOPBACK};
use crate::{Dovecot, DovecotOptions, Gateway, ListenerSpec, Scratch};

/// One `[[upstream]]` of a test config.
pub struct UpstreamSpec {
    pub name: String,
    pub address: String,
    pub protocol: &'static str,
    /// "implicit", or "starttls" for a plaintext port upgraded with STARTTLS / STLS.
    pub tls: &'static str,
    /// A CA trusted beside the system roots; `None` trusts the system roots alone.
    pub ca_file: Option<PathBuf>,
    /// The name the certificate must carry; `None` is the host part of `address`.
    pub server_name: Option<String>,
}

impl UpstreamSpec {
    /// An implicit-TLS upstream verified against the system roots and its host name.
    pub fn new(name: &str, address: &str, protocol: &'static str) -> UpstreamSpec {
        UpstreamSpec {
            name: name.into(),
            address: address.into(),
            protocol,
            tls: "implicit",
            ca_file: None,
            server_name: None,
        }
    }

    fn toml(&self) -> String {
        let mut text = format!(
            "[[upstream]]\nname = \"{}\"\naddress = \"{}\"\nprotocol = \"{}\"\ntls = \"{}\"\n",
            self.name, self.address, self.protocol, self.tls
        );
        if let Some(ca) = &self.ca_file {
            text += &format!("ca_file = \"{}\"\n", ca.display());
        }
        if let Some(name) = &self.server_name {
            text += &format!("server_name = \"{name}\"\n");
        }
        text + "\n"
    }
}

/// A listener and the upstream it bridges to.
pub struct Listener {
    pub spec: ListenerSpec,
    pub upstream: String,
}

/// A listener bridging to `upstream`; implicit-TLS ones are open to TLS 1.0.
pub fn listener(name: &str, protocol: &str, tls: &str, upstream: &str) -> Listener {
    let min_tls = (tls == "implicit").then_some("1.0");
    Listener {
        spec: ListenerSpec::new(name, protocol, tls, min_tls),
        upstream: upstream.into(),
    }
}

/// IMAP and POP3, each on an implicit-TLS port open to TLS 1.0 and on a plaintext port, all
/// bridged to the lab Dovecot.
pub fn standard_listeners() -> Vec<Listener> {
    vec![
        listener("imap-tls", "imap", "implicit", "dovecot-imap"),
        listener("imap-plain", "imap", "none", "dovecot-imap"),
        listener("pop3-tls", "pop3", "implicit", "dovecot-pop3"),
        listener("pop3-plain", "pop3", "none", "dovecot-pop3"),
    ]
}

/// A scratch folder, the lab Dovecot and a running gateway; the gateway stops first on drop.
pub struct Lab {
    pub gateway: Gateway,
    _dovecot: Dovecot,
    /// The lab CA, which the gateway's certificates chain to.
    pub ca: PathBuf,
    _scratch: Scratch,
    /// Client ports of the normal logins that proved the gateway kept serving.
    normal_logins: std::sync::Mutex<Vec<u16>>,
    /// Connections made to the gateway: each must leave exactly one record.
    connections: AtomicUsize,
}

impl Lab {
    /// A fresh scratch folder and lab Dovecot, and a gateway with `gateway_section` in
    /// `[gateway]`, `upstreams` beside the lab Dovecot's two, and `listeners`.
    pub fn start(
        label: &str,
        gateway_section: &str,
        upstreams: Vec<UpstreamSpec>,
        listeners: Vec<Listener>,
    ) -> Lab {
        let scratch = Scratch::new(&format!("faults-{label}"));
        let dovecot = Dovecot::start(&scratch.path().join("dovecot"), &DovecotOptions::default());
        Lab::start_with(scratch, dovecot, gateway_section, upstreams, listeners)
    }

    /// Like [`Lab::start`], in a scratch folder and with a Dovecot the test set up.
    pub fn start_with(
        scratch: Scratch,
        dovecot: Dovecot,
        gateway_section: &str,
        upstreams: Vec<UpstreamSpec>,
        listeners: Vec<Listener>,
    ) -> Lab {
        Lab::start_with_log(
            scratch,
            dovecot,
            gateway_section,
            upstreams,
            listeners,
            "info",
        )
    }

    /// Like [`Lab::start_with`], with the gateway's `MAILTLS_LOG` set to `log_filter`.
    pub fn start_with_log(
        scratch: Scratch,
        dovecot: Dovecot,
        gateway_section: &str,
        mut upstreams: Vec<UpstreamSpec>,
        listeners: Vec<Listener>,
        log_filter: &str,
    ) -> Lab {
        let ca = dovecot.ca_file();
        let certs = ca.parent().expect("certs dir").to_path_buf();
        for (name, protocol, port) in [
            ("dovecot-imap", "imap", "IMAPS_PORT"),
            ("dovecot-pop3", "pop3", "POP3S_PORT"),
        ] {
            let mut upstream =
                UpstreamSpec::new(name, &format!("localhost:{}", dovecot.port(port)), protocol);
            upstream.ca_file = Some(ca.clone());
            upstreams.push(upstream);
        }
        let mut config = format!(
            "[gateway]\n{gateway_section}\n\n{}\n{}",
            crate::default_store_table(gateway_section),
            upstreams.iter().map(UpstreamSpec::toml).collect::<String>()
        );
        for l in &listeners {
            let s = &l.spec;
            config += &format!(
                "[[listener]]\nname = \"{}\"\nprotocol = \"{}\"\nbind = \"127.0.0.1:{}\"\ntls = \"{}\"\nupstream = \"{}\"\n",
                s.name, s.protocol, s.port, s.tls, l.upstream
            );
            if s.tls != "none" {
                config += &format!(
                    "certificate = \"{}\"\nkey = \"{}\"\n",
                    certs.join("server.pem").display(),
                    certs.join("server.key").display()
                );
            }
            if let Some(min) = &s.min_tls {
                config += &format!("min_tls = \"{min}\"\n");
            }
            config += &s.proxy_toml();
            config += "\n";
        }
        let dir = scratch.path().join("gateway");
        std::fs::create_dir_all(&dir).expect("gateway dir");
        let gateway = Gateway::start_with_config_and_log(
            &dir,
            &config,
            listeners.into_iter().map(|l| l.spec).collect(),
            log_filter,
        );
        Lab {
            gateway,
            _dovecot: dovecot,
            ca,
            _scratch: scratch,
            normal_logins: Default::default(),
            connections: AtomicUsize::new(0),
        }
    }

    /// The lab Dovecot, to read its log.
    pub fn dovecot(&self) -> &Dovecot {
        &self._dovecot
    }

    /// A client of `listener`: TLS 1.0 on implicit-TLS listeners, plaintext on the others.
    pub fn connect(&self, listener: &str) -> Client {
        self.connect_from(listener, LOOPBACK)
    }

    /// [`Lab::connect`] from the source address `source`, another host to the gateway.
    pub fn connect_from(&self, listener: &str, source: Ipv4Addr) -> Client {
        let spec = self
            .gateway
            .listeners
            .iter()
            .find(|l| l.name == listener)
            .unwrap_or_else(|| panic!("no listener {listener}"));
        self.connections.fetch_add(1, Ordering::SeqCst);
        match spec.tls.as_str() {
            "implicit" => Client::tls_from(source, spec.port, &self.ca),
            _ => Client::plain_from(source, spec.port),
        }
    }

    /// A plaintext client of `listener`, whatever TLS it expects.
    pub fn connect_plain(&self, listener: &str) -> Client {
        Client::over(Stream::Plain(self.connect_tcp(listener)))
    }

    /// A bare TCP connection to `listener`.
    pub fn connect_tcp(&self, listener: &str) -> TcpStream {
        self.connections.fetch_add(1, Ordering::SeqCst);
        connect_tcp(self.gateway.port(listener))
    }

    /// Counts a connection made by a client outside the harness (Python's poplib, `openssl
    /// s_client`), so that [`Lab::finish`] expects its record too.
    pub fn count_outside_connection(&self) {
        self.connections.fetch_add(1, Ordering::SeqCst);
    }

    /// Proves the gateway still serves: a whole IMAP session (greeting, LOGIN, SELECT, LOGOUT).
    pub fn imap_login_works(&self, listener: &str) {
        self.imap_login_works_from(listener, LOOPBACK);
    }

    /// [`Lab::imap_login_works`] from the source address `source`.
    pub fn imap_login_works_from(&self, listener: &str, source: Ipv4Addr) {
        let mut c = self.connect_from(listener, source);
        c.expect_greeting_imap();
        c.send(b"n1 LOGIN alice secret\r\n");
        let login = c.tagged("n1");
        assert!(
            login.starts_with("n1 OK "),
            "{listener}: login after a fault: {login:?}"
        );
        c.select_lab_inbox("n2");
        c.send(b"n3 LOGOUT\r\n");
        let bye = c.tagged("n3");
        assert!(
            bye.starts_with("* BYE ") && bye.contains("n3 OK "),
            "{bye:?}"
        );
        self.normal_logins.lock().expect("lock").push(c.port);
    }

    /// Proves the gateway still serves POP3: greeting, USER/PASS, STAT, QUIT.
    pub fn pop3_login_works(&self, listener: &str) {
        self.pop3_login_works_from(listener, LOOPBACK);
    }

    /// [`Lab::pop3_login_works`] from the source address `source`.
    pub fn pop3_login_works_from(&self, listener: &str, source: Ipv4Addr) {
        let mut c = self.connect_from(listener, source);
        c.expect_line_starting("+OK ");
        c.send(b"USER alice\r\n");
        assert_eq!(c.line(), "+OK send PASS\r\n");
        c.send(b"PASS secret\r\n");
        assert_eq!(
            c.line(),
            "+OK Logged in.\r\n",
            "{listener}: login after a fault"
        );
        c.send(b"STAT\r\n");
        assert!(c.line().starts_with("+OK 3 "));
        c.send(b"QUIT\r\n");
        assert_eq!(c.rest_until_closed(REPLY_TIMEOUT), "+OK Logging out.\r\n");
        self.normal_logins.lock().expect("lock").push(c.port);
    }

    /// Waits until the gateway's writer has reported `n` failed writes in its log (one line
    /// each: the error it quotes may say "cannot write session records" too).
    pub fn wait_for_failed_writes(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self
            .gateway
            .log()
            .matches("they stay queued and the write is retried")
            .count()
            < n
        {
            assert!(
                Instant::now() < deadline,
                "{n} failed writes were not reported:\n{}",
                self.gateway.log()
            );
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until the gateway has written `n` records (it writes them off the session path).
    pub fn wait_for_records(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let count = SqliteStore::open(&self.gateway.db_path())
                .and_then(|s| s.count())
                .unwrap_or(0);
            if count as usize >= n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "only {count} of {n} records written"
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the gateway (every session recorded) and returns its records and its log, with
    /// the normal logins' records checked.
    pub fn finish(&mut self) -> (Vec<SessionRecord>, String) {
        let records = self.gateway.stop_and_read_sessions();
        let log = self.gateway.log();
        assert_eq!(
            records.len(),
            self.connections.load(Ordering::SeqCst),
            "one record per connection made, no more, no less:\n{log}"
        );
        let normal = self.normal_logins.lock().expect("lock").clone();
        for port in normal {
            let r = record_of(&records, port);
            assert_eq!(
                r.outcome,
                Outcome::Ok,
                "a normal login after a fault: {r:?}"
            );
            assert_eq!(r.login.as_deref(), Some("alice"));
        }
        (records, log)
    }
}

/// The only record of the client whose source port was `port`.
pub fn record_of(records: &[SessionRecord], port: u16) -> &SessionRecord {
    let found: Vec<&SessionRecord> = records.iter().filter(|r| r.client_port == port).collect();
    assert_eq!(
        found.len(),
        1,
        "expected one record for client port {port}, found {}: {found:#?}",
        found.len()
    );
    found[0]
}

/// The log line that contains every one of `parts`.
pub fn log_line<'a>(log: &'a str, parts: &[&str]) -> &'a str {
    log.lines()
        .find(|line| parts.iter().all(|p| line.contains(p)))
        .unwrap_or_else(|| panic!("no log line with {parts:?}:\n{log}"))
}
