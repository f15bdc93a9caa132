//! The readable table: one block per target and address.

use std::fmt::Write;

use wire::TlsVersion;

use crate::report::{ScanReport, Status};
use proto::starttls::quote;

const RED: &str = "\x1b[31m";
const GREEN: &str = "\x1b[32m";
const YELLOW: &str = "\x1b[33m";
const BOLD: &str = "\x1b[1m";
const RESET: &str = "\x1b[0m";

/// The reports as text; ANSI colours only when `colour` (a terminal).
pub fn table(reports: &[ScanReport], colour: bool) -> String {
    let paint = |code: &str, text: &str| {
        if colour {
            format!("{code}{text}{RESET}")
        } else {
            text.to_string()
        }
    };
    let mut out = String::new();
    for r in reports {
        let verdict = if r.verdict.pass {
            paint(GREEN, "PASS")
        } else {
            paint(RED, "FAIL")
        };
        let address = r.address.as_deref().unwrap_or("unresolved");
        let _ = writeln!(
            out,
            "{}  ({address}, {} {})  {verdict} {}  {} ms",
            paint(BOLD, &r.target),
            r.protocol,
            r.tls_mode,
            r.verdict.preset,
            r.duration_ms
        );
        if let Some(error) = &r.error {
            let _ = writeln!(out, "  error     {}", paint(YELLOW, error));
        }
        for v in TlsVersion::ALL {
            let status = r.status(v);
            // Padded to the longest word, so the reasons line up.
            let label = format!("{:<8}", status.as_str());
            // Legacy versions accepted are the finding; modern ones accepted are good.
            let code = match (status, v >= TlsVersion::Tls12) {
                (Status::Unknown, _) => YELLOW,
                (Status::Accepted, true) | (Status::Rejected, false) => GREEN,
                (Status::Accepted, false) | (Status::Rejected, true) => RED,
            };
            let _ = writeln!(
                out,
                "  {:<9} {}  {}",
                v.to_string(),
                paint(code, &label),
                r.reason(v).unwrap_or("")
            );
        }
        if let Some(s) = &r.starttls {
            let advertised = match s.advertised {
                Some(true) => "advertised",
                Some(false) => "not advertised",
                None => "capabilities not listed",
            };
            let accepted = if s.accepted { "accepted" } else { "refused" };
            let _ = writeln!(out, "  STARTTLS  {advertised}, {accepted}");
        }
        if let Some(p) = &r.plaintext_auth {
            let offered = if p.offered {
                paint(RED, "login before TLS possible")
            } else {
                paint(GREEN, "no login before TLS")
            };
            // SMTP evidence names the server's AUTH words.
            let _ = writeln!(out, "  plaintext {offered} ({})", quote(&p.evidence));
        }
        if let Some(c) = &r.certificate {
            let bits = c.key_bits.map(|b| format!(" {b}")).unwrap_or_default();
            // The server wrote these names (and the verifier's error repeats them): escaped
            // like its plaintext lines, so a certificate cannot drive the terminal.
            let sans: Vec<String> = c.subject_alt_names.iter().map(|n| quote(n)).collect();
            let _ = writeln!(
                out,
                "  cert      {}  SAN {}",
                quote(&c.subject),
                sans.join(", ")
            );
            let _ = writeln!(
                out,
                "            issuer {}; {} to {}; {}{bits}; {}",
                quote(&c.issuer),
                c.not_before,
                c.not_after,
                c.key_type,
                c.signature_algorithm
            );
            let trust = match &c.verify_error {
                None => paint(GREEN, "verified"),
                Some(e) => paint(RED, &format!("not verified: {}", quote(e))),
            };
            let _ = writeln!(out, "            {trust}");
        }
        if let Some(ciphers) = &r.ciphers {
            for v in TlsVersion::ALL.iter().rev() {
                let Some(list) = ciphers.get(crate::report::version_key(*v)) else {
                    continue;
                };
                let order = match list.server_preference {
                    Some(true) => "server order",
                    Some(false) => "client order",
                    None => "order not known",
                };
                let _ = writeln!(out, "  suites    {v} ({order}):");
                for suite in &list.suites {
                    let _ = writeln!(out, "              {suite}");
                }
                if let Some(why) = &list.incomplete {
                    let _ = writeln!(
                        out,
                        "              {}",
                        paint(YELLOW, &format!("(incomplete: {why})"))
                    );
                }
            }
        }
        for note in &r.notes {
            let _ = writeln!(out, "  note      {note}");
        }
        for reason in &r.verdict.reasons {
            let _ = writeln!(out, "  {}  {reason}", paint(RED, "✗"));
        }
        out.push('\n');
    }
    out
}
