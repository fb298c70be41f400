//! Marketplace image identifiers: the SHA-1 of the image written as 27 base-64 digits (spec §5.7).
//!
//! The 160-bit SHA-1, read as an unsigned integer, is written most significant digit first with the
//! alphabet `A–Z a–z 0–9 - _` (values 0–63), left-padded with `A` to 27 digits (162 bits).

use super::MarketplaceError;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
/// Number of digits of an identifier.
pub const IDENTIFIER_LEN: usize = 27;

/// True for a string of 27 characters from `A–Z a–z 0–9 - _` (`^[A-Za-z0-9_-]{27}$`).
pub fn is_valid_identifier(s: &str) -> bool {
    s.len() == IDENTIFIER_LEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A 160-bit unsigned number: bits 128–159 in `hi`, bits 0–127 in `lo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct U160 {
    hi: u64,
    lo: u128,
}

impl U160 {
    /// `self * 2^bits + digit` (bits ≤ 6); the caller bounds the result to 160 bits.
    fn push(self, bits: u32, digit: u8) -> U160 {
        U160 {
            hi: (self.hi << bits) | (self.lo >> (128 - bits)) as u64,
            lo: (self.lo << bits) | u128::from(digit),
        }
    }
}

/// The number written by a hexadecimal SHA-1 value; leading zeros beyond 40 digits are accepted
/// (the server compares numerically), a value of 2^160 or more is not.
pub(crate) fn sha1_hex_to_number(hex: &str) -> Result<U160, MarketplaceError> {
    let bad = |reason: &str| MarketplaceError::BadIdentifier {
        value: hex.to_owned(),
        reason: reason.to_owned(),
    };
    let trimmed = hex.trim();
    if trimmed.is_empty() {
        return Err(bad("empty SHA-1 value"));
    }
    let significant = trimmed.trim_start_matches('0');
    let mut n = U160 { hi: 0, lo: 0 };
    for (count, c) in significant.bytes().enumerate() {
        let digit = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => return Err(bad("a SHA-1 value has only hexadecimal digits")),
        };
        if count == 40 {
            return Err(bad(
                "a SHA-1 value has at most 40 significant hexadecimal digits",
            ));
        }
        n = n.push(4, digit);
    }
    Ok(n)
}

/// The identifier of an image whose SHA-1 is `hex` (e.g. `c319bb…eeff` → `MMZu9WvwKIro-rtBQfDk4PsKO7_`).
pub fn sha1_hex_to_identifier(hex: &str) -> Result<String, MarketplaceError> {
    let U160 { mut hi, mut lo } = sha1_hex_to_number(hex)?;
    let mut digits = [0u8; IDENTIFIER_LEN];
    for slot in digits.iter_mut().rev() {
        *slot = ALPHABET[(lo & 63) as usize];
        lo = (lo >> 6) | (u128::from(hi & 63) << 122);
        hi >>= 6;
    }
    Ok(digits.iter().map(|&d| char::from(d)).collect())
}

/// The SHA-1 (40 lower-case hex digits, zero-padded) encoded by an identifier.
pub fn identifier_to_sha1_hex(id: &str) -> Result<String, MarketplaceError> {
    let U160 { hi, lo } = identifier_to_number(id)?;
    Ok(format!("{hi:08x}{lo:032x}"))
}

/// The number encoded by an identifier.
pub(crate) fn identifier_to_number(id: &str) -> Result<U160, MarketplaceError> {
    if !is_valid_identifier(id) {
        return Err(MarketplaceError::BadIdentifier {
            value: id.to_owned(),
            reason: "an identifier has 27 characters from A-Z a-z 0-9 - _".to_owned(),
        });
    }
    let mut n = U160 { hi: 0, lo: 0 };
    for c in id.bytes() {
        let digit = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            _ => 63,
        };
        n = n.push(6, digit);
    }
    if n.hi >> 32 != 0 {
        return Err(MarketplaceError::BadIdentifier {
            value: id.to_owned(),
            reason: "the value exceeds 160 bits (the first character must be one of A to P)"
                .to_owned(),
        });
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The four vectors of spec §5.7.
    const VECTORS: [(&str, &str); 4] = [
        (
            "c319bbd5afc0a22ba3eaed0507c39383ec28eeff",
            "MMZu9WvwKIro-rtBQfDk4PsKO7_",
        ),
        (
            "1104f3e30c030f8b93f220b04131032dddf51f21",
            "BEE8-MMAw-Lk_IgsEExAy3d9R8h",
        ),
        (
            "972a1a11f19934401291cc99117ec614933374ce",
            "JcqGhHxmTRAEpHMmRF-xhSTM3TO",
        ),
        (
            "dcaec27afc48e5d68a500e5a159310ba72b50292",
            "Nyuwnr8SOXWilAOWhWTELpytQKS",
        ),
    ];

    #[test]
    fn spec_vectors_encode() {
        for (hex, id) in VECTORS {
            assert_eq!(sha1_hex_to_identifier(hex).unwrap(), id, "{hex}");
            assert_eq!(sha1_hex_to_identifier(&hex.to_uppercase()).unwrap(), id);
        }
    }

    #[test]
    fn spec_vectors_decode() {
        for (hex, id) in VECTORS {
            assert_eq!(identifier_to_sha1_hex(id).unwrap(), hex, "{id}");
        }
    }

    #[test]
    fn leading_zeros_are_numeric() {
        // valid-minimal-leading-zero-sha1.xml carries this 41-digit value.
        assert_eq!(
            sha1_hex_to_identifier("0c319bbd5afc0a22ba3eaed0507c39383ec28eeff").unwrap(),
            "MMZu9WvwKIro-rtBQfDk4PsKO7_"
        );
        assert_eq!(sha1_hex_to_identifier("0").unwrap(), "A".repeat(27));
        assert_eq!(
            identifier_to_sha1_hex(&"A".repeat(27)).unwrap(),
            "0".repeat(40)
        );
        assert_eq!(
            sha1_hex_to_identifier("1").unwrap(),
            format!("{}B", "A".repeat(26))
        );
        assert_eq!(
            identifier_to_sha1_hex("AAAAAAAAAAAAAAAAAAAAAAAAAAB").unwrap(),
            format!("{}1", "0".repeat(39))
        );
    }

    #[test]
    fn extremes() {
        let max = "f".repeat(40);
        let id = sha1_hex_to_identifier(&max).unwrap();
        assert_eq!(id, format!("P{}", "_".repeat(26)));
        assert_eq!(identifier_to_sha1_hex(&id).unwrap(), max);
    }

    #[test]
    fn rejects_bad_input() {
        assert!(sha1_hex_to_identifier("").is_err());
        assert!(sha1_hex_to_identifier("XYZ").is_err());
        assert!(sha1_hex_to_identifier(&"1".repeat(41)).is_err());
        assert!(identifier_to_sha1_hex("MMZu9WvwKIro-rtBQ").is_err());
        assert!(identifier_to_sha1_hex("MMZu9WvwKIro-rtBQfDk4PsKO7!").is_err());
        // The first digit holds bits 156-161: 'Q' = 16 sets bit 160, above 2^160 - 1.
        assert!(identifier_to_sha1_hex("QAAAAAAAAAAAAAAAAAAAAAAAAAA").is_err());
        assert!(identifier_to_sha1_hex("_AAAAAAAAAAAAAAAAAAAAAAAAAA").is_err());
    }

    #[test]
    fn validity_regex() {
        assert!(is_valid_identifier("MMZu9WvwKIro-rtBQfDk4PsKO7_"));
        assert!(!is_valid_identifier("MMZu9WvwKIro-rtBQfDk4PsKO7"));
        assert!(!is_valid_identifier("MMZu9WvwKIro-rtBQfDk4PsKO7__"));
        assert!(!is_valid_identifier("MMZu9WvwKIro+rtBQfDk4PsKO7_"));
        assert!(!is_valid_identifier("MMZu9WvwKIro-rtBQfDk4PsKO7é"));
    }
}
