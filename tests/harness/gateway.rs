//! The real `mailtls` binary, run with a config written for one test.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use store::{SessionRecord, SqliteStore};

use crate::{repo_root, run_ok, Dovecot, Scratch};

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    free_port_on("127.0.0.1")
}

/// A port free on loopback address `ip` right now, e.g. a source port for a client that binds
/// `127.0.0.3` so the gateway sees it apart from a proxy on `127.0.0.1`.
///
/// The port is released before the gateway binds it, so it comes from below the kernel's
/// ephemeral range, where no other test's outgoing connection can take it meanwhile (CI saw
/// "Address already in use" once with a kernel-chosen port). The rule is lab/free_ports.py's;
/// a port is never handed out twice in one test process.
pub fn free_port_on(ip: &str) -> u16 {
    use std::collections::HashSet;
    use std::sync::Mutex;
    static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let (low, high) = if ephemeral_low > 12000 {
        (10000, ephemeral_low - 1)
    } else {
        (ephemeral_low, u16::MAX)
    };
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        ^ (u64::from(std::process::id()) << 32);
    let mut random = crate::xorshift::XorShift(seed | 1);
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    let handed_out = handed_out.get_or_insert_with(HashSet::new);
    for _ in 0..10_000 {
        let port = low + random.below(usize::from(high - low) + 1) as u16;
        if !handed_out.contains(&port) && TcpListener::bind((ip, port)).is_ok() {
            handed_out.insert(port);
            return port;
        }
    }
    panic!("no free port below the ephemeral range on {ip}")
}

/// The `mailtls` binary, built once per test process.
pub fn mailtls_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| built_binary("mailtls", "mailtls"))
        .clone()
}

/// Runs `mailtls` with `args`, `stdin` written to its standard input, and returns what it
/// printed and its exit status.
pub fn run_mailtls(args: &[&str], stdin: &[u8]) -> std::process::Output {
    use std::io::Write;
    let mut child = Command::new(mailtls_bin())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run mailtls");
    let mut input = child.stdin.take().expect("piped stdin");
    let bytes = stdin.to_vec();
    // Written beside the wait, so a large input cannot block on a full pipe.
    let writer = std::thread::spawn(move || input.write_all(&bytes));
    let output = child.wait_with_output().expect("mailtls output");
    // mailtls may exit before reading everything (an error): a broken pipe is no failure.
    let _ = writer.join();
    output
}

/// Builds binary `bin` of `package` (debug profile) and returns its path.
pub(crate) fn built_binary(package: &str, bin: &str) -> PathBuf {
    let root = repo_root();
    run_ok(
        Command::new(env!("CARGO"))
            .args(["build", "-q", "-p", package, "--bin", bin])
            .current_dir(&root),
    );
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    target.join("debug").join(bin)
}

/// [`Gateway::start`] in `scratch`'s `gateway` folder, where its config, log and session store
/// stay beside the Dovecot's for inspection when the test fails.
pub fn start_gateway(
    scratch: &Scratch,
    dovecot: &Dovecot,
    listeners: Vec<ListenerSpec>,
    gateway_section: &str,
) -> Gateway {
    start_gateway_upstream(
        scratch,
        dovecot,
        listeners,
        gateway_section,
        UpstreamTls::Implicit,
    )
}

/// [`start_gateway`] with the upstream leg reaching the lab Dovecot as `upstream_tls` says.
pub fn start_gateway_upstream(
    scratch: &Scratch,
    dovecot: &Dovecot,
    listeners: Vec<ListenerSpec>,
    gateway_section: &str,
    upstream_tls: UpstreamTls,
) -> Gateway {
    let dir = scratch.path().join("gateway");
    std::fs::create_dir_all(&dir).expect("gateway dir");
    Gateway::start_upstream(&dir, dovecot, listeners, gateway_section, upstream_tls)
}

/// How the gateway's upstream leg reaches the lab Dovecot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamTls {
    /// TLS from the first byte, on `IMAPS_PORT` / `POP3S_PORT`.
    Implicit,
    /// The plaintext `IMAP_PORT` / `POP3_PORT`, upgraded with STARTTLS / STLS. The lab
    /// Dovecot refuses logins without TLS, so a login there proves the upgrade happened.
    StartTls,
}

impl UpstreamTls {
    /// The `tls` value of the `[[upstream]]` and the `ports.env` names of its ports (IMAP,
    /// POP3).
    fn config(self) -> (&'static str, &'static str, &'static str) {
        match self {
            UpstreamTls::Implicit => ("implicit", "IMAPS_PORT", "POP3S_PORT"),
            UpstreamTls::StartTls => ("starttls", "IMAP_PORT", "POP3_PORT"),
        }
    }
}

/// One `[[listener]]` of a test config.
#[derive(Debug, Clone)]
pub struct ListenerSpec {
    pub name: String,
    /// "imap" or "pop3"; the upstream is the lab Dovecot of the same protocol.
    pub protocol: String,
    /// "implicit", "starttls" or "none".
    pub tls: String,
    /// `None` leaves the default floor (TLS 1.2).
    pub min_tls: Option<String>,
    pub port: u16,
    /// `proxy_from` of a PROXY protocol listener; empty for a listener clients reach directly.
    pub proxy_from: Vec<String>,
    /// The `[policy.NAME]` the listener applies, if any.
    pub policy: Option<String>,
    /// The legacy opt-in endpoint: only clients with a live exception get through.
    pub opt_in: bool,
}

impl ListenerSpec {
    pub fn new(name: &str, protocol: &str, tls: &str, min_tls: Option<&str>) -> ListenerSpec {
        ListenerSpec {
            name: name.into(),
            protocol: protocol.into(),
            tls: tls.into(),
            min_tls: min_tls.map(str::to_string),
            port: free_port(),
            proxy_from: Vec::new(),
            policy: None,
            opt_in: false,
        }
    }

    /// This listener under the TLS floor policy `[policy.NAME]` (defined in the config's
    /// extra tables).
    pub fn with_policy(mut self, name: &str) -> ListenerSpec {
        self.policy = Some(name.to_string());
        self
    }

    /// This listener as the legacy opt-in endpoint of the policy `[policy.NAME]`.
    pub fn opt_in_to(mut self, name: &str) -> ListenerSpec {
        self.policy = Some(name.to_string());
        self.opt_in = true;
        self
    }

    /// This listener behind PROXY protocol load balancers from the networks `from`.
    pub fn behind_proxy(mut self, from: &[&str]) -> ListenerSpec {
        self.proxy_from = from.iter().map(|n| n.to_string()).collect();
        self
    }

    /// The listener's `proxy_protocol` and `proxy_from` lines; nothing for a direct one.
    pub fn proxy_toml(&self) -> String {
        if self.proxy_from.is_empty() {
            return String::new();
        }
        format!(
            "proxy_protocol = true\nproxy_from = {:?}\n",
            self.proxy_from
        )
    }

    /// The `[[listener]]` table of this listener, bridged to `upstream`, with the lab's
    /// certificate and key from `certs`.
    pub fn toml(&self, certs: &Path, upstream: &str) -> String {
        let min_tls = self
            .min_tls
            .as_ref()
            .map(|v| format!("min_tls = \"{v}\"\n"))
            .unwrap_or_default();
        format!(
            "[[listener]]\nname = \"{name}\"\nprotocol = \"{protocol}\"\nbind = \"127.0.0.1:{port}\"\ntls = \"{tls}\"\n{min_tls}certificate = \"{certs}/server.pem\"\nkey = \"{certs}/server.key\"\nupstream = \"{upstream}\"\n{proxy}\n",
            name = self.name,
            protocol = self.protocol,
            port = self.port,
            tls = self.tls,
            certs = certs.display(),
            proxy = self.proxy_toml()
                + &self
                    .policy
                    .as_ref()
                    .map(|p| format!("policy = \"{p}\"\nopt_in = {}\n", self.opt_in))
                    .unwrap_or_default(),
        )
    }

    /// The two listeners open to TLS 1.0 that the bridging tests put legacy clients on:
    /// implicit TLS (`imaps-legacy`, `pop3s-legacy`) and STARTTLS (`imap-starttls-legacy`,
    /// `pop3-stls-legacy`).
    pub fn legacy_pair(protocol: &str) -> Vec<ListenerSpec> {
        let starttls = match protocol {
            "imap" => "imap-starttls-legacy",
            _ => "pop3-stls-legacy",
        };
        vec![
            ListenerSpec::new(
                &format!("{protocol}s-legacy"),
                protocol,
                "implicit",
                Some("1.0"),
            ),
            ListenerSpec::new(starttls, protocol, "starttls", Some("1.0")),
        ]
    }
}

/// A running gateway; stopped (SIGTERM, records flushed) when dropped.
pub struct Gateway {
    dir: PathBuf,
    child: Option<Child>,
    pub listeners: Vec<ListenerSpec>,
}

impl Gateway {
    /// Writes a config bridging `listeners` to the lab Dovecot (verified with the lab CA,
    /// implicit TLS upstream) and starts the gateway. `gateway_section` is extra TOML for
    /// `[gateway]`, e.g. `pre_auth_timeout_secs = 2`, and may go on with tables of its own
    /// (`[metrics]`).
    pub fn start(
        dir: &Path,
        dovecot: &Dovecot,
        listeners: Vec<ListenerSpec>,
        gateway_section: &str,
    ) -> Gateway {
        Gateway::start_upstream(
            dir,
            dovecot,
            listeners,
            gateway_section,
            UpstreamTls::Implicit,
        )
    }

    /// [`Gateway::start`] with the upstream leg reaching the lab Dovecot as `upstream_tls`
    /// says (still verified with the lab CA).
    pub fn start_upstream(
        dir: &Path,
        dovecot: &Dovecot,
        listeners: Vec<ListenerSpec>,
        gateway_section: &str,
        upstream_tls: UpstreamTls,
    ) -> Gateway {
        let config = Gateway::config_text(dovecot, &listeners, gateway_section, upstream_tls);
        Gateway::start_with_config(dir, &config, listeners)
    }

    /// The config [`Gateway::start_upstream`] writes: `listeners` bridged to the lab Dovecot
    /// (verified with the lab CA) as `upstream_tls` says, after a `[gateway]` section of
    /// `gateway_section` (which may go on with tables of its own). For a reload, too.
    pub fn config_text(
        dovecot: &Dovecot,
        listeners: &[ListenerSpec],
        gateway_section: &str,
        upstream_tls: UpstreamTls,
    ) -> String {
        let (tls, imap_port, pop3_port) = upstream_tls.config();
        let certs = dovecot.ca_file().parent().expect("certs dir").to_path_buf();
        let upstreams = format!(
            r#"
[[upstream]]
name = "dovecot-imap"
address = "localhost:{imap}"
protocol = "imap"
tls = "{tls}"
ca_file = "{ca}"

[[upstream]]
name = "dovecot-pop3"
address = "localhost:{pop3}"
protocol = "pop3"
tls = "{tls}"
ca_file = "{ca}"
"#,
            imap = dovecot.port(imap_port),
            pop3 = dovecot.port(pop3_port),
            ca = dovecot.ca_file().display(),
        );
        let listener_toml = |l: &ListenerSpec| l.toml(&certs, &format!("dovecot-{}", l.protocol));
        format!(
            "[gateway]\n{gateway_section}\n\n{}{upstreams}\n{}",
            crate::default_store_table(gateway_section),
            listeners.iter().map(listener_toml).collect::<String>()
        )
    }

    /// Starts the gateway with a config written out in full.
    pub fn start_with_config(dir: &Path, config: &str, listeners: Vec<ListenerSpec>) -> Gateway {
        Gateway::start_with_config_and_log(dir, config, listeners, "info")
    }

    /// Like [`Gateway::start_with_config`], with `MAILTLS_LOG` set to `log_filter` (e.g.
    /// "trace", to search the most verbose log for secrets).
    pub fn start_with_config_and_log(
        dir: &Path,
        config: &str,
        listeners: Vec<ListenerSpec>,
        log_filter: &str,
    ) -> Gateway {
        let config_path = dir.join("mailtls.toml");
        std::fs::write(&config_path, config).expect("write config");
        let log = std::fs::File::create(dir.join("gateway.log")).expect("create gateway log");
        let child = Command::new(mailtls_bin())
            .arg("gateway")
            .arg("--config")
            .arg(&config_path)
            .env("MAILTLS_LOG", log_filter)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start mailtls");
        let mut gateway = Gateway {
            dir: dir.to_path_buf(),
            child: Some(child),
            listeners,
        };
        gateway.wait_listening();
        gateway
    }

    /// Waits until every listener logged that it listens (without connecting, which would
    /// create a session record).
    fn wait_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let log = self.log();
            if self
                .listeners
                .iter()
                .all(|l| log.lines().any(|line| is_listening_line(line, l)))
            {
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("mailtls exited with {status}:\n{log}");
            }
            assert!(Instant::now() < deadline, "mailtls did not start:\n{log}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The port of the listener named `name`.
    pub fn port(&self, name: &str) -> u16 {
        self.listeners
            .iter()
            .find(|l| l.name == name)
            .unwrap_or_else(|| panic!("no listener {name}"))
            .port
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// The config file the gateway was started with, which it reads again on SIGHUP.
    pub fn config_path(&self) -> PathBuf {
        self.dir.join("mailtls.toml")
    }

    /// Writes [`Gateway::config_text`] (implicit TLS upstream) over the config file in place,
    /// so its owner and mode stay, for a reload.
    pub fn rewrite_config(
        &self,
        dovecot: &Dovecot,
        listeners: &[ListenerSpec],
        gateway_section: &str,
    ) {
        let text = Gateway::config_text(dovecot, listeners, gateway_section, UpstreamTls::Implicit);
        std::fs::write(self.config_path(), text).expect("write the config");
    }

    /// Sends the gateway SIGHUP: reload the config.
    pub fn hang_up(&self) {
        let status = Command::new("kill")
            .arg("-HUP")
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -HUP {}", self.pid());
    }

    /// Waits until the log holds `needle` `count` times (e.g. the second "config reloaded"),
    /// and returns the log.
    pub fn wait_for_log(&self, needle: &str, count: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let log = self.log();
            if log.matches(needle).count() >= count {
                return log;
            }
            assert!(
                Instant::now() < deadline,
                "no {count} x {needle:?} in the gateway's log:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for the gateway's `count`-th refused reload and returns its ERROR line that holds
    /// `naming` (a key, or the words of the problem).
    pub fn reload_refusal(&self, count: usize, naming: &str) -> String {
        let log = self.wait_for_log("reload refused: the running config stays", count);
        log.lines()
            .find(|l| l.contains("ERROR") && l.contains("reload refused") && l.contains(naming))
            .unwrap_or_else(|| panic!("no refused reload naming {naming:?} in:\n{log}"))
            .to_string()
    }

    /// Everything the gateway has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("gateway.log")).unwrap_or_default()
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.join("sessions.db")
    }

    /// Stops the gateway with SIGTERM and waits for it, so every session is recorded.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return child.wait().ok();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the gateway and reads every session it recorded.
    pub fn stop_and_read_sessions(&mut self) -> Vec<SessionRecord> {
        let status = self.stop();
        assert!(
            status.is_some_and(|s| s.success()),
            "mailtls did not stop cleanly ({status:?}):\n{}",
            self.log()
        );
        SqliteStore::open(&self.db_path())
            .and_then(|s| s.sessions())
            .expect("read the session store")
    }
}

/// Whether `line` is the gateway's "listening" line for `listener`: the message itself (right
/// after the `target:` of the text log format), with `listener=NAME` and `bind=127.0.0.1:PORT`
/// as whole fields. Whole fields, so listener `imap` is not taken as listening when only
/// `imap-tls` is, and the bind, so the line is this config's socket; the message, so a field
/// value or an error text that merely says "listening" does not count.
fn is_listening_line(line: &str, listener: &ListenerSpec) -> bool {
    let words: Vec<&str> = line.split_whitespace().collect();
    let is_message = words
        .windows(2)
        .any(|w| w[0].ends_with(':') && w[1] == "listening");
    let name = format!("listener={}", listener.name);
    let bind = format!("bind=127.0.0.1:{}", listener.port);
    is_message && words.contains(&name.as_str()) && words.contains(&bind.as_str())
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_listening_line_of_that_listener_counts() {
        let mut spec = ListenerSpec::new("imap", "imap", "implicit", None);
        spec.port = 4993;
        let line = "2026-01-01T00:00:00.000000Z  INFO mailtls_gateway::gateway: listening \
                    listener=imap bind=127.0.0.1:4993 min_tls=TLSv1.2 upstream=dovecot-imap";
        assert!(is_listening_line(line, &spec));
        for other in [
            line.replace("listener=imap ", "listener=imap-tls "),
            line.replace("4993", "4994"),
            line.replace(": listening", ": not listening"),
            "WARN x: cannot bind listener=imap bind=127.0.0.1:4993 error=\"listening\"".into(),
        ] {
            assert!(!is_listening_line(&other, &spec), "{other}");
        }
    }
}
