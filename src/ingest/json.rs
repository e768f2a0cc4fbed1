//! One JSON record (a span the framer found) to canonical sign-ins.
//!
//! The record's own keys say what it is: a diagnostic-settings record
//! (`category` + `properties`), a Log Analytics row (`TimeGenerated`,
//! `Type`), a Log Analytics query response (`tables`), an audit event
//! (`activityDisplayName`), or else a Graph signIn.

use serde_json::{Map, Value};

use crate::model::EventType;

use super::normalize::{normalize, Context, FieldError};
use super::raw::RawSignIn;
use super::{BadRow, InputFormat, Parsed};

/// Why a well-formed record is not a sign-in we read.
pub const IGNORED_AUDIT: &str = "audit events (read them with `xtenant timeline`)";

pub fn parse_record(
    bytes: &[u8],
    ctx: &Context,
    format: InputFormat,
) -> Result<Parsed<crate::model::SignIn>, FieldError> {
    // Path tracking costs on every record: parse plainly, and only for a
    // record that fails parse again to name the field. One UTF-8 check of
    // the whole record is cheaper than serde_json's check of every key and
    // string; invalid UTF-8 falls through to the slice parser's error.
    let plain = match std::str::from_utf8(bytes) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(bytes),
    };
    let raw: RawSignIn = match plain {
        Ok(r) => r,
        Err(first) => {
            let mut de = serde_json::Deserializer::from_slice(bytes);
            let (field, message) = match serde_path_to_error::deserialize::<_, RawSignIn>(&mut de) {
                Err(e) => {
                    let path = e.path().to_string();
                    let inner = e.into_inner();
                    let field =
                        if inner.is_data() && path != "." { path } else { "(JSON syntax)".to_string() };
                    (field, inner.to_string())
                }
                Ok(_) => ("(JSON syntax)".to_string(), first.to_string()),
            };
            return Err(FieldError::new(field, message));
        }
    };
    classify(raw, ctx, format)
}

fn classify(
    raw: RawSignIn<'_>,
    ctx: &Context,
    format: InputFormat,
) -> Result<Parsed<crate::model::SignIn>, FieldError> {
    if raw.activity_display_name.is_some() {
        return Ok(Parsed::Ignored(IGNORED_AUDIT.into()));
    }
    if let Some(tables) = &raw.tables {
        let mut out = Vec::new();
        let mut ignored = Vec::new();
        let mut bad = Vec::new();
        for (t, table) in tables.iter().enumerate() {
            for (r, row) in table.rows.iter().enumerate() {
                let mut m = Map::new();
                for (c, v) in table.columns.iter().zip(row) {
                    if !v.is_null() {
                        m.insert(c.name.clone(), v.clone());
                    }
                }
                let obj = Value::Object(m);
                let parsed = RawSignIn::deserialize_value(&obj)
                    .map_err(|e| FieldError::new("", e))
                    .and_then(|raw| classify(raw, ctx, format));
                match parsed {
                    Ok(Parsed::One(s)) => out.push(*s),
                    Ok(Parsed::Ignored(reason)) => ignored.push(reason),
                    Ok(Parsed::Many(..)) => {}
                    Err(e) => bad.push(BadRow {
                        error: FieldError::new(
                            format!("tables[{t}].rows[{r}].{}", e.field).trim_end_matches('.'),
                            e.message,
                        ),
                        raw: Value::Array(row.clone()).to_string(),
                    }),
                }
            }
        }
        return Ok(Parsed::Many(out, ignored, bad));
    }
    let is_envelope = raw.properties.is_some();
    match format {
        InputFormat::Diagnostic if !is_envelope => {
            return Err(FieldError::new("properties", "missing: not a diagnostic-settings record"))
        }
        InputFormat::Graph | InputFormat::PortalJson if is_envelope => {
            return Err(FieldError::new("properties", "a diagnostic-settings record, not a Graph signIn"))
        }
        InputFormat::LogAnalyticsJson if raw.time_generated.is_none() => {
            return Err(FieldError::new("TimeGenerated", "missing: not a Log Analytics row"))
        }
        _ => {}
    }
    if is_envelope {
        let category = raw.category.as_deref().unwrap_or("");
        if category.eq_ignore_ascii_case("AuditLogs")
            || raw.properties.as_ref().is_some_and(|p| p.activity_display_name.is_some())
        {
            return Ok(Parsed::Ignored(IGNORED_AUDIT.into()));
        }
        if EventType::from_name(category).is_none() {
            return Ok(Parsed::Ignored(format!("diagnostic records of category `{category}`")));
        }
    }
    let body = raw.properties.as_deref().unwrap_or(&raw);
    if body.id.is_none() && body.created_date_time.is_none() && body.time_generated.is_none() {
        return Err(FieldError::new(
            "id",
            "not a sign-in record: it has none of id, createdDateTime, TimeGenerated",
        ));
    }
    normalize(&raw, ctx).map(|s| Parsed::One(Box::new(s)))
}

impl<'a> RawSignIn<'a> {
    /// Reads a row that another reader built as JSON (CSV rows, Log
    /// Analytics query rows).
    pub fn deserialize_value(v: &'a Value) -> Result<RawSignIn<'a>, String> {
        serde::Deserialize::deserialize(v).map_err(|e: serde_json::Error| e.to_string())
    }
}

/// CSV rows arrive already shaped; only the audit/sign-in split applies.
pub fn classify_csv(raw: RawSignIn<'_>, ctx: &Context) -> Result<Parsed<crate::model::SignIn>, FieldError> {
    classify(raw, ctx, InputFormat::Auto)
}
