//! The canonical audit event: one directoryAudit record, whatever export
//! it came from. Values stay as the log wrote them (JSON text); turning
//! them into policy sections is [`crate::policy::change`]'s job.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Guid;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub id: String,
    pub time: DateTime<Utc>,
    /// `activityDisplayName` (`operationName`), as logged.
    pub activity: String,
    pub category: Option<String>,
    /// `success` or `failure` (anything else kept as logged).
    pub result: Option<String>,
    pub result_reason: Option<String>,
    pub correlation_id: Option<String>,
    pub actor: Actor,
    /// The tenant whose audit log this is, when the export says.
    pub log_tenant: Option<Guid>,
    pub targets: Vec<AuditTarget>,
    /// `additionalDetails` key/value pairs.
    pub details: Vec<(String, String)>,
}

impl AuditEvent {
    pub fn succeeded(&self) -> bool {
        self.result.as_deref().is_none_or(|r| r.eq_ignore_ascii_case("success"))
    }
}

/// `initiatedBy`: a user or an app (service principal).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Actor {
    pub user_principal_name: Option<String>,
    pub user_id: Option<String>,
    pub app_name: Option<String>,
    pub app_id: Option<String>,
    pub ip_address: Option<String>,
}

impl Actor {
    /// The user principal name, else the app's name, else an id.
    pub fn label(&self) -> String {
        self.user_principal_name
            .clone()
            .or_else(|| self.app_name.clone().map(|n| format!("app: {n}")))
            .or_else(|| self.user_id.clone())
            .or_else(|| self.app_id.clone().map(|n| format!("app: {n}")))
            .unwrap_or_else(|| "(not logged)".into())
    }
}

/// One of `targetResources`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AuditTarget {
    pub id: Option<String>,
    pub display_name: Option<String>,
    /// `type` (`Policy` for cross-tenant access settings).
    pub kind: Option<String>,
    pub modified: Vec<ModifiedProperty>,
}

/// One of `modifiedProperties`: old and new values as the JSON text the
/// log carries (often JSON inside a JSON string), `None` for null.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ModifiedProperty {
    pub name: String,
    pub old: Option<String>,
    pub new: Option<String>,
}
