//! From the loose [`RawSignIn`] to the canonical [`SignIn`]: one place for
//! every rule about which field wins, how enums are spelled and what counts
//! as evidence of MFA or device claims.

use std::borrow::Cow;

use crate::model::signin::squash;
use crate::model::text::trim;
use crate::model::{
    AccessType, CaStatus, Clause, Controls, Device, EventType, Evidence, Guid, SignIn, Text, Texts, UserType,
    MAX_TEXT_BYTES,
};

use super::dates::{ambiguity_hint, parse_time, DateOrder};
use super::raw::RawSignIn;

/// What the container around a record says about it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Context {
    pub date_order: DateOrder,
    /// Known from outside the record: the portal download's file kind.
    pub event_type: Option<EventType>,
}

/// A field that is missing or malformed.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError { field: field.into(), message: message.into() }
    }
}

/// The field each of a sign-in's texts comes from (the Graph name).
fn text_field(t: Text) -> &'static str {
    match t {
        Text::Id => "id",
        Text::UserId => "userId",
        Text::UserPrincipalName => "userPrincipalName",
        Text::HomeTenantName => "homeTenantName",
        Text::AppId => "appId",
        Text::AppName => "appDisplayName",
        Text::ResourceId => "resourceId",
        Text::ResourceName => "resourceDisplayName",
        Text::TokenIssuerType => "tokenIssuerType",
    }
}

/// Appends a text field, trimmed; absent when empty.
fn push_text(out: &mut String, s: Option<&str>) -> bool {
    let s = s.map(trim).unwrap_or_default();
    out.push_str(s);
    !s.is_empty()
}

fn tenant(field: &str, s: &Option<Cow<'_, str>>) -> Result<Option<Guid>, FieldError> {
    match s.as_deref().map(trim) {
        None | Some("") => Ok(None),
        Some(v) => Guid::parse(v)
            .map(Some)
            .ok_or_else(|| FieldError::new(field, format!("`{v}` is not a tenant id (GUID)"))),
    }
}

/// Appends an id field as [`crate::model::guid::normalize_id`] writes it;
/// absent when empty.
fn push_id(out: &mut String, s: Option<&str>) -> bool {
    let s = s.map(trim).unwrap_or_default();
    crate::model::guid::push_normalized_id(out, s);
    !s.is_empty()
}

/// The envelope of a diagnostic-settings record, or nothing.
pub fn normalize(outer: &RawSignIn<'_>, ctx: &Context) -> Result<SignIn, FieldError> {
    let (body, envelope) = match &outer.properties {
        Some(p) => (p.as_ref(), Some(outer)),
        None => (outer, None),
    };

    let id = body
        .id
        .as_deref()
        .map(trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| FieldError::new("id", "missing"))?;

    let none = None;
    let (time_field, time_text) = [
        ("createdDateTime", &body.created_date_time),
        ("TimeGenerated", &body.time_generated),
        ("time", envelope.map_or(&none, |e| &e.time)),
    ]
    .into_iter()
    .find_map(|(f, v)| v.as_deref().filter(|s| !s.trim().is_empty()).map(|s| (f, s)))
    .ok_or_else(|| FieldError::new("createdDateTime", "missing"))?;
    let time = parse_time(time_text, ctx.date_order).map_err(|m| match ambiguity_hint(time_text) {
        Some(h) if ctx.date_order == DateOrder::Auto => FieldError::new(time_field, format!("{m}: {h}")),
        _ => FieldError::new(time_field, m),
    })?;

    let status = body.status.0.as_ref();
    let error_code = status
        .and_then(|s| s.error_code.0)
        .or(body.result_type.0)
        .or(envelope.and_then(|e| e.result_type.0))
        .ok_or_else(|| FieldError::new("status.errorCode", "missing (no status.errorCode or resultType)"))?;

    let event_type = envelope
        .and_then(|e| e.category.as_deref())
        .and_then(EventType::from_name)
        .or_else(|| body.table.as_deref().and_then(EventType::from_name))
        .or_else(|| body.category.as_deref().and_then(EventType::from_name))
        .or_else(|| body.sign_in_event_types.0.and_then(|t| t.0))
        .or(ctx.event_type)
        .or(match body.is_interactive.0 {
            Some(true) => Some(EventType::Interactive),
            Some(false) => Some(EventType::NonInteractive),
            None => None,
        })
        .unwrap_or(EventType::Unknown);

    let log_tenant = match envelope {
        Some(e) => tenant("tenantId", &e.tenant_id)?,
        None => tenant("AADTenantId", &body.aad_tenant_id)?,
    };

    let home_tenant = tenant("homeTenantId", &body.home_tenant_id)?;
    let resource_tenant = tenant("resourceTenantId", &body.resource_tenant_id)?;
    if !cross_tenant(home_tenant, resource_tenant) {
        // Most of a tenant's sign-ins are its own users in its own apps.
        // Every reader counts those by time, event type and tenants and
        // looks no further, so their names, ids and evidence are not copied
        // (ten allocations a row; checked by `SignIn::is_cross_tenant`).
        return Ok(SignIn::not_cross_tenant(
            time,
            event_type,
            error_code,
            log_tenant,
            home_tenant,
            resource_tenant,
        ));
    }

    let evidence = evidence(body);

    let device = body.device_detail.0.as_ref().map_or_else(Device::default, |d| Device {
        compliant: d.is_compliant.0,
        managed: d.is_managed.0,
        trust_type: d.trust_type.0.clone().filter(|s| !s.trim().is_empty()),
    });

    // The Pascal-cased `ResourceId` is an Azure resource path in Log
    // Analytics: used only when it is a GUID.
    let resource_id = body
        .resource_id
        .0
        .as_deref()
        .map(trim)
        .filter(|r| !r.is_empty())
        .or_else(|| body.resource_id_pascal.0.as_deref().filter(|r| Guid::parse(r).is_some()));
    let raw = [
        Some(id),
        body.user_id.0.as_deref(),
        body.user_principal_name.as_deref(),
        body.home_tenant_name.as_deref(),
        body.app_id.0.as_deref(),
        body.app_display_name.as_deref(),
        resource_id,
        body.resource_display_name.as_deref(),
        body.token_issuer_type.as_deref(),
    ];
    if let Some((t, len)) = Text::ALL
        .into_iter()
        .zip(&raw)
        .find_map(|(t, text)| text.map(|s| (t, trim(s).len())).filter(|(_, len)| *len > MAX_TEXT_BYTES))
    {
        return Err(FieldError::new(
            text_field(t),
            format!(
                "{len} bytes long, longer than Entra ID writes any (at most {MAX_TEXT_BYTES} are read): a forged or corrupt record"
            ),
        ));
    }
    // One allocation for all of them, made to fit ([`Texts`]).
    let capacity = raw.iter().flatten().map(|t| t.len()).sum();
    let texts = Texts::from_fn(capacity, |t, out| match t {
        Text::Id | Text::UserId | Text::AppId | Text::ResourceId => push_id(out, raw[t as usize]),
        _ => push_text(out, raw[t as usize]),
    });

    let owner = |g: &super::raw::MaybeGuid| g.0;
    Ok(SignIn {
        texts,
        time,
        event_type,
        user_type: body.user_type.as_deref().map_or(UserType::Unknown, UserType::parse),
        home_tenant,
        resource_tenant,
        log_tenant,
        access_type: body.cross_tenant_access_type.as_deref().map_or(AccessType::Unknown, AccessType::parse),
        app_owner_tenant: owner(&body.app_owner_tenant_id),
        resource_owner_tenant: owner(&body.resource_owner_tenant_id),
        error_code,
        ca_status: body.conditional_access_status.as_deref().map_or(CaStatus::Unknown, CaStatus::parse),
        evidence,
        device,
    })
}

/// Whether a sign-in with these home and resource tenants is cross-tenant:
/// the only kind whose names, ids and [`evidence`] are read.
fn cross_tenant(home: Option<Guid>, resource: Option<Guid>) -> bool {
    matches!((home, resource), (Some(h), Some(r)) if h != r)
}

/// Whether [`normalize`] reads the evidence of a record's sign-in
/// (`body`): its tenants are GUIDs and differ. (Where they are not GUIDs it
/// refuses the record without reading it.)
fn reads_evidence(body: &RawSignIn<'_>) -> bool {
    let guid = |t: &Option<Cow<'_, str>>| t.as_deref().and_then(|t| Guid::parse(trim(t)));
    cross_tenant(guid(&body.home_tenant_id), guid(&body.resource_tenant_id))
}

/// Reads the values a record's parse left for later
/// ([`super::raw::Later`]) if [`normalize`] will read them: a cross-tenant
/// sign-in's. False when one is not of its type; the reader then parses
/// the record again, every value as it comes, for the refusal.
pub fn read_later_if_needed(raw: &mut RawSignIn<'_>) -> bool {
    !reads_evidence(raw.body()) || raw.read_later_values().is_ok()
}

/// What the sign-in relied on. Each applied policy (result `success` or
/// `failure`) with one grant control counts as that plain requirement; one
/// with several controls, or an authentication strength, is kept whole as a
/// [`Clause`] (the log does not say whether all or one of its controls
/// were required). The sign-in's own `authenticationRequirement` and an
/// "MFA satisfied by claim" note mean MFA was required, unless a clause
/// that offers MFA explains it: then the clause decides.
fn evidence(body: &RawSignIn<'_>) -> Evidence {
    let mut e = Evidence { ca_details: body.ca_policies().is_some(), ..Evidence::default() };
    for p in body.ca_policies().into_iter().flatten().filter(|p| p.result.0) {
        let controls = p.enforced_grant_controls.0;
        if Clause::needed(controls) {
            let strength = p.authentication_strength.and_then(|s| s.strength_id());
            let clause = Clause {
                policy: p.id.0,
                controls,
                strength: if controls.contains(Controls::AUTH_STRENGTH) { strength } else { None },
            };
            crate::model::grant::insert_clause(&mut e.clauses, &clause);
            // A strength alone is MFA of some kind whatever else it asks.
            e.mfa_required |= controls == Controls::AUTH_STRENGTH;
        } else {
            e.mfa_required |= controls.contains(Controls::MFA);
            e.compliant_device_required |= controls.contains(Controls::COMPLIANT_DEVICE);
            e.hybrid_join_required |= controls.contains(Controls::HYBRID_JOIN);
        }
    }
    let status = body.status.0.as_ref();
    e.mfa_by_claim = status.is_some_and(|s| s.additional_details.0)
        || body.authentication_details.0.iter().flatten().any(|s| s.authentication_step_result_detail.0)
        || body.mfa_detail.0.as_ref().is_some_and(|m| m.auth_detail.0);
    let mfa_in_a_clause = e
        .clauses
        .iter()
        .any(|c| c.controls.contains(Controls::MFA) || c.controls.contains(Controls::AUTH_STRENGTH));
    let multi_factor =
        body.authentication_requirement.as_deref().is_some_and(|r| squash(r) == "multifactorauthentication");
    if (multi_factor || e.mfa_by_claim) && !mfa_in_a_clause {
        e.mfa_required = true;
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(record: &str) -> Result<SignIn, FieldError> {
        let raw: RawSignIn = serde_json::from_str(record).unwrap();
        normalize(&raw, &Context::default())
    }

    const A: &str = "11111111-1111-1111-1111-111111111111";
    const B: &str = "22222222-2222-2222-2222-222222222222";

    fn record(home: &str, resource: &str) -> String {
        format!(
            r#"{{"id": "r1", "createdDateTime": "2026-11-01T10:00:00Z", "status": {{"errorCode": 50074}},
                "isInteractive": true, "userId": "u1", "userPrincipalName": "a@b.example",
                "appId": "app", "appDisplayName": "App", "homeTenantId": "{home}",
                "resourceTenantId": "{resource}", "homeTenantName": "Alpha"}}"#
        )
    }

    #[test]
    fn a_text_longer_than_entra_writes_keeps_the_record_out_naming_its_field() {
        let fields = [
            "id",
            "userId",
            "userPrincipalName",
            "homeTenantName",
            "appId",
            "appDisplayName",
            "resourceId",
            "resourceDisplayName",
            "tokenIssuerType",
        ];
        assert_eq!(fields, Text::ALL.map(text_field), "one field per text, in order");
        for field in fields {
            let with = |len: usize| {
                let mut v: serde_json::Value = serde_json::from_str(&record(A, B)).unwrap();
                // Blanks around a text are not counted: they are trimmed.
                v[field] = format!("  {}  ", "é".repeat(len / 2)).into();
                read(&v.to_string())
            };
            assert!(with(MAX_TEXT_BYTES).is_ok(), "{field} at the limit");
            let e = with(MAX_TEXT_BYTES + 2).unwrap_err();
            assert_eq!(e.field, field);
            assert!(e.message.starts_with(&format!("{} bytes long", MAX_TEXT_BYTES + 2)), "{}", e.message);
        }
    }

    #[test]
    fn a_sign_in_that_is_not_cross_tenant_keeps_only_what_readers_count_it_by() {
        let cross = read(&record(A, B)).unwrap();
        assert!(cross.is_cross_tenant());
        assert_eq!((cross.id(), cross.user_id(), cross.app_name()), ("r1", Some("u1"), Some("App")));
        for (home, resource) in [(A, A), (A, ""), ("", B)] {
            let s = read(&record(home, resource)).unwrap();
            assert!(!s.is_cross_tenant());
            let thin = SignIn::not_cross_tenant(
                cross.time,
                EventType::Interactive,
                50074,
                None,
                s.home_tenant,
                s.resource_tenant,
            );
            assert_eq!(s, thin, "{home} -> {resource}");
        }
    }

    #[test]
    fn a_sign_in_that_is_not_cross_tenant_is_still_checked_as_before() {
        let e = read(&record(A, "not-a-guid")).unwrap_err();
        assert_eq!(e.field, "resourceTenantId");
        let e = read(&record(A, A).replace("2026-11-01T10:00:00Z", "yesterday")).unwrap_err();
        assert_eq!(e.field, "createdDateTime");
        let e = read(&record(A, A).replace(r#""id": "r1","#, "")).unwrap_err();
        assert_eq!(e.field, "id");
    }
}
