//! What the user asked to scan: `imaps://host:port`, `imap://host` (STARTTLS), ... or a bare
//! `host:port` whose port names the protocol.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

pub use proto::starttls::Protocol;

/// How TLS starts on the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// TLS from the first byte (993, 995, 465).
    Implicit,
    /// A plaintext dialogue first, then STARTTLS/STLS.
    Starttls,
}

/// One endpoint to scan, as parsed from the command line or a target file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The protocol spoken.
    pub protocol: Protocol,
    /// Implicit TLS or STARTTLS.
    pub tls_mode: TlsMode,
    /// Host name or IP literal (IPv6 without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
}

/// A target that cannot be read; the message names the target and says what to write.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad target '{input}': {reason}")]
pub struct TargetError {
    /// The text as given.
    pub input: String,
    /// What is wrong and what to write instead.
    pub reason: String,
}

/// URL schemes and their protocol, TLS mode and default port.
const SCHEMES: [(&str, Protocol, TlsMode, u16); 6] = [
    ("imaps", Protocol::Imap, TlsMode::Implicit, 993),
    ("imap", Protocol::Imap, TlsMode::Starttls, 143),
    ("pop3s", Protocol::Pop3, TlsMode::Implicit, 995),
    ("pop3", Protocol::Pop3, TlsMode::Starttls, 110),
    ("smtps", Protocol::Smtp, TlsMode::Implicit, 465),
    ("smtp", Protocol::Smtp, TlsMode::Starttls, 25),
];

/// Well-known ports, for targets written without a scheme.
const PORTS: [(u16, Protocol, TlsMode); 7] = [
    (993, Protocol::Imap, TlsMode::Implicit),
    (143, Protocol::Imap, TlsMode::Starttls),
    (995, Protocol::Pop3, TlsMode::Implicit),
    (110, Protocol::Pop3, TlsMode::Starttls),
    (465, Protocol::Smtp, TlsMode::Implicit),
    (587, Protocol::Smtp, TlsMode::Starttls),
    (25, Protocol::Smtp, TlsMode::Starttls),
];

impl Target {
    /// The URL scheme that names this target's protocol and TLS mode.
    pub fn scheme(&self) -> &'static str {
        SCHEMES
            .iter()
            .find(|(_, p, m, _)| *p == self.protocol && *m == self.tls_mode)
            .map(|(s, ..)| *s)
            .expect("every protocol and mode has a scheme")
    }
}

impl FromStr for Target {
    type Err = TargetError;

    fn from_str(input: &str) -> Result<Target, TargetError> {
        let fail = |reason: String| TargetError {
            input: input.to_string(),
            reason,
        };
        let text = input.trim();
        let (scheme, rest) = match text.split_once("://") {
            Some((scheme, rest)) => (Some(scheme.to_ascii_lowercase()), rest),
            None => (None, text),
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains(['/', '?', '#', '@']) || authority.is_empty() {
            return Err(fail(
                "write scheme://host:port with no user, path or query".into(),
            ));
        }
        let (host, port) = split_host_port(authority).map_err(fail)?;
        match scheme {
            Some(scheme) => {
                let (_, protocol, tls_mode, default_port) =
                    SCHEMES.iter().find(|(s, ..)| *s == scheme).ok_or_else(|| {
                        fail(format!(
                            "unknown scheme '{scheme}': use imaps, imap, pop3s, pop3, smtps or smtp"
                        ))
                    })?;
                Ok(Target {
                    protocol: *protocol,
                    tls_mode: *tls_mode,
                    host,
                    port: port.unwrap_or(*default_port),
                })
            }
            None => {
                let port = port.ok_or_else(|| {
                    fail("no port: write host:993 or a scheme such as imaps://host".into())
                })?;
                let (_, protocol, tls_mode) =
                    PORTS.iter().find(|(p, ..)| *p == port).ok_or_else(|| {
                        fail(format!(
                            "port {port} does not name a protocol: write e.g. imaps://{authority} or imap://{authority}"
                        ))
                    })?;
                Ok(Target {
                    protocol: *protocol,
                    tls_mode: *tls_mode,
                    host,
                    port,
                })
            }
        }
    }
}

/// Host and optional port of `host`, `host:port`, `[v6]` or `[v6]:port`.
fn split_host_port(authority: &str) -> Result<(String, Option<u16>), String> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or("an IPv6 address needs its closing ']'")?;
        match after {
            "" => (host, None),
            _ => (
                host,
                Some(
                    after
                        .strip_prefix(':')
                        .ok_or("write [address]:port for IPv6")?,
                ),
            ),
        }
    } else if authority.matches(':').count() > 1 {
        return Err("write an IPv6 address in brackets: [2001:db8::1]:993".into());
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err("no host".into());
    }
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(0) | Err(_) => return Err(format!("port '{p}' is not a number from 1 to 65535")),
            Ok(n) => Some(n),
        },
    };
    Ok((host.to_string(), port))
}

impl fmt::Display for Target {
    /// The canonical form, e.g. `imap://mail.example.com:143` or `imaps://[::1]:993`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "{}://[{}]:{}", self.scheme(), self.host, self.port)
        } else {
            write!(f, "{}://{}:{}", self.scheme(), self.host, self.port)
        }
    }
}

impl fmt::Display for TlsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TlsMode::Implicit => "implicit",
            TlsMode::Starttls => "starttls",
        })
    }
}

/// Reads a target file: one target a line; blank lines and `#` comments are skipped.
/// Every bad line is reported, with its line number.
pub fn parse_target_list(text: &str) -> Result<Vec<Target>, Vec<(usize, TargetError)>> {
    let mut targets = Vec::new();
    let mut errors = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        match line.parse() {
            Ok(t) => targets.push(t),
            Err(e) => errors.push((index + 1, e)),
        }
    }
    if errors.is_empty() {
        Ok(targets)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests;
