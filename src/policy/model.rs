//! The cross-tenant access policy as Microsoft Graph returns it
//! (`/policies/crossTenantAccessPolicy`, `/default`, `/partners`).
//!
//! Everything Graph sends is parsed; fields we do not evaluate are kept
//! (reported by `policy show`), and fields we do not know are kept in
//! `extra` and reported as warnings, so newer Graph responses still load.

use std::collections::BTreeMap;
use std::ops::Deref;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::Guid;

/// `accessType` of a target configuration.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AccessKind {
    Allowed,
    Blocked,
    /// Graph's `unknownFutureValue`: evaluates to Unknown. Any other
    /// unknown spelling is an error naming its JSON path.
    UnknownFutureValue,
}

impl AccessKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AccessKind::Allowed => "allowed",
            AccessKind::Blocked => "blocked",
            AccessKind::UnknownFutureValue => "unknownFutureValue",
        }
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TargetType {
    User,
    Group,
    Application,
    UnknownFutureValue,
}

/// One entry of `targets`: an object id, an app id, or a keyword
/// (`AllUsers`, `AllApplications`, `Office365`, `AllMicrosoftApps`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    pub target: String,
    pub target_type: TargetType,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetConfig {
    pub access_type: AccessKind,
    #[serde(default)]
    pub targets: Targets,
}

/// A half's targets, shared by every copy of the policy: the policy in
/// force at each moment of an audit window is a copy of the one after it
/// with one change undone, and each partner that inherits a half resolves
/// to it, where a section may name a hundred thousand users.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Targets(Arc<[Target]>);

impl Deref for Targets {
    type Target = [Target];
    fn deref(&self) -> &[Target] {
        &self.0
    }
}

impl From<Vec<Target>> for Targets {
    fn from(targets: Vec<Target>) -> Targets {
        Targets(targets.into())
    }
}

impl<'a> IntoIterator for &'a Targets {
    type Item = &'a Target;
    type IntoIter = std::slice::Iter<'a, Target>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl FromIterator<Target> for Targets {
    fn from_iter<I: IntoIterator<Item = Target>>(targets: I) -> Targets {
        Targets(targets.into_iter().collect())
    }
}

impl Serialize for Targets {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Targets {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Targets, D::Error> {
        Vec::<Target>::deserialize(d).map(Targets::from)
    }
}

/// `crossTenantAccessPolicyB2BSetting`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct B2bSetting {
    #[serde(default)]
    pub users_and_groups: Option<TargetConfig>,
    #[serde(default)]
    pub applications: Option<TargetConfig>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct InboundTrust {
    #[serde(default)]
    pub is_mfa_accepted: Option<bool>,
    #[serde(default)]
    pub is_compliant_device_accepted: Option<bool>,
    #[serde(default, rename = "isHybridAzureADJoinedDeviceAccepted")]
    pub is_hybrid_joined_device_accepted: Option<bool>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ConsentSettings {
    #[serde(default)]
    pub inbound_allowed: Option<bool>,
    #[serde(default)]
    pub outbound_allowed: Option<bool>,
}

/// The four B2B sections, by name.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Section {
    #[serde(rename = "b2bCollaborationInbound")]
    CollaborationInbound,
    #[serde(rename = "b2bCollaborationOutbound")]
    CollaborationOutbound,
    #[serde(rename = "b2bDirectConnectInbound")]
    DirectConnectInbound,
    #[serde(rename = "b2bDirectConnectOutbound")]
    DirectConnectOutbound,
}

impl Section {
    pub const ALL: [Section; 4] = [
        Section::CollaborationInbound,
        Section::CollaborationOutbound,
        Section::DirectConnectInbound,
        Section::DirectConnectOutbound,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Section::CollaborationInbound => "b2bCollaborationInbound",
            Section::CollaborationOutbound => "b2bCollaborationOutbound",
            Section::DirectConnectInbound => "b2bDirectConnectInbound",
            Section::DirectConnectOutbound => "b2bDirectConnectOutbound",
        }
    }

    pub fn is_inbound(self) -> bool {
        matches!(self, Section::CollaborationInbound | Section::DirectConnectInbound)
    }

    pub fn is_direct_connect(self) -> bool {
        matches!(self, Section::DirectConnectInbound | Section::DirectConnectOutbound)
    }
}

/// The settings both the default and a partner carry.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    #[serde(default)]
    pub b2b_collaboration_inbound: Option<B2bSetting>,
    #[serde(default)]
    pub b2b_collaboration_outbound: Option<B2bSetting>,
    #[serde(default)]
    pub b2b_direct_connect_inbound: Option<B2bSetting>,
    #[serde(default)]
    pub b2b_direct_connect_outbound: Option<B2bSetting>,
    #[serde(default)]
    pub inbound_trust: Option<InboundTrust>,
    #[serde(default)]
    pub automatic_user_consent_settings: Option<ConsentSettings>,
    /// Parsed and reported, not evaluated (tenant restrictions v2 is
    /// enforced on devices and networks, not at sign-in to our tenant).
    #[serde(default)]
    pub tenant_restrictions: Option<Value>,
}

impl Settings {
    pub fn section(&self, s: Section) -> Option<&B2bSetting> {
        match s {
            Section::CollaborationInbound => self.b2b_collaboration_inbound.as_ref(),
            Section::CollaborationOutbound => self.b2b_collaboration_outbound.as_ref(),
            Section::DirectConnectInbound => self.b2b_direct_connect_inbound.as_ref(),
            Section::DirectConnectOutbound => self.b2b_direct_connect_outbound.as_ref(),
        }
    }

    pub fn section_mut(&mut self, s: Section) -> &mut Option<B2bSetting> {
        match s {
            Section::CollaborationInbound => &mut self.b2b_collaboration_inbound,
            Section::CollaborationOutbound => &mut self.b2b_collaboration_outbound,
            Section::DirectConnectInbound => &mut self.b2b_direct_connect_inbound,
            Section::DirectConnectOutbound => &mut self.b2b_direct_connect_outbound,
        }
    }
}

/// `crossTenantAccessPolicyConfigurationDefault`. Read field by field in
/// [`super::load`] so that every error names its JSON path.
#[derive(Clone, Debug, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DefaultConfig {
    #[serde(default)]
    pub is_service_default: Option<bool>,
    #[serde(flatten)]
    pub settings: Settings,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invitation_redemption_identity_provider_configuration: Option<Value>,
    /// Fields this version does not know (newer Graph sections).
    #[serde(skip_serializing)]
    pub extra: BTreeMap<String, Value>,
}

/// `crossTenantAccessPolicyConfigurationPartner`, read like [`DefaultConfig`].
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PartnerConfig {
    pub tenant_id: Guid,
    #[serde(default)]
    pub is_service_provider: Option<bool>,
    #[serde(default)]
    pub is_in_multi_tenant_organization: Option<bool>,
    #[serde(flatten)]
    pub settings: Settings,
    /// xtenant's own policy-as-code extension: the partner's Microsoft
    /// cloud when it is not ours (e.g. `microsoftonline.us`). Graph does not
    /// say which cloud a partner is in.
    #[serde(rename = "x-xtenant-cloud", skip_serializing_if = "Option::is_none")]
    pub cloud: Option<String>,
    #[serde(skip_serializing)]
    pub extra: BTreeMap<String, Value>,
}

/// The whole policy: what `default` and `partners` return, plus the
/// top-level `allowedCloudEndpoints`.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Policy {
    pub allowed_cloud_endpoints: Vec<String>,
    /// `None`: no default was supplied, the Microsoft service default applies.
    pub default: Option<DefaultConfig>,
    pub partners: BTreeMap<Guid, Arc<PartnerConfig>>,
    /// What loading noticed: unknown fields kept, fallbacks taken.
    pub warnings: Vec<String>,
    /// Where it came from, for messages.
    pub source: String,
}

/// Keys Graph sends that carry no access semantics; never warned about.
pub fn is_ignorable_key(k: &str) -> bool {
    k.starts_with('@')
        || matches!(k, "id" | "displayName" | "definition" | "deletedDateTime" | "identitySynchronization")
}

/// The Microsoft service default (what `isServiceDefault: true` means):
/// B2B collaboration allowed for all users and apps both ways, B2B direct
/// connect blocked both ways, no inbound trust.
pub fn service_default() -> DefaultConfig {
    let all = |kind: AccessKind| B2bSetting {
        users_and_groups: Some(TargetConfig {
            access_type: kind,
            targets: vec![Target { target: "AllUsers".into(), target_type: TargetType::User }].into(),
        }),
        applications: Some(TargetConfig {
            access_type: kind,
            targets: vec![Target { target: "AllApplications".into(), target_type: TargetType::Application }]
                .into(),
        }),
    };
    DefaultConfig {
        is_service_default: Some(true),
        settings: Settings {
            b2b_collaboration_inbound: Some(all(AccessKind::Allowed)),
            b2b_collaboration_outbound: Some(all(AccessKind::Allowed)),
            b2b_direct_connect_inbound: Some(all(AccessKind::Blocked)),
            b2b_direct_connect_outbound: Some(all(AccessKind::Blocked)),
            inbound_trust: Some(InboundTrust {
                is_mfa_accepted: Some(false),
                is_compliant_device_accepted: Some(false),
                is_hybrid_joined_device_accepted: Some(false),
            }),
            automatic_user_consent_settings: Some(ConsentSettings {
                inbound_allowed: Some(false),
                outbound_allowed: Some(false),
            }),
            tenant_restrictions: None,
        },
        invitation_redemption_identity_provider_configuration: None,
        extra: BTreeMap::new(),
    }
}
