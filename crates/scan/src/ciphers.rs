//! Cipher suite enumeration by removal: offer a bundle, note the suite the server picks,
//! take it out, and repeat until the server refuses. One connection per accepted suite plus
//! one per bundle, instead of one per known suite.

use std::net::SocketAddr;

use wire::TlsVersion;

use crate::probe::{bundles, Answer, Prober};
use crate::report::{suite_label, CipherList};
use crate::target::Target;

/// The suites `version` accepts at `address`, in the server's order where it has one.
pub(crate) async fn enumerate(
    prober: &Prober,
    target: &Target,
    address: SocketAddr,
    version: TlsVersion,
) -> CipherList {
    let mut accepted = Vec::new();
    let mut incomplete = None;
    let all = bundles(version);
    for bundle in all {
        let (found, stopped) =
            remove_until_refused(prober, target, address, version, bundle.to_vec()).await;
        accepted.extend(found);
        if stopped.is_some() {
            incomplete = stopped;
            break;
        }
    }
    let server_preference = if accepted.len() >= 2 && incomplete.is_none() {
        // Offer the first two found in reverse: a server that keeps its own order still
        // picks the first.
        let reversed = [accepted[1], accepted[0]];
        let probed = prober
            .probe(target, address, version, &reversed, false)
            .await;
        match probed.answer {
            Ok(Answer::Accepted { suite, .. }) => Some(suite == accepted[0]),
            _ => None,
        }
    } else {
        None
    };
    // Suites found in different bundles were never compared: order them all at once.
    if server_preference == Some(true) && all.len() > 1 && accepted.len() > 2 {
        let (ordered, stopped) =
            remove_until_refused(prober, target, address, version, accepted.clone()).await;
        if stopped.is_none() && ordered.len() == accepted.len() {
            accepted = ordered;
        }
    }
    CipherList {
        suites: accepted.iter().map(|&c| suite_label(c)).collect(),
        codes: accepted,
        server_preference,
        incomplete,
    }
}

/// Removal over one bundle: the suites picked, in order, and why it stopped early if so.
async fn remove_until_refused(
    prober: &Prober,
    target: &Target,
    address: SocketAddr,
    version: TlsVersion,
    mut offer: Vec<u16>,
) -> (Vec<u16>, Option<String>) {
    let mut picked = Vec::new();
    while !offer.is_empty() {
        let probed = prober.probe(target, address, version, &offer, false).await;
        match probed.answer {
            Ok(Answer::Accepted { suite, .. }) => {
                picked.push(suite);
                offer.retain(|&s| s != suite);
            }
            Ok(Answer::Rejected { .. }) => break,
            Ok(Answer::Unknown { reason }) => return (picked, Some(reason)),
            Err(e) => return (picked, Some(e.to_string())),
        }
    }
    (picked, None)
}
