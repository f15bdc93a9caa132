//! `[policy.NAME]`, the listeners' `policy`/`opt_in` and `[[exception]]`: validated into the
//! typed [`PolicySet`] the gateway asks per login.

use std::collections::HashMap;

use policy::{
    CohortKey, Exception, ExceptionError, ExceptionId, ExceptionMatch, ExceptionRegister,
    ListenerPolicy, Mode, Policy, PolicySet, Window,
};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime};
use wire::TlsVersion;

use super::file::{ConfigFile, ExceptionEntry, PolicyEntry};
use super::validate::{network_or_address, Checker, LISTENER_VERSIONS};

/// Longest policy message: it goes into one IMAP/POP3/SMTP response line.
const MAX_MESSAGE_CHARS: usize = 300;

const DEFAULT_MESSAGE: &str =
    "This mail client's TLS version is no longer accepted. Update the client or ask IT for an exception.";

/// A date ("2026-08-01", meaning its first instant in UTC) or an RFC 3339 instant
/// ("2026-08-01T06:00:00+02:00").
pub fn parse_instant(text: &str) -> Result<OffsetDateTime, String> {
    let text = text.trim();
    if let Ok(date) = Date::parse(text, format_description!("[year]-[month]-[day]")) {
        return Ok(date.midnight().assume_utc());
    }
    OffsetDateTime::parse(text, &Rfc3339)
        .map_err(|_| format!("\"{text}\" is not a date like \"2026-08-01\" or an RFC 3339 instant"))
}

pub(super) fn policy_set(c: &mut Checker, raw: &ConfigFile) -> Option<PolicySet> {
    let policies: Vec<Option<Policy>> = raw
        .policy
        .iter()
        .map(|(name, entry)| policy(c, name, entry))
        .collect();
    let mut listeners = HashMap::new();
    let mut listeners_ok = true;
    for (index, l) in raw.listener.iter().enumerate() {
        let label = format!(
            "listener[{}]",
            l.name.as_deref().unwrap_or(&index.to_string())
        );
        let opt_in = l.opt_in.unwrap_or(false);
        match (&l.policy, opt_in) {
            (None, false) => {}
            (None, true) => {
                c.report(
                    &format!("{label}.opt_in"),
                    "is true but the listener names no policy",
                    "set policy = \"NAME\" of a [policy.NAME] section: its message and mode apply to clients without an exception",
                );
                listeners_ok = false;
            }
            (Some(name), _) if !raw.policy.contains_key(name) => {
                let known: Vec<&str> = raw.policy.keys().map(String::as_str).collect();
                c.report(
                    &format!("{label}.policy"),
                    format!("no [policy.{name}] is defined"),
                    if known.is_empty() {
                        format!("add a [policy.{name}] section (examples/enforcement.toml has one)")
                    } else {
                        format!("name one of: {}", known.join(", "))
                    },
                );
                listeners_ok = false;
            }
            (Some(name), opt_in) => {
                if let Some(listener) = &l.name {
                    listeners.insert(
                        listener.clone(),
                        ListenerPolicy {
                            policy: name.clone(),
                            opt_in,
                        },
                    );
                }
            }
        }
    }
    let ids = exception_ids(c, &raw.exception, raw.next_exception_id);
    let exceptions: Vec<Option<Exception>> = raw
        .exception
        .iter()
        .zip(ids)
        .map(|(entry, id)| exception(c, id?, entry))
        .collect();

    let policies: Vec<Policy> = policies.into_iter().collect::<Option<_>>()?;
    let exceptions: Vec<Exception> = exceptions.into_iter().collect::<Option<_>>()?;
    if !listeners_ok {
        return None;
    }
    // Every policy a listener names was checked above.
    PolicySet::new(policies, listeners, ExceptionRegister::new(exceptions)).ok()
}

fn policy(c: &mut Checker, name: &str, p: &PolicyEntry) -> Option<Policy> {
    let key = |field: &str| format!("policy.{name}.{field}");
    let mut ok = true;
    // The name is part of rule ids in records and logs.
    if name.is_empty()
        || !name
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
    {
        c.report(
            &format!("policy.{name}"),
            "the name has characters other than letters, digits, '-' and '_'",
            "rename the section, e.g. [policy.sunset]",
        );
        ok = false;
    }
    let min_tls = c.choice(
        &key("min_tls"),
        p.min_tls.as_deref(),
        &LISTENER_VERSIONS.map(|v| (v.config_str(), v)),
        Some(TlsVersion::Tls12),
    );
    let mode = c.choice(
        &key("mode"),
        p.mode.as_deref(),
        &[
            ("monitor", Mode::Monitor),
            ("warn", Mode::Warn),
            ("enforce", Mode::Enforce),
        ],
        None,
    );
    let start = instant(c, &key("start"), &p.start, "\"2026-08-01\"");
    let end = instant(c, &key("end"), &p.end, "\"2026-12-31\"");
    let window = match (start, end) {
        (Some(start), Some(end)) => match Window::new(start, end) {
            Ok(window) => Some(window),
            Err(e) => {
                c.report(
                    &key("end"),
                    e.to_string(),
                    "set end after start: legacy clients are refused in a growing share between them",
                );
                None
            }
        },
        _ => None,
    };
    let message = p.message.as_deref().unwrap_or(DEFAULT_MESSAGE);
    if message.trim().is_empty()
        || message.chars().any(char::is_control)
        || message.chars().count() > MAX_MESSAGE_CHARS
    {
        c.report(
            &key("message"),
            "is empty, has control characters (such as a line break) or is longer than 300 characters",
            "write one line of plain text: it is sent inside a mail protocol response",
        );
        ok = false;
    }
    let cohort = match p.cohort_key.as_deref() {
        None => Some(CohortKey::from_policy_name(name)),
        Some(secret) if secret.trim().is_empty() => {
            c.report(
                &key("cohort_key"),
                "is empty",
                "remove it (cohorts are then keyed by the policy's name) or set a secret of your own",
            );
            None
        }
        Some(secret) => Some(CohortKey::from_secret(secret)),
    };
    if !ok {
        return None;
    }
    Some(Policy::new(
        name, min_tls?, mode?, window?, message, cohort?,
    ))
}

fn instant(
    c: &mut Checker,
    key: &str,
    value: &Option<String>,
    example: &str,
) -> Option<OffsetDateTime> {
    let text = c.required(key, value, example)?;
    parse_instant(text)
        .map_err(|problem| {
            c.report(
                key,
                problem,
                format!("write a date, e.g. {key} = {example} (its first instant in UTC)"),
            )
        })
        .ok()
}

/// Each entry's id: its `id` key, else its 1-based position. Sessions record the id of the
/// exception that let them through, so `mailtls exceptions add` writes an explicit id that no
/// later removal can shift; the position fallback keeps hand-written registers working. An id
/// out of range or used twice is reported (and that entry gets none), and so is a
/// `next_exception_id` (`next_id`) that is not above every id: `add` would give it again.
pub(super) fn exception_ids(
    c: &mut Checker,
    entries: &[ExceptionEntry],
    next_id: Option<i64>,
) -> Vec<Option<ExceptionId>> {
    let highest = entries
        .iter()
        .zip(1..)
        .map(|(e, position)| e.id.unwrap_or(position))
        .max()
        .unwrap_or(0);
    let next_free = next_id.unwrap_or(0).max(highest + 1);
    if let Some(next) = next_id {
        if next <= highest || u32::try_from(next).is_err() {
            c.report(
                "next_exception_id",
                format!(
                    "is {next}; it must be above every exception's id (the highest is {highest}) and at most {}",
                    u32::MAX
                ),
                format!(
                    "set next_exception_id = {} (mailtls exceptions add gives it next; ids of removed exceptions are never given again)",
                    highest + 1
                ),
            );
        }
    }
    let mut seen = HashMap::new();
    entries
        .iter()
        .enumerate()
        .map(|(index, e)| {
            let position = index + 1;
            let id = match e.id {
                None => u32::try_from(position).ok(),
                Some(id) => match u32::try_from(id) {
                    Ok(id) if id > 0 => Some(id),
                    _ => {
                        c.report(
                            &format!("exception[{position}].id"),
                            format!("{id} is not a positive whole number"),
                            "remove it (the entry's position is then its id) or give a number from 1 up, unused by any other exception",
                        );
                        None
                    }
                },
            }?;
            if let Some(first) = seen.insert(id, position) {
                c.report(
                    &format!("exception[{id}].id"),
                    format!("is the id of entries {first} and {position} of the register (an entry without an id key has its position as id)"),
                    format!("give one of them id = {next_free}, above every other id"),
                );
                return None;
            }
            Some(ExceptionId(id))
        })
        .collect()
}

fn exception(c: &mut Checker, id: ExceptionId, e: &ExceptionEntry) -> Option<Exception> {
    let key = |field: &str| format!("exception[{id}].{field}");
    let mut ok = true;
    let client = match e.client.as_deref() {
        None => None,
        Some(text) => match network_or_address(text) {
            Ok(net) => Some(net),
            Err(problem) => {
                c.report(
                    &key("client"),
                    problem,
                    "write a network as \"10.20.0.0/24\" or \"2001:db8::/48\", one host as \"10.20.0.5\"",
                );
                ok = false;
                None
            }
        },
    };
    for (field, value) in [("user", &e.user), ("ja4", &e.ja4)] {
        if value.as_deref().is_some_and(|v| {
            v.is_empty() || v.chars().any(|ch| ch.is_whitespace() || ch.is_control())
        }) {
            c.report(
                &key(field),
                "is empty or has spaces or control characters",
                format!("write the {field} exactly as the client presents it, or remove the key"),
            );
            ok = false;
        }
    }
    // Keys already reported as malformed are not reported again as missing.
    let matches = match ok.then(|| {
        ExceptionMatch::new(
            client,
            e.user.as_deref(),
            e.ja4.as_deref(),
            e.allow_broad.unwrap_or(false),
        )
    }) {
        None => None,
        Some(Ok(m)) => Some(m),
        Some(Err(ExceptionError::NoKey)) => {
            c.report(
                &format!("exception[{id}]"),
                ExceptionError::NoKey.to_string(),
                "add client = \"10.20.0.0/24\", user = \"scanner@contoso.com\" or ja4 = \"t10i...\" (several narrow the match)",
            );
            None
        }
        Some(Err(broad @ ExceptionError::Broad(_))) => {
            c.report(
                &key("client"),
                broad.to_string(),
                "narrow it to the devices' network, or set allow_broad = true if every client really is excepted",
            );
            None
        }
    };
    let owner = c.required(
        &key("owner"),
        &e.owner,
        "\"facilities@contoso.com\" (who answers for it)",
    );
    let reason = c.required(&key("reason"), &e.reason, "\"MFP firmware has no TLS 1.2\"");
    let plan = c.required(&key("plan"), &e.plan, "\"Replace the device in Q1 2027\"");
    let expires = instant(c, &key("expires"), &e.expires, "\"2027-03-31\"");
    let added = match &e.added {
        None => Some(None),
        Some(_) => instant(c, &key("added"), &e.added, "\"2026-12-03\"").map(Some),
    };
    if !ok {
        return None;
    }
    Some(Exception {
        id,
        matches: matches?,
        owner: owner?.to_owned(),
        reason: reason?.to_owned(),
        expires: expires?,
        plan: plan?.to_owned(),
        added: added?,
    })
}
