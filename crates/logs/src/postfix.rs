//! Postfix smtpd's lines, joined per connection: the TLS version of `TLS connection
//! established`, the login of `client=..., sasl_username=...` or of a failed AUTH, refused
//! handshakes, and the AUTH counts of `disconnect from`. With `smtpd_tls_loglevel = 1`:
//!
//! ```text
//! postfix/smtpd[9345]: connect from laptop[192.0.2.7]
//! postfix/smtpd[9345]: Anonymous TLS connection established from laptop[192.0.2.7]: TLSv1 with cipher ECDHE-RSA-AES256-SHA (256/256 bits)
//! postfix/smtpd[9345]: 360F09A0600: client=laptop[192.0.2.7], sasl_method=PLAIN, sasl_username=alice
//! postfix/smtpd[9345]: disconnect from laptop[192.0.2.7] ehlo=2 starttls=1 auth=1 mail=1 rcpt=1 data=1 quit=1 commands=8
//! postfix/smtpd[9395]: SSL_accept error from printer[192.0.2.8]: -1
//! postfix/smtpd[9395]: warning: TLS library problem: error:0A000102:SSL routines::unsupported protocol:../ssl/statem/statem_srvr.c:1664:
//! ```
//!
//! An smtpd process serves one client at a time, so lines are joined by host and process id
//! from `connect from` to `disconnect from`. A connection becomes a record when it tried AUTH
//! or its handshake failed; deliveries from other servers (no AUTH) are not mail clients.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::SystemTime;

use store::{Outcome, Source};
use wire::TlsVersion;

use crate::evidence::{
    bounded, is_version_refusal, negotiated_tls, offered_at_most, offered_below, openssl_reason,
    sighting,
};
use crate::{Evidence, LineKind, LogClock, LogReader};
use store::EvidenceDigester;

/// The listener name records from Postfix logs carry.
pub const POSTFIX_LISTENER: &str = "postfix-log";

/// Most connections followed at once: a log cut off mid-way (or a flood of connections that
/// never disconnect) must not grow memory without end. The oldest is dropped beyond it.
const MAX_OPEN_CONNECTIONS: usize = 10_000;

/// Most lines of one connection kept for its digest.
const MAX_LINES_KEPT: usize = 32;

/// Reads a Postfix log (syslog, journald, or Postfix's own `maillog_file`).
#[derive(Debug)]
pub struct PostfixLog {
    clock: LogClock,
    floor: TlsVersion,
    digests: EvidenceDigester,
    open: HashMap<(String, u32), Connection>,
    opened: u64,
}

/// One smtpd connection being followed.
#[derive(Debug)]
struct Connection {
    order: u64,
    started_at: SystemTime,
    client_addr: IpAddr,
    lines: Vec<String>,
    tls: Option<(TlsVersion, String)>,
    handshake_failed: bool,
    tls_problem: Option<String>,
    login: Option<String>,
    auth_failed: bool,
}

impl PostfixLog {
    /// A reader whose year-less stamps are read by `clock`; `floor` is the server's lowest
    /// TLS version (`smtpd_tls_mandatory_protocols`).
    pub fn new(clock: LogClock, floor: TlsVersion) -> PostfixLog {
        PostfixLog {
            clock,
            floor,
            digests: EvidenceDigester::new("postfix"),
            open: HashMap::new(),
            opened: 0,
        }
    }

    /// Connections seen connecting and not yet disconnecting: at the end of a file, these
    /// are cut off and not recorded (a later import of the grown file records them).
    pub fn open_connections(&self) -> usize {
        self.open.len()
    }

    fn finish(
        &mut self,
        key: &(String, u32),
        at: SystemTime,
        line: &str,
        stats: &str,
    ) -> Option<Evidence> {
        let mut connection = self.open.remove(key)?;
        let tried_auth = auth_count(stats).is_some_and(|(_, tried)| tried > 0);
        let authenticated = auth_count(stats).is_some_and(|(ok, _)| ok > 0);
        if !(tried_auth || connection.handshake_failed || connection.login.is_some()) {
            return None;
        }
        let mut record = sighting(
            Source::PostfixLog,
            connection.started_at,
            POSTFIX_LISTENER,
            "smtp",
            connection.client_addr,
        );
        record.ended_at = at;
        record.upstream = key.0.clone();
        record.login = connection.login.take();
        if let Some((version, cipher)) = connection.tls.take() {
            record.tls_version = Some(version);
            record.tls_cipher = Some(cipher);
            record.offered_max_tls = offered_at_most(version);
        }
        if connection.handshake_failed {
            record.outcome = Outcome::ClientTlsFailed;
            let reason = connection.tls_problem.as_deref().and_then(openssl_reason);
            if reason.is_some_and(is_version_refusal) {
                record.offered_max_tls = offered_below(self.floor);
            }
            record.detail = Some(bounded(reason.unwrap_or("SSL_accept error")));
        } else if authenticated {
            record.outcome = Outcome::Ok;
        } else if connection.auth_failed || tried_auth {
            record.outcome = Outcome::AuthFailed;
        } else {
            record.outcome = Outcome::ClientClosed;
        }
        connection.lines.push(line.to_string());
        let digest = self
            .digests
            .digest(at, connection.lines.iter().map(String::as_str));
        Some(Evidence { digest, record })
    }

    fn open_connection(&mut self, key: (String, u32), at: SystemTime, addr: IpAddr, line: &str) {
        if self.open.len() >= MAX_OPEN_CONNECTIONS && !self.open.contains_key(&key) {
            let oldest = self
                .open
                .iter()
                .min_by_key(|(_, c)| c.order)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                self.open.remove(&oldest);
            }
        }
        self.opened += 1;
        self.open.insert(
            key,
            Connection {
                order: self.opened,
                started_at: at,
                client_addr: addr,
                lines: vec![line.to_string()],
                tls: None,
                handshake_failed: false,
                tls_problem: None,
                login: None,
                auth_failed: false,
            },
        );
    }
}

impl LogReader for PostfixLog {
    fn read_line(&mut self, line: &[u8], out: &mut Vec<Evidence>) -> LineKind {
        let text = String::from_utf8_lossy(line);
        let Some((at, rest)) = self.clock.read(&text) else {
            return LineKind::NotUnderstood;
        };
        let Some((host, pid, message)) = smtpd_message(rest) else {
            return LineKind::Other;
        };
        let key = (bounded(host), pid);
        if let Some(peer) = message.strip_prefix("connect from ") {
            let Some(addr) = peer_address(peer) else {
                return LineKind::NotUnderstood;
            };
            self.open_connection(key, at, addr, &text);
            return LineKind::Used;
        }
        if let Some(rest) = message.strip_prefix("disconnect from ") {
            let stats = rest.split_once(' ').map_or("", |(_, stats)| stats);
            if let Some(evidence) = self.finish(&key, at, &text, stats) {
                out.push(evidence);
            }
            return LineKind::Used;
        }
        let Some(connection) = self.open.get_mut(&key) else {
            // The connection began before this log did.
            return LineKind::Other;
        };
        if connection.lines.len() < MAX_LINES_KEPT {
            connection.lines.push(text.to_string());
        }
        if let Some((_, established)) = message.split_once("TLS connection established from ") {
            let Some((_, negotiated)) = established.split_once("]: ") else {
                return LineKind::NotUnderstood;
            };
            let Some(tls) = negotiated_tls(negotiated) else {
                return LineKind::NotUnderstood;
            };
            connection.tls = Some(tls);
        } else if message.starts_with("SSL_accept error from ") {
            connection.handshake_failed = true;
        } else if let Some(problem) = message.strip_prefix("warning: TLS library problem: ") {
            connection
                .tls_problem
                .get_or_insert_with(|| bounded(problem));
        } else if message.contains(" authentication failed") && message.starts_with("warning: ") {
            connection.auth_failed = true;
            if let Some(user) = field(message, "sasl_username=") {
                connection.login = Some(bounded(user));
            }
        } else if let Some(user) = field(message, "sasl_username=") {
            // `QUEUEID: client=host[addr], sasl_method=PLAIN, sasl_username=alice`.
            connection.login = Some(bounded(user));
        }
        LineKind::Used
    }
}

/// The host, smtpd process id and message of an smtpd line: `host postfix/smtpd[123]: msg`,
/// any `.../smtpd` (e.g. `postfix/submission/smtpd`).
fn smtpd_message(rest: &str) -> Option<(&str, u32, &str)> {
    let (host, rest) = rest.split_once(' ')?;
    let (tag, message) = rest.split_once(": ")?;
    let (program, pid) = tag.strip_suffix(']')?.split_once('[')?;
    if !program.ends_with("/smtpd") {
        return None;
    }
    Some((host, pid.parse().ok()?, message))
}

/// The address of `name[addr]` (anything after the `]` ignored).
fn peer_address(peer: &str) -> Option<IpAddr> {
    let (_, rest) = peer.split_once('[')?;
    let (addr, _) = rest.split_once(']')?;
    // Postfix writes IPv6 peers as `name[ipv6:2001:db8::1]` when configured so.
    let addr = addr.strip_prefix("ipv6:").unwrap_or(addr);
    addr.parse().ok()
}

/// The value after `name` up to the next `, ` or the end.
fn field<'a>(message: &'a str, name: &str) -> Option<&'a str> {
    let (_, rest) = message.split_once(name)?;
    let value = rest.split(", ").next().unwrap_or(rest).trim_end();
    (!value.is_empty()).then_some(value)
}

/// `auth=1` or `auth=0/2` in a disconnect line's counts: (succeeded, tried).
fn auth_count(stats: &str) -> Option<(u32, u32)> {
    let value = stats
        .split(' ')
        .find_map(|count| count.strip_prefix("auth="))?;
    match value.split_once('/') {
        Some((ok, tried)) => Some((ok.parse().ok()?, tried.parse().ok()?)),
        None => {
            let n = value.parse().ok()?;
            Some((n, n))
        }
    }
}

#[cfg(test)]
mod tests {
    use time::UtcOffset;

    use super::*;

    fn read(lines: &str) -> (Vec<LineKind>, Vec<Evidence>, PostfixLog) {
        let mut reader = PostfixLog::new(LogClock::new(2026, UtcOffset::UTC), TlsVersion::Tls12);
        let mut out = Vec::new();
        let kinds = lines
            .lines()
            .map(|l| reader.read_line(l.as_bytes(), &mut out))
            .collect();
        (kinds, out, reader)
    }

    #[test]
    fn tls_and_login_lines_join_into_one_record() {
        let (_, out, reader) = read(
            "Dec 03 05:44:07 lab postfix/smtpd[9345]: connect from localhost[127.0.0.1]
Dec 03 05:44:07 lab postfix/smtpd[9345]: Anonymous TLS connection established from localhost[127.0.0.1]: TLSv1 with cipher ECDHE-RSA-AES256-SHA (256/256 bits)
Dec 03 05:44:07 lab postfix/smtpd[9350]: connect from other[192.0.2.9]
Dec 03 05:44:07 lab postfix/smtpd[9345]: 360F09A0600: client=localhost[127.0.0.1], sasl_method=PLAIN, sasl_username=alice
Dec 03 05:44:07 lab postfix/cleanup[9394]: 360F09A0600: message-id=<x@lab>
Dec 03 05:44:08 lab postfix/smtpd[9345]: disconnect from localhost[127.0.0.1] ehlo=2 starttls=1 auth=1 mail=1 rcpt=1 data=1 quit=1 commands=8",
        );
        assert_eq!(out.len(), 1);
        let record = &out[0].record;
        assert_eq!(record.login.as_deref(), Some("alice"));
        assert_eq!(record.tls_version, Some(TlsVersion::Tls10));
        assert_eq!(record.offered_max_tls, Some(TlsVersion::Tls10));
        assert_eq!(record.outcome, Outcome::Ok);
        assert_eq!(record.protocol, "smtp");
        assert_eq!(record.upstream, "lab");
        assert!(record.ended_at > record.started_at);
        assert_eq!(reader.open_connections(), 1);
    }

    #[test]
    fn a_refused_handshake_names_the_reason() {
        let (_, out, _) = read(
            "2026-12-03T05:44:08.000000+00:00 mx postfix/submission/smtpd[9395]: connect from printer[192.0.2.8]
2026-12-03T05:44:08.000000+00:00 mx postfix/submission/smtpd[9395]: SSL_accept error from printer[192.0.2.8]: -1
2026-12-03T05:44:08.000000+00:00 mx postfix/submission/smtpd[9395]: warning: TLS library problem: error:0A000102:SSL routines::unsupported protocol:../ssl/statem/statem_srvr.c:1664:
2026-12-03T05:44:08.000000+00:00 mx postfix/submission/smtpd[9395]: lost connection after CONNECT from printer[192.0.2.8]
2026-12-03T05:44:08.000000+00:00 mx postfix/submission/smtpd[9395]: disconnect from printer[192.0.2.8] commands=0/0",
        );
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].record.outcome, Outcome::ClientTlsFailed);
        assert_eq!(
            out[0].record.detail.as_deref(),
            Some("unsupported protocol")
        );
        assert_eq!(out[0].record.offered_max_tls, Some(TlsVersion::Tls11));
    }

    #[test]
    fn a_failed_plaintext_auth_is_a_login_without_tls() {
        let (_, out, _) = read(
            "Dec  3 05:44:07 mx postfix/smtpd[1]: connect from dev[192.0.2.5]
Dec  3 05:44:07 mx postfix/smtpd[1]: warning: dev[192.0.2.5]: SASL PLAIN authentication failed: UGFzc3dvcmQ6, sasl_username=bob
Dec  3 05:44:08 mx postfix/smtpd[1]: disconnect from dev[192.0.2.5] ehlo=1 auth=0/1 quit=1 commands=2/3",
        );
        assert_eq!(out[0].record.outcome, Outcome::AuthFailed);
        assert_eq!(out[0].record.login.as_deref(), Some("bob"));
        assert_eq!(out[0].record.tls_version, None);
    }

    #[test]
    fn deliveries_without_auth_and_cut_off_connections_give_no_record() {
        let (kinds, out, reader) = read(
            "Dec  3 05:44:07 mx postfix/smtpd[1]: connect from relay[192.0.2.5]
Dec  3 05:44:07 mx postfix/smtpd[1]: Anonymous TLS connection established from relay[192.0.2.5]: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)
Dec  3 05:44:08 mx postfix/smtpd[1]: disconnect from relay[192.0.2.5] ehlo=2 starttls=1 mail=1 rcpt=1 data=1 quit=1 commands=6
Dec  3 05:44:09 mx postfix/smtpd[2]: disconnect from earlier[192.0.2.6] ehlo=1 auth=1 commands=2
Dec  3 05:44:09 mx postfix/smtpd[3]: connect from what
nonsense",
        );
        assert!(out.is_empty());
        assert_eq!(reader.open_connections(), 0);
        assert_eq!(kinds[4], LineKind::NotUnderstood);
        assert_eq!(kinds[5], LineKind::NotUnderstood);
    }

    #[test]
    fn memory_stays_bounded_when_connections_never_end() {
        let mut reader = PostfixLog::new(LogClock::new(2026, UtcOffset::UTC), TlsVersion::Tls12);
        let mut out = Vec::new();
        for pid in 0..(MAX_OPEN_CONNECTIONS as u32 + 50) {
            let line =
                format!("Dec  3 05:44:07 mx postfix/smtpd[{pid}]: connect from a[192.0.2.1]");
            reader.read_line(line.as_bytes(), &mut out);
        }
        assert_eq!(reader.open_connections(), MAX_OPEN_CONNECTIONS);
    }

    #[test]
    fn auth_counts() {
        assert_eq!(auth_count("ehlo=1 auth=1 quit=1"), Some((1, 1)));
        assert_eq!(auth_count("ehlo=1 auth=0/2 quit=1"), Some((0, 2)));
        assert_eq!(auth_count("ehlo=1 quit=1"), None);
    }
}
