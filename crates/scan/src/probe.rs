//! One probe: a hand-built ClientHello offering one version and a bundle of suites, and the
//! server's answer read up to its ServerHello (and certificate chain) or alert.

mod exchange;
mod judge;
mod offer;
mod prober;

pub(crate) use judge::Answer;
pub(crate) use offer::bundles;
pub(crate) use prober::{Prober, VersionProbe};
