//! The loose sign-in shape every reader fills before normalisation.
//!
//! Graph (camelCase), the diagnostic-settings body (camelCase, inside
//! `properties`) and Log Analytics rows (PascalCase, nested columns as JSON
//! text) carry the same signIn schema; one struct with aliases reads all of
//! them. CSV readers fill the same struct from their columns. Anything not
//! named here is skipped unread.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;

use crate::model::signin::squash;
use crate::model::{Controls, EventType, Guid};

use super::lenient::{borrowed_text, BorrowedText, Embedded, LenientBool, LenientU32, Text};

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawSignIn<'a> {
    #[serde(borrow, default, deserialize_with = "borrowed_text", alias = "Id")]
    pub id: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrowed_text", alias = "CreatedDateTime")]
    pub created_date_time: Option<Cow<'a, str>>,
    /// Diagnostic envelope `time`.
    #[serde(borrow, default, deserialize_with = "borrowed_text")]
    pub time: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrowed_text", rename = "TimeGenerated")]
    pub time_generated: Option<Cow<'a, str>>,

    #[serde(borrow, default, alias = "UserId")]
    pub user_id: BorrowedText<'a>,
    #[serde(borrow, default, deserialize_with = "borrowed_text", alias = "UserPrincipalName")]
    pub user_principal_name: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrowed_text", alias = "UserType")]
    pub user_type: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrowed_text", alias = "HomeTenantId")]
    pub home_tenant_id: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrowed_text", alias = "HomeTenantName")]
    pub home_tenant_name: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrowed_text", alias = "ResourceTenantId")]
    pub resource_tenant_id: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrowed_text", alias = "CrossTenantAccessType")]
    pub cross_tenant_access_type: Option<Cow<'a, str>>,

    #[serde(borrow, default, alias = "AppId")]
    pub app_id: BorrowedText<'a>,
    #[serde(borrow, default, deserialize_with = "borrowed_text", alias = "AppDisplayName")]
    pub app_display_name: Option<Cow<'a, str>>,
    /// Graph beta, Log Analytics, the admin center download.
    #[serde(default, alias = "AppOwnerTenantId")]
    pub app_owner_tenant_id: MaybeGuid,
    #[serde(default, alias = "ResourceOwnerTenantId")]
    pub resource_owner_tenant_id: MaybeGuid,
    /// Graph's resource *app* id. (Log Analytics names it `ResourceIdentity`;
    /// its `ResourceId` column is an Azure resource path, not read.)
    #[serde(borrow, default, alias = "ResourceIdentity")]
    pub resource_id: BorrowedText<'a>,
    /// `ResourceId` is the resource app id in the Graph PowerShell SDK's
    /// output but an Azure resource path in Log Analytics: read apart and
    /// used only when it is a GUID.
    #[serde(borrow, default, rename = "ResourceId")]
    pub resource_id_pascal: BorrowedText<'a>,
    #[serde(borrow, default, deserialize_with = "borrowed_text", alias = "ResourceDisplayName")]
    pub resource_display_name: Option<Cow<'a, str>>,
    #[serde(borrow, default, alias = "ServicePrincipalId")]
    pub service_principal_id: BorrowedText<'a>,

    #[serde(default, alias = "Status")]
    pub status: Embedded<RawStatus>,
    /// Diagnostic envelope and Log Analytics: the error code as text.
    #[serde(default, alias = "ResultType")]
    pub result_type: LenientU32,
    #[serde(borrow, default, deserialize_with = "borrowed_text", alias = "ConditionalAccessStatus")]
    pub conditional_access_status: Option<Cow<'a, str>>,
    /// Graph; Log Analytics `AppliedConditionalAccessPolicies`. Log
    /// Analytics rows can also fill `ConditionalAccessPolicies`, read apart:
    /// two aliases of one field would make serde refuse every such row as a
    /// "duplicate field". [`RawSignIn::ca_policies`] takes the filled one.
    #[serde(borrow, default, alias = "AppliedConditionalAccessPolicies")]
    pub applied_conditional_access_policies: Later<'a, Embedded<Vec<RawCaPolicy>>>,
    #[serde(borrow, default, rename = "ConditionalAccessPolicies")]
    pub conditional_access_policies: Later<'a, Embedded<Vec<RawCaPolicy>>>,
    #[serde(default, alias = "AuthenticationDetails")]
    pub authentication_details: Embedded<Vec<RawAuthStep>>,
    #[serde(borrow, default, deserialize_with = "borrowed_text", alias = "AuthenticationRequirement")]
    pub authentication_requirement: Option<Cow<'a, str>>,
    #[serde(default, alias = "MfaDetail")]
    pub mfa_detail: Embedded<RawMfaDetail>,
    #[serde(default, alias = "DeviceDetail")]
    pub device_detail: Embedded<RawDevice>,
    #[serde(default, alias = "IsInteractive")]
    pub is_interactive: LenientBool,
    /// Graph beta.
    #[serde(default, alias = "SignInEventTypes")]
    pub sign_in_event_types: Embedded<EventTypes>,
    #[serde(borrow, default, deserialize_with = "borrowed_text", alias = "TokenIssuerType")]
    pub token_issuer_type: Option<Cow<'a, str>>,

    /// Diagnostic envelope `category`; Log Analytics `Category`.
    #[serde(borrow, default, deserialize_with = "borrowed_text", alias = "Category")]
    pub category: Option<Cow<'a, str>>,
    /// Log Analytics table name.
    #[serde(borrow, default, deserialize_with = "borrowed_text", rename = "Type")]
    pub table: Option<Cow<'a, str>>,
    /// Diagnostic envelope: the directory the log belongs to.
    #[serde(borrow, default, deserialize_with = "borrowed_text")]
    pub tenant_id: Option<Cow<'a, str>>,
    /// Log Analytics: the directory (`TenantId` there is the workspace).
    #[serde(borrow, default, deserialize_with = "borrowed_text", rename = "AADTenantId")]
    pub aad_tenant_id: Option<Cow<'a, str>>,
    /// Diagnostic envelope body.
    #[serde(borrow, default)]
    pub properties: Option<Box<RawSignIn<'a>>>,

    /// Log Analytics query API response: `{"tables": [{"columns", "rows"}]}`.
    #[serde(default)]
    pub tables: Option<Vec<LaTable>>,

    /// Present on audit records only; lets us say "this is an audit log".
    #[serde(borrow, default, deserialize_with = "borrowed_text", alias = "ActivityDisplayName")]
    pub activity_display_name: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrowed_text", alias = "OperationName")]
    pub operation_name: Option<Cow<'a, str>>,
}

impl RawSignIn<'_> {
    /// The applied Conditional Access policies, from whichever column holds
    /// them (the non-empty one; `AppliedConditionalAccessPolicies` when both
    /// do).
    pub fn ca_policies(&self) -> Option<&Vec<RawCaPolicy>> {
        fn filled(e: &Embedded<Vec<RawCaPolicy>>) -> Option<&Vec<RawCaPolicy>> {
            e.0.as_ref().filter(|v| !v.is_empty())
        }
        let (applied, other) =
            (&*self.applied_conditional_access_policies, &*self.conditional_access_policies);
        filled(applied).or_else(|| filled(other)).or(applied.0.as_ref()).or(other.0.as_ref())
    }

    /// The record's sign-in: the body of a diagnostic-settings envelope, or the record itself.
    pub fn body(&self) -> &Self {
        self.properties.as_deref().unwrap_or(self)
    }

    /// Reads the values left for later ([`Later`]), the envelope's and its
    /// body's. An error says only that one is not of its type: the caller
    /// reads the record again with every value as it comes, for the error
    /// that names the field.
    pub fn read_later_values(&mut self) -> Result<(), String> {
        self.applied_conditional_access_policies.read_now()?;
        self.conditional_access_policies.read_now()?;
        match &mut self.properties {
            Some(body) => body.read_later_values(),
            None => Ok(()),
        }
    }
}

/// A value only a cross-tenant sign-in's evidence reads (the Conditional
/// Access lists): read, or left as it stands in the record until the
/// record is known to be cross-tenant.
///
/// The Conditional Access list is half a Graph sign-in's bytes (ten
/// policies or more, a dozen keys each) and reading it was a third of the
/// time a sign-in took (a quarter of a Log Analytics CSV row's, where it
/// is JSON text in a cell), yet most sign-ins are a tenant's own, which are
/// counted and no more. The readers parse a record with these values left
/// as they are ([`read_values_later`]), decide from its tenants whether
/// the sign-in is cross-tenant, and read them for those that are. (Skipping
/// a value costs about what reading it does for the small details,
/// authentication steps, MFA and device: those are read as they come.) A
/// value left as JSON is still checked as JSON; one that is JSON but not of
/// its type is refused only where it is read. Dereferences to the value
/// read; reading it ([`RawSignIn::read_later_values`]) comes first.
#[derive(Debug, Default)]
pub struct Later<'a, T> {
    read: T,
    unread: Option<Unread<'a>>,
}

/// A value as it stands in the record, not yet read.
#[derive(Debug, Clone, Copy)]
enum Unread<'a> {
    /// Its JSON, in a JSON record.
    Json(&'a serde_json::value::RawValue),
    /// A CSV cell's text (JSON text, read as [`Embedded`] reads a string).
    Text(&'a str),
}

impl<T: de::DeserializeOwned> Later<'_, T> {
    fn read_now(&mut self) -> Result<(), String> {
        self.read = match self.unread.take() {
            None => return Ok(()),
            Some(Unread::Json(raw)) => serde_json::from_str(raw.get()).map_err(|e| e.to_string())?,
            Some(Unread::Text(text)) => {
                T::deserialize(de::value::BorrowedStrDeserializer::<de::value::Error>::new(text))
                    .map_err(|e| e.to_string())?
            }
        };
        Ok(())
    }
}

impl<T> std::ops::Deref for Later<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        debug_assert!(self.unread.is_none(), "a value left unread is looked at");
        &self.read
    }
}

/// How a parse leaves [`Later`] values ([`read_values_later`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LeaveAs {
    /// Read as they come.
    Read,
    /// Their raw JSON: for serde_json parses.
    Json,
    /// Their text: for rows of text cells (CSV), each value a string.
    Text,
}

thread_local! {
    /// What [`Later`] values do while [`read_values_later`] runs.
    static LATER_VALUES: std::cell::Cell<LeaveAs> = const { std::cell::Cell::new(LeaveAs::Read) };
}

/// Runs `parse` with the [`Later`] values it meets left as `how` says. A
/// flag of this thread's, because serde hands a field's type no word from
/// its caller; only serde_json can keep a value raw, and only such a parse
/// may run with [`LeaveAs::Json`].
pub fn read_values_later<T>(how: LeaveAs, parse: impl FnOnce() -> T) -> T {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            LATER_VALUES.set(LeaveAs::Read);
        }
    }
    LATER_VALUES.set(how);
    let _reset = Reset;
    parse()
}

impl<'de: 'a, 'a, T: Deserialize<'de> + Default> Deserialize<'de> for Later<'a, T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let unread = match LATER_VALUES.get() {
            LeaveAs::Read => return Ok(Later { read: T::deserialize(d)?, unread: None }),
            LeaveAs::Json => Unread::Json(<&'de serde_json::value::RawValue>::deserialize(d)?),
            LeaveAs::Text => {
                struct Borrowed;
                impl<'de> Visitor<'de> for Borrowed {
                    type Value = &'de str;
                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        f.write_str("text borrowed from the row")
                    }
                    fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<&'de str, E> {
                        Ok(s)
                    }
                }
                Unread::Text(d.deserialize_str(Borrowed)?)
            }
        };
        Ok(Later { read: T::default(), unread: Some(unread) })
    }
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawStatus {
    #[serde(default, alias = "ErrorCode")]
    pub error_code: LenientU32,
    #[serde(default, alias = "AdditionalDetails")]
    pub additional_details: ClaimNote,
}

/// One applied Conditional Access policy, reduced on the spot to what
/// evaluation reads: real records list ten or more policies, and keeping
/// their strings would cost an allocation each.
#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawCaPolicy {
    #[serde(default, alias = "Id")]
    pub id: MaybeGuid,
    #[serde(default, alias = "Result")]
    pub result: Applied,
    #[serde(default, alias = "EnforcedGrantControls")]
    pub enforced_grant_controls: Grants,
    /// Graph beta: the authentication strength the policy enforced.
    #[serde(default, alias = "AuthenticationStrength")]
    pub authentication_strength: Option<RawStrength>,
}

/// The authentication strength a policy enforced: `authenticationStrengthId`
/// in sign-in logs, `id` where the strength object itself was written. Read
/// apart so that a record holding both is not refused.
#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawStrength {
    #[serde(default, alias = "AuthenticationStrengthId")]
    authentication_strength_id: MaybeGuid,
    #[serde(default, alias = "Id")]
    id: MaybeGuid,
}

impl RawStrength {
    pub fn strength_id(&self) -> Option<Guid> {
        self.authentication_strength_id.0.or(self.id.0)
    }
}

/// A GUID where one is expected; anything else (absent, null, another
/// text) reads as none rather than failing the record.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct MaybeGuid(pub Option<Guid>);

impl MaybeGuid {
    /// A text's GUID; anything else is none.
    pub fn of(s: &str) -> MaybeGuid {
        MaybeGuid(Guid::parse(crate::model::text::trim(s)))
    }
}

impl<'de> Deserialize<'de> for MaybeGuid {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = MaybeGuid;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a GUID")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<MaybeGuid, E> {
                Ok(MaybeGuid::of(s))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<MaybeGuid, E> {
                Ok(MaybeGuid(None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<MaybeGuid, E> {
                Ok(MaybeGuid(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<MaybeGuid, E> {
                Ok(MaybeGuid(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<MaybeGuid, E> {
                Ok(MaybeGuid(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// A policy's `result`: `success` and `failure` mean it applied; anything
/// else (`notApplied`, `notEnabled`, `reportOnly...`, absent) does not.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Applied(pub bool);

impl<'de> Deserialize<'de> for Applied {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        text_flag(d, |s| matches!(squash(s).as_str(), "success" | "failure")).map(Applied)
    }
}

/// The grant controls of `enforcedGrantControls` (a list of names; one
/// name alone or `null` are read too), as [`Controls`]. Names are matched
/// loosely: casing and punctuation vary between exports.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Grants(pub Controls);

impl<'de> Deserialize<'de> for Grants {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(Names {
            of: |s| Grants(Controls::of_name(s)),
            join: |a, b| Grants(a.0.union(b.0)),
            expecting: "a list of grant control names",
        })
    }
}

/// The text "MFA requirement satisfied by claim in the token" appears in
/// `status.additionalDetails`, `authenticationDetails[].authenticationStepResultDetail`
/// and `mfaDetail.authDetail`; match it loosely (casing, final period).
pub fn says_mfa_by_claim(s: &str) -> bool {
    fn contains(hay: &str, needle: &str) -> bool {
        hay.as_bytes().windows(needle.len()).any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
    }
    contains(s, "mfa") && contains(s, "satisfied by claim")
}

/// Whether a detail text says MFA was satisfied by a claim, decided while
/// parsing: a sign-in lists several authentication steps, and keeping each
/// step's text would cost an allocation for one bit.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct ClaimNote(pub bool);

impl<'de> Deserialize<'de> for ClaimNote {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        text_flag(d, says_mfa_by_claim).map(ClaimNote)
    }
}

/// Graph beta `signInEventTypes` (a list; one name alone is read too): the
/// first that names a sign-in log.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct EventTypes(pub Option<EventType>);

impl<'de> Deserialize<'de> for EventTypes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(Names {
            of: |s| EventTypes(EventType::from_name(s)),
            join: |a, b| EventTypes(a.0.or(b.0)),
            expecting: "a list of sign-in event types",
        })
    }
}

/// A text that decides one bit with `test`; numbers and null read as
/// `false` (exports disagree on types, and only the text can say yes).
fn text_flag<'de, D: Deserializer<'de>>(d: D, test: fn(&str) -> bool) -> Result<bool, D::Error> {
    struct V(fn(&str) -> bool);
    impl Visitor<'_> for V {
        type Value = bool;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a string")
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<bool, E> {
            Ok((self.0)(s))
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_none<E: de::Error>(self) -> Result<bool, E> {
            Ok(false)
        }
    }
    d.deserialize_any(V(test))
}

/// A name or a list of names (lists may nest, and hold nulls), each read
/// by `of` and combined by `join`; null is `T::default()`.
#[derive(Clone, Copy)]
struct Names<T> {
    of: fn(&str) -> T,
    join: fn(T, T) -> T,
    expecting: &'static str,
}

impl<'de, T: Default + Copy> Visitor<'de> for Names<T> {
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.expecting)
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<T, E> {
        Ok((self.of)(s))
    }
    fn visit_unit<E: de::Error>(self) -> Result<T, E> {
        Ok(T::default())
    }
    fn visit_none<E: de::Error>(self) -> Result<T, E> {
        Ok(T::default())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<T, A::Error> {
        let mut all = T::default();
        while let Some(one) = seq.next_element_seed(self)? {
            all = (self.join)(all, one);
        }
        Ok(all)
    }
}

impl<'de, T: Default + Copy> DeserializeSeed<'de> for Names<T> {
    type Value = T;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<T, D::Error> {
        d.deserialize_any(self)
    }
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawAuthStep {
    #[serde(default, alias = "AuthenticationStepResultDetail")]
    pub authentication_step_result_detail: ClaimNote,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawMfaDetail {
    #[serde(default, alias = "AuthDetail")]
    pub auth_detail: ClaimNote,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_fields_borrow_from_the_record_unless_they_hold_escapes() {
        let record =
            r#"{"userPrincipalName": "a@b.example", "appDisplayName": "Caf\u00e9", "homeTenantId": null}"#;
        let raw: RawSignIn = serde_json::from_str(record).unwrap();
        assert!(matches!(raw.user_principal_name, Some(Cow::Borrowed("a@b.example"))));
        assert!(matches!(raw.app_display_name.as_deref(), Some("Café")));
        assert!(matches!(raw.app_display_name, Some(Cow::Owned(_))));
        assert_eq!(raw.home_tenant_id, None);
        // Anything else is refused as serde's own `Option<Cow<str>>` refuses it.
        let e = serde_json::from_str::<RawSignIn>(r#"{"userType": 5}"#).unwrap_err().to_string();
        assert!(e.starts_with("invalid type: integer `5`, expected a string"), "{e}");
    }

    #[test]
    fn grant_controls_are_read_in_every_shape() {
        let list: Grants = serde_json::from_str(r#"["Mfa", "RequireCompliantDevice"]"#).unwrap();
        assert_eq!(list.0, Controls::MFA.union(Controls::COMPLIANT_DEVICE));
        let one: Grants = serde_json::from_str(r#""Domain Joined Device""#).unwrap();
        assert_eq!(one.0, Controls::HYBRID_JOIN);
        let strength: Grants = serde_json::from_str(r#"["RequireAuthenticationStrength"]"#).unwrap();
        assert_eq!(strength.0, Controls::AUTH_STRENGTH);
        assert_eq!(serde_json::from_str::<Grants>("null").unwrap(), Grants::default());
        assert!(serde_json::from_str::<Grants>("[1]").is_err());
    }

    #[test]
    fn a_policy_names_its_id_and_authentication_strength() {
        let p: RawCaPolicy = serde_json::from_str(
            r#"{"id": "5A110000-0000-4000-8000-000000000001", "result": "success",
                "enforcedGrantControls": ["RequireAuthenticationStrength"],
                "authenticationStrength": {"authenticationStrengthId": "00000000-0000-0000-0000-000000000004",
                                           "displayName": "Phishing-resistant MFA"}}"#,
        )
        .unwrap();
        assert_eq!(p.id.0, Guid::parse("5a110000-0000-4000-8000-000000000001"));
        assert_eq!(
            p.authentication_strength.unwrap().strength_id(),
            Guid::parse("00000000-0000-0000-0000-000000000004")
        );
        let bare: RawCaPolicy =
            serde_json::from_str(r#"{"id": "not a guid", "authenticationStrength": null}"#).unwrap();
        assert_eq!(bare.id.0, None);
        assert!(bare.authentication_strength.is_none());
    }

    #[test]
    fn claim_notes_and_event_types_are_decided_while_parsing() {
        let step: RawAuthStep = serde_json::from_str(
            r#"{"authenticationStepResultDetail": "MFA requirement satisfied by claim in the token."}"#,
        )
        .unwrap();
        assert!(step.authentication_step_result_detail.0);
        assert!(says_mfa_by_claim("mfa requirement SATISFIED BY CLAIM in the token"));
        assert!(!says_mfa_by_claim("MFA completed in Azure AD"));
        assert!(!serde_json::from_str::<ClaimNote>("null").unwrap().0);
        let t: EventTypes = serde_json::from_str(r#"["somethingNew", "nonInteractiveUser"]"#).unwrap();
        assert_eq!(t.0, Some(EventType::NonInteractive));
        assert_eq!(serde_json::from_str::<EventTypes>("[]").unwrap().0, None);
    }

    #[test]
    fn only_success_and_failure_mean_applied() {
        for (text, applied) in
            [("success", true), ("FAILURE", true), ("notApplied", false), ("reportOnlySuccess", false)]
        {
            let p: RawCaPolicy =
                serde_json::from_str(&format!(r#"{{"result": "{text}", "enforcedGrantControls": ["Mfa"]}}"#))
                    .unwrap();
            assert_eq!(p.result.0, applied, "{text}");
        }
        let absent: RawCaPolicy = serde_json::from_str("{}").unwrap();
        assert!(!absent.result.0);
    }
}
