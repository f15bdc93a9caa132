//! Owners, devices and notes an admin attaches to clients, kept beside the inventory.

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

    /// How well this subject names `client`: `None` when it does not, else a rank where
    /// higher is more specific.
    fn specificity(&self, client: &ClientSummary) -> Option<u16> {
        let identity = &client.identity;
        match self {
            AnnotationSubject::Client(id) => (*id == client.id).then_some(1000),
            AnnotationSubject::Login(login) => {
                (identity.login.as_ref() == Some(login)).then_some(900)
            }
            AnnotationSubject::Address(address) => (*address == identity.address).then_some(800),
            AnnotationSubject::Network(network) => network
                .contains(&identity.address)
                .then_some(u16::from(network.prefix_len())),
        }
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

/// The annotation of the most specific subject in `annotations` that names `client`.
pub(crate) fn annotation_for(
    client: &ClientSummary,
    annotations: &[(AnnotationSubject, Annotation)],
) -> Option<Annotation> {
    annotations
        .iter()
        .filter_map(|(subject, annotation)| Some((subject.specificity(client)?, annotation)))
        .max_by_key(|(rank, _)| *rank)
        .map(|(_, annotation)| annotation.clone())
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
