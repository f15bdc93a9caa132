//! A policy: the TLS floor being phased in, how hard it is enforced, and when.

use std::fmt;

use time::OffsetDateTime;
use wire::TlsVersion;

use crate::cohort::CohortKey;

/// How hard a policy acts on clients below its floor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Record only: every client is allowed, none is told.
    Monitor,
    /// Allow, and tell legacy clients the message.
    Warn,
    /// Warn before the window, refuse a growing cohort inside it, refuse everyone from its end.
    Enforce,
}

impl Mode {
    /// The config spelling: "monitor", "warn", "enforce".
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Monitor => "monitor",
            Mode::Warn => "warn",
            Mode::Enforce => "enforce",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where an instant lies against a policy's window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Before `start`.
    BeforeStart,
    /// From `start` (inclusive) to `end` (exclusive): the rollout.
    Window,
    /// From `end` on.
    Ended,
}

impl Phase {
    /// The label in rule ids: "before-start", "window", "ended".
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::BeforeStart => "before-start",
            Phase::Window => "window",
            Phase::Ended => "ended",
        }
    }
}

/// The rollout window: `start` inclusive, `end` exclusive, `start < end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    start: OffsetDateTime,
    end: OffsetDateTime,
}

/// A window whose end is not after its start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("end ({end}) is not after start ({start})")]
pub struct WindowError {
    /// The start given.
    pub start: OffsetDateTime,
    /// The end given.
    pub end: OffsetDateTime,
}

impl Window {
    /// The window from `start` to `end`; `end` must be later.
    pub fn new(start: OffsetDateTime, end: OffsetDateTime) -> Result<Window, WindowError> {
        if end > start {
            Ok(Window { start, end })
        } else {
            Err(WindowError { start, end })
        }
    }

    /// First instant of the rollout.
    pub fn start(&self) -> OffsetDateTime {
        self.start
    }

    /// First instant at which everyone below the floor is refused (in enforce mode).
    pub fn end(&self) -> OffsetDateTime {
        self.end
    }

    /// Where `at` lies.
    pub fn phase(&self, at: OffsetDateTime) -> Phase {
        if at < self.start {
            Phase::BeforeStart
        } else if at < self.end {
            Phase::Window
        } else {
            Phase::Ended
        }
    }

    /// The share of clients refused at `at` as a 64-bit fraction (`share / 2^64`): 0 at
    /// `start`, growing linearly, saturating just below 1 at `end`.
    pub(crate) fn refused_share(&self, at: OffsetDateTime) -> u64 {
        let mut total = (self.end - self.start).whole_nanoseconds().unsigned_abs();
        let mut elapsed = (at - self.start)
            .whole_nanoseconds()
            .clamp(0, total as i128)
            .unsigned_abs();
        // Windows longer than ~292 years lose precision rather than overflow `elapsed << 64`.
        let spare = total.leading_zeros().min(64);
        total >>= 64 - spare;
        elapsed >>= 64 - spare;
        let share = (elapsed << 64) / total.max(1);
        u64::try_from(share).unwrap_or(u64::MAX)
    }
}

/// One `[policy.NAME]`: a floor, a mode, a window, the message clients see.
#[derive(Debug, Clone)]
pub struct Policy {
    name: String,
    min_tls: TlsVersion,
    mode: Mode,
    window: Window,
    message: String,
    cohort: CohortKey,
}

impl Policy {
    /// A policy named `name` (the `NAME` of `[policy.NAME]`, part of its rule ids).
    /// `message` is shown to warned and refused clients: the caller keeps it to one line.
    pub fn new(
        name: impl Into<String>,
        min_tls: TlsVersion,
        mode: Mode,
        window: Window,
        message: impl Into<String>,
        cohort: CohortKey,
    ) -> Policy {
        Policy {
            name: name.into(),
            min_tls,
            mode,
            window,
            message: message.into(),
            cohort,
        }
    }

    /// The policy's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The floor being phased in.
    pub fn min_tls(&self) -> TlsVersion {
        self.min_tls
    }

    /// How hard it acts.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// When.
    pub fn window(&self) -> Window {
        self.window
    }

    /// What warned and refused clients are told.
    pub fn message(&self) -> &str {
        &self.message
    }

    pub(crate) fn cohort(&self) -> &CohortKey {
        &self.cohort
    }
}
