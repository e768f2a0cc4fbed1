//! Text from logs is written by other tenants and can be of any length:
//! what a message quotes of it is clipped, so that one 50 MB line cannot
//! become a 50 MB error message.

use std::borrow::Cow;

/// A JSON value as a table cell: null is empty, a string bare, the rest as
/// JSON text.
pub fn json_cell(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `bytes` as text if they are UTF-8, as [`std::str::from_utf8`] decides;
/// its error (where the bad bytes start) when not. Every record is checked
/// whole before it is parsed: the standard library's check, a word at a
/// time, was 6% of the CPU an NDJSON file took, `simdutf8`'s (the SIMD the
/// CPU has, told at run time) is 4%, most of it the bytes' first read from
/// memory. The standard library is asked only for an error's position.
pub fn utf8(bytes: &[u8]) -> Result<&str, std::str::Utf8Error> {
    match simdutf8::basic::from_utf8(bytes) {
        Ok(text) => Ok(text),
        Err(_) => std::str::from_utf8(bytes),
    }
}

/// How much of a value a message quotes.
pub const QUOTED_BYTES: usize = 200;

/// `s` without leading and trailing white space, as [`str::trim`] gives
/// it. Most cells and ids have none: when both ends are visible ASCII they
/// are returned as they are without decoding a character (`str::trim`
/// checks each end against Unicode's white space, several times a cell).
pub fn trim(s: &str) -> &str {
    match (s.as_bytes().first(), s.as_bytes().last()) {
        (Some(f), Some(l)) if f.is_ascii_graphic() && l.is_ascii_graphic() => s,
        _ => s.trim(),
    }
}

/// `s` cut to at most `max` bytes (at a character boundary), saying how
/// much was left out.
pub fn clip(s: &str, max: usize) -> Cow<'_, str> {
    if s.len() <= max {
        return Cow::Borrowed(s);
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}... ({} more bytes)", &s[..end], s.len() - end))
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn trim_agrees_with_the_standard_trim(s in "[ \t\r\n\u{85}\u{a0}\u{2028}\u{3000}a~!é]{0,6}|\\PC{0,4}") {
            proptest::prop_assert_eq!(trim(&s), s.trim());
        }
    }

    #[test]
    fn long_text_is_cut_at_a_character_boundary_and_says_so() {
        assert_eq!(clip("short", 10), "short");
        assert_eq!(clip("ééé", 3), "é... (4 more bytes)");
        assert!(clip(&"x".repeat(1 << 20), QUOTED_BYTES).len() < QUOTED_BYTES + 40);
    }
}
