//! Every policy, which listener uses which, and the exception register: what the gateway asks.

use std::collections::HashMap;
use std::net::IpAddr;

use time::OffsetDateTime;
use wire::TlsVersion;

use crate::decision::{Decision, Rollout, Rule, Verdict, Why};
use crate::exception::ExceptionRegister;
use crate::schedule::{Mode, Phase, Policy};

/// What a listener asks of its clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerPolicy {
    /// The `[policy.NAME]` it applies.
    pub policy: String,
    /// The legacy opt-in endpoint: only clients covered by a live exception get through.
    pub opt_in: bool,
}

/// What is known about a client when it is decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Client<'a> {
    /// Its address (from the PROXY protocol header where the listener takes one).
    pub address: IpAddr,
    /// The login, once the client has sent credentials.
    pub login: Option<&'a str>,
    /// The JA4 fingerprint of its ClientHello.
    pub ja4: Option<&'a str>,
    /// The highest version its ClientHello offered.
    pub offered_max: Option<TlsVersion>,
    /// The version negotiated, once the handshake is done.
    pub negotiated: Option<TlsVersion>,
}

impl<'a> Client<'a> {
    /// A client known by its address only.
    pub fn new(address: IpAddr) -> Client<'a> {
        Client {
            address,
            login: None,
            ja4: None,
            offered_max: None,
            negotiated: None,
        }
    }

    /// The version judged against the floor: the negotiated one, else (before the handshake
    /// completes) the highest offered. `None` means no client TLS at all, which is below every
    /// floor.
    pub fn tls_version(&self) -> Option<TlsVersion> {
        self.negotiated.or(self.offered_max)
    }
}

/// The policies, the listeners' choice of them and the exceptions: built once from the config
/// (and again on reload), then shared read-only by every session.
#[derive(Debug, Default)]
pub struct PolicySet {
    policies: HashMap<String, Policy>,
    listeners: HashMap<String, ListenerPolicy>,
    exceptions: ExceptionRegister,
}

/// A listener that names a policy the set does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("listener {listener} names policy {policy}, which is not defined")]
pub struct MissingPolicy {
    /// The listener.
    pub listener: String,
    /// The policy it names.
    pub policy: String,
}

impl PolicySet {
    /// A set of `policies`, `listeners` (by listener name; listeners not named have no policy)
    /// and `exceptions`. Every listener must name one of `policies`.
    pub fn new(
        policies: Vec<Policy>,
        listeners: HashMap<String, ListenerPolicy>,
        exceptions: ExceptionRegister,
    ) -> Result<PolicySet, MissingPolicy> {
        let policies: HashMap<String, Policy> = policies
            .into_iter()
            .map(|p| (p.name().to_owned(), p))
            .collect();
        if let Some((listener, l)) = listeners
            .iter()
            .find(|(_, l)| !policies.contains_key(&l.policy))
        {
            return Err(MissingPolicy {
                listener: listener.clone(),
                policy: l.policy.clone(),
            });
        }
        Ok(PolicySet {
            policies,
            listeners,
            exceptions,
        })
    }

    /// The policy named `name`.
    pub fn policy(&self, name: &str) -> Option<&Policy> {
        self.policies.get(name)
    }

    /// What the listener named `name` applies; `None` for a listener without a policy.
    pub fn listener(&self, name: &str) -> Option<&ListenerPolicy> {
        self.listeners.get(name)
    }

    /// Names of the listeners that apply a policy, sorted.
    pub fn listeners_with_policy(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.listeners.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    /// The exception register.
    pub fn exceptions(&self) -> &ExceptionRegister {
        &self.exceptions
    }

    /// Decides for `client` arriving on the listener named `listener`, at `at`.
    ///
    /// 1. A listener without a policy allows everyone (`no-policy`).
    /// 2. A live exception covering the client allows it (`exception:ID`).
    /// 3. An opt-in listener treats everyone else per its mode: monitor allows, warn warns,
    ///    enforce refuses (`POLICY/opt-in`), whatever the window.
    /// 4. A client meeting the floor is allowed (`POLICY/floor`).
    /// 5. Below the floor, the mode and the window decide (`POLICY/before-start|window|ended`):
    ///    monitor allows; warn warns; enforce warns before `start`, refuses the client's cohort
    ///    inside the window (warning the others) and refuses everyone from `end`.
    pub fn decide<'p>(
        &'p self,
        listener: &str,
        client: &Client<'_>,
        at: OffsetDateTime,
    ) -> Decision<'p> {
        let Some((listener, policy)) = self
            .listeners
            .get(listener)
            .and_then(|l| Some((l, self.policies.get(&l.policy)?)))
        else {
            return Decision {
                verdict: Verdict::Allow,
                rule: Rule::NoPolicy,
                exception: None,
                expired_exception: None,
                message: None,
                why: Why::NoPolicy,
            };
        };
        let name = policy.name();
        let floor = policy.min_tls();
        let version = client.tls_version();
        let meets_floor = version.is_some_and(|v| v >= floor);
        if meets_floor && !listener.opt_in {
            return Decision {
                verdict: Verdict::Allow,
                rule: Rule::Floor { policy: name },
                exception: None,
                expired_exception: None,
                message: None,
                why: Why::MeetsFloor {
                    version: version.unwrap_or(floor),
                    floor,
                },
            };
        }

        let found = self
            .exceptions
            .lookup(client.address, client.login, client.ja4, at);
        if let Some(exception) = found.live {
            return Decision {
                verdict: Verdict::Allow,
                rule: Rule::Exception(exception.id),
                exception: Some(exception.id),
                expired_exception: None,
                message: None,
                why: Why::Excepted {
                    expires: exception.expires,
                },
            };
        }
        let expired_exception = found.expired.map(|e| e.id);
        let mode = policy.mode();
        let strongest = match mode {
            Mode::Monitor => Verdict::Allow,
            Mode::Warn => Verdict::Warn,
            Mode::Enforce => Verdict::Refuse,
        };
        let decided = |verdict: Verdict, rule: Rule<'p>, why: Why| Decision {
            verdict,
            rule,
            exception: None,
            expired_exception,
            message: (verdict != Verdict::Allow).then_some(policy.message()),
            why,
        };
        if listener.opt_in {
            return decided(
                strongest,
                Rule::OptIn { policy: name },
                Why::NotOptedIn { mode },
            );
        }

        let window = policy.window();
        let phase = window.phase(at);
        let mut rollout = None;
        let verdict = match (mode, phase) {
            (Mode::Enforce, Phase::BeforeStart) => Verdict::Warn,
            (Mode::Enforce, Phase::Window) => {
                let share = window.refused_share(at);
                let refused = policy.cohort().place(client.login, client.address) < share;
                rollout = Some(Rollout {
                    refused_ppm: ((u128::from(share) * 1_000_000) >> 64) as u32,
                    in_refused_cohort: refused,
                });
                if refused {
                    Verdict::Refuse
                } else {
                    Verdict::Warn
                }
            }
            _ => strongest,
        };
        decided(
            verdict,
            Rule::Schedule {
                policy: name,
                phase,
            },
            Why::BelowFloor {
                version,
                floor,
                mode,
                rollout,
            },
        )
    }
}
