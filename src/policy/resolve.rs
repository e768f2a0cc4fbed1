//! Inheritance: the settings that apply to one partner, each marked with
//! where it comes from.
//!
//! Microsoft: "For any partner-specific property that is null, these
//! settings inherit the behavior configured in your default cross-tenant
//! access settings." The unit is the top-level property (a whole B2B
//! section, `inboundTrust`, `automaticUserConsentSettings`). Two finer
//! cases the documentation does not cover are decided here and written in
//! docs/policy-semantics.md: a section with a null `usersAndGroups` or
//! `applications` half takes that half from the default, and a null flag
//! inside `inboundTrust` takes the default's flag; both add a note.

use serde::Serialize;

use super::model::{service_default, Policy, Section, TargetConfig};
use super::targets::Lookups;
use crate::model::Guid;

#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// Set on the partner's own configuration.
    Partner,
    /// Inherited from our default configuration.
    Default,
    /// Neither set it: the Microsoft service default applies.
    ServiceDefault,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Partner => "partner",
            Origin::Default => "default",
            Origin::ServiceDefault => "service default",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Sourced<T> {
    pub value: T,
    pub origin: Origin,
}

/// One B2B section after inheritance; both halves always present.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EffectiveSection {
    pub users_and_groups: Sourced<TargetConfig>,
    pub applications: Sourced<TargetConfig>,
    /// The two halves as lookups, for evaluating sign-ins.
    #[serde(skip)]
    pub(crate) lookups: Lookups,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EffectiveTrust {
    pub is_mfa_accepted: Sourced<bool>,
    pub is_compliant_device_accepted: Sourced<bool>,
    pub is_hybrid_joined_device_accepted: Sourced<bool>,
}

/// Everything that applies to one partner (or, with `partner: None`, to
/// any tenant without a configuration of its own).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Effective {
    pub partner: Option<Guid>,
    /// The partner has a configuration of its own.
    pub configured: bool,
    pub sections: Vec<(Section, EffectiveSection)>,
    pub inbound_trust: EffectiveTrust,
    pub automatic_consent_inbound: Sourced<bool>,
    pub automatic_consent_outbound: Sourced<bool>,
    pub is_service_provider: bool,
    pub is_in_multi_tenant_organization: bool,
    /// xtenant's `x-xtenant-cloud` extension: the partner's other cloud.
    pub cloud: Option<String>,
    pub notes: Vec<String>,
}

impl Effective {
    pub fn section(&self, s: Section) -> &EffectiveSection {
        &self.sections.iter().find(|(x, _)| *x == s).expect("all four sections are resolved").1
    }
}

/// Picks partner, then default, then service default for one value.
fn pick<T: Clone>(partner: Option<T>, default: Option<T>, service: T) -> Sourced<T> {
    match (partner, default) {
        (Some(v), _) => Sourced { value: v, origin: Origin::Partner },
        (None, Some(v)) => Sourced { value: v, origin: Origin::Default },
        (None, None) => Sourced { value: service, origin: Origin::ServiceDefault },
    }
}

pub fn effective(policy: &Policy, partner: Option<Guid>) -> Effective {
    let service = service_default();
    let default = policy.default.as_ref();
    let p = partner.and_then(|t| policy.partners.get(&t));
    let mut notes = Vec::new();

    let mut sections = Vec::new();
    for s in Section::ALL {
        let svc = service.settings.section(s).cloned().unwrap_or_default();
        let def = default.and_then(|d| d.settings.section(s));
        let own = p.and_then(|p| p.settings.section(s));
        if let Some(o) = own {
            for (half, missing) in
                [("usersAndGroups", o.users_and_groups.is_none()), ("applications", o.applications.is_none())]
            {
                if missing {
                    notes.push(format!(
                        "{}.{half} is null on the partner: the default's {half} applies (assumption, see docs/policy-semantics.md)",
                        s.name()
                    ));
                }
            }
        }
        let users = pick(
            own.and_then(|o| o.users_and_groups.clone()),
            def.and_then(|d| d.users_and_groups.clone()),
            svc.users_and_groups.clone().expect("service default is complete"),
        );
        let apps = pick(
            own.and_then(|o| o.applications.clone()),
            def.and_then(|d| d.applications.clone()),
            svc.applications.clone().expect("service default is complete"),
        );
        sections.push((
            s,
            EffectiveSection { users_and_groups: users, applications: apps, lookups: Lookups::default() },
        ));
    }

    let own_trust = p.and_then(|p| p.settings.inbound_trust.as_ref());
    let def_trust = default.and_then(|d| d.settings.inbound_trust.as_ref());
    let flag = |name: &str, get: fn(&super::model::InboundTrust) -> Option<bool>, notes: &mut Vec<String>| {
        let own = own_trust.and_then(get);
        if own_trust.is_some() && own.is_none() {
            notes.push(format!("inboundTrust.{name} is null on the partner: the default's value applies"));
        }
        pick(own, def_trust.and_then(get), false)
    };
    let inbound_trust = EffectiveTrust {
        is_mfa_accepted: flag("isMfaAccepted", |t| t.is_mfa_accepted, &mut notes),
        is_compliant_device_accepted: flag(
            "isCompliantDeviceAccepted",
            |t| t.is_compliant_device_accepted,
            &mut notes,
        ),
        is_hybrid_joined_device_accepted: flag(
            "isHybridAzureADJoinedDeviceAccepted",
            |t| t.is_hybrid_joined_device_accepted,
            &mut notes,
        ),
    };
    let own_consent = p.and_then(|p| p.settings.automatic_user_consent_settings.as_ref());
    // The default's consent settings are read-only and always false.
    Effective {
        partner,
        configured: p.is_some(),
        sections,
        inbound_trust,
        automatic_consent_inbound: pick(own_consent.and_then(|c| c.inbound_allowed), Some(false), false),
        automatic_consent_outbound: pick(own_consent.and_then(|c| c.outbound_allowed), Some(false), false),
        is_service_provider: p.and_then(|p| p.is_service_provider).unwrap_or(false),
        is_in_multi_tenant_organization: p.and_then(|p| p.is_in_multi_tenant_organization).unwrap_or(false),
        cloud: p.and_then(|p| p.cloud.clone()),
        notes,
    }
}
