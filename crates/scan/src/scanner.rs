//! A whole scan: resolve every target, scan each address (bounded concurrency, per-host
//! cap), and assemble one report per target and address.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use futures::future::join_all;
use futures::stream::{self, StreamExt};
use tokio::time::Instant;
use wire::TlsVersion;

use crate::certificate::{
    fetch_tls13_chain, inspect, CertificateReport, ChainVerifier, TrustError,
};
use crate::ciphers::enumerate;
use crate::connect::{Connector, Gates};
use crate::probe::{Answer, Prober, VersionProbe};
use crate::report::{suite_label, version_key, CipherList, ScanReport, StartTlsReport, Status};
use crate::target::{Target, TlsMode};
use crate::verdict::{Preset, Verdict};
use proto::starttls::Findings;

/// How a scan runs.
#[derive(Debug, Clone)]
pub struct ScanSettings {
    /// Limit on each connection, from connect to the server's answer; capped at
    /// [`MAX_TIMEOUT`].
    pub timeout: Duration,
    /// Addresses scanned at once (at least 1).
    pub concurrency: usize,
    /// Connections open at once to one IP address (at least 1).
    pub per_host: usize,
    /// One connection at a time per host, spaced out, with retries after rate-limit signs.
    pub slow: bool,
    /// Enumerate the accepted suites of every accepted version.
    pub ciphers: bool,
    /// The policy of the verdict.
    pub preset: Preset,
    /// Extra trust anchors (PEM), added to the system roots.
    pub ca_file: Option<PathBuf>,
    /// The name SMTP's EHLO gives.
    pub client_name: String,
}

impl Default for ScanSettings {
    fn default() -> ScanSettings {
        ScanSettings {
            timeout: Duration::from_secs(10),
            concurrency: 64,
            per_host: 16,
            slow: false,
            ciphers: false,
            preset: Preset::MinTls12,
            ca_file: None,
            client_name: "mailtls-scanner.invalid".into(),
        }
    }
}

/// The longest [`ScanSettings::timeout`] used: deadlines are the current time plus the
/// timeout, and a longer wait is no use to anyone scanning mail servers.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(3600);
/// Pause between connections to one host in `--slow` mode.
const SLOW_PACE: Duration = Duration::from_millis(500);
/// First pause before retrying after a rate-limit sign in `--slow` mode.
const SLOW_RETRY: Duration = Duration::from_secs(2);
/// Names resolved at once.
const RESOLVE_CONCURRENCY: usize = 32;

/// Events for a progress display.
#[derive(Debug)]
pub enum Progress<'a> {
    /// Names are resolved: this many reports will follow.
    Planned(usize),
    /// One report is complete.
    Finished(&'a ScanReport),
}

/// Runs scans with one set of settings.
#[derive(Debug)]
pub struct Scanner {
    settings: ScanSettings,
    prober: Prober,
    verifier: ChainVerifier,
}

impl Scanner {
    /// A scanner; fails when `--ca-file` cannot be used.
    pub fn new(mut settings: ScanSettings) -> Result<Scanner, TrustError> {
        // `Instant + timeout` panics on overflow; the cli refuses such values, other callers
        // get the cap.
        settings.timeout = settings.timeout.min(MAX_TIMEOUT);
        let verifier = ChainVerifier::new(settings.ca_file.as_deref())?;
        let (per_host, pace) = if settings.slow {
            (1, SLOW_PACE)
        } else {
            (settings.per_host, Duration::ZERO)
        };
        let prober = Prober {
            connector: Connector {
                gates: Gates::new(per_host, pace),
                timeout: settings.timeout,
                client_name: settings.client_name.clone(),
            },
            retry_pause: settings.slow.then_some(SLOW_RETRY),
        };
        Ok(Scanner {
            settings,
            prober,
            verifier,
        })
    }

    /// Scans every target; reports come back in target order, then address order.
    pub async fn scan(
        &self,
        targets: &[Target],
        progress: &(dyn Fn(Progress<'_>) + Sync),
    ) -> Vec<ScanReport> {
        let mut resolved: Vec<(usize, Result<Vec<SocketAddr>, String>)> =
            stream::iter(targets.iter().enumerate())
                .map(|(i, t)| async move { (i, self.resolve(t).await) })
                .buffer_unordered(RESOLVE_CONCURRENCY)
                .collect()
                .await;
        resolved.sort_by_key(|(i, _)| *i);

        let mut reports = Vec::new();
        let mut jobs = Vec::new();
        for (i, addresses) in resolved {
            match addresses {
                Ok(addresses) => {
                    jobs.extend(addresses.into_iter().enumerate().map(|(j, a)| (i, j, a)));
                }
                Err(error) => reports.push(((i, 0), self.unscanned(&targets[i], error))),
            }
        }
        progress(Progress::Planned(jobs.len() + reports.len()));
        for (_, report) in &reports {
            progress(Progress::Finished(report));
        }
        let mut scanned = stream::iter(jobs)
            .map(|(i, j, address)| async move {
                ((i, j), self.scan_address(&targets[i], address).await)
            })
            .buffer_unordered(self.settings.concurrency.max(1));
        while let Some((key, report)) = scanned.next().await {
            progress(Progress::Finished(&report));
            reports.push((key, report));
        }
        reports.sort_by_key(|(key, _)| *key);
        reports.into_iter().map(|(_, r)| r).collect()
    }

    /// Every address of the target's host, each once, in the resolver's order.
    async fn resolve(&self, target: &Target) -> Result<Vec<SocketAddr>, String> {
        if let Ok(ip) = target.host.parse::<IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, target.port)]);
        }
        let lookup = tokio::net::lookup_host((target.host.as_str(), target.port));
        let found = tokio::time::timeout(self.settings.timeout, lookup)
            .await
            .map_err(|_| format!("cannot resolve '{}': no answer in time", target.host))?
            .map_err(|e| format!("cannot resolve '{}': {e}", target.host))?;
        let mut addresses: Vec<SocketAddr> = Vec::new();
        for address in found {
            if !addresses.contains(&address) {
                addresses.push(address);
            }
        }
        if addresses.is_empty() {
            return Err(format!("'{}' resolves to no address", target.host));
        }
        Ok(addresses)
    }

    async fn scan_address(&self, target: &Target, address: SocketAddr) -> ScanReport {
        let started = Instant::now();
        let probes =
            join_all(TlsVersion::ALL.map(|v| self.prober.version(target, address, v))).await;

        let mut report = self.empty_report(target, Some(address));
        let mut findings: Option<Findings> = None;
        let mut first_error = None;
        for probe in &probes {
            findings = findings.or_else(|| probe.probed.findings.clone());
            let (status, reason) = match &probe.probed.answer {
                Ok(Answer::Accepted { suite, .. }) => (
                    Status::Accepted,
                    format!("negotiated {}", suite_label(*suite)),
                ),
                Ok(Answer::Rejected { reason, .. }) => (Status::Rejected, reason.clone()),
                Ok(Answer::Unknown { reason }) => (Status::Unknown, reason.clone()),
                Err(e) => {
                    first_error.get_or_insert_with(|| e.to_string());
                    (Status::Unknown, e.to_string())
                }
            };
            let key = version_key(probe.version).to_string();
            report.versions.insert(key.clone(), status);
            report.version_reasons.insert(key, reason);
        }
        let reached_tls = probes.iter().any(|p| p.probed.answer.is_ok());
        if !reached_tls {
            report.error = first_error.clone();
        } else if probes
            .iter()
            .all(|p| matches!(p.probed.answer, Ok(Answer::Rejected { silent: true, .. })))
        {
            // Closing on every version is no proof of refusal: the port may not speak TLS.
            let why = "the server closed every connection without a TLS answer (not a TLS port?)";
            for status in report.versions.values_mut() {
                *status = Status::Unknown;
            }
            report.error = Some(why.to_string());
        }
        if target.tls_mode == TlsMode::Starttls {
            let findings = findings.unwrap_or_default();
            report.plaintext_auth = findings.plaintext_auth.clone();
            report.starttls = Some(StartTlsReport {
                advertised: findings.starttls_advertised,
                accepted: reached_tls,
                greeting: findings.greeting,
                capabilities: findings.capabilities,
                error: if reached_tls { None } else { first_error },
            });
        }

        let want_ciphers = self.settings.ciphers || self.settings.preset.needs_ciphers();
        let (certificate, ciphers) =
            tokio::join!(self.certificate(target, address, &probes), async {
                if want_ciphers && reached_tls {
                    Some(self.ciphers(target, address, &report).await)
                } else {
                    None
                }
            });
        match certificate {
            Ok(certificate) => report.certificate = certificate,
            Err(note) => report.notes.push(note),
        }
        report.ciphers = ciphers;
        report.verdict = self.settings.preset.judge(&report);
        report.duration_ms = started.elapsed().as_millis() as u64;
        report
    }

    /// The chain from the newest TLS 1.0-1.2 probe that carried one, else from a TLS 1.3
    /// handshake when only TLS 1.3 is accepted.
    async fn certificate(
        &self,
        target: &Target,
        address: SocketAddr,
        probes: &[VersionProbe],
    ) -> Result<Option<CertificateReport>, String> {
        let in_clear = probes.iter().rev().find_map(|p| match &p.probed.answer {
            Ok(Answer::Accepted {
                chain: Some(chain), ..
            }) => Some((p.version, chain)),
            _ => None,
        });
        let describe = |chain: &[Vec<u8>], version: TlsVersion| {
            inspect(chain, &target.host, &self.verifier, version_key(version))
                .map(Some)
                .map_err(|e| format!("certificate: {e}"))
        };
        if let Some((version, chain)) = in_clear {
            return describe(chain, version);
        }
        let tls13 = probes.iter().any(|p| {
            p.version == TlsVersion::Tls13 && matches!(p.probed.answer, Ok(Answer::Accepted { .. }))
        });
        if !tls13 {
            return Ok(None);
        }
        let opened = self.prober.connector.open(target, address).await;
        let ready = opened.result.map_err(|e| format!("certificate: {e}"))?;
        let chain = fetch_tls13_chain(ready, &target.host)
            .await
            .map_err(|e| format!("certificate: {e}"))?;
        describe(&chain, TlsVersion::Tls13)
    }

    async fn ciphers(
        &self,
        target: &Target,
        address: SocketAddr,
        report: &ScanReport,
    ) -> BTreeMap<String, CipherList> {
        let accepted: Vec<TlsVersion> = TlsVersion::ALL
            .into_iter()
            .filter(|&v| report.status(v) == Status::Accepted)
            .collect();
        let lists = join_all(
            accepted
                .iter()
                .map(|&v| enumerate(&self.prober, target, address, v)),
        )
        .await;
        accepted
            .into_iter()
            .map(|v| version_key(v).to_string())
            .zip(lists)
            .collect()
    }

    /// A report for a target that could not be scanned at all.
    fn unscanned(&self, target: &Target, error: String) -> ScanReport {
        let mut report = self.empty_report(target, None);
        for v in TlsVersion::ALL {
            report
                .versions
                .insert(version_key(v).to_string(), Status::Unknown);
            report
                .version_reasons
                .insert(version_key(v).to_string(), error.clone());
        }
        report.error = Some(error);
        report.verdict = self.settings.preset.judge(&report);
        report
    }

    fn empty_report(&self, target: &Target, address: Option<SocketAddr>) -> ScanReport {
        ScanReport {
            target: target.to_string(),
            address: address.map(|a| a.to_string()),
            protocol: target.protocol,
            tls_mode: target.tls_mode,
            versions: BTreeMap::new(),
            version_reasons: BTreeMap::new(),
            ciphers: None,
            certificate: None,
            starttls: None,
            plaintext_auth: None,
            verdict: Verdict {
                preset: self.settings.preset.name().to_string(),
                pass: false,
                reasons: Vec::new(),
            },
            error: None,
            notes: Vec::new(),
            duration_ms: 0,
        }
    }
}
