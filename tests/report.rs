//! The readiness and evidence report end to end: real clients through the gateway (a TLS 1.0
//! `openssl s_client`, a TLS 1.3 one whose IMAP ID carries markup, a plaintext one whose ID
//! carries a spreadsheet formula), then `mailtls report --html` rendered in headless Chromium
//! (no console errors, no request leaving the file, a screenshot and a PDF), `report verify`
//! on the file and on a copy with one changed byte, and the JSON and CSV forms; then the live
//! dashboard in Chromium. The legacy listener is under a policy in warn mode with an
//! exception register whose one exception expires in 10 days and covers none of the clients,
//! so the report made with the gateway's config shows two register warnings (the expiry, and
//! the TLS 1.0 client no exception covers); made from the store alone it says no register was
//! given. With `MAILTLS_KEEP_SCREENSHOTS=DIR` the screenshots and the PDF are copied there to
//! be looked at.

use std::path::Path;
use std::process::{Command, Output};

use e2e::chromium::Chromium;
use e2e::clients::{last_line, Conversation, LEGACY_CIPHERS};
use e2e::{
    free_port, mailtls_bin, post_cutoff_dovecot, start_gateway, utc_date, Dovecot, Gateway,
    ListenerSpec, Scratch,
};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// What the TLS 1.3 client reports as its software: markup that must stay text.
const HOSTILE_NAME: &str = "<script>alert(1)</script>";
const HOSTILE_VERSION: &str = "1</td><img src=http://192.0.2.1/x.png>";

/// The owner of the register's exception: markup that must stay text.
const EXCEPTION_OWNER: &str = "Print room <b>MFP</b>";

/// The register's one exception, for a scanner never seen, expiring on `expires`.
fn register_toml(expires: &str) -> String {
    format!(
        r#"
[policy.sunset]
mode = "warn"
start = "2026-01-01"
end = "2099-01-31"

[[exception]]
user = "scanner@lab.example"
owner = "{EXCEPTION_OWNER}"
reason = "MFP firmware has no TLS 1.2"
expires = "{expires}"
plan = "Replace the MFP"
"#
    )
}

fn mailtls(args: &[&str]) -> Output {
    Command::new(mailtls_bin())
        .args(args)
        .output()
        .expect("run mailtls")
}

/// One IMAP login (and logout) through the gateway, with an IMAP ID when `id` is given.
fn imap_session(mut client: Conversation, id: Option<&str>) {
    client.read_line();
    if let Some(id) = id {
        client.send(format!("a ID {id}\r\n").as_bytes());
        let reply = client.read_tagged("a");
        assert!(
            last_line(&reply).starts_with("a OK"),
            "{}",
            client.describe()
        );
    }
    client.send(b"b LOGIN alice secret\r\n");
    let reply = client.read_tagged("b");
    assert!(
        last_line(&reply).starts_with("b OK"),
        "{}",
        client.describe()
    );
    client.send(b"c LOGOUT\r\n");
    client.read_tagged("c");
}

/// A gateway with a TLS listener (TLS 1.0 allowed) and a plaintext one, and three clients'
/// sessions through it: one that breaks, one that is fine but names itself in markup, one
/// without TLS naming itself as a formula.
/// The Dovecot is returned too: it stops when dropped.
/// The legacy listener applies `[policy.sunset]` (warn mode) with [`register_toml`]'s
/// register, expiring on `expires`.
fn gateway_with_three_clients(scratch: &Scratch, expires: &str) -> (Gateway, Dovecot) {
    let dovecot = post_cutoff_dovecot(scratch);
    let listeners = vec![
        ListenerSpec::new("imaps-legacy", "imap", "implicit", Some("1.0")).with_policy("sunset"),
        ListenerSpec::new("imap-plain", "imap", "none", None),
    ];
    let gateway = start_gateway(
        scratch,
        &dovecot,
        listeners,
        &format!(
            "pre_auth_timeout_secs = 10
{}",
            register_toml(expires)
        ),
    );
    let ca = dovecot.ca_file();
    let tls_port = gateway.port("imaps-legacy");
    imap_session(
        Conversation::s_client(tls_port, &ca, &["-tls1", "-cipher", LEGACY_CIPHERS]),
        None,
    );
    imap_session(
        Conversation::s_client(tls_port, &ca, &[]),
        Some(&format!(
            "(\"name\" \"{}\" \"version\" \"{}\")",
            HOSTILE_NAME, HOSTILE_VERSION
        )),
    );
    imap_session(
        Conversation::tcp(gateway.port("imap-plain")),
        Some("(\"name\" \"=HYPERLINK(1)\" \"version\" \"\x1b[2J\")"),
    );
    (gateway, dovecot)
}

/// `mailtls report --html FILE` with the store chosen by `store` (`--store DB` or `--config
/// FILE`); the page made.
fn html_report(store: &[&str], file: &Path) -> String {
    let args = [&["report"], store, &["--html", file.to_str().unwrap()]].concat();
    let made = mailtls(&args);
    assert!(made.status.success(), "{made:?}");
    std::fs::read_to_string(file).unwrap()
}

fn file_url(path: &Path) -> String {
    format!("file://{}", path.display())
}

#[test]
fn the_report_renders_offline_keeps_client_text_as_text_and_detects_a_changed_byte() {
    let scratch = Scratch::new("report");
    let expires = utc_date("+10 days", "%Y-%m-%d");
    let (mut gateway, _dovecot) = gateway_with_three_clients(&scratch, &expires);
    gateway.stop();
    let db = gateway.db_path();
    let db = db.to_str().unwrap();

    // An owner for the client that breaks, so the report names it.
    let listed: Vec<Value> =
        serde_json::from_slice(&mailtls(&["clients", "--store", db, "--json"]).stdout).unwrap();
    assert_eq!(listed.len(), 3, "{listed:#?}");
    assert_eq!(listed[0]["verdict"], "breaks");
    let breaking = listed[0]["id"].as_str().unwrap();
    let annotated = mailtls(&[
        "clients",
        "annotate",
        breaking,
        "--owner",
        "Facilities",
        "--device",
        "Lobby printer",
        "--store",
        db,
    ]);
    assert!(annotated.status.success(), "{annotated:?}");

    // Made with the gateway's config: its register and the register's warnings.
    let config = gateway.config_path();
    let config = config.to_str().unwrap();
    let file = scratch.path().join("report.html");
    let html = html_report(&["--config", config], &file);
    assert!(
        !html.contains(HOSTILE_NAME) && !html.contains("<img") && !html.contains("<b>MFP"),
        "markup escaped"
    );
    assert!(html.contains("Lobby printer") && html.contains("Facilities"));
    assert!(html.contains("Warnings (2)"), "{html}");

    // From the store alone: the page says no register was given, the data has none.
    let text = html_report(&["--store", db], &scratch.path().join("store-only.html"));
    assert!(text.contains("No exception register was given"), "{text}");
    assert!(!text.contains("Warnings ("), "{text}");
    let json: Value =
        serde_json::from_slice(&mailtls(&["report", "--store", db, "--json"]).stdout).unwrap();
    assert!(json["register"].is_null(), "{json:#}");

    // Verified as made; one changed byte in the data (a session count) or in the page fails.
    let verified = mailtls(&["report", "verify", file.to_str().unwrap()]);
    assert_eq!(verified.status.code(), Some(0), "{verified:?}");
    let stdout = String::from_utf8_lossy(&verified.stdout).to_string();
    assert!(stdout.contains("data intact"), "{stdout}");
    let data_at = html.find("id=\"mailtls-report-data\">").unwrap();
    let count_at = data_at + html[data_at..].find("\"sessions\":").unwrap() + 11;
    let mut bytes = html.clone().into_bytes();
    bytes[count_at] = if bytes[count_at] == b'7' { b'8' } else { b'7' };
    let copy = scratch.path().join("copy.html");
    std::fs::write(&copy, &bytes).unwrap();
    let changed = mailtls(&["report", "verify", copy.to_str().unwrap()]);
    assert_eq!(changed.status.code(), Some(1), "{changed:?}");
    assert!(String::from_utf8_lossy(&changed.stdout).contains("embedded data was changed"));
    // A register warning changed in the data: the expiry moved out of sight.
    let warned = format!("expires at {expires}");
    let (page, data) = html.split_at(data_at);
    assert!(data.contains(&warned), "{data}");
    let moved = format!(
        "{page}{}",
        data.replacen(&warned, "expires at 2099-01-01", 1)
    );
    std::fs::write(&copy, moved).unwrap();
    let changed = mailtls(&["report", "verify", copy.to_str().unwrap()]);
    assert_eq!(changed.status.code(), Some(1), "{changed:?}");
    assert!(String::from_utf8_lossy(&changed.stdout).contains("embedded data was changed"));
    std::fs::write(&copy, html.replacen("Lobby printer", "Lobby Printer", 1)).unwrap();
    let changed = mailtls(&["report", "verify", copy.to_str().unwrap()]);
    assert_eq!(changed.status.code(), Some(1), "{changed:?}");
    // A crafted file: "today" moved to the calendar's last day and the digest recomputed, so
    // `verify` renders it again (it once panicked there); the page is not what that data
    // renders to, so it is refused with a reason.
    let (page, data) = html.split_at(data_at);
    let json_at = data.find('>').unwrap() + 1;
    let json = &data[json_at..json_at + data[json_at..].find("</script>").unwrap()];
    let generated = json.find("\"generated_at\":\"").unwrap() + 16;
    let crafted_json = format!(
        "{}9999-12-31T00:00:00Z{}",
        &json[..generated],
        &json[generated + json[generated..].find('"').unwrap()..]
    );
    let digest = |text: &str| -> String {
        Sha256::digest(text.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    let evil = format!("{page}{data}")
        .replace(json, &crafted_json)
        .replace(&digest(json), &digest(&crafted_json));
    assert!(evil.contains("9999-12-31T00:00:00Z"));
    std::fs::write(&copy, evil).unwrap();
    let crafted = mailtls(&["report", "verify", copy.to_str().unwrap()]);
    assert_eq!(crafted.status.code(), Some(1), "{crafted:?}");
    assert!(
        String::from_utf8_lossy(&crafted.stdout).contains("page's text was changed"),
        "{crafted:?}"
    );

    // JSON and CSV carry the same clients; CSV defuses the formula; a range without sessions
    // is empty.
    let json: Value =
        serde_json::from_slice(&mailtls(&["report", "--store", db, "--json"]).stdout).unwrap();
    assert_eq!(json["totals"]["clients"], 3);
    assert_eq!(json["totals"]["breaks"], 1);
    assert_eq!(json["totals"]["no_tls"], 1);
    assert_eq!(json["totals"]["unowned"], 2);
    assert_eq!(json["sources"][0]["label"], "gateway");
    let software: Vec<&str> = json["clients"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["software"].as_str())
        .collect();
    assert!(
        software.contains(&format!("{HOSTILE_NAME} {HOSTILE_VERSION}").as_str()),
        "{software:?}"
    );
    let csv = String::from_utf8(mailtls(&["report", "--store", db, "--csv"]).stdout).unwrap();
    assert_eq!(csv.lines().count(), 4, "{csv}");
    assert!(csv.contains(",'=HYPERLINK(1) \x1b[2J,"), "{csv}");
    // The register in the JSON, as the gateway judged it: the expiring exception and the TLS
    // 1.0 client it does not cover.
    let json: Value =
        serde_json::from_slice(&mailtls(&["report", "--config", config, "--json"]).stdout).unwrap();
    let register = &json["register"];
    let exception = &register["exceptions"][0];
    assert_eq!(exception["id"], 1, "{register:#}");
    assert_eq!(exception["owner"], EXCEPTION_OWNER);
    assert_eq!(exception["plan"], "Replace the MFP");
    assert_eq!(exception["sessions"], 0);
    assert_eq!(exception["expires"], format!("{expires}T00:00:00Z"));
    let warnings = register["warnings"].as_array().unwrap();
    let kinds: Vec<&str> = warnings
        .iter()
        .map(|w| w["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["expiring", "unexcepted"], "{register:#}");
    assert_eq!(warnings[0]["exception"], 1);
    let unexcepted = warnings[1]["text"].as_str().unwrap();
    assert!(
        unexcepted.starts_with("legacy client 127.0.0.1 (login \"alice\") negotiated TLSv1.0")
            && unexcepted.contains("no exception covers it"),
        "{unexcepted}"
    );
    let empty: Value = serde_json::from_slice(
        &mailtls(&["report", "--store", db, "--json", "--since", "2999-01-01"]).stdout,
    )
    .unwrap();
    assert_eq!(empty["totals"]["clients"], 0);

    // In Chromium: it renders, the markup is text, nothing is fetched, nothing complains.
    let mut browser = Chromium::launch(scratch.path());
    browser.open(&file_url(&file));
    let text = browser.evaluate("document.body.innerText");
    let text = text.as_str().unwrap();
    assert!(text.contains(HOSTILE_NAME), "shown as text");
    assert!(text.contains("Clients that break (1)"), "{text}");
    assert!(text.contains("Device owners"), "{text}");
    assert!(text.contains("Exception register"), "{text}");
    assert!(
        text.contains(&format!(
            "expires soon exception 1 (user=scanner@lab.example) expires at {expires}"
        )),
        "{text}"
    );
    assert!(
        text.contains("no exception legacy client 127.0.0.1 (login \"alice\")"),
        "{text}"
    );
    assert!(text.contains(EXCEPTION_OWNER), "shown as text: {text}");
    assert!(text.contains("Act on 2 warnings about the exception register"));
    assert_eq!(
        browser.evaluate("document.scripts.length"),
        1,
        "only the data"
    );
    assert_eq!(browser.evaluate("document.images.length"), 0);
    assert_eq!(
        browser.evaluate("document.querySelectorAll('svg').length"),
        4
    );
    let embedded = browser.evaluate(
        "JSON.parse(document.getElementById('mailtls-report-data').textContent).totals.clients",
    );
    assert_eq!(embedded, 3);
    let errors = browser.console_errors();
    assert!(errors.is_empty(), "{errors:#?}");
    let requests = browser.requests();
    assert!(!requests.is_empty());
    for url in &requests {
        assert!(
            *url == file_url(&file) || url.starts_with("data:"),
            "request left the page: {url}"
        );
    }
    let png = browser.screenshot(&scratch.path().join("report.png"));
    assert!(std::fs::metadata(&png).unwrap().len() > 50_000);
    let pdf = browser.pdf(&scratch.path().join("report.pdf"));
    assert!(std::fs::read(&pdf).unwrap().starts_with(b"%PDF"));
    // As printed: A4's width at 96 dpi, print styles on.
    browser.call(
        "Emulation.setEmulatedMedia",
        serde_json::json!({"media": "print"}),
    );
    browser.call(
        "Emulation.setDeviceMetricsOverride",
        serde_json::json!({"width": 794, "height": 1123, "deviceScaleFactor": 1, "mobile": false}),
    );
    browser.screenshot(&scratch.path().join("report-print.png"));

    // Ownership field by field: the network's owner stays with a client annotated on its own
    // (a note), in `clients`, `--unowned` and the report; `--owner ""` clears.
    let annotate = |args: &[&str]| {
        let done = mailtls(&[&["clients", "annotate"], args, &["--store", db]].concat());
        assert!(done.status.success(), "{done:?}");
    };
    let plain = listed[2]["id"].as_str().unwrap();
    annotate(&["127.0.0.0/8", "--owner", "Network team"]);
    annotate(&[plain, "--note", "printer"]);
    let clients = listed_clients(db);
    let client = clients.iter().find(|c| c["id"] == plain).unwrap();
    assert_eq!(client["owner"], "Network team", "{client:#}");
    assert_eq!(client["note"], "printer", "{client:#}");
    let unowned = mailtls(&["clients", "--store", db, "--unowned", "--json"]);
    let unowned: Vec<Value> = serde_json::from_slice(&unowned.stdout).unwrap();
    assert!(unowned.is_empty(), "{unowned:#?}");
    let json: Value =
        serde_json::from_slice(&mailtls(&["report", "--store", db, "--json"]).stdout).unwrap();
    assert_eq!(json["totals"]["unowned"], 0, "{json:#}");
    annotate(&["127.0.0.0/8", "--owner", ""]);
    annotate(&[breaking, "--owner", "", "--device", ""]);
    let clients = listed_clients(db);
    let client = clients.iter().find(|c| c["id"] == breaking).unwrap();
    assert!(
        client["owner"].is_null() && client["device"].is_null(),
        "{client:#}"
    );
    let unowned = mailtls(&["clients", "--store", db, "--unowned", "--json"]);
    let unowned: Vec<Value> = serde_json::from_slice(&unowned.stdout).unwrap();
    assert_eq!(unowned.len(), 3, "{unowned:#?}");
}

/// A `mailtls dashboard` process, stopped when dropped.
struct Dashboard {
    child: std::process::Child,
    base: String,
}

impl Dashboard {
    fn start(config: &Path, port: u16) -> Dashboard {
        let child = Command::new(mailtls_bin())
            .args(["dashboard", "--config", config.to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start mailtls dashboard");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "the dashboard never listened"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        Dashboard {
            child,
            base: format!("http://127.0.0.1:{port}/"),
        }
    }
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The HTTP status curl gets for `args` (its other arguments).
fn curl_status(args: &[&str]) -> String {
    let output = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
        .args(args)
        .output()
        .expect("run curl");
    String::from_utf8_lossy(&output.stdout).to_string()
}

/// The clients `mailtls clients --json` lists.
fn listed_clients(db: &str) -> Vec<Value> {
    serde_json::from_slice(&mailtls(&["clients", "--store", db, "--json"]).stdout).unwrap()
}

/// Waits up to 20 s for `done` to hold of the listed clients.
fn wait_for_clients(db: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let clients = listed_clients(db);
        if done(&clients) {
            return clients;
        }
        assert!(std::time::Instant::now() < deadline, "{clients:#?}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

#[test]
fn the_dashboard_follows_the_store_filters_and_annotates_in_chromium() {
    let scratch = Scratch::new("dashboard");
    let (gateway, dovecot) =
        gateway_with_three_clients(&scratch, &utc_date("+10 days", "%Y-%m-%d"));
    let db = gateway.db_path();
    let db = db.to_str().unwrap();
    let clients = wait_for_clients(db, |c| c.len() == 3);
    let breaking = clients[0]["id"].as_str().unwrap().to_string();

    // Beyond loopback without a token: refused before anything is served.
    let exposed = format!("0.0.0.0:{}", free_port());
    let refused = mailtls(&["dashboard", "--store", db, "--bind", &exposed]);
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("without a token"));
    // The same in the config is a config problem.
    // Configs beside the gateway's, so its relative store path names the same file.
    let gateway_config = std::fs::read_to_string(gateway.config_path()).unwrap();
    let beside = |name: &str| gateway.config_path().with_file_name(name);
    let exposed_config = beside("exposed.toml");
    std::fs::write(
        &exposed_config,
        format!("{gateway_config}\n[dashboard]\nbind = \"{exposed}\"\n"),
    )
    .unwrap();
    let problem = mailtls(&["check-config", "--config", exposed_config.to_str().unwrap()]);
    assert!(!problem.status.success());
    assert!(
        String::from_utf8_lossy(&problem.stdout).contains("dashboard.bind")
            || String::from_utf8_lossy(&problem.stderr).contains("dashboard.bind"),
        "{problem:?}"
    );

    let port = free_port();
    let config = beside("dashboard.toml");
    std::fs::write(
        &config,
        format!("{gateway_config}\n[dashboard]\nbind = \"127.0.0.1:{port}\"\n"),
    )
    .unwrap();
    let dashboard = Dashboard::start(&config, port);
    let base = dashboard.base.clone();

    let mut browser = Chromium::launch(scratch.path());
    browser.open(&base);
    browser.wait_until("document.body.innerText.includes('Clients (3)')");
    let text = browser.evaluate("document.body.innerText");
    let text = text.as_str().unwrap();
    assert!(text.contains(HOSTILE_NAME), "shown as text");
    // The config's register, judged live: the expiry and the TLS 1.0 client without one.
    assert!(text.contains("Warnings (2)"), "{text}");
    assert!(text.contains("expires soon exception 1"), "{text}");
    assert!(
        text.contains("no exception legacy client 127.0.0.1"),
        "{text}"
    );
    assert_eq!(browser.evaluate("document.images.length"), 0);

    // Filtered by verdict, then by ownership.
    browser.navigate(&format!("{base}?verdict=breaks"));
    browser.wait_until("document.body.innerText.includes('Clients (1)')");
    browser.navigate(&format!("{base}?unowned=1&listener=imap-plain"));
    browser.wait_until("document.body.innerText.includes('Clients (1)')");

    // A new client's session appears without reloading by hand.
    browser.navigate(&base);
    imap_session(
        Conversation::s_client(
            gateway.port("imaps-legacy"),
            &dovecot.ca_file(),
            &["-tls1_2"],
        ),
        Some("(\"name\" \"late scanner\" \"version\" \"2\")"),
    );
    browser.wait_until("document.body.innerText.includes('late scanner 2')");

    // Annotated through the page's form: `mailtls clients` shows it.
    browser.evaluate(&format!(
        "(() => {{ const form = [...document.querySelectorAll('form.annotate')]
              .find(f => f.client.value === '{breaking}');
            form.owner.value = 'Facilities'; form.device.value = 'Lobby printer';
            form.requestSubmit(); return true; }})()"
    ));
    let annotated = wait_for_clients(db, |clients| {
        clients
            .iter()
            .any(|c| c["id"] == breaking.as_str() && c["owner"] == "Facilities")
    });
    let client = annotated
        .iter()
        .find(|c| c["id"] == breaking.as_str())
        .unwrap();
    assert_eq!(client["device"], "Lobby printer");
    browser.wait_until("document.body.innerText.includes('Lobby printer')");

    let errors = browser.console_errors();
    assert!(errors.is_empty(), "{errors:#?}");
    for url in browser.requests() {
        assert!(url.starts_with(&base), "request left the dashboard: {url}");
    }
    browser.screenshot(&scratch.path().join("dashboard.png"));

    // Forms posted from elsewhere are refused; so is another Host (DNS rebinding).
    let csrf = browser.evaluate("document.querySelector('input[name=csrf]').value");
    let csrf = csrf.as_str().unwrap();
    let post = format!("{base}annotate");
    let form = format!("client={breaking}&owner=Mallory");
    assert_eq!(curl_status(&["-d", &form, &post]), "403", "no form token");
    let with_token = format!("csrf={csrf}&{form}");
    assert_eq!(
        curl_status(&[
            "-H",
            "Origin: http://evil.example",
            "-d",
            &with_token,
            &post
        ]),
        "403",
        "cross-site origin"
    );
    assert_eq!(
        curl_status(&["-H", "Host: evil.example", &base]),
        "421",
        "foreign Host"
    );
    assert_eq!(listed_clients(db)[0]["owner"], "Facilities");

    // The live page embeds no data (it would be the whole inventory at every reload).
    assert_eq!(
        browser.evaluate("document.getElementById('mailtls-report-data') === null"),
        true
    );
    // The owner emptied in the form is cleared; the device, saved unchanged, stays.
    browser.navigate(&base);
    browser.wait_until("document.body.innerText.includes('Lobby printer')");
    browser.evaluate(&format!(
        "(() => {{ const form = [...document.querySelectorAll('form.annotate')]
              .find(f => f.client.value === '{breaking}');
            form.owner.value = ''; form.requestSubmit(); return true; }})()"
    ));
    let cleared = wait_for_clients(db, |clients| {
        clients
            .iter()
            .any(|c| c["id"] == breaking.as_str() && c["owner"].is_null())
    });
    let client = cleared
        .iter()
        .find(|c| c["id"] == breaking.as_str())
        .unwrap();
    assert_eq!(client["device"], "Lobby printer", "{client:#}");
    // A refused annotation is the request's fault, said as such: an unknown client, and an
    // owner of 700 characters that is 1,400 bytes (the form's maxlength counts characters).
    let refused = |fields: &[&str]| -> (String, String) {
        let mut args = vec!["-s", "-w", "\n%{http_code}"];
        for field in fields {
            args.extend(["--data-urlencode", field]);
        }
        args.push(post.as_str());
        let output = Command::new("curl").args(&args).output().expect("curl");
        let text = String::from_utf8_lossy(&output.stdout).to_string();
        let (body, status) = text.rsplit_once('\n').unwrap();
        (status.to_string(), body.to_string())
    };
    let csrf_field = format!("csrf={csrf}");
    let (status, body) = refused(&[&csrf_field, "client=c999999", "owner=Nobody"]);
    assert_eq!(status, "422", "{body}");
    assert!(body.contains("no client c999999"), "{body}");
    let long_owner = format!("owner={}", "\u{e9}".repeat(700));
    let client_field = format!("client={breaking}");
    let (status, body) = refused(&[&csrf_field, &client_field, &long_owner]);
    assert_eq!(status, "422", "{body}");
    assert!(body.contains("1024 bytes"), "{body}");
    // An owner the client has from its network cannot be cleared on the client: the answer
    // says where it is set instead of appearing to ignore the form.
    let network = mailtls(&[
        "clients",
        "annotate",
        "127.0.0.0/8",
        "--owner",
        "Network team",
        "--store",
        db,
    ]);
    assert!(network.status.success(), "{network:?}");
    let (status, body) = refused(&[
        &csrf_field,
        &client_field,
        "owner=",
        "shown_owner=Network team",
    ]);
    assert_eq!(status, "409", "{body}");
    assert!(body.contains("owner \"Network team\""), "{body}");

    // An exception added to the register shows without restarting the dashboard, and covers
    // the TLS 1.0 client, so its warning goes.
    let added = mailtls(&[
        "exceptions",
        "add",
        "--config",
        config.to_str().unwrap(),
        "--user",
        "alice",
        "--owner",
        "Helpdesk",
        "--reason",
        "old mail client",
        "--expires",
        &utc_date("+60 days", "%Y-%m-%d"),
        "--plan",
        "upgrade it",
    ]);
    assert!(added.status.success(), "{added:?}");
    browser.navigate(&base);
    browser.wait_until("document.body.innerText.includes('Exceptions (2)')");
    let text = browser.evaluate("document.body.innerText");
    let text = text.as_str().unwrap();
    assert!(text.contains("Warnings (1)"), "{text}");

    // With a token: nothing without it or with a wrong one; the token as bearer or password.
    let token = "7c1b9f0e2d4a6c8e0f1a3b5d7e9f1a2b3c4d5e6f";
    std::fs::write(beside("dashboard.token"), format!("{token}\n")).unwrap();
    let guarded_port = free_port();
    let guarded_config = beside("guarded.toml");
    std::fs::write(
        &guarded_config,
        format!(
            "{gateway_config}\n[dashboard]\nbind = \"127.0.0.1:{guarded_port}\"\ntoken_file = \"dashboard.token\"\n"
        ),
    )
    .unwrap();
    let guarded = Dashboard::start(&guarded_config, guarded_port);
    assert_eq!(curl_status(&[&guarded.base]), "401");
    assert_eq!(
        curl_status(&[
            "-H",
            "Authorization: Bearer wrong-token-of-some-length",
            &guarded.base
        ]),
        "401"
    );
    assert_eq!(curl_status(&["-u", "admin:wrong", &guarded.base]), "401");
    let bearer = format!("Authorization: Bearer {token}");
    assert_eq!(curl_status(&["-H", &bearer, &guarded.base]), "200");
    assert_eq!(
        curl_status(&["-u", &format!("admin:{token}"), &guarded.base]),
        "200"
    );
    drop(dashboard);
}
