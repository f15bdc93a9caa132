//! Owners, devices and notes an admin attaches to clients, kept beside the inventory.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::ClientSummary;

/// Longest owner, device or note kept, in bytes.
pub const MAX_ANNOTATION_BYTES: usize = 1024;

/// What an annotation is about. Each field of a client's annotation is that of its most
/// specific subject setting it: its id, else its login, else its address, else the narrowest
/// network holding the address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnnotationSubject {
    /// One client, by the id `mailtls clients` shows (`c17`).
    Client(i64),
    /// Every client that logged in as this user.
    Login(String),
    /// Every client at this address.
    Address(IpAddr),
    /// Every client in this network.
    Network(IpNet),
}

impl AnnotationSubject {
    /// Reads a subject as `mailtls clients annotate` takes it: `c17` is a client id, then an
    /// address, a network (`192.0.2.0/24`), and anything else is a login.
    pub fn parse(text: &str) -> AnnotationSubject {
        if let Some(id) = text
            .strip_prefix('c')
            .filter(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|digits| digits.parse().ok())
        {
            return AnnotationSubject::Client(id);
        }
        if let Ok(address) = text.parse() {
            return AnnotationSubject::Address(address);
        }
        if let Ok(network) = text.parse::<IpNet>() {
            return AnnotationSubject::Network(network.trunc());
        }
        AnnotationSubject::Login(text.to_string())
    }

    pub(crate) fn kind(&self) -> &'static str {
        match self {
            AnnotationSubject::Client(_) => "client",
            AnnotationSubject::Login(_) => "login",
            AnnotationSubject::Address(_) => "address",
            AnnotationSubject::Network(_) => "network",
        }
    }

    pub(crate) fn key(&self) -> String {
        match self {
            AnnotationSubject::Client(id) => id.to_string(),
            AnnotationSubject::Login(login) => login.clone(),
            AnnotationSubject::Address(address) => address.to_string(),
            AnnotationSubject::Network(network) => network.to_string(),
        }
    }

    pub(crate) fn from_stored(kind: &str, key: &str) -> Option<AnnotationSubject> {
        Some(match kind {
            "client" => AnnotationSubject::Client(key.parse().ok()?),
            "login" => AnnotationSubject::Login(key.to_string()),
            "address" => AnnotationSubject::Address(key.parse().ok()?),
            "network" => AnnotationSubject::Network(key.parse().ok()?),
            _ => return None,
        })
    }
}

impl fmt::Display for AnnotationSubject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AnnotationSubject::Client(id) => write!(f, "client c{id}"),
            AnnotationSubject::Login(login) => write!(f, "login {login:?}"),
            AnnotationSubject::Address(address) => write!(f, "address {address}"),
            AnnotationSubject::Network(network) => write!(f, "network {network}"),
        }
    }
}

/// Who owns a client and what it is. When annotating, a field left `None` keeps its old value
/// and one given empty (or only spaces) clears it on that subject, so the client shows what a
/// wider subject (its network, say) sets, if any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Annotation {
    /// The person or team responsible.
    pub owner: Option<String>,
    /// What the device is ("3rd floor scanner").
    pub device: Option<String>,
    /// Anything else.
    pub note: Option<String>,
}

/// Annotations looked up by subject, so giving each of N clients its annotation costs N
/// lookups rather than N times the number of annotations (networks, usually few, are scanned).
pub(crate) struct AnnotationIndex<'a> {
    exact: HashMap<(&'static str, String), &'a Annotation>,
    networks: Vec<(IpNet, &'a Annotation)>,
}

impl<'a> AnnotationIndex<'a> {
    /// Indexes `annotations`, oldest first: of two on one subject the later wins, as it was
    /// written later.
    pub(crate) fn new(annotations: &'a [(AnnotationSubject, Annotation)]) -> AnnotationIndex<'a> {
        let mut index = AnnotationIndex {
            exact: HashMap::new(),
            networks: Vec::new(),
        };
        for (subject, annotation) in annotations {
            match subject {
                AnnotationSubject::Network(network) => index.networks.push((*network, annotation)),
                other => {
                    index.exact.insert((other.kind(), other.key()), annotation);
                }
            }
        }
        index
    }

    /// The annotation of `client`, field by field: its owner, device and note each come from
    /// the most specific subject naming it that sets that field: its id, else its login, else
    /// its address, else the networks holding the address, narrowest first. So a note on one
    /// client keeps the owner its network gives it. `None` when no field is set.
    pub(crate) fn annotation_for(&self, client: &ClientSummary) -> Option<Annotation> {
        let identity = &client.identity;
        let exact = |kind: &'static str, key: String| self.exact.get(&(kind, key)).copied();
        let mut networks: Vec<&(IpNet, &Annotation)> = self
            .networks
            .iter()
            .filter(|(network, _)| network.contains(&identity.address))
            .collect();
        // Narrowest first; among equally narrow ones (one network written twice) the latest.
        networks.reverse();
        networks.sort_by_key(|(network, _)| std::cmp::Reverse(network.prefix_len()));
        let most_specific_first: Vec<&Annotation> = [
            exact("client", client.id.to_string()),
            identity
                .login
                .as_ref()
                .and_then(|login| exact("login", login.clone())),
            exact("address", identity.address.to_string()),
        ]
        .into_iter()
        .flatten()
        .chain(networks.into_iter().map(|(_, annotation)| *annotation))
        .collect();
        let field = |get: fn(&Annotation) -> &Option<String>| {
            most_specific_first
                .iter()
                .find_map(|annotation| get(annotation).clone())
        };
        let merged = Annotation {
            owner: field(|a| &a.owner),
            device: field(|a| &a.device),
            note: field(|a| &a.note),
        };
        (merged != Annotation::default()).then_some(merged)
    }
}

/// How `annotate` writes each field (owner, device, note): whether it changes, and to what.
/// A field not given keeps its value; one given blank is stored as none (cleared).
pub(crate) fn field_writes(annotation: &Annotation) -> [(bool, Option<&str>); 3] {
    [&annotation.owner, &annotation.device, &annotation.note].map(|field| match field {
        None => (false, None),
        Some(text) if text.trim().is_empty() => (true, None),
        Some(text) => (true, Some(text.as_str())),
    })
}

/// Refuses an annotation with a field longer than [`MAX_ANNOTATION_BYTES`].
pub(crate) fn check_lengths(annotation: &Annotation) -> Result<(), crate::StoreError> {
    for (field, value) in [
        ("owner", &annotation.owner),
        ("device", &annotation.device),
        ("note", &annotation.note),
    ] {
        if let Some(bytes) = value
            .as_ref()
            .map(String::len)
            .filter(|&bytes| bytes > MAX_ANNOTATION_BYTES)
        {
            // Counted in bytes, as stored: a letter outside ASCII takes 2 to 4, so a text
            // within a form's 1024 characters can still be too long.
            return Err(crate::StoreError::AnnotationRefused(format!(
                "the {field} is {bytes} bytes, longer than {MAX_ANNOTATION_BYTES} bytes \
                 (a letter outside ASCII takes 2 to 4 bytes); shorten it"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;
    use crate::{ClientIdentity, Source, Verdict};

    fn client(id: i64, address: &str, login: &str) -> ClientSummary {
        ClientSummary {
            id,
            identity: ClientIdentity {
                address: address.parse().unwrap(),
                login: Some(login.into()),
                ja4: None,
                reported_software: None,
            },
            source: Source::Gateway,
            first_seen: UNIX_EPOCH,
            last_seen: UNIX_EPOCH,
            sessions: 1,
            highest_offered: None,
            negotiated: vec![],
            attributes: Default::default(),
            verdict: Verdict::Unknown,
            annotation: None,
        }
    }

    fn annotation(owner: Option<&str>, device: Option<&str>, note: Option<&str>) -> Annotation {
        Annotation {
            owner: owner.map(Into::into),
            device: device.map(Into::into),
            note: note.map(Into::into),
        }
    }

    #[test]
    fn each_field_comes_from_the_most_specific_subject_setting_it() {
        let annotations = vec![
            (
                AnnotationSubject::parse("127.0.0.0/8"),
                annotation(Some("Facilities"), Some("any device"), Some("wide")),
            ),
            (
                AnnotationSubject::parse("127.0.0.0/24"),
                annotation(None, Some("lab"), None),
            ),
            (
                AnnotationSubject::parse("c7"),
                annotation(None, None, Some("printer")),
            ),
            (
                AnnotationSubject::parse("alice"),
                annotation(Some("Alice"), None, None),
            ),
        ];
        let index = AnnotationIndex::new(&annotations);
        assert_eq!(
            index.annotation_for(&client(7, "127.0.0.1", "bob")),
            Some(annotation(Some("Facilities"), Some("lab"), Some("printer")))
        );
        assert_eq!(
            index.annotation_for(&client(8, "127.0.1.1", "alice")),
            Some(annotation(Some("Alice"), Some("any device"), Some("wide")))
        );
        assert_eq!(index.annotation_for(&client(9, "192.0.2.1", "eve")), None);
    }

    #[test]
    fn subjects_parse_as_documented() {
        assert_eq!(
            AnnotationSubject::parse("c17"),
            AnnotationSubject::Client(17)
        );
        assert_eq!(
            AnnotationSubject::parse("192.0.2.7"),
            AnnotationSubject::Address("192.0.2.7".parse().unwrap())
        );
        assert_eq!(
            AnnotationSubject::parse("192.0.2.9/24"),
            AnnotationSubject::Network("192.0.2.0/24".parse().unwrap())
        );
        assert_eq!(
            AnnotationSubject::parse("2001:db8::/32"),
            AnnotationSubject::Network("2001:db8::/32".parse().unwrap())
        );
        for login in ["alice", "c", "c1x", "alice@example.org"] {
            assert_eq!(
                AnnotationSubject::parse(login),
                AnnotationSubject::Login(login.into())
            );
        }
    }
}
