//! The scenario's audit trail: the cross-tenant policy changes that lead
//! to `samples/policies/current.json`, with a little noise (another
//! category, a failed attempt), in each audit export format.
//!
//! Update records carry whole sections as JSON text inside a string, with
//! access and target types as numbers, as real update records do.

use std::io::Write;

use anyhow::Result;
use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{json, Value};

use super::scenario::{tailspin_narrowed_at, Scenario, APPS, OUR_TENANT};

#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum AuditFormat {
    /// Graph `/auditLogs/directoryAudits` page.
    Graph,
    /// Diagnostic-settings AuditLogs stream, one record per line.
    DiagnosticNdjson,
    /// Log Analytics AuditLogs rows as a JSON array.
    LaJson,
    /// Log Analytics AuditLogs portal CSV export.
    LaCsv,
    /// Purview audit search export (CSV; the unified audit record in `AuditData`).
    PurviewCsv,
}

fn at(d: u32, h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, d, h, m, 0).unwrap()
}

/// `{"usersAndGroups":..., "applications":...}` with numeric types.
fn section(users_allowed: bool, apps: &[&str], apps_allowed: bool) -> String {
    let kind = |allowed: bool| if allowed { 1 } else { 2 };
    let targets: Vec<Value> = apps.iter().map(|a| json!({"target": a, "targetType": 3})).collect();
    json!({
        "usersAndGroups": {"accessType": kind(users_allowed), "targets": [{"target": "AllUsers", "targetType": 1}]},
        "applications": {"accessType": kind(apps_allowed), "targets": targets},
    })
    .to_string()
}

/// JSON text in a JSON string, as the audit log writes values.
fn quoted(text: &str) -> String {
    Value::String(text.to_string()).to_string()
}

struct Change {
    time: DateTime<Utc>,
    activity: &'static str,
    category: &'static str,
    result: &'static str,
    actor: Value,
    props: Vec<(&'static str, Option<String>, Option<String>)>,
}

fn user(upn: &str) -> Value {
    json!({"user": {"id": "7d3c1f40-2b9a-4c8e-9f11-5e6a7b8c9d01", "userPrincipalName": upn, "ipAddress": "198.51.100.7"}, "app": null})
}

fn changes(s: &Scenario) -> Vec<Change> {
    let partner = |i: usize| s.partners[i.min(s.partners.len() - 1)].id.to_string();
    let tenant = |i: usize| Some(quoted(&partner(i)));
    let admin = user("it-admin@contoso.com");
    let terraform = json!({"user": null, "app": {"appId": "9b2e7c10-4d3a-4f8b-a1c6-0e5d7f9a2b34", "displayName": "Terraform Cloud", "servicePrincipalId": "0c4f8a2d-6e1b-4d7c-9a35-b2e8f1c6d470"}});
    let trust = |mfa: bool| {
        json!({"isMfaAccepted": mfa, "isCompliantDeviceAccepted": false, "isHybridAzureADJoinedDeviceAccepted": false}).to_string()
    };
    let office = || section(true, &["Office365"], true);
    vec![
        Change {
            time: at(3, 9, 5),
            activity: "Add a partner to cross-tenant access setting",
            category: "CrossTenantAccessSettings",
            result: "success",
            actor: admin.clone(),
            props: vec![("tenantId", None, tenant(2))],
        },
        Change {
            time: at(5, 16, 20),
            activity: "Update a partner cross-tenant access setting",
            category: "CrossTenantAccessSettings",
            result: "success",
            actor: admin.clone(),
            props: vec![
                ("tenantId", None, tenant(0)),
                ("inboundTrust", Some(quoted(&trust(false))), Some(quoted(&trust(true)))),
            ],
        },
        Change {
            time: at(4, 11, 0),
            activity: "Update a partner cross-tenant access setting",
            category: "CrossTenantAccessSettings",
            result: "success",
            actor: terraform.clone(),
            props: vec![
                ("tenantId", None, tenant(2)),
                ("b2bDirectConnectInbound", None, Some(quoted(&office()))),
                ("b2bDirectConnectOutbound", None, Some(quoted(&office()))),
            ],
        },
        Change {
            time: tailspin_narrowed_at(),
            activity: "Update a partner cross-tenant access setting",
            category: "CrossTenantAccessSettings",
            result: "success",
            actor: admin.clone(),
            props: vec![
                ("tenantId", None, tenant(2)),
                (
                    "b2bCollaborationInbound",
                    Some(quoted(&section(true, &["AllApplications"], true))),
                    Some(quoted(&section(true, &[APPS[3].0], false))),
                ),
            ],
        },
        Change {
            time: at(12, 8, 30),
            activity: "Add user",
            category: "UserManagement",
            result: "success",
            actor: admin.clone(),
            props: vec![("AccountEnabled", None, Some("[true]".into()))],
        },
        Change {
            time: at(14, 10, 45),
            activity: "Update a partner cross-tenant access setting",
            category: "CrossTenantAccessSettings",
            result: "failure",
            actor: terraform,
            props: vec![("tenantId", None, tenant(3))],
        },
    ]
}

/// The trail as Graph directoryAudit objects, oldest first.
pub fn directory_audits(s: &Scenario) -> Vec<Value> {
    changes(s)
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            let correlation = format!("5e0c9a1b-7f2d-4c3e-8a6b-{:012x}", 0xa0d17 + i);
            let modified: Vec<Value> = c
                .props
                .iter()
                .map(|(n, o, v)| json!({"displayName": n, "oldValue": o, "newValue": v}))
                .collect();
            json!({
                "id": format!("Directory_{correlation}_{}", 1000 + i),
                "category": c.category,
                "correlationId": correlation,
                "result": c.result,
                "resultReason": if c.result == "success" { "" } else { "Request was invalid." },
                "activityDisplayName": c.activity,
                "activityDateTime": (c.time + Duration::milliseconds(123)).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
                "loggedByService": "Core Directory",
                "operationType": if c.activity.starts_with("Add") { "Add" } else { "Update" },
                "initiatedBy": c.actor,
                "targetResources": [{
                    "id": null,
                    "displayName": format!("CrossTenantAccessPolicy for {OUR_TENANT}"),
                    "type": "Policy",
                    "userPrincipalName": null,
                    "groupType": null,
                    "modifiedProperties": modified,
                }],
                "additionalDetails": [],
            })
        })
        .collect()
}

/// Writes the trail in `format`.
pub fn write(s: &Scenario, format: AuditFormat, out: &mut dyn Write) -> Result<()> {
    let events = directory_audits(s);
    match format {
        AuditFormat::Graph => {
            let page = json!({
                "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#auditLogs/directoryAudits",
                "value": events,
            });
            serde_json::to_writer_pretty(&mut *out, &page)?;
            out.write_all(b"\n")?;
        }
        AuditFormat::DiagnosticNdjson => {
            for e in events {
                let record = json!({
                    "time": e["activityDateTime"],
                    "resourceId": format!("/tenants/{OUR_TENANT}/providers/Microsoft.aadiam"),
                    "operationName": e["activityDisplayName"],
                    "operationVersion": "1.0",
                    "category": "AuditLogs",
                    "tenantId": OUR_TENANT,
                    "resultSignature": "None",
                    "durationMs": 0,
                    "correlationId": e["correlationId"],
                    "Level": 4,
                    "properties": e,
                });
                serde_json::to_writer(&mut *out, &record)?;
                out.write_all(b"\n")?;
            }
        }
        AuditFormat::LaJson => {
            let rows: Vec<Value> = events.iter().map(la_row).collect();
            serde_json::to_writer_pretty(&mut *out, &rows)?;
            out.write_all(b"\n")?;
        }
        AuditFormat::PurviewCsv => {
            let mut w = csv::Writer::from_writer(out);
            w.write_record(["RecordId", "CreationDate", "RecordType", "Operation", "UserId", "AuditData"])?;
            for e in &events {
                let u = unified_record(e);
                w.write_record([
                    u["Id"].as_str().unwrap_or_default(),
                    u["CreationTime"].as_str().unwrap_or_default(),
                    "8",
                    u["Operation"].as_str().unwrap_or_default(),
                    u["UserId"].as_str().unwrap_or_default(),
                    &u.to_string(),
                ])?;
            }
            w.flush()?;
        }
        AuditFormat::LaCsv => {
            let mut w = csv::Writer::from_writer(out);
            let columns = [
                "TenantId",
                "SourceSystem",
                "TimeGenerated [UTC]",
                "ResourceId",
                "OperationName",
                "OperationVersion",
                "Category",
                "ResultType",
                "ResultSignature",
                "ResultDescription",
                "DurationMs",
                "CorrelationId",
                "Identity",
                "Level",
                "AdditionalDetails",
                "Id",
                "InitiatedBy",
                "LoggedByService",
                "Result",
                "ResultReason",
                "TargetResources",
                "AADTenantId",
                "ActivityDisplayName",
                "ActivityDateTime [UTC]",
                "AADOperationType",
                "Type",
            ];
            w.write_record(columns)?;
            for e in &events {
                let row = la_row(e);
                let cell = |c: &str| {
                    let key = c.trim_end_matches(" [UTC]");
                    match &row[key] {
                        Value::Null => String::new(),
                        Value::String(s) if key == "TimeGenerated" || key == "ActivityDateTime" => {
                            let t: DateTime<Utc> = s.parse().expect("written by us");
                            t.format("%-m/%-d/%Y, %-I:%M:%S%.3f %p").to_string()
                        }
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    }
                };
                w.write_record(columns.iter().map(|c| cell(c)))?;
            }
            w.flush()?;
        }
    }
    Ok(())
}

/// The same event as the unified audit log records it: an activity name
/// with a final period, PascalCase, zone-less UTC time, `Name`/`OldValue`/
/// `NewValue` properties.
fn unified_record(e: &Value) -> Value {
    let time: DateTime<Utc> =
        e["activityDateTime"].as_str().and_then(|t| t.parse().ok()).expect("written by us");
    let actor = e["initiatedBy"]["user"]["userPrincipalName"]
        .as_str()
        .or(e["initiatedBy"]["app"]["displayName"].as_str())
        .unwrap_or_default();
    let target = &e["targetResources"][0];
    let modified: Vec<Value> = target["modifiedProperties"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| json!({"Name": p["displayName"], "OldValue": p["oldValue"].as_str().unwrap_or(""), "NewValue": p["newValue"].as_str().unwrap_or("")}))
        .collect();
    json!({
        "CreationTime": time.format("%Y-%m-%dT%H:%M:%S").to_string(),
        "Id": format!("{}", e["correlationId"].as_str().unwrap_or_default()),
        "Operation": format!("{}.", e["activityDisplayName"].as_str().unwrap_or_default()),
        "OrganizationId": OUR_TENANT,
        "RecordType": 8,
        "ResultStatus": if e["result"] == "success" { "Success" } else { "Failure" },
        "UserKey": "10032001A2B3C4D5@contoso.com",
        "UserType": 0,
        "Version": 1,
        "Workload": "AzureActiveDirectory",
        "ObjectId": target["displayName"],
        "UserId": actor,
        "AzureActiveDirectoryEventType": 1,
        "ExtendedProperties": [{"Name": "resultType", "Value": "Success"}],
        "ModifiedProperties": modified,
        "Actor": [{"ID": actor, "Type": 5}],
        "ActorContextId": OUR_TENANT,
        "Target": [{"ID": target["displayName"], "Type": 2}],
        "TargetContextId": OUR_TENANT,
    })
}

/// A Log Analytics AuditLogs row: PascalCase columns, nested values as objects.
fn la_row(e: &Value) -> Value {
    json!({
        "TenantId": "6f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b",
        "SourceSystem": "Azure AD",
        "TimeGenerated": e["activityDateTime"],
        "ResourceId": format!("/tenants/{OUR_TENANT}/providers/Microsoft.aadiam"),
        "OperationName": e["activityDisplayName"],
        "OperationVersion": "1.0",
        "Category": e["category"],
        "ResultType": "",
        "ResultSignature": "None",
        "ResultDescription": e["resultReason"],
        "DurationMs": 0,
        "CorrelationId": e["correlationId"],
        "Identity": e["initiatedBy"]["user"]["userPrincipalName"].as_str().or(e["initiatedBy"]["app"]["displayName"].as_str()),
        "Level": 4,
        "AdditionalDetails": e["additionalDetails"],
        "Id": e["id"],
        "InitiatedBy": e["initiatedBy"],
        "LoggedByService": e["loggedByService"],
        "Result": e["result"],
        "ResultReason": e["resultReason"],
        "TargetResources": e["targetResources"],
        "AADTenantId": OUR_TENANT,
        "ActivityDisplayName": e["activityDisplayName"],
        "ActivityDateTime": e["activityDateTime"],
        "AADOperationType": e["operationType"],
        "Type": "AuditLogs",
    })
}
