//! `[store]`: where session records go (a SQLite `path` or a PostgreSQL `url` with its
//! `password_file` and `ca_file`) and how long raw sessions are kept (`keep_sessions`).

use std::path::Path;
use std::time::Duration;

use store::{PostgresTarget, StoreAccess, StoreLocation};
use zeroize::Zeroizing;

use super::file::StoreSection;
use super::validate::Checker;

/// Where the password of a PostgreSQL store comes from without `password_file`.
pub const PASSWORD_ENV: &str = "MAILTLS_STORE_PASSWORD";

/// The longest `keep_sessions`: a century, past which the value is surely a typo.
const MAX_KEEP: Duration = Duration::from_secs(100 * 365 * 86_400);

/// The store's location from `[store]`; `None` (with problems reported) when it is invalid.
pub(super) fn location(
    c: &mut Checker,
    section: &StoreSection,
    access: StoreAccess,
) -> Option<StoreLocation> {
    match (&section.path, &section.url) {
        (Some(_), Some(_)) => {
            c.report(
                "store.url",
                "is set together with store.path",
                "keep path for a SQLite file or url for PostgreSQL, not both",
            );
            None
        }
        (None, Some(url)) => {
            let target = match PostgresTarget::parse(url) {
                Ok(target) => target,
                Err(problem) => {
                    c.report(
                        "store.url",
                        problem,
                        "write it as postgres://USER@HOST:PORT/DATABASE?sslmode=require",
                    );
                    return None;
                }
            };
            let ca_file = section
                .ca_file
                .as_deref()
                .map(|f| c.existing_file("store.ca_file", f));
            let password = match &section.password_file {
                Some(file) => {
                    let path =
                        c.existing("store.password_file", file, "a file holding the password")?;
                    match read_password(&path) {
                        Ok(password) => Some(password),
                        Err(problem) => {
                            c.report(
                                "store.password_file",
                                problem,
                                "put the PostgreSQL role's password on the file's first line",
                            );
                            return None;
                        }
                    }
                }
                None => std::env::var(PASSWORD_ENV).ok().map(Zeroizing::new),
            };
            let mut target = target;
            if let Some(password) = password {
                target = target.with_password(password);
            }
            match ca_file {
                Some(ca_file) => Some(StoreLocation::Postgres(target.with_ca_file(ca_file?))),
                None => Some(StoreLocation::Postgres(target)),
            }
        }
        (path, None) => {
            for (key, value) in [
                ("store.password_file", &section.password_file),
                ("store.ca_file", &section.ca_file),
            ] {
                if value.is_some() {
                    c.report(
                        key,
                        "is only used with store.url (PostgreSQL)",
                        "remove it, or set store.url",
                    );
                }
            }
            Some(StoreLocation::Sqlite {
                path: c.base.join(path.as_deref().unwrap_or("mailtls.db")),
                access,
            })
        }
    }
}

/// `keep_sessions`, when set and valid.
pub(super) fn keep_sessions(c: &mut Checker, section: &StoreSection) -> Option<Duration> {
    let text = section.keep_sessions.as_deref()?;
    match parse_age(text) {
        Ok(keep) if keep >= Duration::from_secs(86_400) && keep <= MAX_KEEP => Some(keep),
        Ok(_) => {
            c.report(
                "store.keep_sessions",
                format!("\"{text}\" is shorter than a day or longer than a century"),
                "give a time between \"1d\" and \"36500d\", e.g. \"400d\"",
            );
            None
        }
        Err(problem) => {
            c.report(
                "store.keep_sessions",
                problem,
                "give a number followed by d (days), h, m or s, e.g. \"400d\"",
            );
            None
        }
    }
}

/// A time span written as a whole number and a unit: `400d`, `36h`, `90m`, `30s`.
pub fn parse_age(text: &str) -> Result<Duration, String> {
    let invalid = || format!("\"{text}\" is not a number followed by d, h, m or s");
    let unit_at = text.len().checked_sub(1).ok_or_else(invalid)?;
    let (number, unit) = text.split_at(unit_at);
    let seconds_per = match unit {
        "d" => 86_400,
        "h" => 3_600,
        "m" => 60,
        "s" => 1,
        _ => return Err(invalid()),
    };
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    let n: u64 = number.parse().map_err(|_| invalid())?;
    n.checked_mul(seconds_per)
        .map(Duration::from_secs)
        .ok_or_else(invalid)
}

/// The first line of `path`, which must not be empty.
fn read_password(path: &Path) -> Result<Zeroizing<String>, String> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
    );
    let line = text.lines().next().unwrap_or_default();
    if line.is_empty() {
        return Err(format!("{} is empty", path.display()));
    }
    Ok(Zeroizing::new(line.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_are_a_number_and_a_unit() {
        assert_eq!(parse_age("400d"), Ok(Duration::from_secs(400 * 86_400)));
        assert_eq!(parse_age("36h"), Ok(Duration::from_secs(36 * 3_600)));
        assert_eq!(parse_age("90m"), Ok(Duration::from_secs(5_400)));
        assert_eq!(parse_age("30s"), Ok(Duration::from_secs(30)));
        for bad in [
            "",
            "d",
            "400",
            "400 d",
            "-1d",
            "1.5d",
            "400y",
            "99999999999999999999d",
        ] {
            assert!(parse_age(bad).is_err(), "{bad:?}");
        }
    }
}
