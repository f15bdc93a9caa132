//! A private HAProxy started by `lab/haproxy.sh`, in TCP mode in front of gateway listeners as
//! a load balancer sending the PROXY protocol header; stopped when dropped.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::lab_script;

/// Where HAProxy relays, and how it tells the gateway who the client is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyHeaderKind {
    /// `send-proxy-v2`: the binary header.
    V2,
    /// `send-proxy`: the text header.
    V1,
    /// No header: a balancer set up without the PROXY protocol.
    None,
}

impl ProxyHeaderKind {
    /// The `lab/haproxy.sh` option for a frontend of this kind, and its `ports.env` name.
    fn lab_names(self) -> (&'static str, &'static str) {
        match self {
            ProxyHeaderKind::V2 => ("--v2-to", "V2_PORT"),
            ProxyHeaderKind::V1 => ("--v1-to", "V1_PORT"),
            ProxyHeaderKind::None => ("--plain-to", "PLAIN_PORT"),
        }
    }
}

/// One connection as HAProxy logged it when it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayedConnection {
    /// The client as HAProxy saw it.
    pub client: SocketAddr,
    /// HAProxy's frontend: "v2", "v1" or "plain".
    pub frontend: String,
    /// HAProxy's own end of its connection to the gateway: what the gateway's socket saw.
    pub proxy_source: SocketAddr,
}

/// A running lab HAProxy.
pub struct HaProxy {
    dir: PathBuf,
    env: HashMap<String, String>,
}

impl HaProxy {
    /// Starts HAProxy in `dir` with one frontend per `(kind, gateway port)`, each relaying to
    /// that port on 127.0.0.1.
    pub fn start(dir: &Path, frontends: &[(ProxyHeaderKind, u16)]) -> HaProxy {
        let args: Vec<String> = frontends
            .iter()
            .flat_map(|(kind, port)| [kind.lab_names().0.to_string(), format!("127.0.0.1:{port}")])
            .collect();
        HaProxy {
            dir: dir.to_path_buf(),
            env: lab_script::start("haproxy.sh", dir, &args),
        }
    }

    /// The 127.0.0.1 port of the frontend of `kind`.
    pub fn port(&self, kind: ProxyHeaderKind) -> u16 {
        let name = kind.lab_names().1;
        self.env
            .get(name)
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in ports.env: {:?}", self.env))
    }

    /// Everything HAProxy has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("haproxy.log")).unwrap_or_default()
    }

    /// The log entry of the connection from `client`, waiting for it: HAProxy logs a
    /// connection when it ends.
    pub fn relayed(&self, client: SocketAddr) -> RelayedConnection {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = self.log();
            if let Some(entry) = log
                .lines()
                .filter_map(parse_log_line)
                .find(|entry| entry.client == client)
            {
                return entry;
            }
            assert!(
                Instant::now() < deadline,
                "HAProxy logged no connection from {client}:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// One line of the `log-format` lab/haproxy.sh sets: `client=… frontend=… proxy_source=… …`.
fn parse_log_line(line: &str) -> Option<RelayedConnection> {
    let field = |name: &str| {
        line.split_whitespace()
            .find_map(|word| word.strip_prefix(name)?.strip_prefix('='))
    };
    Some(RelayedConnection {
        client: field("client")?.parse().ok()?,
        frontend: field("frontend")?.to_string(),
        proxy_source: field("proxy_source")?.parse().ok()?,
    })
}

impl Drop for HaProxy {
    fn drop(&mut self) {
        lab_script::stop("haproxy.sh", &self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_line_gives_the_client_and_the_proxys_own_end() {
        let line = "client=127.0.0.3:40001 frontend=v2 proxy_source=127.0.0.1:51234 \
                    server=127.0.0.1:10993 bytes_from_client=10 bytes_to_client=20 termination=--";
        assert_eq!(
            parse_log_line(line),
            Some(RelayedConnection {
                client: "127.0.0.3:40001".parse().unwrap(),
                frontend: "v2".into(),
                proxy_source: "127.0.0.1:51234".parse().unwrap(),
            })
        );
        assert_eq!(parse_log_line("[NOTICE]   (1234) : haproxy started"), None);
    }
}
