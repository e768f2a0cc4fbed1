//! Tolerant deserializers for the type drift between exports: an error code
//! that is an integer in Graph but a string in Log Analytics, booleans as
//! `TRUE`, nested objects sent as JSON text inside a string column.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeOwned, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

/// A nested value given either as JSON (`{"errorCode": 0}`) or as JSON text
/// inside a string (`"{\"errorCode\":0}"`, Log Analytics). An empty string
/// or `null` reads as absent.
#[derive(Debug, Clone, PartialEq)]
pub struct Embedded<T>(pub Option<T>);

impl<T> Default for Embedded<T> {
    fn default() -> Self {
        Embedded(None)
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Embedded<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: DeserializeOwned> Visitor<'de> for V<T> {
            type Value = Embedded<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object, an array, or JSON text in a string")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                if s.trim().is_empty() {
                    return Ok(Embedded(None));
                }
                serde_json::from_str(s)
                    .map(|v| Embedded(Some(v)))
                    .map_err(|e| E::custom(format!("JSON text inside the string is invalid: {e}")))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Embedded(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Embedded(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(|v| Embedded(Some(v)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                T::deserialize(de::value::SeqAccessDeserializer::new(seq)).map(|v| Embedded(Some(v)))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// Text, borrowed from the record where it has no escapes. serde's own
/// `Option<Cow<str>>` always copies (`#[serde(borrow)]` reaches a `Cow`
/// only when it is the field's whole type), which cost an allocation per
/// field per sign-in. Same errors as that type: anything but a string or
/// null is "invalid type ..., expected a string".
pub fn borrowed_text<'de: 'a, 'a, D: Deserializer<'de>>(d: D) -> Result<Option<Cow<'a, str>>, D::Error> {
    struct Str;
    impl<'de> Visitor<'de> for Str {
        type Value = Cow<'de, str>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a string")
        }
        fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
            Ok(Cow::Borrowed(s))
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
            Ok(Cow::Owned(s.to_owned()))
        }
        fn visit_string<E: de::Error>(self, s: String) -> Result<Self::Value, E> {
            Ok(Cow::Owned(s))
        }
    }
    struct Opt;
    impl<'de> Visitor<'de> for Opt {
        type Value = Option<Cow<'de, str>>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("option")
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_string(Str).map(Some)
        }
    }
    d.deserialize_option(Opt)
}

/// An integer given as a number or as decimal text. Empty text is absent.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LenientU32(pub Option<u32>);

impl<'de> Deserialize<'de> for LenientU32 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = LenientU32;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a non-negative integer or its decimal text")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                u32::try_from(v)
                    .map(|v| LenientU32(Some(v)))
                    .map_err(|_| E::custom(format!("{v} is out of range")))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                u32::try_from(v)
                    .map(|v| LenientU32(Some(v)))
                    .map_err(|_| E::custom(format!("{v} is out of range")))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                if v.fract() == 0.0 && (0.0..=u32::MAX as f64).contains(&v) {
                    Ok(LenientU32(Some(v as u32)))
                } else {
                    Err(E::custom(format!("{v} is not an error code")))
                }
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                parse_u32_text(s).map(LenientU32).map_err(E::custom)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(LenientU32(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(LenientU32(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// Decimal text to u32; blank is `None`.
pub fn parse_u32_text(s: &str) -> Result<Option<u32>, String> {
    let t = s.trim();
    if t.is_empty() {
        return Ok(None);
    }
    t.parse::<u32>().map(Some).map_err(|_| format!("`{t}` is not a non-negative integer"))
}

/// A boolean given as JSON `true`/`false` or as text (`TRUE`, `False`,
/// `Yes`, `No`, `1`, `0`). Blank is absent.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LenientBool(pub Option<bool>);

impl<'de> Deserialize<'de> for LenientBool {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = LenientBool;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a boolean or its text")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(LenientBool(Some(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                match v {
                    0 => Ok(LenientBool(Some(false))),
                    1 => Ok(LenientBool(Some(true))),
                    _ => Err(E::custom(format!("{v} is not a boolean"))),
                }
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                parse_bool_text(s).map(LenientBool).map_err(E::custom)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(LenientBool(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(LenientBool(None))
            }
        }
        d.deserialize_any(V)
    }
}

pub fn parse_bool_text(s: &str) -> Result<Option<bool>, String> {
    // Compared without lower-casing into a new string: two cells a row.
    let t = s.trim();
    let is = |words: [&str; 3]| words.iter().any(|w| t.eq_ignore_ascii_case(w));
    if t.is_empty() {
        Ok(None)
    } else if is(["true", "yes", "1"]) {
        Ok(Some(true))
    } else if is(["false", "no", "0"]) {
        Ok(Some(false))
    } else {
        Err(format!("`{}` is not a boolean", t.to_ascii_lowercase()))
    }
}

/// A string that some exports send as a number (`autonomousSystemNumber`,
/// ids in hand-made data). Numbers are kept as their decimal text. Read as
/// [`BorrowedText`] is, then owned: for nested types, which must own their
/// fields.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Text(pub Option<String>);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        BorrowedText::deserialize(d).map(|t| Text(t.0.map(Cow::into_owned)))
    }
}

/// [`Text`] borrowed from the record where it is a string without escapes
/// (ids: three or four per sign-in, each an allocation when copied).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BorrowedText<'a>(pub Option<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for BorrowedText<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = BorrowedText<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(BorrowedText(Some(Cow::Borrowed(s))))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(BorrowedText(Some(Cow::Owned(s.to_owned()))))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Self::Value, E> {
                Ok(BorrowedText(Some(Cow::Owned(s))))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(BorrowedText(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(BorrowedText(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(BorrowedText(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(BorrowedText(None))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize, Debug, PartialEq)]
    struct S {
        #[serde(rename = "errorCode", default)]
        code: LenientU32,
    }

    #[test]
    fn embedded_accepts_object_text_and_blank() {
        let a: Embedded<S> = serde_json::from_str(r#"{"errorCode": 50140}"#).unwrap();
        let b: Embedded<S> = serde_json::from_str(r#""{\"errorCode\":\"50140\"}""#).unwrap();
        let c: Embedded<S> = serde_json::from_str(r#""""#).unwrap();
        assert_eq!(a.0.unwrap().code.0, Some(50140));
        assert_eq!(b.0.unwrap().code.0, Some(50140));
        assert_eq!(c.0, None);
        assert!(serde_json::from_str::<Embedded<S>>(r#""{oops""#).is_err());
    }

    #[test]
    fn lenient_scalars() {
        assert_eq!(serde_json::from_str::<LenientU32>("\"0\"").unwrap().0, Some(0));
        assert_eq!(serde_json::from_str::<LenientU32>("500213").unwrap().0, Some(500213));
        assert!(serde_json::from_str::<LenientU32>("-1").is_err());
        assert_eq!(serde_json::from_str::<LenientBool>("\"TRUE\"").unwrap().0, Some(true));
        assert_eq!(serde_json::from_str::<LenientBool>("false").unwrap().0, Some(false));
        assert!(serde_json::from_str::<LenientBool>("\"maybe\"").is_err());
    }
}
