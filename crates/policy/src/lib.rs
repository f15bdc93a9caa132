//! Who may use a legacy TLS version, and why: listener policies (a TLS floor phased in between
//! two dates, in monitor, warn or enforce mode, with a deterministic rollout cohort), the
//! exception register (each exception with an owner, a reason, a plan and an expiry), and the
//! [`Decision`] the gateway acts on.
//!
//! Sans-I/O: no sockets, no runtime, no clock. The instant a decision is made for comes in as
//! an argument, so every rule is tested over time with plain values.
//!
//! The gateway asks [`PolicySet::decide`] once per login attempt (the login known), and may ask
//! it before the client handshake completes (only the offered version known) to record what
//! would happen.

mod cohort;
mod decision;
mod exception;
mod governance;
mod schedule;
mod set;

pub use cohort::CohortKey;
pub use decision::{Decision, Rollout, Rule, Verdict, Why};
pub use exception::{Exception, ExceptionError, ExceptionId, ExceptionMatch, ExceptionRegister};
pub use governance::{DecidedClient, RegisterUse, RegisterWarning, WARNING_WINDOW};
pub use schedule::{Mode, Phase, Policy, Window, WindowError};
pub use set::{Client, ListenerPolicy, MissingPolicy, PolicySet};

#[cfg(test)]
mod tests;
