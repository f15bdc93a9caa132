//! `[listener.relay]`: an SMTP listener that also takes mail without authentication from
//! listed device networks and envelope senders, logged in upstream as one account. Every rule
//! here keeps it from becoming an open relay.

use std::io::Read;
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use gateway::settings::{
    ClientTlsMode, ListenerSettings, Protocol, RelayLogin, RelaySettings, UpstreamLogin,
};
use proto::{Credentials, Secret};

use super::file::{AccountEntry, RelaySection};
use super::validate::{network_or_address, Checker, ConfigProblem};

/// Longest credentials file read: a user name and a password are far shorter.
const MAX_CREDENTIALS_FILE: u64 = 4096;

/// The relay settings of an SMTP listener; `None` when they have a problem (reported).
/// `upstream_login` is the listener's upstream's, when that validated.
pub(super) fn relay(
    c: &mut Checker,
    label: &str,
    section: &RelaySection,
    protocol: Option<Protocol>,
    upstream_login: Option<UpstreamLogin>,
    accounts: &[AccountEntry],
) -> Option<RelaySettings> {
    let key = |field: &str| format!("{label}.relay.{field}");
    if protocol.is_some_and(|p| p != Protocol::Smtp) {
        c.report(
            &format!("{label}.relay"),
            "is set on a listener that is not protocol = \"smtp\"",
            "remove [listener.relay]: only SMTP submission can relay for devices",
        );
        return None;
    }
    let networks = networks(c, &key("networks"), section.networks.as_deref());
    let senders = senders(c, &key("senders"), section.senders.as_deref());
    let login = match (&section.account, &section.credentials_file) {
        (Some(account), None) => {
            relay_account(c, &key("account"), account, upstream_login, accounts)
        }
        (None, Some(file)) => {
            if matches!(upstream_login, Some(UpstreamLogin::OAuth(_))) {
                c.report(
                    &key("credentials_file"),
                    "is set, but the upstream logs in with OAuth (auth = \"oauth\")",
                    "name an [[account]] with account = \"LOGIN\" instead",
                );
                return None;
            }
            c.existing(
                &key("credentials_file"),
                file,
                "a file with a user name line and a password line",
            )
            .and_then(|path| credentials(c, &key("credentials_file"), &path))
            .map(RelayLogin::Password)
        }
        (None, None) => {
            c.report(
                &format!("{label}.relay"),
                "names no account to log in upstream as",
                "set account = \"LOGIN\" (an [[account]], on an OAuth upstream) or credentials_file = \"/etc/mailtls/relay.cred\" (pass-through)",
            );
            None
        }
        (Some(_), Some(_)) => {
            c.report(
                &key("account"),
                "is set together with credentials_file",
                "use account on an OAuth upstream, credentials_file on a pass-through one",
            );
            None
        }
    };
    Some(RelaySettings {
        networks: networks?,
        senders: senders?,
        login: login?,
    })
}

fn networks(c: &mut Checker, key: &str, entries: Option<&[String]>) -> Option<Vec<ipnet::IpNet>> {
    let example = "networks = [\"10.20.0.0/24\"] (the devices' network)";
    let Some(entries) = entries.filter(|e| !e.is_empty()) else {
        c.report(
            key,
            "is missing or empty: relay needs the devices' networks",
            format!("set it, e.g. {example}"),
        );
        return None;
    };
    let mut networks = Vec::new();
    for entry in entries {
        match network_or_address(entry) {
            Ok(net) if net.prefix_len() == 0 => c.report(
                key,
                format!("\"{entry}\" holds every address: the gateway would be an open relay"),
                format!("list the devices' networks only, e.g. {example}"),
            ),
            Ok(net) => networks.push(net),
            Err(problem) => c.report(
                key,
                problem,
                "write networks as \"10.20.0.0/24\" or \"2001:db8::/64\", single devices as \"10.20.0.7\"",
            ),
        }
    }
    (networks.len() == entries.len()).then_some(networks)
}

/// Whole addresses only. A domain (`@contoso.com`) would let any device on those networks
/// send as any colleague through the relay account; listing each device's sender keeps what
/// an unauthenticated client can claim to the few addresses meant for devices.
fn senders(c: &mut Checker, key: &str, entries: Option<&[String]>) -> Option<Vec<String>> {
    let Some(entries) = entries.filter(|e| !e.is_empty()) else {
        c.report(
            key,
            "is missing or empty: relay needs the envelope senders devices may use",
            "set it, e.g. senders = [\"scanner@contoso.com\"]",
        );
        return None;
    };
    let mut senders = Vec::new();
    for entry in entries {
        match entry.split_once('@') {
            Some(("", _)) => c.report(
                key,
                format!("\"{entry}\" is a whole domain: any device could send as anyone in it"),
                "list each device's sender address, e.g. \"scanner@contoso.com\"",
            ),
            Some((_, domain))
                if !domain.is_empty()
                    && entry.len() <= 254
                    && !entry.chars().any(|ch| ch.is_whitespace() || ch.is_control() || "<>".contains(ch)) =>
            {
                senders.push(entry.clone())
            }
            _ => c.report(
                key,
                format!("\"{entry}\" is not an e-mail address"),
                "write the address as the device sends it in MAIL FROM, e.g. \"scanner@contoso.com\"",
            ),
        }
    }
    (senders.len() == entries.len()).then_some(senders)
}

fn relay_account(
    c: &mut Checker,
    key: &str,
    login: &str,
    upstream_login: Option<UpstreamLogin>,
    accounts: &[AccountEntry],
) -> Option<RelayLogin> {
    if upstream_login == Some(UpstreamLogin::Passthrough) {
        c.report(
            key,
            "is set, but the upstream passes devices' passwords through (no auth = \"oauth\")",
            "use credentials_file = \"/etc/mailtls/relay.cred\" (a user name line, a password line) instead",
        );
        return None;
    }
    if !accounts.iter().any(|a| a.login.as_deref() == Some(login)) {
        c.report(
            key,
            format!("no [[account]] has login = \"{login}\""),
            "name one of the [[account]] entries",
        );
        return None;
    }
    Some(RelayLogin::Account(login.to_string()))
}

/// A user name line and a password line, in a file nobody but its owner may read.
fn credentials(c: &mut Checker, key: &str, path: &Path) -> Option<Credentials> {
    let fix_mode = format!("chmod 600 {} (and keep it owned by root)", path.display());
    let file = std::fs::File::open(path).and_then(|f| Ok((f.metadata()?, f)));
    let (metadata, file) = match file {
        Ok(opened) => opened,
        Err(e) => {
            c.report(
                key,
                format!("cannot read {}: {e}", path.display()),
                fix_mode,
            );
            return None;
        }
    };
    if metadata.permissions().mode() & 0o077 != 0 {
        c.report(
            key,
            format!(
                "{} may be read or changed by other users than its owner",
                path.display()
            ),
            fix_mode,
        );
        return None;
    }
    let mut text = zeroize::Zeroizing::new(String::new());
    if let Err(e) = file.take(MAX_CREDENTIALS_FILE).read_to_string(&mut text) {
        c.report(
            key,
            format!("cannot read {}: {e}", path.display()),
            "write it as UTF-8 text",
        );
        return None;
    }
    let mut lines = text.lines();
    let user = lines.next().unwrap_or_default().trim();
    let password = lines.next().unwrap_or_default();
    let password = password.strip_suffix('\r').unwrap_or(password);
    if user.is_empty() || password.is_empty() || lines.any(|l| !l.trim().is_empty()) {
        c.report(
            key,
            format!(
                "{} does not hold a user name line and a password line",
                path.display()
            ),
            "write the upstream user name on the first line and its password on the second",
        );
        return None;
    }
    match Credentials::new(user.to_string(), Secret::new(password)) {
        Ok(credentials) => Some(credentials),
        Err(why) => {
            // The reason never quotes the user name or the password.
            c.report(
                key,
                format!("{}: {why}", path.display()),
                "fix the user name or the password in the file",
            );
            None
        }
    }
}

/// A relay listener that binds beyond loopback and private networks: unauthenticated mail is
/// only ever meant for a device segment. A warning: the networks decide who may relay.
pub(super) fn relay_beyond_trusted(listener: &ListenerSettings) -> Option<ConfigProblem> {
    listener.relay.as_ref()?;
    if on_trusted_network(listener.bind.ip()) {
        return None;
    }
    let tls = if listener.tls == ClientTlsMode::None {
        " or TLS"
    } else {
        ""
    };
    Some(ConfigProblem::new(
        format!("listener[{}].relay", listener.name),
        format!(
            "{} is beyond loopback and private networks, and this listener takes mail from its relay networks without authentication{tls}",
            listener.bind
        ),
        "bind it to an address on the devices' segment (e.g. 10.20.0.1:25), and keep the relay networks to the devices'",
    ))
}

/// Loopback, private and link-local addresses: where a device segment lives.
pub(super) fn on_trusted_network(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_private() || v4.is_link_local(),
        // fc00::/7 (unique local) and fe80::/10 (link local) are the IPv6 private ranges.
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || (v6.segments()[0] & 0xfe00) == 0xfc00
                || (v6.segments()[0] & 0xffc0) == 0xfe80
        }
    }
}
