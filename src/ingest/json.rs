//! One JSON record (a span the framer found) to canonical sign-ins.
//!
//! The record's own keys say what it is: a diagnostic-settings record
//! (`category` + `properties`), a Log Analytics row (`TimeGenerated`,
//! `Type`), a Log Analytics query response (`tables`), an audit event
//! (`activityDisplayName`), or else a Graph signIn.

use serde_json::{Map, Value};

use crate::model::EventType;

use super::normalize::{normalize, read_later_if_needed, Context, FieldError};
use super::raw::{read_values_later, LeaveAs, RawSignIn};
use super::{BadRow, InputFormat, Parsed};

/// Why a well-formed record is not a sign-in we read.
pub const IGNORED_AUDIT: &str = "audit events (read them with `xtenant timeline`)";

pub fn parse_record(
    bytes: &[u8],
    ctx: &Context,
    format: InputFormat,
) -> Result<Parsed<crate::model::SignIn>, FieldError> {
    // The Conditional Access lists are read only for a cross-tenant
    // sign-in, the only kind they are read for ([`super::raw::Later`]); a
    // record that fails so is read again as it always was, which decides.
    if let Ok(text) = crate::model::text::utf8(bytes) {
        // A record whose text names two tenants is most likely cross-tenant:
        // its lists will be read, and reading them as they come scans them
        // once, not twice (kept as raw JSON, then read). Same result either
        // way: a sign-in that is not cross-tenant never looks at its lists,
        // and a record this parse refuses goes the lazy way below.
        if names_two_tenants(bytes) {
            if let Ok(raw) = serde_json::from_str::<RawSignIn>(text) {
                return classify(raw, ctx, format);
            }
        }
        let lazily = read_values_later(LeaveAs::Json, || serde_json::from_str::<RawSignIn>(text));
        if let Ok(mut raw) = lazily {
            if read_later_if_needed(&mut raw) {
                return classify(raw, ctx, format);
            }
        }
    }
    parse_as_it_comes(bytes, ctx, format)
}

/// Whether the record's text gives `homeTenantId` and `resourceTenantId`
/// (or, as Log Analytics and the Graph PowerShell SDK spell them,
/// `HomeTenantId` and `ResourceTenantId`) different values: their first 36
/// bytes, a GUID's length, compared without case. A guess from the text,
/// for speed only: the keys found may sit in a nested object or in a
/// string.
fn names_two_tenants(bytes: &[u8]) -> bool {
    use memchr::memmem::Finder;
    use std::sync::LazyLock;
    static KEYS: LazyLock<[[Finder<'static>; 2]; 2]> = LazyLock::new(|| {
        [
            [Finder::new(br#""homeTenantId""#), Finder::new(br#""HomeTenantId""#)],
            [Finder::new(br#""resourceTenantId""#), Finder::new(br#""ResourceTenantId""#)],
        ]
    });
    // A key's value and where the key ends, searched from `from` on and
    // then, if not there, in the whole text.
    let value = |spellings: &[Finder<'_>], from: usize| {
        spellings.iter().find_map(|key| {
            let at = match key.find(&bytes[from..]) {
                Some(at) => from + at,
                None => key.find(bytes)?,
            };
            let end = at + key.needle().len();
            let text =
                bytes[end..].trim_ascii_start().strip_prefix(b":")?.trim_ascii_start().strip_prefix(b"\"")?;
            Some((text.get(..36)?, end))
        })
    };
    let [home, resource] = &*KEYS;
    // Exports write the resource's tenant after the home tenant: searched
    // from there first, the text is scanned once, not twice (2% of reading
    // a Graph record, which names them two thirds of the way in).
    let Some((home, end)) = value(home, 0) else { return false };
    match value(resource, end) {
        Some((resource, _)) => !home.eq_ignore_ascii_case(resource),
        None => false,
    }
}

/// [`parse_record`] with every value read as it comes: the rule, and the
/// refusals.
fn parse_as_it_comes(
    bytes: &[u8],
    ctx: &Context,
    format: InputFormat,
) -> Result<Parsed<crate::model::SignIn>, FieldError> {
    // Path tracking costs on every record: parse plainly, and only for a
    // record that fails parse again to name the field. One UTF-8 check of
    // the whole record is cheaper than serde_json's check of every key and
    // string; invalid UTF-8 falls through to the slice parser's error.
    let plain = match crate::model::text::utf8(bytes) {
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
                    Ok(Parsed::One(s)) => out.push(s),
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
    normalize(&raw, ctx).map(Parsed::One)
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const A: &str = "11111111-1111-1111-1111-111111111111";
    const B: &str = "22222222-2222-2222-2222-222222222222";

    /// Conditional Access lists as exports write them, and as they should not be.
    const LISTS: [&str; 11] = [
        "",
        r#""appliedConditionalAccessPolicies": null,"#,
        r#""appliedConditionalAccessPolicies": [],"#,
        r#""appliedConditionalAccessPolicies": [{"id": "d1424ae2-8688-4df4-a2e4-d04e2f64a601", "displayName": "MFA \"guests\"", "enforcedGrantControls": ["Mfa"], "result": "success", "includeRulesSatisfied": [{"a": [1, {"b": null}]}]}],"#,
        r#""appliedConditionalAccessPolicies": [{"result": "failure", "enforcedGrantControls": ["Mfa", "CompliantDevice"]}, {"result": "notApplied", "enforcedGrantControls": ["Block"]}],"#,
        r#""AppliedConditionalAccessPolicies": "[{\"result\": \"success\", \"enforcedGrantControls\": [\"RequireCompliantDevice\"]}]","#,
        r#""ConditionalAccessPolicies": [{"result": "success", "enforcedGrantControls": ["Mfa"], "authenticationStrength": {"authenticationStrengthId": "00000000-0000-0000-0000-000000000002"}}],"#,
        r#""appliedConditionalAccessPolicies": [5],"#,
        r#""appliedConditionalAccessPolicies": [{"authenticationStrength": "strong"}],"#,
        r#""appliedConditionalAccessPolicies": "not JSON","#,
        r#""appliedConditionalAccessPolicies": {"result": "success"},"#,
    ];

    /// Text that misleads [`names_two_tenants`]: tenant keys in a nested
    /// object, and in a string.
    const DECOYS: [&str; 4] = [
        "",
        r#""location": {"homeTenantId": "33333333-3333-3333-3333-333333333333"},"#,
        r#""location": {"homeTenantId": "11111111-1111-1111-1111-111111111111", "resourceTenantId": "22222222-2222-2222-2222-222222222222"},"#,
        r#""userDisplayName": "\"homeTenantId\": \"x\"","#,
    ];

    fn record(home: &str, resource: &str, list: &str, envelope: bool) -> String {
        decoyed(home, resource, list, envelope, "")
    }

    /// [`record`] with `decoy` (keys and values) first in the sign-in.
    fn decoyed(home: &str, resource: &str, list: &str, envelope: bool, decoy: &str) -> String {
        let body = format!(
            r#"{{{decoy}"id": "r1", "createdDateTime": "2026-11-01T10:00:00Z", "status": {{"errorCode": 0}}, {list}
                "userId": "u1", "appId": "app", "homeTenantId": "{home}", "resourceTenantId": "{resource}"}}"#
        );
        if envelope {
            format!(r#"{{"category": "SignInLogs", "tenantId": "{A}", "properties": {body}}}"#)
        } else {
            body
        }
    }

    fn parsed(r: Result<Parsed<crate::model::SignIn>, FieldError>) -> Result<String, FieldError> {
        r.map(|p| format!("{p:?}"))
    }

    proptest! {
        /// Leaving the Conditional Access lists for later gives what reading
        /// them as they come gives, to the refusal's field and words; but a
        /// sign-in that is not cross-tenant is no longer refused for a list
        /// that is JSON but not a list of policies: nothing reads it.
        #[test]
        fn lists_read_later_give_what_lists_read_as_they_come_give(
            tenants in prop::sample::select(vec![(A, B), (B, A), (A, A), (A, ""), ("", B), ("not a tenant", B), (A, " 22222222-2222-2222-2222-222222222222 ")]),
            list in prop::sample::select(LISTS.to_vec()),
            envelope in any::<bool>(),
            decoy in prop::sample::select(DECOYS.to_vec()),
            pascal in any::<bool>(),
        ) {
            let mut text = decoyed(tenants.0, tenants.1, list, envelope, decoy);
            if pascal {
                // As Log Analytics and the Graph PowerShell SDK spell them.
                text = text.replace(r#""homeTenantId""#, r#""HomeTenantId""#).replace(r#""resourceTenantId""#, r#""ResourceTenantId""#);
            }
            let format = if envelope { InputFormat::Diagnostic } else { InputFormat::Graph };
            let later = parsed(parse_record(text.as_bytes(), &Context::default(), format));
            let as_it_comes = parsed(parse_as_it_comes(text.as_bytes(), &Context::default(), format));
            let guid = |t: &str| crate::model::Guid::parse(t.trim());
            let cross_tenant = matches!((guid(tenants.0), guid(tenants.1)), (Some(h), Some(r)) if h != r);
            match &as_it_comes {
                // Not read: the record stands, or is refused for another fault.
                Err(e) if e.field.contains("onditionalAccessPolicies") && !cross_tenant => {
                    prop_assert!(later.as_ref().err().is_none_or(|l| !l.field.contains("onditionalAccessPolicies")), "{later:?}");
                }
                _ => prop_assert_eq!(&later, &as_it_comes, "{}", text),
            }
        }
    }

    #[test]
    fn two_tenants_are_named_by_their_keys_values_whatever_the_spacing_or_case() {
        let named = |text: &str| names_two_tenants(text.as_bytes());
        assert!(named(&format!(r#"{{"homeTenantId":"{A}","resourceTenantId":"{B}"}}"#)));
        assert!(named(&format!("{{\n  \"resourceTenantId\" :\t\"{B}\",\n  \"homeTenantId\": \"{A}\"\n}}")));
        assert!(!named(&format!(r#"{{"homeTenantId":"{A}","resourceTenantId":"{}"}}"#, A.to_uppercase())));
        assert!(named(&format!(r#"{{"HomeTenantId":"{A}","ResourceTenantId":"{B}"}}"#)));
        assert!(!named(&format!(r#"{{"HomeTenantId":"{A}","ResourceTenantId":"{A}"}}"#)));
        assert!(!named(&format!(r#"{{"homeTenantId":"{A}"}}"#)));
        assert!(!named(r#"{"homeTenantId":"short","resourceTenantId":"#));
        assert!(!named(r#"{"homeTenantId":null,"resourceTenantId":"x"}"#));
    }

    #[test]
    fn a_list_that_is_not_json_is_still_refused_whoever_signed_in() {
        for (home, resource) in [(A, A), (A, B)] {
            let text = record(
                home,
                resource,
                r#""appliedConditionalAccessPolicies": [{"result": "success"},,],"#,
                false,
            );
            let e = parse_record(text.as_bytes(), &Context::default(), InputFormat::Graph).unwrap_err();
            assert_eq!(e.field, "(JSON syntax)", "{e:?}");
        }
    }

    #[test]
    fn a_cross_tenant_sign_in_with_a_list_of_the_wrong_type_is_refused_naming_it() {
        let text = record(A, B, r#""appliedConditionalAccessPolicies": [5],"#, true);
        let e = parse_record(text.as_bytes(), &Context::default(), InputFormat::Diagnostic).unwrap_err();
        assert_eq!(e.field, "properties.appliedConditionalAccessPolicies[0]", "{e:?}");
        let own = record(A, A, r#""appliedConditionalAccessPolicies": [5],"#, true);
        assert!(parse_record(own.as_bytes(), &Context::default(), InputFormat::Diagnostic).is_ok());
    }
}
