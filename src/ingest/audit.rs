//! One audit record (a framed JSON record or a CSV row) to a canonical
//! [`AuditEvent`].
//!
//! The shapes, told apart by their own keys:
//! - Graph `directoryAudit` (camelCase: `activityDisplayName`,
//!   `activityDateTime`, `initiatedBy`, `targetResources`);
//! - a diagnostic-settings record: envelope (`time`, `category` =
//!   `AuditLogs`, `tenantId`, `operationName`) around a directoryAudit in
//!   `properties`;
//! - a Log Analytics `AuditLogs` row (PascalCase columns; `InitiatedBy`,
//!   `TargetResources` and `AdditionalDetails` are objects in JSON exports
//!   and JSON text in CSV exports), or a query response (`tables`).
//!
//! Keys are matched ignoring case. Only the cross-tenant policy categories
//! are kept; other audit events are counted by category.

use serde_json::{Map, Value};

use crate::model::{Actor, AuditEvent, AuditTarget, Guid, ModifiedProperty};

use super::dates::parse_time;
use super::normalize::{Context, FieldError};
use super::{BadRow, InputFormat, Parsed};

/// Audit categories whose events change cross-tenant access. Microsoft's
/// activity list files "Update the company default cross-tenant access
/// setting" under the identity-sync category, so both are kept.
const CATEGORIES: [&str; 2] = ["CrossTenantAccessSettings", "CrossTenantIdentitySyncSettings"];

pub fn parse_record(
    bytes: &[u8],
    ctx: &Context,
    format: InputFormat,
) -> Result<Parsed<AuditEvent>, FieldError> {
    let v: Value =
        serde_json::from_slice(bytes).map_err(|e| FieldError::new("(JSON syntax)", e.to_string()))?;
    match &v {
        Value::Object(m) if get(m, "tables").is_some() => return query_response(&v, ctx),
        Value::Object(m) => {
            let envelope = get(m, "properties").is_some_and(Value::is_object);
            match format {
                InputFormat::Diagnostic if !envelope => {
                    return Err(FieldError::new("properties", "missing: not a diagnostic-settings record"))
                }
                InputFormat::Graph | InputFormat::PortalJson if envelope => {
                    return Err(FieldError::new(
                        "properties",
                        "a diagnostic-settings record, not a directoryAudit",
                    ))
                }
                InputFormat::LogAnalyticsJson if get(m, "TimeGenerated").is_none() => {
                    return Err(FieldError::new("TimeGenerated", "missing: not a Log Analytics row"))
                }
                _ => {}
            }
        }
        _ => {}
    }
    parse_value(v, ctx)
}

/// Reads one record already parsed (or built from a CSV row).
pub fn parse_value(v: Value, ctx: &Context) -> Result<Parsed<AuditEvent>, FieldError> {
    let Value::Object(outer) = v else {
        return Err(FieldError::new("", "expected a JSON object"));
    };
    // A Purview audit search export row carries the unified audit record
    // as JSON text in `AuditData`.
    if let Some(Value::String(data)) = get(&outer, "AuditData") {
        let inner: Value = serde_json::from_str(data)
            .map_err(|e| FieldError::new("AuditData", format!("not valid JSON text: {e}")))?;
        return parse_value(inner, ctx)
            .map_err(|e| FieldError::new(format!("AuditData.{}", e.field), e.message));
    }
    if get(&outer, "CreationTime").is_some() && get(&outer, "Operation").is_some() {
        return unified(&outer, ctx);
    }
    let (body, envelope) = match get(&outer, "properties") {
        Some(Value::Object(p)) => (p, Some(&outer)),
        _ => (&outer, None),
    };
    if let Some(env) = envelope {
        let category = text(env, "category").unwrap_or_default();
        if !category.eq_ignore_ascii_case("AuditLogs") && get(body, "activityDisplayName").is_none() {
            return Ok(Parsed::Ignored(format!("diagnostic records of category `{category}`")));
        }
    }
    let activity = text(body, "activityDisplayName")
        .or_else(|| text(body, "OperationName"))
        .or_else(|| envelope.and_then(|e| text(e, "operationName")));
    let Some(activity) = activity else {
        if get(body, "createdDateTime").is_some() || get(body, "userPrincipalName").is_some() {
            return Ok(Parsed::Ignored("sign-in records (give them to --signins)".into()));
        }
        return Err(FieldError::new("activityDisplayName", "missing: not an audit record"));
    };
    let category = text(body, "category");
    let cross_tenant =
        category.as_deref().is_some_and(|c| CATEGORIES.iter().any(|k| k.eq_ignore_ascii_case(c)))
            || activity.to_ascii_lowercase().contains("cross-tenant access");
    if !cross_tenant {
        return Ok(Parsed::Ignored(format!(
            "audit events of category `{}`",
            category.as_deref().unwrap_or("(none)")
        )));
    }
    Ok(Parsed::One(event(body, envelope, activity, category, ctx)?))
}

fn event(
    body: &Map<String, Value>,
    envelope: Option<&Map<String, Value>>,
    activity: String,
    category: Option<String>,
    ctx: &Context,
) -> Result<AuditEvent, FieldError> {
    let (time_field, time_text) = ["activityDateTime", "TimeGenerated"]
        .iter()
        .find_map(|f| text(body, f).map(|t| (*f, t)))
        .or_else(|| envelope.and_then(|e| text(e, "time")).map(|t| ("time", t)))
        .ok_or_else(|| FieldError::new("activityDateTime", "missing: an audit event needs a time"))?;
    let time = parse_time(&time_text, ctx.date_order).map_err(|m| FieldError::new(time_field, m))?;
    let id = text(body, "id").or_else(|| text(body, "Id")).unwrap_or_default();
    let log_tenant = match envelope.and_then(|e| text(e, "tenantId")).or_else(|| text(body, "AADTenantId")) {
        Some(t) => Some(
            Guid::parse(&t)
                .ok_or_else(|| FieldError::new("tenantId", format!("`{t}` is not a tenant id")))?,
        ),
        None => None,
    };
    Ok(AuditEvent {
        id,
        time,
        activity,
        category,
        result: text(body, "result"),
        result_reason: text(body, "resultReason"),
        correlation_id: text(body, "correlationId"),
        actor: actor(nested(body, "initiatedBy")?.as_ref())?,
        log_tenant,
        targets: targets(nested(body, "targetResources")?.as_ref())?,
        details: details(nested(body, "additionalDetails")?.as_ref()),
    })
}

/// A unified audit log record (Office 365 Management Activity API,
/// Purview audit search): `CreationTime` (UTC without a zone), `Operation`
/// (Entra activity names with a final period), `OrganizationId`,
/// `UserId`, `ModifiedProperties[]` as `Name`/`OldValue`/`NewValue`,
/// `Target[]` as `ID`/`Type`, `ExtendedProperties[]` as `Name`/`Value`.
fn unified(m: &Map<String, Value>, ctx: &Context) -> Result<Parsed<AuditEvent>, FieldError> {
    let activity = text(m, "Operation").unwrap_or_default();
    let activity = activity.trim_end_matches('.').to_string();
    let workload = text(m, "Workload").unwrap_or_default();
    if !activity.to_ascii_lowercase().contains("cross-tenant access") {
        let what = if workload.is_empty() { "unified audit" } else { workload.as_str() };
        return Ok(Parsed::Ignored(format!("{what} records that are not cross-tenant access changes")));
    }
    let time_text = text(m, "CreationTime").ok_or_else(|| FieldError::new("CreationTime", "missing"))?;
    let time = parse_time(&time_text, ctx.date_order).map_err(|e| FieldError::new("CreationTime", e))?;
    let log_tenant = match text(m, "OrganizationId") {
        Some(t) => Some(
            Guid::parse(&t)
                .ok_or_else(|| FieldError::new("OrganizationId", format!("`{t}` is not a tenant id")))?,
        ),
        None => None,
    };
    let user = text(m, "UserId");
    let actor = match user {
        Some(u) if u.contains('@') => Actor { user_principal_name: Some(u), ..Actor::default() },
        Some(u) => Actor { app_name: Some(u), ..Actor::default() },
        None => Actor::default(),
    };
    let list = |k: &str| -> Vec<&Map<String, Value>> {
        get(m, k)
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_object).collect())
            .unwrap_or_default()
    };
    let modified = list("ModifiedProperties")
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            let name = text(p, "Name").ok_or_else(|| {
                FieldError::new(
                    format!("ModifiedProperties[{i}]"),
                    "`Name` missing: the changed property is not named",
                )
            })?;
            let value = |k: &str| match get(p, k) {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) if s.is_empty() => None,
                Some(Value::String(s)) => Some(s.clone()),
                Some(v) => Some(v.to_string()),
            };
            Ok(ModifiedProperty { name, old: value("OldValue"), new: value("NewValue") })
        })
        .collect::<Result<Vec<_>, FieldError>>()?;
    let mut targets: Vec<AuditTarget> = list("Target")
        .into_iter()
        .map(|t| AuditTarget { id: text(t, "ID"), kind: text(t, "Type"), ..AuditTarget::default() })
        .collect();
    if targets.is_empty() {
        targets.push(AuditTarget { id: text(m, "ObjectId"), ..AuditTarget::default() });
    }
    targets[0].modified = modified;
    if let Some(object) = text(m, "ObjectId") {
        targets[0].display_name = Some(object);
    }
    Ok(Parsed::One(AuditEvent {
        id: text(m, "Id").unwrap_or_default(),
        time,
        activity,
        category: None,
        result: text(m, "ResultStatus").map(|r| r.to_ascii_lowercase()),
        result_reason: None,
        correlation_id: None,
        actor,
        log_tenant,
        targets,
        details: list("ExtendedProperties")
            .into_iter()
            .filter_map(|d| Some((text(d, "Name")?, text(d, "Value").unwrap_or_default())))
            .collect(),
    }))
}

/// A Log Analytics query API response: `{"tables":[{"columns","rows"}]}`.
fn query_response(v: &Value, ctx: &Context) -> Result<Parsed<AuditEvent>, FieldError> {
    let tables = v
        .get("tables")
        .and_then(Value::as_array)
        .ok_or_else(|| FieldError::new("tables", "expected an array"))?;
    let mut out = Vec::new();
    let mut ignored = Vec::new();
    let mut bad = Vec::new();
    for (t, table) in tables.iter().enumerate() {
        let at = |f: &str| format!("tables[{t}].{f}");
        let columns: Vec<&str> = table
            .get("columns")
            .and_then(Value::as_array)
            .ok_or_else(|| FieldError::new(at("columns"), "expected an array"))?
            .iter()
            .map(|c| c.get("name").and_then(Value::as_str).unwrap_or(""))
            .collect();
        let rows = table
            .get("rows")
            .and_then(Value::as_array)
            .ok_or_else(|| FieldError::new(at("rows"), "expected an array"))?;
        for (r, row) in rows.iter().enumerate() {
            let Some(cells) = row.as_array() else {
                let error = FieldError::new(at(&format!("rows[{r}]")), "expected an array");
                bad.push(BadRow { error, raw: row.to_string() });
                continue;
            };
            let m: Map<String, Value> = columns
                .iter()
                .zip(cells)
                .filter(|(_, v)| !v.is_null())
                .map(|(c, v)| (c.to_string(), v.clone()))
                .collect();
            match parse_value(Value::Object(m), ctx) {
                Ok(Parsed::One(e)) => out.push(e),
                Ok(Parsed::Ignored(reason)) => ignored.push(reason),
                Ok(Parsed::Many(..)) => {}
                Err(e) => bad.push(BadRow {
                    error: FieldError::new(
                        at(&format!("rows[{r}].{}", e.field)).trim_end_matches('.'),
                        e.message,
                    ),
                    raw: row.to_string(),
                }),
            }
        }
    }
    Ok(Parsed::Many(out, ignored, bad))
}

/// The value of `key`, matched ignoring case.
fn get<'a>(m: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    m.get(key).or_else(|| m.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v))
}

/// A scalar as trimmed text; empty and null are `None`.
fn text(m: &Map<String, Value>, key: &str) -> Option<String> {
    scalar(get(m, key)?)
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.trim().to_string()).filter(|s| !s.is_empty()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A nested object or array, which CSV and some Log Analytics exports
/// carry as JSON text.
fn nested(m: &Map<String, Value>, key: &str) -> Result<Option<Value>, FieldError> {
    match get(m, key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => serde_json::from_str(s).map(Some).map_err(|e| {
            let actual = m.keys().find(|k| k.eq_ignore_ascii_case(key)).map_or(key, String::as_str);
            FieldError::new(actual, format!("not valid JSON text: {e}"))
        }),
        Some(v) => Ok(Some(v.clone())),
    }
}

fn actor(v: Option<&Value>) -> Result<Actor, FieldError> {
    let Some(v) = v else { return Ok(Actor::default()) };
    let Value::Object(m) = v else {
        return Err(FieldError::new("initiatedBy", "expected an object"));
    };
    let user = get(m, "user").and_then(Value::as_object);
    let app = get(m, "app").and_then(Value::as_object);
    let of = |o: Option<&Map<String, Value>>, k: &str| o.and_then(|o| text(o, k));
    Ok(Actor {
        user_principal_name: of(user, "userPrincipalName"),
        user_id: of(user, "id"),
        app_name: of(app, "displayName"),
        app_id: of(app, "appId").or_else(|| of(app, "servicePrincipalId")),
        ip_address: of(user, "ipAddress").or_else(|| of(app, "ipAddress")),
    })
}

fn targets(v: Option<&Value>) -> Result<Vec<AuditTarget>, FieldError> {
    let Some(v) = v else { return Ok(vec![]) };
    let list = match v {
        Value::Array(a) => a.as_slice(),
        Value::Object(_) => std::slice::from_ref(v),
        _ => return Err(FieldError::new("targetResources", "expected an array")),
    };
    list.iter()
        .enumerate()
        .map(|(i, t)| {
            let at = |f: &str| format!("targetResources[{i}]{f}");
            let m = t.as_object().ok_or_else(|| FieldError::new(at(""), "expected an object"))?;
            let modified = match get(m, "modifiedProperties") {
                None | Some(Value::Null) => vec![],
                Some(Value::Array(props)) => props
                    .iter()
                    .enumerate()
                    .map(|(j, p)| {
                        modified(p)
                            .map_err(|msg| FieldError::new(at(&format!(".modifiedProperties[{j}]")), msg))
                    })
                    .collect::<Result<_, _>>()?,
                Some(_) => return Err(FieldError::new(at(".modifiedProperties"), "expected an array")),
            };
            Ok(AuditTarget {
                id: text(m, "id"),
                display_name: text(m, "displayName"),
                kind: text(m, "type"),
                modified,
            })
        })
        .collect()
}

fn modified(p: &Value) -> Result<ModifiedProperty, String> {
    let m = p.as_object().ok_or("expected an object")?;
    let name = text(m, "displayName").ok_or("`displayName` missing: the changed property is not named")?;
    // Values are JSON text inside a string; one that arrives already
    // parsed (some Log Analytics exports) is turned back into text.
    let value = |k: &str| match get(m, k) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(v) => Some(v.to_string()),
    };
    Ok(ModifiedProperty { name, old: value("oldValue"), new: value("newValue") })
}

fn details(v: Option<&Value>) -> Vec<(String, String)> {
    let Some(Value::Array(a)) = v else { return vec![] };
    a.iter()
        .filter_map(|d| {
            let m = d.as_object()?;
            Some((text(m, "key")?, text(m, "value").unwrap_or_default()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(json: &str) -> Result<Parsed<AuditEvent>, FieldError> {
        parse_record(json.as_bytes(), &Context::default(), InputFormat::Auto)
    }

    const GRAPH: &str = r#"{"id":"Directory_1","category":"CrossTenantAccessSettings","result":"success",
        "activityDisplayName":"Add a partner to cross-tenant access setting","activityDateTime":"2026-03-02T10:00:00Z",
        "initiatedBy":{"user":{"id":"u1","userPrincipalName":"admin@contoso.com","ipAddress":"10.0.0.1"},"app":null},
        "targetResources":[{"id":null,"displayName":"CrossTenantAccessPolicy for 3b8e5f2a-7c41-4d9e-a6b0-1f2c3d4e5f60","type":"Policy",
          "modifiedProperties":[{"displayName":"tenantId","oldValue":null,"newValue":"\"1eae0b55-0000-4000-8000-000000000001\""}]}],
        "additionalDetails":[]}"#;

    #[test]
    fn reads_graph_directory_audit() {
        let Ok(Parsed::One(e)) = one(GRAPH) else { panic!() };
        assert_eq!(e.activity, "Add a partner to cross-tenant access setting");
        assert_eq!(e.actor.label(), "admin@contoso.com");
        assert_eq!(e.targets[0].modified[0].new.as_deref(), Some("\"1eae0b55-0000-4000-8000-000000000001\""));
        assert!(e.succeeded());
    }

    #[test]
    fn reads_log_analytics_row_with_json_text_columns() {
        let row = serde_json::json!({
            "TimeGenerated": "2026-03-02T10:00:05Z", "OperationName": "Update a partner cross-tenant access setting",
            "Category": "CrossTenantAccessSettings", "Result": "success", "AADTenantId": "3b8e5f2a-7c41-4d9e-a6b0-1f2c3d4e5f60",
            "InitiatedBy": "{\"app\":{\"displayName\":\"Terraform\",\"appId\":\"a1\"}}",
            "TargetResources": "[{\"type\":\"Policy\",\"modifiedProperties\":[{\"displayName\":\"inboundTrust\",\"oldValue\":\"{}\",\"newValue\":\"{\\\"isMfaAccepted\\\":true}\"}]}]",
            "ActivityDateTime": "2026-03-02T10:00:00Z"
        });
        let Ok(Parsed::One(e)) = parse_value(row, &Context::default()) else { panic!() };
        assert_eq!(e.actor.label(), "app: Terraform");
        assert_eq!(e.time.to_rfc3339(), "2026-03-02T10:00:00+00:00");
        assert_eq!(e.targets[0].modified[0].name, "inboundTrust");
        assert!(e.log_tenant.is_some());
    }

    #[test]
    fn other_categories_and_sign_ins_are_counted_not_read() {
        let other = r#"{"activityDisplayName":"Add user","category":"UserManagement","activityDateTime":"2026-01-01T00:00:00Z"}"#;
        assert!(matches!(one(other), Ok(Parsed::Ignored(r)) if r.contains("UserManagement")));
        let signin = r#"{"id":"x","createdDateTime":"2026-01-01T00:00:00Z","userPrincipalName":"a@b"}"#;
        assert!(matches!(one(signin), Ok(Parsed::Ignored(r)) if r.contains("sign-in")));
        let diag = r#"{"time":"2026-01-01T00:00:00Z","category":"SignInLogs","properties":{"id":"x"}}"#;
        assert!(matches!(one(diag), Ok(Parsed::Ignored(r)) if r.contains("SignInLogs")));
    }

    #[test]
    fn reads_unified_audit_log_records_and_purview_rows() {
        let record = serde_json::json!({
            "CreationTime": "2026-11-10T14:00:00", "Id": "u1", "Operation": "Update a partner cross-tenant access setting.",
            "OrganizationId": "3b8e5f2a-7c41-4d9e-a6b0-1f2c3d4e5f60", "RecordType": 8, "ResultStatus": "Success",
            "UserId": "admin@contoso.com", "Workload": "AzureActiveDirectory", "ObjectId": "CrossTenantAccessPolicy",
            "ModifiedProperties": [{"Name": "tenantId", "NewValue": "\"1eae0b55-0000-4000-8000-000000000001\"", "OldValue": ""},
                                   {"Name": "inboundTrust", "NewValue": "{\"isMfaAccepted\":true}", "OldValue": "{}"}],
            "Target": [{"ID": "CrossTenantAccessPolicy", "Type": 2}]
        });
        let Ok(Parsed::One(e)) = parse_value(record.clone(), &Context::default()) else { panic!() };
        assert_eq!(e.activity, "Update a partner cross-tenant access setting");
        assert_eq!(e.time.to_rfc3339(), "2026-11-10T14:00:00+00:00");
        assert_eq!(e.actor.label(), "admin@contoso.com");
        assert!(e.succeeded());
        assert_eq!(e.targets[0].modified.len(), 2);
        assert_eq!(e.targets[0].modified[0].old, None);
        let row = serde_json::json!({"CreationDate": "2026-11-10T14:00:00", "Operations": "Update a partner cross-tenant access setting.",
            "AuditData": record.to_string()});
        let Ok(Parsed::One(f)) = parse_value(row, &Context::default()) else { panic!() };
        assert_eq!(e, f);
        let other = serde_json::json!({"CreationTime": "2026-11-10T14:00:00", "Operation": "FileAccessed", "Workload": "SharePoint"});
        assert!(
            matches!(parse_value(other, &Context::default()), Ok(Parsed::Ignored(r)) if r.contains("SharePoint"))
        );
    }

    #[test]
    fn malformed_fields_are_named() {
        let bad = GRAPH.replace(r#""modifiedProperties":["#, r#""modifiedProperties":[{"oldValue":null},"#);
        let e = one(&bad).unwrap_err();
        assert_eq!(e.field, "targetResources[0].modifiedProperties[0]");
        let bad = GRAPH.replace("2026-03-02T10:00:00Z", "yesterday");
        assert_eq!(one(&bad).unwrap_err().field, "activityDateTime");
        let row = serde_json::json!({"OperationName": "Update a partner cross-tenant access setting",
            "Category": "CrossTenantAccessSettings", "TimeGenerated": "2026-03-02T10:00:05Z", "TargetResources": "[{"});
        assert_eq!(parse_value(row, &Context::default()).unwrap_err().field, "TargetResources");
    }
}
