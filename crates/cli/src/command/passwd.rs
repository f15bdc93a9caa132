//! `mailtls passwd`: the Argon2id hash of a password, for an `[[account]]`'s `password_hash`.

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

use oauth::Secret;
use zeroize::Zeroizing;

pub fn run() -> ExitCode {
    match read_password().and_then(|password| oauth::hash_password(&password)) {
        Ok(hash) => {
            println!("{hash}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("mailtls passwd: {e}");
            ExitCode::from(2)
        }
    }
}

/// From the terminal without echo, asked twice; or the first line of standard input (a
/// script's pipe), without its line ending.
fn read_password() -> Result<Secret, String> {
    let password = if std::io::stdin().is_terminal() {
        let first = Zeroizing::new(
            rpassword::prompt_password("Password: ").map_err(|e| format!("cannot read: {e}"))?,
        );
        let again = Zeroizing::new(
            rpassword::prompt_password("Again: ").map_err(|e| format!("cannot read: {e}"))?,
        );
        if first != again {
            return Err("the two passwords differ; nothing printed".into());
        }
        first
    } else {
        let mut line = Zeroizing::new(String::new());
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| format!("cannot read standard input: {e}"))?;
        let trimmed = line.trim_end_matches(['\r', '\n']).len();
        line.truncate(trimmed);
        line
    };
    if password.is_empty() {
        return Err("the password is empty; nothing printed".into());
    }
    Ok(Secret::new(password.as_bytes()))
}
