//! Digests of imported evidence: the store remembers them (`imported_evidence`), so importing
//! the same log, export or capture again adds nothing.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

/// Identifies one piece of imported evidence (the log lines or export row a record came
/// from): the first 16 bytes of a SHA-256 digest.
pub type EvidenceDigest = [u8; 16];

/// Makes digests of the evidence behind each imported record (log lines, export rows, a
/// capture's connections), tagged by the kind of evidence. Two identical records in one second (a device
/// retrying, logged by the same process with the same words) are told apart by how many came
/// before in that second, so reading the same input again gives the same digests and reading
/// it once keeps both.
#[derive(Debug)]
pub struct EvidenceDigester {
    tag: &'static str,
    second: u64,
    seen: HashMap<[u8; 16], u32>,
}

impl EvidenceDigester {
    /// A digester for evidence of kind `tag` (e.g. `dovecot`, `capture`).
    pub fn new(tag: &'static str) -> EvidenceDigester {
        EvidenceDigester {
            tag,
            second: u64::MAX,
            seen: HashMap::new(),
        }
    }

    /// The digest of `parts`, seen at `at`.
    pub fn digest<'a>(
        &mut self,
        at: SystemTime,
        parts: impl IntoIterator<Item = &'a str>,
    ) -> EvidenceDigest {
        let second = at
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_secs());
        // Also cleared when huge, at a point that depends on the input alone, so the digests
        // stay reproducible.
        if second != self.second || self.seen.len() >= 100_000 {
            self.second = second;
            self.seen.clear();
        }
        let mut hash = Sha256::new();
        hash.update(self.tag.as_bytes());
        for part in parts {
            // Length-prefixed, so ("ab", "c") and ("a", "bc") differ.
            hash.update((part.len() as u64).to_be_bytes());
            hash.update(part.as_bytes());
        }
        let base: [u8; 16] = first_16(&hash.clone().finalize());
        let occurrence = self.seen.entry(base).or_insert(0);
        hash.update(occurrence.to_be_bytes());
        *occurrence += 1;
        first_16(&hash.finalize())
    }
}

fn first_16(bytes: &[u8]) -> [u8; 16] {
    let mut out = [0; 16];
    out.copy_from_slice(&bytes[..16]);
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn identical_text_in_one_second_gets_distinct_reproducible_digests() {
        let at = UNIX_EPOCH + Duration::from_secs(1_796_276_610);
        let run = || {
            let mut digester = EvidenceDigester::new("test");
            [
                digester.digest(at, ["same line"]),
                digester.digest(at, ["same line"]),
                digester.digest(at + Duration::from_secs(1), ["same line"]),
            ]
        };
        let first = run();
        assert_ne!(first[0], first[1]);
        assert_eq!(first[0], first[2], "a new second counts from zero again");
        assert_eq!(first, run());
        let mut other = EvidenceDigester::new("test");
        assert_ne!(other.digest(at, ["same", " line"]), first[0]);
    }
}
