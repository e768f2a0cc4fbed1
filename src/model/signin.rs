//! The canonical sign-in: one shape for every export format.
//!
//! Field meanings and where each comes from in every format are documented
//! in `docs/canonical-record.md`.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Clause, Guid};

/// Squashes an enum spelling to compare across exports: `B2B collaboration`,
/// `b2bCollaboration` and `B2B_COLLABORATION` all become `b2bcollaboration`.
/// On the stack: it runs for several fields of every record, and the
/// spellings it compares are short.
pub fn squash(s: &str) -> Squashed {
    let mut inline = [0u8; Squashed::INLINE];
    let mut len = 0;
    for b in s.bytes().filter(u8::is_ascii_alphanumeric) {
        if len == Squashed::INLINE {
            let long = s.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_lowercase());
            return Squashed::Heap(long.collect());
        }
        inline[len] = b.to_ascii_lowercase();
        len += 1;
    }
    Squashed::Inline(inline, len as u8)
}

/// The text [`squash`] makes: ASCII letters and digits, lower-case.
#[derive(Clone, Debug)]
pub enum Squashed {
    Inline([u8; Squashed::INLINE], u8),
    Heap(String),
}

impl Squashed {
    const INLINE: usize = 64;

    pub fn as_str(&self) -> &str {
        match self {
            // Only ASCII letters and digits were written.
            Squashed::Inline(b, n) => std::str::from_utf8(&b[..*n as usize]).unwrap_or_default(),
            Squashed::Heap(s) => s,
        }
    }
}

impl PartialEq<&str> for Squashed {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// `crossTenantAccessType` in Graph's spelling.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum AccessType {
    None,
    B2bCollaboration,
    B2bDirectConnect,
    MicrosoftSupport,
    ServiceProvider,
    Passthrough,
    /// Absent from the record, or a value we do not know (including Graph's
    /// `unknownFutureValue`, which stands for any value newer than the client).
    Unknown,
}

impl AccessType {
    pub fn parse(s: &str) -> AccessType {
        // Graph and Log Analytics spell it as `as_str` does: matched as it
        // is first, without squashing a copy (some 450 instructions a
        // sign-in).
        if let Some(a) = AccessType::ALL.into_iter().find(|a| a.as_str() == s) {
            return a;
        }
        match squash(s).as_str() {
            "none" => AccessType::None,
            "b2bcollaboration" => AccessType::B2bCollaboration,
            "b2bdirectconnect" => AccessType::B2bDirectConnect,
            "microsoftsupport" => AccessType::MicrosoftSupport,
            "serviceprovider" => AccessType::ServiceProvider,
            "passthrough" => AccessType::Passthrough,
            _ => AccessType::Unknown,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AccessType::None => "none",
            AccessType::B2bCollaboration => "b2bCollaboration",
            AccessType::B2bDirectConnect => "b2bDirectConnect",
            AccessType::MicrosoftSupport => "microsoftSupport",
            AccessType::ServiceProvider => "serviceProvider",
            AccessType::Passthrough => "passthrough",
            AccessType::Unknown => "unknown",
        }
    }

    pub const ALL: [AccessType; 7] = [
        AccessType::None,
        AccessType::B2bCollaboration,
        AccessType::B2bDirectConnect,
        AccessType::MicrosoftSupport,
        AccessType::ServiceProvider,
        AccessType::Passthrough,
        AccessType::Unknown,
    ];
}

/// Which sign-in log the record belongs to.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    Interactive,
    NonInteractive,
    ServicePrincipal,
    ManagedIdentity,
    Unknown,
}

impl EventType {
    /// From a diagnostic category, a Log Analytics table name or a Graph beta
    /// `signInEventTypes` value.
    pub fn from_name(s: &str) -> Option<EventType> {
        Some(match squash(s).as_str() {
            "signinlogs" | "interactiveuser" | "interactive" => EventType::Interactive,
            "noninteractiveusersigninlogs"
            | "aadnoninteractiveusersigninlogs"
            | "noninteractiveuser"
            | "noninteractive" => EventType::NonInteractive,
            "serviceprincipalsigninlogs"
            | "aadserviceprincipalsigninlogs"
            | "microsoftserviceprincipalsigninlogs"
            | "serviceprincipal" => EventType::ServicePrincipal,
            "managedidentitysigninlogs" | "aadmanagedidentitysigninlogs" | "managedidentity" => {
                EventType::ManagedIdentity
            }
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Interactive => "interactive",
            EventType::NonInteractive => "non_interactive",
            EventType::ServicePrincipal => "service_principal",
            EventType::ManagedIdentity => "managed_identity",
            EventType::Unknown => "unknown",
        }
    }

    pub const ALL: [EventType; 5] = [
        EventType::Interactive,
        EventType::NonInteractive,
        EventType::ServicePrincipal,
        EventType::ManagedIdentity,
        EventType::Unknown,
    ];
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum UserType {
    Member,
    Guest,
    #[default]
    Unknown,
}

impl UserType {
    pub fn parse(s: &str) -> UserType {
        match squash(s).as_str() {
            "member" => UserType::Member,
            "guest" => UserType::Guest,
            _ => UserType::Unknown,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            UserType::Member => "member",
            UserType::Guest => "guest",
            UserType::Unknown => "unknown",
        }
    }
}

/// `conditionalAccessStatus`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CaStatus {
    Success,
    Failure,
    NotApplied,
    #[default]
    Unknown,
}

impl CaStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CaStatus::Success => "success",
            CaStatus::Failure => "failure",
            CaStatus::NotApplied => "notApplied",
            CaStatus::Unknown => "unknown",
        }
    }

    pub fn parse(s: &str) -> CaStatus {
        match squash(s).as_str() {
            "success" => CaStatus::Success,
            "failure" => CaStatus::Failure,
            "notapplied" => CaStatus::NotApplied,
            _ => CaStatus::Unknown,
        }
    }
}

/// What the sign-in relied on, as far as the record shows it. The policy
/// evaluator needs this to judge inbound trust (MFA and device claims).
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize)]
pub struct Evidence {
    /// An applied Conditional Access policy required MFA (alone, or an
    /// authentication strength), or the sign-in's authentication requirement
    /// was multi-factor and no policy kept whole ([`Clause`]) explains it.
    pub mfa_required: bool,
    /// MFA was satisfied by a claim in the incoming token ("MFA requirement
    /// satisfied by claim in the token"). For an external user this is the
    /// home tenant's claim when inbound MFA trust is on, or an earlier MFA in
    /// our tenant: the log cannot tell the two apart.
    pub mfa_by_claim: bool,
    /// An applied Conditional Access policy required a compliant device (as
    /// its only grant control).
    pub compliant_device_required: bool,
    /// An applied Conditional Access policy required a hybrid joined device
    /// (as its only grant control).
    pub hybrid_join_required: bool,
    /// The record lists its Conditional Access policies. Without them (the
    /// portal CSV download) device requirements cannot be seen, and the
    /// device flags above say nothing.
    pub ca_details: bool,
    /// Applied policies with several grant controls or an authentication
    /// strength, kept whole: sorted, usually empty.
    pub clauses: Vec<Clause>,
}

#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize)]
pub struct Device {
    pub compliant: Option<bool>,
    pub managed: Option<bool>,
    pub trust_type: Option<String>,
}

/// One sign-in, whatever export it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct SignIn {
    /// The request id (`id`, `Id`, `Request ID`), the user's and app's ids
    /// and names, in one allocation ([`Texts`]); read them through
    /// [`SignIn::id`], [`SignIn::user_id`] and their neighbours.
    pub texts: Texts,
    pub time: DateTime<Utc>,
    pub event_type: EventType,
    pub user_type: UserType,
    pub home_tenant: Option<Guid>,
    pub resource_tenant: Option<Guid>,
    /// The directory whose log this is, where the export says so (the
    /// diagnostic envelope's `tenantId`, Log Analytics' `AADTenantId`).
    pub log_tenant: Option<Guid>,
    pub access_type: AccessType,
    /// The tenant that owns the client app (`appOwnerTenantId`, Graph beta,
    /// Log Analytics, the admin center download): tells Microsoft's apps
    /// from others.
    pub app_owner_tenant: Option<Guid>,
    /// The tenant that owns the resource (`resourceOwnerTenantId`).
    pub resource_owner_tenant: Option<Guid>,
    pub error_code: u32,
    pub ca_status: CaStatus,
    pub evidence: Evidence,
    pub device: Device,
}

/// A text of a sign-in, in the order [`Texts`] keeps them.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Text {
    /// The request id; always present, empty on a sign-in that is not
    /// cross-tenant.
    Id,
    UserId,
    UserPrincipalName,
    HomeTenantName,
    AppId,
    AppName,
    ResourceId,
    ResourceName,
    /// `tokenIssuerType`: `AzureAD` for Entra accounts; cross-tenant access
    /// settings govern only those.
    TokenIssuerType,
}

impl Text {
    pub const ALL: [Text; 9] = [
        Text::Id,
        Text::UserId,
        Text::UserPrincipalName,
        Text::HomeTenantName,
        Text::AppId,
        Text::AppName,
        Text::ResourceId,
        Text::ResourceName,
        Text::TokenIssuerType,
    ];
}

/// The longest text a sign-in may bring, in bytes: the longest text Entra
/// ID allows in any of them at four bytes a character (a user principal
/// name: 1,024 characters in Active Directory's schema; a display name
/// holds at most 256; ids are GUIDs). A group and its output rows hold
/// their texts in memory and write them twice (the sort key and the
/// line), so a forged record with a megabyte-long app id held megabytes a
/// group; reading keeps such a record out instead, named and counted like
/// any malformed record.
pub const MAX_TEXT_BYTES: usize = 4096;

/// A sign-in's texts one after another in one buffer, each present or not.
/// A cross-tenant sign-in has up to nine, made on a pool thread and
/// dropped on the grouping's one thread: as nine `String`s, freeing them
/// was a fifth of that thread's work at a million groups.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Texts {
    buf: String,
    /// Where each text ends in `buf`, in the order of [`Text::ALL`].
    ends: [u32; Text::ALL.len()],
    /// Bit i: text i is present.
    present: u16,
}

impl Texts {
    pub fn get(&self, t: Text) -> Option<&str> {
        let i = t as usize;
        if self.present & (1 << i) == 0 {
            return None;
        }
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        self.buf.get(start..self.ends[i] as usize)
    }

    /// Builds the texts in order: `write` appends text `t` to the buffer
    /// (made with room for `capacity` bytes) and says whether it is present.
    /// What an absent text wrote is dropped.
    pub fn from_fn(capacity: usize, mut write: impl FnMut(Text, &mut String) -> bool) -> Texts {
        let mut texts = Texts { buf: String::with_capacity(capacity), ..Texts::default() };
        for t in Text::ALL {
            let start = texts.buf.len();
            if write(t, &mut texts.buf) {
                texts.present |= 1 << t as usize;
            } else {
                texts.buf.truncate(start);
            }
            // A sign-in's texts come from one record: far below 4 GB.
            texts.ends[t as usize] = u32::try_from(texts.buf.len()).unwrap_or(u32::MAX);
        }
        texts
    }

    /// These texts with `t` set to `value`.
    pub fn with(&self, t: Text, value: Option<&str>) -> Texts {
        let capacity = self.buf.len() + value.map_or(0, str::len);
        Texts::from_fn(capacity, |u, out| {
            let v = if u == t { value } else { self.get(u) };
            out.push_str(v.unwrap_or_default());
            v.is_some()
        })
    }

    /// The texts named, each as given; the others absent (the request id
    /// empty).
    pub fn of(values: &[(Text, &str)]) -> Texts {
        let capacity = values.iter().map(|(_, v)| v.len()).sum();
        Texts::from_fn(capacity, |t, out| match values.iter().find(|(u, _)| *u == t) {
            Some((_, v)) => {
                out.push_str(v);
                true
            }
            None => t == Text::Id,
        })
    }
}

impl std::fmt::Debug for Texts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let present = Text::ALL.into_iter().filter_map(|t| self.get(t).map(|v| (t, v)));
        f.debug_map().entries(present).finish()
    }
}

impl SignIn {
    /// The request id: empty on a sign-in that is not cross-tenant.
    pub fn id(&self) -> &str {
        self.texts.get(Text::Id).unwrap_or_default()
    }

    pub fn user_id(&self) -> Option<&str> {
        self.texts.get(Text::UserId)
    }

    pub fn user_principal_name(&self) -> Option<&str> {
        self.texts.get(Text::UserPrincipalName)
    }

    pub fn home_tenant_name(&self) -> Option<&str> {
        self.texts.get(Text::HomeTenantName)
    }

    pub fn app_id(&self) -> Option<&str> {
        self.texts.get(Text::AppId)
    }

    pub fn app_name(&self) -> Option<&str> {
        self.texts.get(Text::AppName)
    }

    pub fn resource_id(&self) -> Option<&str> {
        self.texts.get(Text::ResourceId)
    }

    pub fn resource_name(&self) -> Option<&str> {
        self.texts.get(Text::ResourceName)
    }

    pub fn token_issuer_type(&self) -> Option<&str> {
        self.texts.get(Text::TokenIssuerType)
    }

    pub fn succeeded(&self) -> bool {
        super::codes::is_success(self.error_code)
    }

    /// Home and resource tenant both known and different. A sign-in that
    /// is not carries only what every reader counts it by (its time, event
    /// type, error code and tenants): the readers leave its other fields
    /// empty ([`SignIn::not_cross_tenant`]), and nothing may read them.
    pub fn is_cross_tenant(&self) -> bool {
        matches!((self.home_tenant, self.resource_tenant), (Some(h), Some(r)) if h != r)
    }

    /// A sign-in that is not cross-tenant, as the readers keep it: the
    /// request id, user, app, evidence and device are not copied.
    pub fn not_cross_tenant(
        time: DateTime<Utc>,
        event_type: EventType,
        error_code: u32,
        log_tenant: Option<Guid>,
        home_tenant: Option<Guid>,
        resource_tenant: Option<Guid>,
    ) -> SignIn {
        SignIn {
            texts: Texts::of(&[]),
            time,
            event_type,
            user_type: UserType::Unknown,
            home_tenant,
            resource_tenant,
            log_tenant,
            access_type: AccessType::Unknown,
            app_owner_tenant: None,
            resource_owner_tenant: None,
            error_code,
            ca_status: CaStatus::Unknown,
            evidence: Evidence::default(),
            device: Device::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_in_one_buffer_read_back_as_written_present_empty_or_absent() {
        let texts =
            Texts::of(&[(Text::UserId, "u1"), (Text::AppName, ""), (Text::TokenIssuerType, "AzureAD")]);
        let read: Vec<_> = Text::ALL.into_iter().map(|t| texts.get(t)).collect();
        assert_eq!(
            read,
            [Some(""), Some("u1"), None, None, None, Some(""), None, None, Some("AzureAD")],
            "the request id is always there; an empty text is not an absent one"
        );
        let changed = texts.with(Text::UserId, None).with(Text::ResourceName, Some("Res"));
        assert_eq!((changed.get(Text::UserId), changed.get(Text::ResourceName)), (None, Some("Res")));
        assert_eq!(changed.get(Text::TokenIssuerType), Some("AzureAD"));
        assert_eq!(changed.with(Text::UserId, Some("u1")).with(Text::ResourceName, None), texts);
        // What `write` appended for an absent text is not kept.
        let dropped = Texts::from_fn(0, |t, out| {
            out.push('x');
            t != Text::UserId
        });
        assert_eq!((dropped.get(Text::UserId), dropped.get(Text::AppId)), (None, Some("x")));
        assert_eq!(dropped.buf.len(), Text::ALL.len() - 1);
    }

    #[test]
    fn access_type_spellings() {
        assert_eq!(AccessType::parse("b2bCollaboration"), AccessType::B2bCollaboration);
        assert_eq!(AccessType::parse("B2B collaboration"), AccessType::B2bCollaboration);
        assert_eq!(AccessType::parse("B2B direct connect"), AccessType::B2bDirectConnect);
        assert_eq!(AccessType::parse("unknownFutureValue"), AccessType::Unknown);
        assert_eq!(AccessType::parse(""), AccessType::Unknown);
        for a in AccessType::ALL {
            assert_eq!(AccessType::parse(a.as_str()), a);
        }
    }

    #[test]
    fn event_type_names() {
        assert_eq!(EventType::from_name("SignInLogs"), Some(EventType::Interactive));
        assert_eq!(EventType::from_name("AADNonInteractiveUserSignInLogs"), Some(EventType::NonInteractive));
        assert_eq!(EventType::from_name("managedIdentity"), Some(EventType::ManagedIdentity));
        assert_eq!(EventType::from_name("AuditLogs"), None);
    }
}
