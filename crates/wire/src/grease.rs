//! GREASE (RFC 8701): reserved values clients sprinkle into lists to keep servers tolerant.

/// Whether `value` is one of the sixteen GREASE values 0x0a0a, 0x1a1a, ..., 0xfafa that
/// RFC 8701 reserves for cipher suites, extensions, groups and versions.
pub fn is_grease(value: u16) -> bool {
    value & 0x0f0f == 0x0a0a && value >> 8 == value & 0xff
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_sixteen_grease_values() {
        let all: Vec<u16> = (0..=u16::MAX).filter(|&v| is_grease(v)).collect();
        assert_eq!(all.len(), 16);
        assert_eq!(all.first(), Some(&0x0a0a));
        assert_eq!(all.last(), Some(&0xfafa));
        assert!(!is_grease(0x0a1a));
        assert!(!is_grease(0x1301));
    }
}
