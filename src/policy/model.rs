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

use crate::model::{Guid, Hyphenated};

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
    pub target: TargetText,
    pub target_type: TargetType,
}

/// A target's text exactly as the policy wrote it. An id in its canonical
/// spelling (hyphenated, lower case: what Graph returns and `propose`
/// writes) is held as its 16 bytes, any other text as written.
///
/// Why: a proposal names every user a section needs, up to a million, and
/// each id as a `String` took 72 bytes (24, and 40 on the heap); this takes
/// 24 and no allocation. A text has one representation (an id spelled any
/// other way is kept as text), so equality and hashing are the text's, and
/// the order is the text's too ([`Ord`] below).
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum TargetText {
    /// The id's bytes, most significant first ([`Guid`]'s `u128` would
    /// align this to 16 bytes and make it 32).
    Id([u8; 16]),
    Text(Box<str>),
}

impl TargetText {
    /// The text, on the stack when it is an id.
    pub fn as_str(&self) -> TargetStr<'_> {
        match self {
            TargetText::Id(bytes) => TargetStr::Id(Guid(u128::from_be_bytes(*bytes)).hyphenated()),
            TargetText::Text(text) => TargetStr::Text(text),
        }
    }

    /// The id, when this is one in canonical spelling.
    pub fn id(&self) -> Option<Guid> {
        match self {
            TargetText::Id(bytes) => Some(Guid(u128::from_be_bytes(*bytes))),
            TargetText::Text(_) => None,
        }
    }

    pub fn eq_ignore_ascii_case(&self, other: &str) -> bool {
        match self {
            // Equal ignoring case to the canonical text: the same id spelled
            // exactly, in any case (without spelling this one out).
            TargetText::Id(bytes) => {
                Guid::parse_exact(other).is_some_and(|id| id.0 == u128::from_be_bytes(*bytes))
            }
            TargetText::Text(text) => text.eq_ignore_ascii_case(other),
        }
    }

    /// The text in ASCII lower case (an id in any case becomes canonical).
    pub fn to_ascii_lowercase(&self) -> TargetText {
        match self {
            TargetText::Id(_) => self.clone(),
            TargetText::Text(text) => text.to_ascii_lowercase().into(),
        }
    }

    /// The id this text names in canonical spelling, if it is one.
    fn canonical_id(text: &str) -> Option<[u8; 16]> {
        // Hyphenated hex digits, none of them upper case.
        let id = Guid::parse_exact(text).filter(|_| !text.bytes().any(|b| b.is_ascii_uppercase()))?;
        Some(id.0.to_be_bytes())
    }
}

impl From<&str> for TargetText {
    fn from(text: &str) -> TargetText {
        TargetText::canonical_id(text).map_or_else(|| TargetText::Text(text.into()), TargetText::Id)
    }
}

impl From<String> for TargetText {
    fn from(text: String) -> TargetText {
        TargetText::canonical_id(&text).map_or_else(|| TargetText::Text(text.into()), TargetText::Id)
    }
}

impl From<Guid> for TargetText {
    fn from(id: Guid) -> TargetText {
        TargetText::Id(id.0.to_be_bytes())
    }
}

impl PartialEq<&str> for TargetText {
    fn eq(&self, other: &&str) -> bool {
        *self.as_str() == **other
    }
}

impl Ord for TargetText {
    fn cmp(&self, other: &TargetText) -> std::cmp::Ordering {
        match (self, other) {
            // Lower-case hex in fixed places orders as its value does.
            (TargetText::Id(a), TargetText::Id(b)) => a.cmp(b),
            (TargetText::Text(a), TargetText::Text(b)) => a.cmp(b),
            _ => (*self.as_str()).cmp(&*other.as_str()),
        }
    }
}

impl PartialOrd for TargetText {
    fn partial_cmp(&self, other: &TargetText) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl std::fmt::Display for TargetText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(&self.as_str())
    }
}

impl std::fmt::Debug for TargetText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&*self.as_str(), f)
    }
}

impl Serialize for TargetText {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.as_str())
    }
}

impl<'de> Deserialize<'de> for TargetText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<TargetText, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = TargetText;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<TargetText, E> {
                Ok(text.into())
            }
            fn visit_string<E: serde::de::Error>(self, text: String) -> Result<TargetText, E> {
                Ok(text.into())
            }
        }
        d.deserialize_str(Visitor)
    }
}

/// A target's text to read: borrowed, or an id's spelled out on the stack.
pub enum TargetStr<'a> {
    Id(Hyphenated),
    Text(&'a str),
}

impl Deref for TargetStr<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        match self {
            // Only hex digits and hyphens were written.
            TargetStr::Id(text) => text.as_str(),
            TargetStr::Text(text) => text,
        }
    }
}

impl AsRef<str> for TargetStr<'_> {
    fn as_ref(&self) -> &str {
        self
    }
}

impl std::fmt::Display for TargetStr<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self)
    }
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
    pub default: Option<Arc<DefaultConfig>>,
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const ID: &str = "3f2504e0-4f89-41d3-9a0c-0305e82c3301";

    #[test]
    fn an_id_in_canonical_spelling_is_held_as_its_bytes_and_any_other_text_as_written() {
        assert!(matches!(TargetText::from(ID), TargetText::Id(_)));
        for text in [
            "3F2504E0-4F89-41D3-9A0C-0305E82C3301",
            "{3f2504e0-4f89-41d3-9a0c-0305e82c3301}",
            " 3f2504e0-4f89-41d3-9a0c-0305e82c3301",
            "3f2504e04f8941d39a0c0305e82c3301",
            "AllUsers",
            "",
        ] {
            let target = TargetText::from(text);
            assert!(matches!(target, TargetText::Text(_)), "{text}");
            assert_eq!(target.to_string(), text);
        }
        assert_eq!(TargetText::from(ID).to_string(), ID);
        assert_eq!(TargetText::from(ID.to_uppercase()).to_ascii_lowercase(), TargetText::from(ID));
    }

    #[test]
    fn a_target_takes_32_bytes_and_an_id_in_it_no_allocation() {
        assert_eq!(std::mem::size_of::<TargetText>(), 24);
        assert_eq!(std::mem::size_of::<Target>(), 32);
    }

    #[test]
    fn a_target_reads_and_writes_as_the_text_it_was() {
        let text = format!(
            r#"[{{"target":"{ID}","targetType":"user"}},{{"target":"{}","targetType":"group"}}]"#,
            ID.to_uppercase()
        );
        let targets: Vec<Target> = serde_json::from_str(&text).unwrap();
        assert!(matches!(targets[0].target, TargetText::Id(_)));
        assert_eq!(serde_json::to_string(&targets).unwrap(), text);
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(serde_json::from_value::<Vec<Target>>(value).unwrap(), targets);
    }

    /// Ids in canonical and other spellings, keywords, and what sorts
    /// between and around them.
    fn any_text() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<u128>().prop_map(|n| crate::model::Guid(n).to_string()),
            any::<u128>().prop_map(|n| crate::model::Guid(n).to_string().to_uppercase()),
            "[0-9a-fA-F{} -]{0,40}",
            proptest::sample::select(vec!["AllUsers", "AllApplications", "Office365", "0", "g", "~"])
                .prop_map(String::from),
        ]
    }

    proptest! {
        #[test]
        fn targets_order_and_compare_as_their_texts(a in any_text(), b in any_text()) {
            let (x, y) = (TargetText::from(a.as_str()), TargetText::from(b.as_str()));
            prop_assert_eq!(x.cmp(&y), a.cmp(&b));
            prop_assert_eq!(x == y, a == b);
            prop_assert_eq!(x.eq_ignore_ascii_case(&b), a.eq_ignore_ascii_case(&b));
            prop_assert_eq!(&*x.as_str(), a.as_str());
        }
    }
}
