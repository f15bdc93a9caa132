//! Hello extensions: the raw form kept in wire order, and decoders for the bodies mailtls
//! reads.

use crate::reader::Reader;

/// One extension of a hello, as sent: its type and its undecoded body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extension {
    /// The extension type (IANA "ExtensionType Values"); see the associated constants.
    pub kind: u16,
    /// The extension body without its type and length.
    pub data: Vec<u8>,
}

impl Extension {
    /// server_name (SNI), RFC 6066.
    pub const SERVER_NAME: u16 = 0;
    /// supported_groups (formerly elliptic_curves), RFC 8422 / RFC 8446.
    pub const SUPPORTED_GROUPS: u16 = 10;
    /// ec_point_formats, RFC 8422.
    pub const EC_POINT_FORMATS: u16 = 11;
    /// signature_algorithms, RFC 5246 / RFC 8446.
    pub const SIGNATURE_ALGORITHMS: u16 = 13;
    /// application_layer_protocol_negotiation (ALPN), RFC 7301.
    pub const ALPN: u16 = 16;
    /// padding, RFC 7685.
    pub const PADDING: u16 = 21;
    /// supported_versions, RFC 8446.
    pub const SUPPORTED_VERSIONS: u16 = 43;
    /// psk_key_exchange_modes, RFC 8446.
    pub const PSK_KEY_EXCHANGE_MODES: u16 = 45;
    /// key_share, RFC 8446.
    pub const KEY_SHARE: u16 = 51;
}

/// The host_name of a server_name body; `None` when the list names no host.
pub(crate) fn decode_server_name(data: &[u8]) -> Result<Option<&[u8]>, String> {
    let mut outer = Reader::new(data);
    let mut list = Reader::new(outer.vec16("server_name_list")?);
    outer.finish("server_name_list")?;
    let mut host = None;
    while !list.is_empty() {
        let name_type = list.u8("server_name name_type")?;
        let name = list.vec16("server_name name")?;
        // RFC 6066 allows one name per type; host_name is type 0.
        if name_type == 0 && host.is_none() {
            host = Some(name);
        }
    }
    Ok(host)
}

/// The protocol names of an ALPN body, in the client's order of preference.
pub(crate) fn decode_alpn(data: &[u8]) -> Result<Vec<&[u8]>, String> {
    let mut outer = Reader::new(data);
    let mut list = Reader::new(outer.vec16("protocol_name_list")?);
    outer.finish("protocol_name_list")?;
    let mut names = Vec::new();
    while !list.is_empty() {
        names.push(list.vec8("protocol_name")?);
    }
    Ok(names)
}

/// A body that is one list of 16-bit values behind a two-byte length
/// (supported_groups, signature_algorithms).
pub(crate) fn decode_u16_list(data: &[u8], what: &str) -> Result<Vec<u16>, String> {
    let mut outer = Reader::new(data);
    let list = Reader::new(outer.vec16(what)?);
    outer.finish(what)?;
    list.u16_list(what)
}

/// A body that is one list of bytes behind a one-byte length (ec_point_formats).
pub(crate) fn decode_u8_list(data: &[u8], what: &str) -> Result<Vec<u8>, String> {
    let mut outer = Reader::new(data);
    let list = outer.vec8(what)?;
    outer.finish(what)?;
    Ok(list.to_vec())
}

/// A ClientHello's supported_versions body: 16-bit versions behind a one-byte length.
pub(crate) fn decode_client_versions(data: &[u8]) -> Result<Vec<u16>, String> {
    let mut outer = Reader::new(data);
    let list = Reader::new(outer.vec8("supported_versions")?);
    outer.finish("supported_versions")?;
    list.u16_list("supported_versions")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_name_picks_the_host_name() {
        let body = [0, 9, 1, 0, 1, b'x', 0, 0, 2, b'a', b'b'];
        assert_eq!(decode_server_name(&body), Ok(Some(&b"ab"[..])));
        assert_eq!(decode_server_name(&[0, 0]), Ok(None));
        assert!(decode_server_name(&[0, 5, 0, 0, 9, b'a']).is_err());
        assert!(decode_server_name(&[0, 0, 0]).is_err());
    }

    #[test]
    fn alpn_lists_names_in_order() {
        let body = [0, 6, 2, b'h', b'2', 2, b'h', b'3'];
        assert_eq!(decode_alpn(&body), Ok(vec![&b"h2"[..], &b"h3"[..]]));
        assert!(decode_alpn(&[0, 3, 5, b'h', b'2']).is_err());
    }

    #[test]
    fn lists_must_fill_their_bodies() {
        assert_eq!(
            decode_u16_list(&[0, 4, 0, 0x1d, 0, 0x17], "g"),
            Ok(vec![0x1d, 0x17])
        );
        assert!(decode_u16_list(&[0, 3, 0, 0x1d, 0], "g").is_err());
        assert!(decode_u16_list(&[0, 2, 0, 0x1d, 0], "g").is_err());
        assert_eq!(decode_u8_list(&[1, 0], "f"), Ok(vec![0]));
        assert!(decode_u8_list(&[2, 0], "f").is_err());
        assert_eq!(decode_client_versions(&[2, 3, 4]), Ok(vec![0x0304]));
        assert!(decode_client_versions(&[3, 3, 4, 3]).is_err());
    }
}
