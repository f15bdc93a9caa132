//! `mailtls policy explain` and `mailtls exceptions list|expiring` (issue 15, items 3 and 6):
//! the real binary run on `examples/enforcement.toml`, its answers read from its output.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use e2e::{mailtls_bin, repo_root, run, run_ok, Scratch};

/// The enforcement example in `scratch`, with empty stand-ins for its PEM files (validation
/// checks that they exist; nothing here loads them).
fn example_config(scratch: &Scratch) -> PathBuf {
    let dir = scratch.path();
    std::fs::create_dir_all(dir.join("certs")).unwrap();
    for pem in ["gateway.pem", "gateway.key", "internal-ca.pem"] {
        std::fs::write(dir.join("certs").join(pem), "").unwrap();
    }
    let config = dir.join("enforcement.toml");
    std::fs::copy(repo_root().join("examples/enforcement.toml"), &config).unwrap();
    config
}

/// `mailtls SUBCOMMAND ACTION --config CONFIG REST...` for `args` = "SUBCOMMAND ACTION REST..."
/// (split at spaces).
fn mailtls(config: &Path, args: &str) -> Command {
    let args: Vec<&str> = args.split_whitespace().collect();
    let mut command = Command::new(mailtls_bin());
    command
        .args(&args[..2])
        .arg("--config")
        .arg(config)
        .args(&args[2..]);
    command
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("UTF-8 output")
}

/// The value printed after `field:` in explain's output.
fn field<'a>(text: &'a str, field: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field}: in\n{text}"))
        .trim()
}

/// The decision and the rule.
fn decided(out: &str) -> (&str, &str) {
    (field(out, "decision"), field(out, "rule"))
}

/// `mailtls policy explain` with `args` (split at spaces).
fn explain(config: &Path, args: &str) -> String {
    stdout(&run_ok(&mut mailtls(
        config,
        &format!("policy explain {args}"),
    )))
}

#[test]
fn explain_names_the_decision_rule_and_exception_over_time() {
    let scratch = Scratch::new("policy-explain");
    let config = example_config(&scratch);
    let with = |extra: &str| {
        explain(
            &config,
            &format!("--listener legacy-imaps --tls 1.0 {extra}"),
        )
    };

    // A device on the excepted network, after the window: allowed by exception 1.
    let out = with("--client 10.20.0.7 --at 2027-01-10");
    assert_eq!(field(&out, "decision"), "allow", "{out}");
    assert_eq!(field(&out, "rule"), "exception:1");
    assert!(
        field(&out, "exception").starts_with("1 (client=10.20.0.0/24)"),
        "{out}"
    );
    assert_eq!(field(&out, "  owner"), "facilities@contoso.com");
    assert_eq!(field(&out, "  plan"), "Replace the devices in Q1 2027");
    // From the first instant of its expiry date it no longer matches.
    let out = with("--client 10.20.0.7 --at 2027-03-31");
    assert_eq!(field(&out, "decision"), "refuse", "{out}");
    assert_eq!(field(&out, "rule"), "sunset/ended");
    assert_eq!(field(&out, "exception"), "none");
    assert!(field(&out, "expired").contains("exception 1"), "{out}");
    assert_eq!(
        field(&out, "message"),
        "TLS 1.0 and 1.1 are no longer accepted. Update the client or ask IT for an exception."
    );

    // Anyone else: warned before the window, in the rollout inside it, refused from its end.
    let out = with("--client 192.0.2.9 --at 2026-07-31T23:59:59Z");
    assert_eq!(decided(&out), ("warn", "sunset/before-start"), "{out}");
    let out = with("--client 192.0.2.9 --at 2026-08-01");
    assert_eq!(decided(&out), ("warn", "sunset/window"), "{out}");
    assert!(
        field(&out, "why").contains("0.00% of clients are refused now"),
        "{out}"
    );
    let out = with("--client 192.0.2.9 --at 2026-12-30T23:59:59Z");
    assert_eq!(field(&out, "rule"), "sunset/window", "{out}");
    assert!(
        field(&out, "why").contains("99.99% of clients are refused now"),
        "{out}"
    );
    let out = with("--client 192.0.2.9 --at 2026-12-31");
    assert_eq!(decided(&out), ("refuse", "sunset/ended"), "{out}");

    // A modern client meets the floor; a user exception matches its login in any case.
    let out = explain(
        &config,
        "--listener legacy-imaps --tls 1.2 --client 192.0.2.9 --at 2027-06-01",
    );
    assert_eq!(decided(&out), ("allow", "sunset/floor"), "{out}");
    let out = with("--client 2001:db8::5 --user Scanner@Contoso.com --at 2027-01-14");
    assert_eq!(field(&out, "rule"), "exception:2", "{out}");
    // The JA4 exception holds only on its network, and only until 2026-11-30.
    let ja4 = "t10i070600_4b22cbed5bed_2dae41c691ec";
    let out = with(&format!(
        "--client 2001:db8:40::77 --ja4 {ja4} --at 2026-11-29"
    ));
    assert_eq!(field(&out, "rule"), "exception:3", "{out}");
    let out = with(&format!(
        "--client 2001:db8:41::77 --ja4 {ja4} --at 2026-11-29"
    ));
    assert_eq!(field(&out, "rule"), "sunset/window", "{out}");

    // The opt-in endpoint: only excepted clients, even a TLS 1.3 one is refused without.
    let out = explain(
        &config,
        "--listener legacy-optin-imaps --tls 1.3 --client 192.0.2.9 --at 2026-09-01",
    );
    assert_eq!(decided(&out), ("refuse", "sunset/opt-in"), "{out}");
    let out = explain(
        &config,
        "--listener legacy-optin-imaps --client 10.20.0.8 --at 2026-09-01",
    );
    assert_eq!(decided(&out), ("allow", "exception:1"), "{out}");
}

#[test]
fn explain_escapes_client_text_and_refuses_unclear_questions() {
    let scratch = Scratch::new("policy-explain-escape");
    let config = example_config(&scratch);
    let out = explain(
        &config,
        "--listener legacy-imaps --client 192.0.2.9 --user mallory\u{1b}[2J@x --at 2026-09-01",
    );
    assert!(
        !out.contains('\u{1b}'),
        "a raw escape reached the terminal: {out:?}"
    );
    assert!(
        field(&out, "client").contains("mallory\\u{1b}[2J@x"),
        "{out}"
    );

    // Several listeners apply a policy: the operator must say which.
    let output = run(&mut mailtls(&config, "policy explain --client 192.0.2.9"));
    assert_eq!(output.status.code(), Some(2));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        err.contains("pass --listener with one of: legacy-imaps, legacy-optin-imaps, legacy-pop3s"),
        "{err}"
    );
    let output = run(&mut mailtls(
        &config,
        "policy explain --client 192.0.2.9 --listener nope",
    ));
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn exceptions_list_and_expiring_show_the_register() {
    let scratch = Scratch::new("exceptions-list");
    let config = example_config(&scratch);
    let out = stdout(&run_ok(&mut mailtls(
        &config,
        "exceptions list --at 2026-12-15",
    )));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        header,
        ["id", "match", "owner", "reason", "expires", "plan", "state"]
    );
    for (line, id, owner, expires, state) in [
        (
            lines[1],
            "1",
            "facilities@contoso.com",
            "2027-03-31",
            "live",
        ),
        (lines[2], "2", "it-ops@contoso.com", "2027-01-15", "live"),
        (
            lines[3],
            "3",
            "logistics@contoso.com",
            "2026-11-30",
            "expired",
        ),
    ] {
        assert!(line.starts_with(id), "{line}");
        assert!(line.contains(owner) && line.contains(expires), "{line}");
        assert_eq!(line.split_whitespace().last(), Some(state), "{line}");
    }
    assert!(
        lines[3].contains("client=2001:db8:40::/48 ja4=t10i070600_4b22cbed5bed_2dae41c691ec"),
        "{out}"
    );

    let out = stdout(&run_ok(&mut mailtls(
        &config,
        "exceptions expiring --days 45 --at 2026-12-15",
    )));
    let rows: Vec<&str> = out
        .lines()
        .skip(1)
        .filter(|l| l.ends_with("live") || l.ends_with("expired"))
        .collect();
    assert_eq!(
        rows.len(),
        1,
        "only exception 2 expires within 45 days: {out}"
    );
    assert!(rows[0].contains("scanner@contoso.com"), "{out}");
    assert!(
        out.contains("1 exception(s) expire within 45 day(s) of 2026-12-15"),
        "{out}"
    );
    let out = stdout(&run_ok(&mut mailtls(
        &config,
        "exceptions expiring --days 120 --at 2026-12-15",
    )));
    assert!(out.contains("2 exception(s) expire"), "{out}");

    // A register with an exception lacking its owner is refused with the key and a fix.
    let broken = std::fs::read_to_string(&config)
        .unwrap()
        .replace("owner = \"it-ops@contoso.com\"\n", "");
    std::fs::write(&config, broken).unwrap();
    let output = run(&mut mailtls(&config, "exceptions list"));
    assert_eq!(output.status.code(), Some(2));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        err.contains("exception[2].owner: is missing; set it"),
        "{err}"
    );
}

/// `mailtls exceptions SUBCOMMAND --config CONFIG ARGS...`, each argument as given.
fn exceptions(config: &Path, subcommand: &str, args: &[&str]) -> Command {
    let mut command = Command::new(mailtls_bin());
    command
        .args(["exceptions", subcommand, "--config"])
        .arg(config)
        .args(args);
    command
}

/// The ids `exceptions list` shows, in order.
fn listed_ids(config: &Path) -> Vec<String> {
    let out = stdout(&run_ok(&mut mailtls(config, "exceptions list")));
    out.lines()
        .skip(1)
        .map(|l| l.split_whitespace().next().unwrap().to_owned())
        .collect()
}

#[test]
fn exceptions_add_remove_and_renew_edit_the_register_in_place() {
    use std::os::unix::fs::PermissionsExt;

    let scratch = Scratch::new("exceptions-edit");
    let config = example_config(&scratch);
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o640)).unwrap();
    let original = std::fs::read_to_string(&config).unwrap();
    let printer = [
        "--client",
        "10.30.0.0/24",
        "--owner",
        "facilities@contoso.com",
        "--reason",
        "Copier firmware has no TLS 1.2",
        "--expires",
        "2099-01-01",
        "--plan",
        "Replace the copier",
    ];
    let without = |key: &str| -> Vec<&str> {
        let at = printer.iter().position(|a| *a == key).unwrap();
        [&printer[..at], &printer[at + 2..]].concat()
    };

    // Refused, with the key check-config names, and nothing written.
    for (args, key) in [
        (without("--owner"), "exception[4].owner: is missing"),
        (without("--reason"), "exception[4].reason: is missing"),
        (without("--expires"), "exception[4].expires: is missing"),
        (without("--plan"), "exception[4].plan: is missing"),
        (
            [&["--client", "0.0.0.0/0"][..], &without("--client")[..]].concat(),
            "exception[4].client: client 0.0.0.0/0 matches every address",
        ),
    ] {
        let output = run(&mut exceptions(&config, "add", &args));
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&output.stderr);
        assert!(err.contains("not written") && err.contains(key), "{err}");
        assert_eq!(std::fs::read_to_string(&config).unwrap(), original);
    }

    // Added with the next id; the other entries gain their positions as ids, nothing else moves.
    let out = stdout(&run_ok(&mut exceptions(&config, "add", &printer)));
    assert!(out.starts_with("added exception 4 in "), "{out}");
    assert_eq!(listed_ids(&config), ["1", "2", "3", "4"]);
    let edited = std::fs::read_to_string(&config).unwrap();
    // The next id is remembered at the top, so that no id is ever given twice.
    let (mark, rest) = edited.split_at(edited.find("\n\n").unwrap() + 2);
    assert_eq!(
        mark,
        "# The id `mailtls exceptions add` gives next: ids of removed exceptions are never reused.\nnext_exception_id = 5\n\n"
    );
    let stripped: String = rest
        .lines()
        .filter(|l| !l.starts_with("id = "))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(stripped.starts_with(&original), "{edited}");
    let (entry, added) = edited.rsplit_once("added = \"").expect("an added key");
    assert!(
        entry.ends_with("\n[[exception]]\nid = 4\nclient = \"10.30.0.0/24\"\nowner = \"facilities@contoso.com\"\nreason = \"Copier firmware has no TLS 1.2\"\nexpires = \"2099-01-01\"\nplan = \"Replace the copier\"\n"),
        "{edited}"
    );
    // Today's date, e.g. 2026-12-03.
    assert!(
        added.len() == 12 && added.ends_with("\"\n") && added.as_bytes()[4] == b'-',
        "{added:?}"
    );
    let mode = std::fs::metadata(&config).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640);

    // A /0 network with --allow-broad is accepted.
    let broad = [
        &["--client", "::/0", "--allow-broad"][..],
        &without("--client")[..],
    ]
    .concat();
    run_ok(&mut exceptions(&config, "add", &broad));

    // Removing exception 1 keeps the others' ids and the register's explanation.
    run_ok(&mut exceptions(&config, "remove", &["1"]));
    assert_eq!(listed_ids(&config), ["2", "3", "4", "5"]);
    let edited = std::fs::read_to_string(&config).unwrap();
    assert!(!edited.contains("10.20.0.0/24"), "{edited}");
    assert!(edited.contains("# The exception register."), "{edited}");
    let output = run(&mut exceptions(&config, "remove", &["1"]));
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no exception has id 1"));

    // Removing the highest id, then adding: the new exception gets 6, never 5 again (and the
    // config with its mark still loads: `list` checks it).
    run_ok(&mut exceptions(&config, "remove", &["5"]));
    let out = stdout(&run_ok(&mut exceptions(&config, "add", &broad)));
    assert!(out.starts_with("added exception 6 in "), "{out}");
    assert_eq!(listed_ids(&config), ["2", "3", "4", "6"]);
    let edited = std::fs::read_to_string(&config).unwrap();
    assert_eq!(edited.matches("next_exception_id").count(), 1, "{edited}");
    assert!(edited.contains("\nnext_exception_id = 7\n"), "{edited}");

    // Renewed: the expiry and plan change in place; a past expiry is refused.
    run_ok(&mut exceptions(
        &config,
        "renew",
        &["3", "--expires", "2099-06-30", "--plan", "New lease"],
    ));
    let out = stdout(&run_ok(&mut mailtls(&config, "exceptions list")));
    let row = out.lines().find(|l| l.starts_with("3 ")).unwrap();
    assert!(
        row.contains("2099-06-30") && row.contains("New lease") && row.ends_with("live"),
        "{out}"
    );
    let output = run(&mut exceptions(
        &config,
        "renew",
        &["3", "--expires", "2020-01-01"],
    ));
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("is not in the future"));
}

#[test]
fn exceptions_add_edits_the_register_file_the_config_names() {
    let scratch = Scratch::new("exceptions-file");
    let config = example_config(&scratch);
    let text = std::fs::read_to_string(&config).unwrap();
    let at = text.find("# The exception register.").unwrap();
    std::fs::write(
        &config,
        format!(
            "{}[exception_register]\nfile = \"exceptions.toml\"\n",
            &text[..at]
        ),
    )
    .unwrap();
    let register = config.with_file_name("exceptions.toml");
    std::fs::write(&register, &text[at..]).unwrap();
    let config_before = std::fs::read_to_string(&config).unwrap();

    run_ok(&mut exceptions(
        &config,
        "add",
        &[
            "--user",
            "copier@contoso.com",
            "--owner",
            "it@contoso.com",
            "--reason",
            "old",
            "--expires",
            "2099-01-01",
            "--plan",
            "replace",
        ],
    ));
    assert_eq!(std::fs::read_to_string(&config).unwrap(), config_before);
    assert!(std::fs::read_to_string(&register)
        .unwrap()
        .contains("id = 4\nuser = \"copier@contoso.com\""));
    assert_eq!(listed_ids(&config), ["1", "2", "3", "4"]);
    let out = explain(
        &config,
        "--listener legacy-imaps --tls 1.0 --client 192.0.2.1 --user copier@contoso.com --at 2027-02-01",
    );
    assert_eq!(decided(&out), ("allow", "exception:4"), "{out}");
}
