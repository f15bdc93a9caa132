//! Probes over real connections: one hello per connection, STARTTLS first where needed,
//! retries with a pause in `--slow` mode when the server seems to limit us.

use std::net::SocketAddr;
use std::time::Duration;

use wire::TlsVersion;

use super::exchange::exchange;
use super::judge::Answer;
use super::offer::bundles;
use crate::connect::{ConnectError, Connector};
use crate::target::Target;
use proto::starttls::Findings;

/// Sends probes for one scan.
#[derive(Debug)]
pub(crate) struct Prober {
    pub(crate) connector: Connector,
    /// Retries after a rate-limit sign, with this pause doubled each time (`--slow`).
    pub(crate) retry_pause: Option<Duration>,
}

/// What one probe connection gave.
#[derive(Debug)]
pub(crate) struct Probed {
    /// What the STARTTLS dialogue showed, for STARTTLS targets.
    pub(crate) findings: Option<Findings>,
    /// The answer, or why no hello could be sent.
    pub(crate) answer: Result<Answer, ConnectError>,
}

/// The result for one version: the last answer and the first findings.
#[derive(Debug)]
pub(crate) struct VersionProbe {
    pub(crate) version: TlsVersion,
    pub(crate) probed: Probed,
}

const RETRIES: u32 = 2;

impl Prober {
    /// One connection, one hello offering `version` with `suites`.
    pub(crate) async fn probe(
        &self,
        target: &Target,
        address: SocketAddr,
        version: TlsVersion,
        suites: &[u16],
        want_chain: bool,
    ) -> Probed {
        let mut attempt = 0;
        loop {
            let probed = self
                .probe_once(target, address, version, suites, want_chain)
                .await;
            let limited = matches!(&probed.answer, Err(e) if e.is_rate_limit());
            match self.retry_pause {
                Some(pause) if limited && attempt < RETRIES => {
                    tokio::time::sleep(pause * 2u32.pow(attempt)).await;
                    attempt += 1;
                }
                _ => return probed,
            }
        }
    }

    async fn probe_once(
        &self,
        target: &Target,
        address: SocketAddr,
        version: TlsVersion,
        suites: &[u16],
        want_chain: bool,
    ) -> Probed {
        let opened = self.connector.open(target, address).await;
        let answer = match opened.result {
            Ok(mut ready) => Ok(exchange(
                &mut ready.stream,
                std::mem::take(&mut ready.leftover),
                version,
                suites,
                Some(&target.host),
                want_chain,
                ready.deadline,
            )
            .await),
            Err(e) => Err(e),
        };
        Probed {
            findings: opened.findings,
            answer,
        }
    }

    /// Whether `version` is accepted: the most common suites first, the rest only when the
    /// refusal may have meant "no shared suite". Below TLS 1.3 the chain is kept.
    pub(crate) async fn version(
        &self,
        target: &Target,
        address: SocketAddr,
        version: TlsVersion,
    ) -> VersionProbe {
        let bundles = bundles(version);
        let want_chain = version <= TlsVersion::Tls12;
        let mut findings = None;
        let mut next = 0;
        loop {
            let probed = self
                .probe(target, address, version, &bundles[next], want_chain)
                .await;
            findings = findings.or(probed.findings);
            next += 1;
            let no_shared_suite = matches!(
                probed.answer,
                Ok(Answer::Rejected {
                    try_other_suites: true,
                    ..
                })
            );
            if !no_shared_suite || next == bundles.len() {
                return VersionProbe {
                    version,
                    probed: Probed {
                        findings,
                        answer: probed.answer,
                    },
                };
            }
        }
    }
}
