//! GUIDs (tenant, user, app and object ids) as 128-bit integers.
//!
//! Entra ids are GUIDs, case-insensitive in every export. Holding them as
//! `u128` makes them cheap to hash and compare, and formatting them back
//! always yields the canonical lowercase hyphenated form, whatever the input
//! casing was.

use std::fmt;
use std::str::FromStr;

#[derive(Copy, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Guid(pub u128);

impl Guid {
    /// Parses `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, optionally in braces,
    /// in any letter case. Returns `None` for anything else.
    pub fn parse(s: &str) -> Option<Guid> {
        hyphenated_value(unwrap_guid(s).as_bytes()).map(Guid)
    }

    /// Exactly `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` in any letter case
    /// (no braces or white space): a text equal to the canonical one
    /// ignoring ASCII case.
    pub fn parse_exact(s: &str) -> Option<Guid> {
        hyphenated_value(s.as_bytes()).map(Guid)
    }

    /// The first eight hex digits, for narrow table columns.
    pub fn short(&self) -> String {
        format!("{:08x}", (self.0 >> 96) as u32)
    }
}

impl Guid {
    /// The canonical text, without going through `fmt`: ids are formatted
    /// once per sign-in, so this is on the hot path.
    pub fn hyphenated(&self) -> Hyphenated {
        // Where each byte's two digits go, most significant byte first,
        // past the hyphens.
        const AT: [usize; 16] = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];
        let mut out = [b'-'; 36];
        // Both digits of a byte from one table (a digit at a time through
        // a table of sixteen was a quarter of a replayed row's formatting
        // of ids: the partner's is written three times a row).
        for (byte, at) in self.0.to_be_bytes().into_iter().zip(AT) {
            out[at..at + 2].copy_from_slice(&hex_pair(byte));
        }
        Hyphenated(out)
    }
}

/// `byte`'s two lower-case hex digits: ids and finding ids are written
/// a byte at a time through it.
pub fn hex_pair(byte: u8) -> [u8; 2] {
    HEX_PAIRS[usize::from(byte)]
}

/// Each byte's two lower-case hex digits.
static HEX_PAIRS: [[u8; 2]; 256] = {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut pairs = [[0u8; 2]; 256];
    let mut byte = 0;
    while byte < 256 {
        pairs[byte] = [HEX[byte >> 4], HEX[byte & 0x0F]];
        byte += 1;
    }
    pairs
};

/// A GUID's canonical text ([`Guid::hyphenated`]) held inline: 36 bytes
/// that are all ASCII hex digits and hyphens, which is why it reads as a
/// `str` without a fallible step at any use.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Hyphenated([u8; 36]);

impl Hyphenated {
    pub fn as_str(&self) -> &str {
        // SAFETY: a `Hyphenated` is made only by `Guid::hyphenated`, which
        // writes hex digits and hyphens, all ASCII: UTF-8. (Checking it
        // again cost some 60 instructions a call; every replayed row's
        // reason names its partner this way.)
        unsafe { std::str::from_utf8_unchecked(&self.0) }
    }

    pub fn as_bytes(&self) -> &[u8; 36] {
        &self.0
    }
}

impl fmt::Debug for Hyphenated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.hyphenated().as_str())
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Guid {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Guid::parse(s).ok_or_else(|| format!("`{s}` is not a GUID"))
    }
}

impl serde::Serialize for Guid {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Guid {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Guid::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("`{s}` is not a GUID")))
    }
}

/// `s` without surrounding white space and braces.
fn unwrap_guid(s: &str) -> &str {
    let s = super::text::trim(s);
    s.strip_prefix('{').and_then(|x| x.strip_suffix('}')).unwrap_or(s)
}

/// The GUID in `s` (`xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, optionally in
/// braces and white space, any letter case) without the wrapping, or `None`.
fn guid_text(s: &str) -> Option<&str> {
    let s = unwrap_guid(s);
    hyphenated_value(s.as_bytes()).map(|_| s)
}

/// The 128 bits of exactly `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` (any
/// letter case), or `None`: the one shape check, and the digits read in
/// the same pass. Ids are parsed a dozen times per sign-in (tenants, apps,
/// each policy), so the digits are read eight at a time, in one 64-bit
/// number each ([`hex8`]), inlined into each caller: 1.8% fewer
/// instructions reading the admin center's CSV and 1.0% the Graph NDJSON
/// than a digit at a time through a table. (As a call of its own it lost
/// to the table inlined: the thirty-second session did not keep it.)
#[inline(always)]
fn hyphenated_value(b: &[u8]) -> Option<u128> {
    let b: &[u8; 36] = b.try_into().ok()?;
    if b[8] != b'-' || b[13] != b'-' || b[18] != b'-' || b[23] != b'-' {
        return None;
    }
    // Four digits from `at` and four from `then`, as one number.
    let two_fours = |at: usize, then: usize| {
        u64::from_le_bytes([
            b[at],
            b[at + 1],
            b[at + 2],
            b[at + 3],
            b[then],
            b[then + 1],
            b[then + 2],
            b[then + 3],
        ])
    };
    let high = (u64::from(hex8(two_fours(0, 4))?) << 32) | u64::from(hex8(two_fours(9, 14))?);
    let low = (u64::from(hex8(two_fours(19, 24))?) << 32) | u64::from(hex8(two_fours(28, 32))?);
    Some((u128::from(high) << 64) | u128::from(low))
}

/// The value of eight hex digits (any letter case), the first in the
/// lowest byte of `x` (as `from_le_bytes` reads them), or `None` when a
/// byte is not one. Each byte is checked and turned into its digit in the
/// same 64-bit operations: no byte is 0x80 or more, so adding a constant
/// below 0x80 to each carries into no other byte.
#[inline(always)]
fn hex8(x: u64) -> Option<u32> {
    const EACH: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = EACH * 0x80;
    if x & HIGH != 0 {
        return None;
    }
    // A byte's high bit after adding 0x80 - n: the byte is at least n.
    let at_least = |v: u64, n: u8| v.wrapping_add(EACH * (0x80 - u64::from(n))) & HIGH;
    let digit = at_least(x, b'0') & !at_least(x, b'9' + 1);
    // Setting 0x20 makes `A`-`F` (and no byte but them) `a`-`f`.
    let lower = x | (EACH * 0x20);
    let letter = at_least(lower, b'a') & !at_least(lower, b'f' + 1);
    if digit | letter != HIGH {
        return None;
    }
    // `0`-`9` end in their value, `a`-`f` and `A`-`F` in it less nine.
    let nibbles = (x & (EACH * 0x0F)) + (letter >> 7) * 9;
    // Pairs of digits into bytes, bytes into 16-bit halves, halves into
    // the whole, the first digit the most significant each time.
    let v = ((nibbles << 4) | (nibbles >> 8)) & 0x00FF_00FF_00FF_00FF;
    let v = ((v << 8) | (v >> 16)) & 0x0000_FFFF_0000_FFFF;
    Some((((v << 16) | (v >> 32)) & 0xFFFF_FFFF) as u32)
}

/// Lower-cases an id when it is a GUID, so that the same object spelled in
/// two casings groups together; other ids are kept as they are. (No round
/// trip through [`Guid`]: ids are normalised several times per sign-in.)
pub fn normalize_id(s: &str) -> String {
    let mut out = String::new();
    push_normalized_id(&mut out, s);
    out
}

/// [`normalize_id`], appended to `out`.
pub fn push_normalized_id(out: &mut String, s: &str) {
    match guid_text(s) {
        Some(g) => {
            let start = out.len();
            out.push_str(g);
            out[start..].make_ascii_lowercase();
        }
        None => out.push_str(s.trim()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_one_pass_parse_agrees_with_shape_check_and_digit_fold() {
        // The shape checked position by position, the digits folded one by one.
        let reference = |s: &str| {
            let t = unwrap_guid(s);
            let shaped = t.len() == 36
                && t.bytes().enumerate().all(|(i, c)| match i {
                    8 | 13 | 18 | 23 => c == b'-',
                    _ => c.is_ascii_hexdigit(),
                });
            shaped.then(|| {
                Guid(
                    t.bytes()
                        .filter(|c| *c != b'-')
                        .fold(0, |v, c| (v << 4) | (c as char).to_digit(16).unwrap_or(0) as u128),
                )
            })
        };
        let base = b" {72F988BF-86f1-41AF-91ab-2D7CD011DB47} ";
        let alphabet = b"0123456789abcdefABCDEFgG-{} x\\\xc3\xa9";
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..20_000 {
            let mut s = base.to_vec();
            for _ in 0..(seed % 3) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let at = (seed % s.len() as u64) as usize;
                match seed % 4 {
                    0 => {
                        s.remove(at);
                    }
                    1 => s.insert(at, alphabet[(seed >> 8) as usize % alphabet.len()]),
                    _ => s[at] = alphabet[(seed >> 8) as usize % alphabet.len()],
                }
            }
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
            let text = String::from_utf8_lossy(&s);
            assert_eq!(Guid::parse(&text), reference(&text), "{text:?}");
            assert_eq!(guid_text(&text).is_some(), reference(&text).is_some(), "{text:?}");
        }
    }

    /// Every byte value at every place of an id, against the reading of
    /// one byte at a time: the eight-at-a-time reading ([`hex8`]) must take
    /// exactly the hex digits, in either case, and no byte next to them.
    #[test]
    fn any_byte_at_any_place_reads_as_the_digit_by_digit_reading_says() {
        let by_digit = |b: &[u8]| -> Option<u128> {
            let shaped = b.len() == 36
                && b.iter().enumerate().all(|(i, c)| match i {
                    8 | 13 | 18 | 23 => *c == b'-',
                    _ => c.is_ascii_hexdigit(),
                });
            shaped.then(|| {
                b.iter()
                    .filter(|c| **c != b'-')
                    .fold(0, |v, c| (v << 4) | (*c as char).to_digit(16).unwrap_or(0) as u128)
            })
        };
        for base in [
            *b"72F988BF-86f1-41AF-91ab-2D7CD011DB47",
            *b"00000000-0000-0000-0000-000000000000",
            *b"ffffffff-FFFF-ffff-FFFF-ffffffffffff",
        ] {
            for at in 0..36 {
                for byte in 0..=255u8 {
                    let mut id = base;
                    id[at] = byte;
                    assert_eq!(hyphenated_value(&id), by_digit(&id), "{:?}", String::from_utf8_lossy(&id));
                }
            }
        }
    }

    #[test]
    fn round_trips_in_canonical_form() {
        let g = Guid::parse("72F988BF-86F1-41AF-91AB-2D7CD011DB47").unwrap();
        assert_eq!(g.to_string(), "72f988bf-86f1-41af-91ab-2d7cd011db47");
        assert_eq!(Guid::parse("{72f988bf-86f1-41af-91ab-2d7cd011db47}"), Some(g));
        assert_eq!(g.short(), "72f988bf");
    }

    /// A GUID's fields as `format!` writes them, in hex.
    fn field_layout(v: u128) -> String {
        format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            (v >> 96) as u32,
            (v >> 80) as u16,
            (v >> 64) as u16,
            (v >> 48) as u16,
            v & 0xffff_ffff_ffff
        )
    }

    proptest::proptest! {
        #[test]
        fn hyphenated_is_the_field_layout_of_any_value(v in proptest::prelude::any::<u128>()) {
            let expected = field_layout(v);
            let text = Guid(v).hyphenated();
            proptest::prop_assert_eq!(text.as_str(), expected);
        }
    }

    #[test]
    fn hyphenated_matches_the_field_layout() {
        for v in [0u128, 1, u128::MAX, 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210] {
            let expected = field_layout(v);
            assert_eq!(Guid(v).to_string(), expected);
            assert_eq!(Guid::parse(&expected), Some(Guid(v)));
            assert_eq!(normalize_id(&format!(" {{{}}} ", expected.to_uppercase())), expected);
        }
    }

    #[test]
    fn rejects_non_guids() {
        for s in ["", "AllUsers", "72f988bf86f141af91ab2d7cd011db47", "72f988bf-86f1-41af-91ab-2d7cd011db4g"]
        {
            assert_eq!(Guid::parse(s), None, "{s}");
        }
    }

    #[test]
    fn numeric_order_is_string_order() {
        let a = Guid::parse("0000000a-0000-0000-0000-000000000000").unwrap();
        let b = Guid::parse("a0000000-0000-0000-0000-000000000000").unwrap();
        assert!(a < b && a.to_string() < b.to_string());
    }
}
