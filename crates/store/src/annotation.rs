//! Owners, devices and notes an admin attaches to clients, kept beside the inventory.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::ClientSummary;

/// Longest owner, device or note kept, in bytes.
pub const MAX_ANNOTATION_BYTES: usize = 1024;

/// What an annotation is about. A client's annotation is that of its most specific subject:
/// its id, else its login, else its address, else the narrowest network holding the address.
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

/// Who owns a client and what it is. A field left `None` when annotating keeps its old value.
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

    /// The annotation of the most specific subject that names `client`: its id, else its
    /// login, else its address, else the narrowest network holding the address (the latest
    /// written among equally narrow ones).
    pub(crate) fn annotation_for(&self, client: &ClientSummary) -> Option<Annotation> {
        let identity = &client.identity;
        let exact = |kind: &'static str, key: String| self.exact.get(&(kind, key)).copied();
        exact("client", client.id.to_string())
            .or_else(|| {
                identity
                    .login
                    .as_ref()
                    .and_then(|login| exact("login", login.clone()))
            })
            .or_else(|| exact("address", identity.address.to_string()))
            .or_else(|| {
                self.networks
                    .iter()
                    .filter(|(network, _)| network.contains(&identity.address))
                    .max_by_key(|(network, _)| network.prefix_len())
                    .map(|(_, annotation)| *annotation)
            })
            .cloned()
    }
}

/// Refuses an annotation with a field longer than [`MAX_ANNOTATION_BYTES`].
pub(crate) fn check_lengths(annotation: &Annotation) -> Result<(), crate::StoreError> {
    for (field, value) in [
        ("owner", &annotation.owner),
        ("device", &annotation.device),
        ("note", &annotation.note),
    ] {
        if value
            .as_ref()
            .is_some_and(|v| v.len() > MAX_ANNOTATION_BYTES)
        {
            return Err(crate::StoreError::AnnotationRefused(format!(
                "the {field} is longer than {MAX_ANNOTATION_BYTES} bytes"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
