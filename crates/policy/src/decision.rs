//! What the policy decided for one client, which rule decided it, and why.

use std::fmt;

use time::OffsetDateTime;
use wire::TlsVersion;

use crate::exception::ExceptionId;
use crate::schedule::{Mode, Phase};

/// What the gateway does with the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Go on, say nothing.
    Allow,
    /// Go on, and show the client the message.
    Warn,
    /// Refuse the login with the message.
    Refuse,
}

impl Verdict {
    /// "allow", "warn" or "refuse", as recorded.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Warn => "warn",
            Verdict::Refuse => "refuse",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The rule that decided; its [`Display`](fmt::Display) is the rule id recorded with the
/// session: `no-policy`, `POLICY/floor`, `POLICY/before-start`, `POLICY/window`,
/// `POLICY/ended`, `POLICY/opt-in`, `exception:ID`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule<'p> {
    /// The listener has no policy.
    NoPolicy,
    /// The client's TLS version meets the policy's floor.
    Floor {
        /// The policy's name.
        policy: &'p str,
    },
    /// The client is below the floor; the window's phase decided.
    Schedule {
        /// The policy's name.
        policy: &'p str,
        /// Where the decision's instant lies against the window.
        phase: Phase,
    },
    /// An opt-in listener, and no live exception covers the client.
    OptIn {
        /// The policy's name.
        policy: &'p str,
    },
    /// A live exception covers the client.
    Exception(ExceptionId),
}

impl fmt::Display for Rule<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::NoPolicy => f.write_str("no-policy"),
            Rule::Floor { policy } => write!(f, "{policy}/floor"),
            Rule::Schedule { policy, phase } => write!(f, "{policy}/{}", phase.as_str()),
            Rule::OptIn { policy } => write!(f, "{policy}/opt-in"),
            Rule::Exception(id) => write!(f, "exception:{id}"),
        }
    }
}

/// Where the rollout stood for this client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rollout {
    /// The share of clients refused at the decision's instant, in parts per million.
    pub refused_ppm: u32,
    /// Whether this client is in the refused share.
    pub in_refused_cohort: bool,
}

/// The facts behind a decision, for operators (the client sees only the message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// The listener has no policy.
    NoPolicy,
    /// The client's version meets the floor.
    MeetsFloor {
        /// The client's version.
        version: TlsVersion,
        /// The floor.
        floor: TlsVersion,
    },
    /// The client is below the floor (`version` is `None` without client TLS).
    BelowFloor {
        /// The client's version.
        version: Option<TlsVersion>,
        /// The floor.
        floor: TlsVersion,
        /// The policy's mode.
        mode: Mode,
        /// The rollout, inside the window in enforce mode.
        rollout: Option<Rollout>,
    },
    /// A live exception covers the client until `expires`.
    Excepted {
        /// When the exception stops matching.
        expires: OffsetDateTime,
    },
    /// An opt-in listener without a live exception for the client.
    NotOptedIn {
        /// The policy's mode.
        mode: Mode,
    },
}

/// The answer for one client at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision<'p> {
    /// Allow, warn or refuse.
    pub verdict: Verdict,
    /// The rule that decided (recorded as its id).
    pub rule: Rule<'p>,
    /// The live exception that matched, if one did (recorded with the session).
    pub exception: Option<ExceptionId>,
    /// An expired exception that would have covered the client, when no live one does.
    pub expired_exception: Option<ExceptionId>,
    /// The text for the client: the policy's message when warned or refused.
    pub message: Option<&'p str>,
    /// The facts behind it.
    pub why: Why,
}

impl fmt::Display for Why {
    /// One sentence for `policy explain` and the log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let version = |v: Option<TlsVersion>| v.map_or("no TLS", TlsVersion::as_str);
        match *self {
            Why::NoPolicy => f.write_str("the listener has no policy"),
            Why::MeetsFloor { version, floor } => {
                write!(f, "{version} meets the floor {floor}")
            }
            Why::BelowFloor {
                version: v,
                floor,
                mode,
                rollout,
            } => {
                write!(f, "{} is below the floor {floor}; mode {mode}", version(v))?;
                if let Some(r) = rollout {
                    write!(
                        f,
                        // Truncated, so a share short of everyone never reads as 100%.
                        "; {}.{:02}% of clients are refused now and this client is {}",
                        r.refused_ppm / 10_000,
                        r.refused_ppm % 10_000 / 100,
                        if r.in_refused_cohort {
                            "among them"
                        } else {
                            "not yet among them"
                        }
                    )?;
                }
                Ok(())
            }
            Why::Excepted { expires } => write!(
                f,
                "a live exception covers the client until {}",
                expires.date()
            ),
            Why::NotOptedIn { mode } => write!(
                f,
                "the listener is the legacy opt-in endpoint and no live exception covers the client; mode {mode}"
            ),
        }
    }
}
