//! One probe: a hand-built ClientHello offering one version and a bundle of suites, and the
//! server's answer read up to its ServerHello (and certificate chain) or alert.

mod exchange;
mod judge;
mod offer;
mod prober;

pub use judge::{judge, judge_end, Answer};
pub use offer::{bundles, suites_for};
pub(crate) use prober::{Prober, VersionProbe};
