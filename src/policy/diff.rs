//! `policy diff`: what changes for each partner, after inheritance.
//!
//! Both policies are resolved for every partner either of them names, and
//! for "any other tenant" (the default), then compared setting by setting.
//! A partner that inherits a changed default is therefore listed, with the
//! origin saying so. Target order never matters: lists compare as sets.

use std::collections::{BTreeSet, HashMap};

use serde::Serialize;

use super::model::{Policy, Section};
use super::resolve::{Effective, Half, Resolver, Sourced};
use crate::model::Guid;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Change {
    /// A partner tenant id, or `default` for tenants without a configuration.
    pub partner: String,
    pub partner_status: &'static str,
    /// `b2bCollaborationInbound.applications`, `inboundTrust.isMfaAccepted`, ...
    pub setting: String,
    pub before: String,
    pub after: String,
    pub before_origin: &'static str,
    pub after_origin: &'static str,
}

/// How a half changed from `x` to `y` (text and origin before, then
/// after), or `None` when its targets are the same.
type HalfChange = Option<(String, String, &'static str, &'static str)>;

fn half_change<L>(
    x: &Half<L>,
    y: &Half<L>,
    compared: &mut HashMap<(usize, usize), HalfChange>,
) -> HalfChange {
    x.once_per_inherited_pair(y, compared, || {
        (!x.same_targets(y))
            .then(|| (x.text().to_string(), y.text().to_string(), x.origin.as_str(), y.origin.as_str()))
    })
}

pub fn diff(current: &Policy, proposed: &Policy) -> Vec<Change> {
    let mut partners: BTreeSet<Option<Guid>> = [None].into();
    partners.extend(current.partners.keys().map(|g| Some(*g)));
    partners.extend(proposed.partners.keys().map(|g| Some(*g)));
    let mut out = Vec::new();
    let (resolve_current, resolve_proposed) = (Resolver::each_once(current), Resolver::each_once(proposed));
    let mut compared = HashMap::new();
    for p in partners {
        let a = resolve_current.effective(p);
        let b = resolve_proposed.effective(p);
        let name = p.map_or("default".to_string(), |g| g.to_string());
        let status = match (a.configured, b.configured, p.is_none()) {
            (_, _, true) => "default",
            (false, true, _) => "added",
            (true, false, _) => "removed",
            _ => "configured",
        };
        let mut push =
            |setting: String, before: String, after: String, bo: &'static str, ao: &'static str| {
                out.push(Change {
                    partner: name.clone(),
                    partner_status: status,
                    setting,
                    before,
                    after,
                    before_origin: bo,
                    after_origin: ao,
                });
            };
        for s in Section::ALL {
            let (x, y) = (a.section(s), b.section(s));
            for (half, change) in [
                ("usersAndGroups", half_change(&x.users_and_groups, &y.users_and_groups, &mut compared)),
                ("applications", half_change(&x.applications, &y.applications, &mut compared)),
            ] {
                if let Some((before, after, bo, ao)) = change {
                    push(format!("{}.{half}", s.name()), before, after, bo, ao);
                }
            }
        }
        let flags = |e: &Effective| -> Vec<(&'static str, Sourced<bool>)> {
            vec![
                ("inboundTrust.isMfaAccepted", e.inbound_trust.is_mfa_accepted.clone()),
                (
                    "inboundTrust.isCompliantDeviceAccepted",
                    e.inbound_trust.is_compliant_device_accepted.clone(),
                ),
                (
                    "inboundTrust.isHybridAzureADJoinedDeviceAccepted",
                    e.inbound_trust.is_hybrid_joined_device_accepted.clone(),
                ),
                ("automaticUserConsentSettings.inboundAllowed", e.automatic_consent_inbound.clone()),
                ("automaticUserConsentSettings.outboundAllowed", e.automatic_consent_outbound.clone()),
            ]
        };
        for ((name, u), (_, v)) in flags(&a).into_iter().zip(flags(&b)) {
            if u.value != v.value {
                push(
                    name.to_string(),
                    u.value.to_string(),
                    v.value.to_string(),
                    u.origin.as_str(),
                    v.origin.as_str(),
                );
            }
        }
        for (name, u, v) in [
            ("isServiceProvider", a.is_service_provider, b.is_service_provider),
            (
                "isInMultiTenantOrganization",
                a.is_in_multi_tenant_organization,
                b.is_in_multi_tenant_organization,
            ),
        ] {
            if u != v {
                push(name.to_string(), u.to_string(), v.to_string(), "partner", "partner");
            }
        }
        if a.cloud != b.cloud {
            let show = |c: &Option<String>| c.clone().unwrap_or_else(|| "same cloud".into());
            push("x-xtenant-cloud".into(), show(&a.cloud), show(&b.cloud), "partner", "partner");
        }
    }
    if current.allowed_cloud_endpoints != proposed.allowed_cloud_endpoints {
        let show = |v: &Vec<String>| format!("[{}]", v.join(", "));
        out.push(Change {
            partner: "policy".into(),
            partner_status: "policy",
            setting: "allowedCloudEndpoints".into(),
            before: show(&current.allowed_cloud_endpoints),
            after: show(&proposed.allowed_cloud_endpoints),
            before_origin: "policy",
            after_origin: "policy",
        });
    }
    out
}
