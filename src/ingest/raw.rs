//! The loose sign-in shape every reader fills before normalisation.
//!
//! Graph (camelCase), the diagnostic-settings body (camelCase, inside
//! `properties`) and Log Analytics rows (PascalCase, nested columns as JSON
//! text) carry the same signIn schema; one struct with aliases reads all of
//! them. CSV readers fill the same struct from their columns. Anything not
//! named here is skipped unread.

use std::borrow::Cow;

use serde::Deserialize;

use super::lenient::{Embedded, LenientBool, LenientU32, Text};

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawSignIn<'a> {
    #[serde(borrow, default, alias = "Id")]
    pub id: Option<Cow<'a, str>>,
    #[serde(borrow, default, alias = "CreatedDateTime")]
    pub created_date_time: Option<Cow<'a, str>>,
    /// Diagnostic envelope `time`.
    #[serde(borrow, default)]
    pub time: Option<Cow<'a, str>>,
    #[serde(borrow, default, rename = "TimeGenerated")]
    pub time_generated: Option<Cow<'a, str>>,

    #[serde(default, alias = "UserId")]
    pub user_id: Text,
    #[serde(borrow, default, alias = "UserPrincipalName")]
    pub user_principal_name: Option<Cow<'a, str>>,
    #[serde(borrow, default, alias = "UserType")]
    pub user_type: Option<Cow<'a, str>>,
    #[serde(borrow, default, alias = "HomeTenantId")]
    pub home_tenant_id: Option<Cow<'a, str>>,
    #[serde(borrow, default, alias = "HomeTenantName")]
    pub home_tenant_name: Option<Cow<'a, str>>,
    #[serde(borrow, default, alias = "ResourceTenantId")]
    pub resource_tenant_id: Option<Cow<'a, str>>,
    #[serde(borrow, default, alias = "CrossTenantAccessType")]
    pub cross_tenant_access_type: Option<Cow<'a, str>>,

    #[serde(default, alias = "AppId")]
    pub app_id: Text,
    #[serde(borrow, default, alias = "AppDisplayName")]
    pub app_display_name: Option<Cow<'a, str>>,
    /// Graph's resource *app* id. (Log Analytics names it `ResourceIdentity`;
    /// its `ResourceId` column is an Azure resource path, not read.)
    #[serde(default, alias = "ResourceIdentity")]
    pub resource_id: Text,
    /// `ResourceId` is the resource app id in the Graph PowerShell SDK's
    /// output but an Azure resource path in Log Analytics: read apart and
    /// used only when it is a GUID.
    #[serde(default, rename = "ResourceId")]
    pub resource_id_pascal: Text,
    #[serde(borrow, default, alias = "ResourceDisplayName")]
    pub resource_display_name: Option<Cow<'a, str>>,
    #[serde(default, alias = "ServicePrincipalId")]
    pub service_principal_id: Text,

    #[serde(default, alias = "Status")]
    pub status: Embedded<RawStatus>,
    /// Diagnostic envelope and Log Analytics: the error code as text.
    #[serde(default, alias = "ResultType")]
    pub result_type: LenientU32,
    #[serde(borrow, default, alias = "ConditionalAccessStatus")]
    pub conditional_access_status: Option<Cow<'a, str>>,
    #[serde(default, alias = "ConditionalAccessPolicies", alias = "AppliedConditionalAccessPolicies")]
    pub applied_conditional_access_policies: Embedded<Vec<RawCaPolicy>>,
    #[serde(default, alias = "AuthenticationDetails")]
    pub authentication_details: Embedded<Vec<RawAuthStep>>,
    #[serde(borrow, default, alias = "AuthenticationRequirement")]
    pub authentication_requirement: Option<Cow<'a, str>>,
    #[serde(default, alias = "MfaDetail")]
    pub mfa_detail: Embedded<RawMfaDetail>,
    #[serde(default, alias = "DeviceDetail")]
    pub device_detail: Embedded<RawDevice>,
    #[serde(default, alias = "IsInteractive")]
    pub is_interactive: LenientBool,
    /// Graph beta.
    #[serde(default, alias = "SignInEventTypes")]
    pub sign_in_event_types: Embedded<Vec<String>>,
    #[serde(borrow, default, alias = "TokenIssuerType")]
    pub token_issuer_type: Option<Cow<'a, str>>,

    /// Diagnostic envelope `category`; Log Analytics `Category`.
    #[serde(borrow, default, alias = "Category")]
    pub category: Option<Cow<'a, str>>,
    /// Log Analytics table name.
    #[serde(borrow, default, rename = "Type")]
    pub table: Option<Cow<'a, str>>,
    /// Diagnostic envelope: the directory the log belongs to.
    #[serde(borrow, default)]
    pub tenant_id: Option<Cow<'a, str>>,
    /// Log Analytics: the directory (`TenantId` there is the workspace).
    #[serde(borrow, default, rename = "AADTenantId")]
    pub aad_tenant_id: Option<Cow<'a, str>>,
    /// Diagnostic envelope body.
    #[serde(borrow, default)]
    pub properties: Option<Box<RawSignIn<'a>>>,

    /// Log Analytics query API response: `{"tables": [{"columns", "rows"}]}`.
    #[serde(default)]
    pub tables: Option<Vec<LaTable>>,

    /// Present on audit records only; lets us say "this is an audit log".
    #[serde(borrow, default, alias = "ActivityDisplayName")]
    pub activity_display_name: Option<Cow<'a, str>>,
    #[serde(borrow, default, alias = "OperationName")]
    pub operation_name: Option<Cow<'a, str>>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawStatus {
    #[serde(default, alias = "ErrorCode")]
    pub error_code: LenientU32,
    #[serde(default, alias = "AdditionalDetails")]
    pub additional_details: Text,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
// Only what evaluation reads: every field here is an allocation per
// policy per record, and real records list ten or more policies.
pub struct RawCaPolicy {
    #[serde(default, alias = "Result")]
    pub result: Text,
    #[serde(default, alias = "EnforcedGrantControls")]
    pub enforced_grant_controls: Option<Vec<String>>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawAuthStep {
    #[serde(default, alias = "AuthenticationStepResultDetail")]
    pub authentication_step_result_detail: Text,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawMfaDetail {
    #[serde(default, alias = "AuthDetail")]
    pub auth_detail: Text,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawDevice {
    #[serde(default, alias = "IsCompliant")]
    pub is_compliant: LenientBool,
    #[serde(default, alias = "IsManaged")]
    pub is_managed: LenientBool,
    #[serde(default, alias = "TrustType")]
    pub trust_type: Text,
}

/// One table of a Log Analytics query API response: rows are positional.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct LaTable {
    #[serde(default)]
    pub columns: Vec<LaColumn>,
    #[serde(default)]
    pub rows: Vec<Vec<serde_json::Value>>,
}

#[derive(Debug, Default, Clone, Deserialize)]
pub struct LaColumn {
    pub name: String,
}
