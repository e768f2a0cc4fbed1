//! Writing synthetic sign-ins in each export format, with the real shapes
//! and quirks: Graph pages and arrays, diagnostic envelopes with integer
//! bit flags, Log Analytics rows with JSON inside strings and locale dates,
//! the portal CSV's stray spaces and duplicate column.

use std::io::Write;

use anyhow::Result;
use serde_json::{json, Value};

use crate::model::{AccessType, EventType, UserType};

use super::scenario::{Synthetic, OUR_TENANT};

#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SynthFormat {
    /// Graph beta response pages, concatenated (`{"@odata.context", "value", "@odata.nextLink"}`).
    GraphPage,
    /// Graph beta records as one pretty-printed JSON array.
    GraphArray,
    /// Graph beta records, one per line.
    GraphNdjson,
    /// Graph v1.0 pages: no home/resource tenant fields (cannot be classified).
    GraphV1,
    /// Diagnostic-settings blobs `{"records": [...]}`.
    Diagnostic,
    /// Diagnostic-settings records, one per line.
    DiagnosticNdjson,
    /// Log Analytics rows as a JSON array.
    LaJson,
    /// Log Analytics portal CSV export.
    LaCsv,
    /// Entra admin center "Download CSV".
    PortalCsv,
    /// Entra admin center "Download JSON".
    PortalJson,
}

impl SynthFormat {
    pub const ALL: [SynthFormat; 10] = [
        SynthFormat::GraphPage,
        SynthFormat::GraphArray,
        SynthFormat::GraphNdjson,
        SynthFormat::GraphV1,
        SynthFormat::Diagnostic,
        SynthFormat::DiagnosticNdjson,
        SynthFormat::LaJson,
        SynthFormat::LaCsv,
        SynthFormat::PortalCsv,
        SynthFormat::PortalJson,
    ];
}

const PAGE: usize = 500;
const BLOB: usize = 100;

fn graph_time(s: &Synthetic) -> String {
    // Graph writes seven fraction digits.
    format!("{}0000Z", s.time.format("%Y-%m-%dT%H:%M:%S%.3f"))
}

fn la_time(s: &Synthetic) -> String {
    s.time.format("%-m/%-d/%Y, %-I:%M:%S%.3f %p").to_string()
}

fn access_text(a: AccessType) -> &'static str {
    a.as_str()
}

/// The tenant that owns an app: Microsoft's apps are owned by Microsoft
/// Services, Contoso's partner portal by Contoso, a partner's app by the
/// partner (whose tenant it is signed in to).
fn owner_of(s: &Synthetic, app: &str) -> String {
    if app == super::scenario::APPS[4].0 {
        OUR_TENANT.to_string()
    } else if super::scenario::APPS.iter().any(|a| a.0 == app || a.2 == app) {
        crate::policy::apps::MICROSOFT_SERVICES_TENANT.to_string()
    } else {
        s.resource_tenant.to_string()
    }
}

fn ca_policies(s: &Synthetic, diag: bool) -> Value {
    Value::Array(
        s.ca_policies
            .iter()
            .map(|(id, name, grant, result)| {
                let (sat, not): (Value, Value) = if diag {
                    (
                        json!(if *result == "notApplied" { 1 } else { 7 }),
                        json!(if *result == "notApplied" { 18 } else { 0 }),
                    )
                } else {
                    (
                        json!("application,users"),
                        json!(if *result == "notApplied" { "clientApps" } else { "none" }),
                    )
                };
                json!({
                    "id": id.to_string(), "displayName": name,
                    "enforcedGrantControls": [grant], "enforcedSessionControls": [],
                    "result": result, "conditionsSatisfied": sat, "conditionsNotSatisfied": not,
                    "includeRulesSatisfied": [], "excludeRulesSatisfied": [],
                    "sessionControlsNotSatisfied": [], "authenticationStrength": null,
                })
            })
            .collect(),
    )
}

fn auth_details(s: &Synthetic) -> Value {
    let mut steps = vec![json!({
        "authenticationStepDateTime": graph_time(s),
        "authenticationMethod": if s.event_type == EventType::Interactive { "Password" } else { "Previously satisfied" },
        "authenticationMethodDetail": "Password in the cloud",
        "succeeded": s.error_code != 50126,
        "authenticationStepResultDetail": if s.error_code == 50126 { "Invalid username or password or Invalid on-premise username or password." } else { "Correct password" },
        "authenticationStepRequirement": "Primary authentication",
    })];
    if s.mfa_by_claim {
        steps.push(json!({
            "authenticationStepDateTime": graph_time(s),
            "authenticationMethod": "Previously satisfied",
            "authenticationMethodDetail": null,
            "succeeded": true,
            "authenticationStepResultDetail": "MFA requirement satisfied by claim in the token",
            "authenticationStepRequirement": "Multifactor authentication",
        }));
    }
    Value::Array(steps)
}

fn status(s: &Synthetic) -> Value {
    let details = if s.mfa_by_claim {
        "MFA requirement satisfied by claim in the token"
    } else if s.mfa_required() && s.error_code == 0 {
        "MFA completed in Azure AD"
    } else {
        ""
    };
    json!({"errorCode": s.error_code, "failureReason": if s.error_code == 0 { "Other." } else { &s.failure_reason }, "additionalDetails": if details.is_empty() { Value::Null } else { json!(details) }})
}

fn device(s: &Synthetic) -> Value {
    json!({
        "deviceId": s.device_id.map_or(String::new(), |d| d.to_string()),
        "displayName": if s.device_id.is_some() { "LAPTOP-7H2K" } else { "" },
        "operatingSystem": s.os, "browser": s.browser,
        "isCompliant": s.compliant, "isManaged": s.managed,
        "trustType": if s.managed { "Azure AD joined" } else { "" },
    })
}

fn location(s: &Synthetic) -> Value {
    json!({"city": s.city, "state": "", "countryOrRegion": s.country,
           "geoCoordinates": {"altitude": null, "latitude": 47.6, "longitude": -122.3}})
}

fn event_type_name(e: EventType) -> &'static str {
    match e {
        EventType::NonInteractive => "nonInteractiveUser",
        EventType::ServicePrincipal => "servicePrincipal",
        EventType::ManagedIdentity => "managedIdentity",
        _ => "interactiveUser",
    }
}

fn user_agent(s: &Synthetic) -> String {
    format!(
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) {} Safari/537.36",
        s.browser
    )
}

/// A Graph signIn object; `beta` adds the cross-tenant fields, `diag`
/// switches to the diagnostic body's spellings.
pub fn graph_object(s: &Synthetic, beta: bool, diag: bool) -> Value {
    let user_type = match (s.user_type, diag) {
        (UserType::Guest, false) => "guest",
        (UserType::Guest, true) => "Guest",
        (_, false) => "member",
        (_, true) => "Member",
    };
    let mut o = json!({
        "id": s.id.to_string(),
        "createdDateTime": graph_time(s),
        "userDisplayName": s.user_display,
        "userPrincipalName": s.upn,
        "userId": s.user_id.to_string(),
        "appId": s.app_id,
        "appDisplayName": s.app_name,
        "ipAddress": s.ip,
        "clientAppUsed": "Browser",
        "correlationId": s.correlation_id.to_string(),
        "conditionalAccessStatus": if s.error_code == 53003 { "failure" } else if s.ca_policies.iter().any(|p| p.3 == "success") { "success" } else { "notApplied" },
        "isInteractive": s.event_type == EventType::Interactive,
        "riskDetail": "none", "riskLevelAggregated": "none", "riskLevelDuringSignIn": "none", "riskState": "none",
        "riskEventTypes": [], "riskEventTypes_v2": [],
        "resourceDisplayName": s.resource_name,
        "resourceId": s.resource_id,
        "status": status(s),
        "deviceDetail": device(s),
        "location": location(s),
        "appliedConditionalAccessPolicies": ca_policies(s, diag),
    });
    if beta {
        let m = o.as_object_mut().unwrap();
        for (k, v) in [
            ("signInEventTypes", json!([event_type_name(s.event_type)])),
            ("crossTenantAccessType", json!(access_text(s.access_type))),
            ("homeTenantId", json!(s.home_tenant.to_string())),
            ("appOwnerTenantId", json!(owner_of(s, &s.app_id))),
            ("resourceOwnerTenantId", json!(owner_of(s, &s.resource_id))),
            ("homeTenantName", json!(s.home_tenant_name.clone().unwrap_or_default())),
            ("resourceTenantId", json!(s.resource_tenant.to_string())),
            ("userType", json!(user_type)),
            ("authenticationDetails", auth_details(s)),
            (
                "authenticationRequirement",
                json!(if s.mfa_required() {
                    "multiFactorAuthentication"
                } else {
                    "singleFactorAuthentication"
                }),
            ),
            (
                "authenticationProcessingDetails",
                json!([{"key": "Legacy TLS (TLS 1.0, 1.1, 3DES)", "value": "False"}, {"key": "Is CAE Token", "value": "False"}, {"key": "Oauth Scope Info", "value": "[\"openid\",\"profile\",\"User.Read\",\"offline_access\"]"}]),
            ),
            ("authenticationRequirementPolicies", json!([])),
            ("authenticationMethodsUsed", json!([])),
            ("tokenIssuerType", json!("AzureAD")),
            ("tokenIssuerName", json!("")),
            ("uniqueTokenIdentifier", json!("Q2xpZW50VG9rZW5JZGVudGlmaWVyX3N5bnRoZXRpYw")),
            ("incomingTokenType", json!("none")),
            ("authenticationProtocol", json!("none")),
            ("originalRequestId", json!(s.id.to_string())),
            ("processingTimeInMilliseconds", json!(187)),
            ("networkLocationDetails", json!([])),
            ("userAgent", json!(user_agent(s))),
            ("flaggedForReview", json!(false)),
            ("isTenantRestricted", json!(false)),
            ("autonomousSystemNumber", json!(64500)),
            ("servicePrincipalId", json!("")),
            ("ssoExtensionVersion", json!("")),
            ("privateLinkDetails", json!({})),
            ("mfaDetail", json!({})),
        ] {
            m.insert(k.into(), v);
        }
    }
    o
}

fn diag_record(s: &Synthetic) -> Value {
    let category = match s.event_type {
        EventType::NonInteractive => "NonInteractiveUserSignInLogs",
        _ => "SignInLogs",
    };
    json!({
        "time": graph_time(s),
        "resourceId": format!("/tenants/{OUR_TENANT}/providers/Microsoft.aadiam"),
        "operationName": "Sign-in activity", "operationVersion": "1.0",
        "category": category, "tenantId": OUR_TENANT,
        "resultType": s.error_code.to_string(), "resultSignature": "None",
        "resultDescription": s.failure_reason, "durationMs": 0,
        "callerIpAddress": s.ip, "correlationId": s.correlation_id.to_string(),
        "identity": s.user_display, "Level": 4, "location": s.country,
        "properties": graph_object(s, true, true),
    })
}

/// Log Analytics columns in table order; nested ones hold JSON text.
const LA_COLUMNS: &[&str] = &[
    "TenantId",
    "SourceSystem",
    "TimeGenerated",
    "ResourceId",
    "OperationName",
    "OperationVersion",
    "Category",
    "ResultType",
    "ResultSignature",
    "ResultDescription",
    "DurationMs",
    "CorrelationId",
    "Resource",
    "ResourceGroup",
    "ResourceProvider",
    "Identity",
    "Level",
    "Location",
    "AlternateSignInName",
    "AppDisplayName",
    "AppId",
    "AuthenticationDetails",
    "AuthenticationProcessingDetails",
    "AuthenticationRequirement",
    "ClientAppUsed",
    "ConditionalAccessPolicies",
    "ConditionalAccessStatus",
    "CreatedDateTime",
    "DeviceDetail",
    "IsInteractive",
    "Id",
    "IPAddress",
    "LocationDetails",
    "MfaDetail",
    "OriginalRequestId",
    "ResourceDisplayName",
    "ResourceIdentity",
    "RiskDetail",
    "RiskState",
    "Status",
    "TokenIssuerName",
    "TokenIssuerType",
    "UserAgent",
    "UserDisplayName",
    "UserId",
    "UserPrincipalName",
    "AADTenantId",
    "UserType",
    "CrossTenantAccessType",
    "HomeTenantId",
    "ResourceTenantId",
    "HomeTenantName",
    "AppOwnerTenantId",
    "ResourceOwnerTenantId",
    "Type",
];

const WORKSPACE: &str = "0e9d7c6b-5a49-4382-9170-6f5e4d3c2b1a";

fn la_row(s: &Synthetic, csv: bool) -> Vec<(&'static str, Value)> {
    let g = graph_object(s, true, false);
    let nested = |k: &str| Value::String(g[k].to_string());
    let time = if csv { la_time(s) } else { format!("{}", s.time.format("%Y-%m-%dT%H:%M:%S%.3fZ")) };
    let (category, table) = match s.event_type {
        EventType::NonInteractive => ("NonInteractiveUserSignInLogs", "AADNonInteractiveUserSignInLogs"),
        _ => ("SignInLogs", "SigninLogs"),
    };
    LA_COLUMNS
        .iter()
        .map(|c| {
            let v = match *c {
                "TenantId" => json!(WORKSPACE),
                "SourceSystem" => json!("Azure AD"),
                "TimeGenerated" | "CreatedDateTime" => json!(time),
                "ResourceId" => json!(format!("/tenants/{OUR_TENANT}/providers/Microsoft.aadiam")),
                "OperationName" => json!("Sign-in activity"),
                "OperationVersion" => json!("1.0"),
                "Category" => json!(category),
                "ResultType" => json!(s.error_code.to_string()),
                "ResultSignature" => json!("None"),
                "ResultDescription" => json!(s.failure_reason),
                "DurationMs" => json!("0"),
                "CorrelationId" => json!(s.correlation_id.to_string()),
                "Resource" | "ResourceGroup" => json!("Microsoft.aadiam"),
                "ResourceProvider" => json!("Microsoft.aadiam"),
                "Identity" => json!(s.user_display),
                "Level" => json!("4"),
                "Location" => json!(s.country),
                "AlternateSignInName" => json!(s.upn),
                "AppDisplayName" => json!(s.app_name),
                "AppId" => json!(s.app_id),
                "AuthenticationDetails" => nested("authenticationDetails"),
                "AuthenticationProcessingDetails" => nested("authenticationProcessingDetails"),
                "AuthenticationRequirement" => g["authenticationRequirement"].clone(),
                "ClientAppUsed" => json!("Browser"),
                "ConditionalAccessPolicies" => nested("appliedConditionalAccessPolicies"),
                "ConditionalAccessStatus" => g["conditionalAccessStatus"].clone(),
                "DeviceDetail" => nested("deviceDetail"),
                "IsInteractive" => {
                    json!(if s.event_type == EventType::Interactive { "TRUE" } else { "FALSE" })
                }
                "Id" | "OriginalRequestId" => json!(s.id.to_string()),
                "IPAddress" => json!(s.ip),
                "LocationDetails" => nested("location"),
                "MfaDetail" => json!("{}"),
                "ResourceDisplayName" => json!(s.resource_name),
                "ResourceIdentity" => json!(s.resource_id),
                "RiskDetail" | "RiskState" => json!("none"),
                "Status" => nested("status"),
                "TokenIssuerName" => json!(""),
                "TokenIssuerType" => json!("AzureAD"),
                "UserAgent" => json!(user_agent(s)),
                "UserDisplayName" => json!(s.user_display),
                "UserId" => json!(s.user_id.to_string()),
                "UserPrincipalName" => json!(s.upn),
                "AADTenantId" => json!(OUR_TENANT),
                "UserType" => json!(if s.user_type == UserType::Guest { "Guest" } else { "Member" }),
                "CrossTenantAccessType" => json!(access_text(s.access_type)),
                "HomeTenantId" => json!(s.home_tenant.to_string()),
                "ResourceTenantId" => json!(s.resource_tenant.to_string()),
                "HomeTenantName" => json!(s.home_tenant_name.clone().unwrap_or_default()),
                "AppOwnerTenantId" => json!(owner_of(s, &s.app_id)),
                "ResourceOwnerTenantId" => json!(owner_of(s, &s.resource_id)),
                "Type" => json!(table),
                other => unreachable!("{other}"),
            };
            (*c, v)
        })
        .collect()
}

/// The Entra admin center download header, as the portal writes it: note
/// `Application ID ` and `Resource ID ` with a trailing space, the double
/// space in `Autonomous system  number` and `Incoming token type` twice.
pub const PORTAL_HEADER: &[&str] = &[
    "Date (UTC)",
    "Request ID",
    "User agent",
    "Correlation ID",
    "User ID",
    "User",
    "Username",
    "User type",
    "Cross tenant access type",
    "Incoming token type",
    "Authentication Protocol",
    "Unique token identifier",
    "Original transfer method",
    "Client credential type",
    "Token Protection - Sign In Session",
    "Token Protection - Sign In Session StatusCode",
    "Application",
    "Application ID ",
    "App owner tenant ID",
    "Resource",
    "Resource ID ",
    "Resource tenant ID",
    "Resource owner tenant ID",
    "Home tenant ID",
    "Home tenant name",
    "IP address",
    "Location",
    "Status",
    "Sign-in error code",
    "Failure reason",
    "Client app",
    "Device ID",
    "Browser",
    "Operating System",
    "Compliant",
    "Managed",
    "Join Type",
    "Multifactor authentication result",
    "Multifactor authentication auth method",
    "Multifactor authentication auth detail",
    "Authentication requirement",
    "Sign-in identifier",
    "Session ID",
    "IP address (seen by resource)",
    "Through Global Secure Access",
    "Global Secure Access IP address",
    "Autonomous system  number",
    "Flagged for review",
    "Token issuer type",
    "Incoming token type",
    "Token issuer name",
    "Latency",
    "Conditional Access",
    "Managed Identity type",
    "Associated Resource Id",
    "Federated Token Id",
    "Federated Token Issuer",
];

fn portal_access(a: AccessType) -> &'static str {
    match a {
        AccessType::None => "None",
        AccessType::B2bCollaboration => "B2B collaboration",
        AccessType::B2bDirectConnect => "B2B direct connect",
        AccessType::MicrosoftSupport => "Microsoft support",
        AccessType::ServiceProvider => "Service provider",
        AccessType::Passthrough => "Passthrough",
        AccessType::Unknown => "",
    }
}

fn portal_row(s: &Synthetic) -> Vec<String> {
    PORTAL_HEADER
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let v: String = match c.trim() {
                "Date (UTC)" => s.time.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                "Request ID" | "Session ID" => s.id.to_string(),
                "User agent" => user_agent(s),
                "Correlation ID" => s.correlation_id.to_string(),
                "User ID" => s.user_id.to_string(),
                "User" => s.user_display.clone(),
                "Username" | "Sign-in identifier" => s.upn.clone(),
                "User type" => (if s.user_type == UserType::Guest { "Guest" } else { "Member" }).into(),
                "Cross tenant access type" => portal_access(s.access_type).into(),
                "Incoming token type" if i == 9 => "None".into(),
                "Authentication Protocol" => "None".into(),
                "Application" => s.app_name.clone(),
                "Application ID" => s.app_id.clone(),
                "Resource" => s.resource_name.clone(),
                "Resource ID" => s.resource_id.clone(),
                "Resource tenant ID" => s.resource_tenant.to_string(),
                "App owner tenant ID" => owner_of(s, &s.app_id),
                "Resource owner tenant ID" => owner_of(s, &s.resource_id),
                "Home tenant ID" => s.home_tenant.to_string(),
                "Home tenant name" => s.home_tenant_name.clone().unwrap_or_default(),
                "IP address" | "IP address (seen by resource)" => s.ip.clone(),
                "Location" => format!("{}, {}", s.city, s.country),
                "Status" => (if s.error_code == 0 { "Success" } else { "Failure" }).into(),
                "Sign-in error code" => s.error_code.to_string(),
                "Failure reason" => s.failure_reason.clone(),
                "Client app" => "Browser".into(),
                "Device ID" => s.device_id.map_or(String::new(), |d| d.to_string()),
                "Browser" => s.browser.into(),
                "Operating System" => s.os.into(),
                "Compliant" => (if s.compliant { "Yes" } else { "No" }).into(),
                "Managed" => (if s.managed { "Yes" } else { "No" }).into(),
                "Join Type" => (if s.managed { "Azure AD joined" } else { "" }).into(),
                "Multifactor authentication result" => {
                    (if s.mfa_by_claim { "MFA requirement satisfied by claim in the token" } else { "" })
                        .into()
                }
                "Authentication requirement" => (if s.mfa_required() {
                    "Multifactor authentication"
                } else {
                    "Single-factor authentication"
                })
                .into(),
                "Through Global Secure Access" | "Flagged for review" => "No".into(),
                "Autonomous system number" => "64500".into(),
                "Token issuer type" => "AzureAD".into(),
                "Latency" => "187".into(),
                "Conditional Access" => {
                    (if s.ca_policies.iter().any(|p| p.3 == "success") { "Success" } else { "Not Applied" })
                        .into()
                }
                _ => String::new(),
            };
            v
        })
        .collect()
}

/// A streaming writer for one format.
pub struct Writer<'w> {
    format: SynthFormat,
    out: &'w mut dyn Write,
    n: usize,
}

impl<'w> Writer<'w> {
    pub fn new(format: SynthFormat, out: &'w mut dyn Write) -> Result<Self> {
        match format {
            SynthFormat::LaCsv => {
                let header: Vec<String> = LA_COLUMNS
                    .iter()
                    .map(|c| {
                        if matches!(*c, "TimeGenerated" | "CreatedDateTime") {
                            format!("{c} [UTC]")
                        } else {
                            c.to_string()
                        }
                    })
                    .collect();
                write_csv_line(out, &header)?;
            }
            SynthFormat::PortalCsv => write_csv_line(out, PORTAL_HEADER)?,
            _ => {}
        }
        Ok(Writer { format, out, n: 0 })
    }

    pub fn write(&mut self, s: &Synthetic) -> Result<()> {
        let first = self.n == 0;
        match self.format {
            SynthFormat::GraphPage | SynthFormat::GraphV1 => {
                let beta = self.format == SynthFormat::GraphPage;
                if self.n.is_multiple_of(PAGE) {
                    if !first {
                        self.close_page(true)?;
                    }
                    let v = if beta { "beta" } else { "v1.0" };
                    write!(self.out, "{{\"@odata.context\":\"https://graph.microsoft.com/{v}/$metadata#auditLogs/signIns\",\"value\":[")?;
                } else {
                    self.out.write_all(b",")?;
                }
                serde_json::to_writer(&mut *self.out, &graph_object(s, beta, false))?;
            }
            SynthFormat::GraphArray | SynthFormat::PortalJson => {
                self.out.write_all(if first { b"[\n" } else { b",\n" })?;
                let mut ser = serde_json::Serializer::with_formatter(
                    &mut *self.out,
                    serde_json::ser::PrettyFormatter::with_indent(b"    "),
                );
                serde::Serialize::serialize(&graph_object(s, true, false), &mut ser)?;
            }
            SynthFormat::GraphNdjson => {
                serde_json::to_writer(&mut *self.out, &graph_object(s, true, false))?;
                self.out.write_all(b"\n")?;
            }
            SynthFormat::Diagnostic => {
                if self.n.is_multiple_of(BLOB) {
                    if !first {
                        self.out.write_all(b"]}\n")?;
                    }
                    self.out.write_all(b"{\"records\":[")?;
                } else {
                    self.out.write_all(b",")?;
                }
                serde_json::to_writer(&mut *self.out, &diag_record(s))?;
            }
            SynthFormat::DiagnosticNdjson => {
                serde_json::to_writer(&mut *self.out, &diag_record(s))?;
                self.out.write_all(b"\n")?;
            }
            SynthFormat::LaJson => {
                self.out.write_all(if first { b"[\n" } else { b",\n" })?;
                let m: serde_json::Map<String, Value> =
                    la_row(s, false).into_iter().map(|(k, v)| (k.to_string(), v)).collect();
                serde_json::to_writer(&mut *self.out, &m)?;
            }
            SynthFormat::LaCsv => {
                let row: Vec<String> =
                    la_row(s, true).into_iter().map(|(_, v)| crate::model::text::json_cell(&v)).collect();
                write_csv_line(self.out, &row)?;
            }
            SynthFormat::PortalCsv => {
                write_csv_line(self.out, &portal_row(s))?;
            }
        }
        self.n += 1;
        Ok(())
    }

    fn close_page(&mut self, more: bool) -> Result<()> {
        self.out.write_all(b"]")?;
        if more {
            write!(
                self.out,
                ",\"@odata.nextLink\":\"https://graph.microsoft.com/beta/auditLogs/signIns?$skiptoken={}\"",
                self.n
            )?;
        }
        self.out.write_all(b"}\n")?;
        Ok(())
    }

    pub fn finish(mut self) -> Result<()> {
        match self.format {
            SynthFormat::GraphPage | SynthFormat::GraphV1 => {
                if self.n == 0 {
                    self.out.write_all(b"{\"value\":[")?;
                }
                self.close_page(false)?;
            }
            SynthFormat::GraphArray | SynthFormat::PortalJson | SynthFormat::LaJson => {
                self.out.write_all(if self.n == 0 { b"[]\n" } else { b"\n]\n" })?;
            }
            SynthFormat::Diagnostic => {
                if self.n == 0 {
                    self.out.write_all(b"{\"records\":[")?;
                }
                self.out.write_all(b"]}\n")?;
            }
            _ => {}
        }
        self.out.flush()?;
        Ok(())
    }
}

fn write_csv_line<S: AsRef<[u8]>>(out: &mut dyn Write, fields: &[S]) -> Result<()> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(fields)?;
    out.write_all(&w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?)?;
    Ok(())
}
