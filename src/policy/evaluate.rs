//! The evaluator: does a policy allow one cross-tenant sign-in, and why.
//!
//! A pure function of the policy and a [`Request`]. Three-valued (Kleene)
//! logic throughout: where the answer depends on something the inputs do
//! not say (group membership not supplied, a guest's home-tenant id not
//! mapped), the verdict is `Unknown` with the reason, never a guess. The
//! decision table and every assumption are in docs/policy-semantics.md.

use std::collections::BTreeSet;
use std::fmt;

use serde::Serialize;

use super::apps::{microsoft_name, office365_name, TABLE_VERSION};
use super::model::{AccessKind, Policy, Section, TargetConfig, TargetType};
use super::resolve::{effective, Effective, Sourced};
use crate::model::{AccessType, Direction, Guid};

/// Three-valued truth.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Tri {
    Yes,
    No,
    Unknown,
}

impl Tri {
    pub fn and(self, o: Tri) -> Tri {
        match (self, o) {
            (Tri::No, _) | (_, Tri::No) => Tri::No,
            (Tri::Yes, Tri::Yes) => Tri::Yes,
            _ => Tri::Unknown,
        }
    }
    pub fn or(self, o: Tri) -> Tri {
        !(!self).and(!o)
    }
}

impl std::ops::Not for Tri {
    type Output = Tri;
    fn not(self) -> Tri {
        match self {
            Tri::Yes => Tri::No,
            Tri::No => Tri::Yes,
            Tri::Unknown => Tri::Unknown,
        }
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Allowed,
    Blocked,
    Unknown,
    /// Cross-tenant access settings do not govern this kind of sign-in.
    NotGoverned,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allowed => "allowed",
            Verdict::Blocked => "blocked",
            Verdict::Unknown => "unknown",
            Verdict::NotGoverned => "not_governed",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub verdict: Verdict,
    /// Still allowed, but the user must now do something in our tenant
    /// (MFA, because the partner's MFA claim is no longer trusted).
    pub degraded: bool,
    pub reason: String,
}

/// Group membership of the user, in the tenant the targets name. Group
/// ids are lower-case.
#[derive(Clone, Debug, PartialEq)]
pub enum Membership<'a> {
    /// Membership in every group is known: these are the user's groups.
    Known(&'a BTreeSet<String>),
    /// Known only for the groups a directory export describes.
    Described {
        groups: &'a BTreeSet<String>,
        member_of: &'a BTreeSet<String>,
    },
    Unknown,
}

impl Membership<'_> {
    fn is_member(&self, group: &str) -> Tri {
        let g = group.to_ascii_lowercase();
        match self {
            Membership::Known(set) => {
                if set.contains(&g) {
                    Tri::Yes
                } else {
                    Tri::No
                }
            }
            Membership::Described { groups, member_of } if groups.contains(&g) => {
                if member_of.contains(&g) {
                    Tri::Yes
                } else {
                    Tri::No
                }
            }
            _ => Tri::Unknown,
        }
    }
}

/// Whether an applied Conditional Access policy required a grant control.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
pub enum Need {
    #[default]
    No,
    Yes,
    /// The export carried no Conditional Access details.
    Unknown,
}

/// What the sign-in relied on (from the log's evidence).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
pub struct TrustNeeds {
    pub mfa: Need,
    /// The MFA requirement was met by a claim in the incoming token.
    pub mfa_by_claim: bool,
    pub compliant_device: Need,
    pub hybrid_joined_device: Need,
}

/// One sign-in, as the evaluator needs it.
#[derive(Clone, Debug)]
pub struct Request<'a> {
    pub direction: Direction,
    pub access_type: AccessType,
    pub partner: Guid,
    /// The user's object id in the tenant whose ids the section targets:
    /// the partner (home) tenant for inbound, ours for outbound. `None`
    /// when it is not known (a guest whose home id is not mapped).
    pub user_id: Option<&'a str>,
    pub groups: Membership<'a>,
    pub app_id: Option<&'a str>,
    pub resource_id: Option<&'a str>,
    pub trust: TrustNeeds,
}

/// The tenant personal Microsoft accounts sign in from. Guests with such
/// accounts are governed by external collaboration settings, not by
/// cross-tenant access settings (Microsoft: only Entra accounts are).
pub const MICROSOFT_ACCOUNT_TENANT: Guid = Guid(0x9188040d_6c67_4c5b_b112_36a304b66dad);

/// Which section governs a sign-in.
pub fn section_for(direction: Direction, access: AccessType) -> Option<Section> {
    Some(match (access, direction) {
        (AccessType::B2bCollaboration, Direction::Inbound) => Section::CollaborationInbound,
        (AccessType::B2bCollaboration, Direction::Outbound) => Section::CollaborationOutbound,
        (AccessType::B2bDirectConnect, Direction::Inbound) => Section::DirectConnectInbound,
        (AccessType::B2bDirectConnect, Direction::Outbound) => Section::DirectConnectOutbound,
        _ => return None,
    })
}

/// How one half of a section matched, and the target that decided.
struct Match {
    tri: Tri,
    /// The target that matched, or why it is unknown.
    why: String,
}

fn user_match(cfg: &TargetConfig, req: &Request<'_>) -> Match {
    let mut unknown: Vec<String> = Vec::new();
    let mut groups: Vec<&str> = Vec::new();
    for t in &cfg.targets {
        match t.target_type {
            TargetType::User if t.target.eq_ignore_ascii_case("AllUsers") => {
                return Match { tri: Tri::Yes, why: "AllUsers".into() };
            }
            TargetType::User => match req.user_id {
                Some(u) if u.eq_ignore_ascii_case(&t.target) => {
                    return Match { tri: Tri::Yes, why: format!("user {}", t.target) };
                }
                Some(_) => {}
                None => unknown.push(format!(
                    "user target {} needs the user's {} object id (supply --identities)",
                    t.target,
                    if req.direction == Direction::Inbound { "home-tenant" } else { "" }
                )),
            },
            TargetType::Group => groups.push(&t.target),
            TargetType::Application | TargetType::UnknownFutureValue => {
                unknown.push(format!("target {} has a targetType this version cannot evaluate", t.target))
            }
        }
    }
    let mut not_known = Vec::new();
    for g in &groups {
        match req.groups.is_member(g) {
            Tri::Yes => return Match { tri: Tri::Yes, why: format!("group {g}") },
            Tri::No => {}
            Tri::Unknown => not_known.push(*g),
        }
    }
    if !not_known.is_empty() {
        unknown
            .push(format!("membership of group(s) {} is not known (supply --groups)", not_known.join(", ")));
    }
    if unknown.is_empty() {
        Match { tri: Tri::No, why: "no target matches the user".into() }
    } else {
        Match { tri: Tri::Unknown, why: unknown.join("; ") }
    }
}

fn app_match(cfg: &TargetConfig, req: &Request<'_>) -> Match {
    let ids: Vec<&str> = [req.app_id, req.resource_id].into_iter().flatten().collect();
    let mut unknown = Vec::new();
    for t in &cfg.targets {
        let name = t.target.as_str();
        if t.target_type == TargetType::UnknownFutureValue {
            unknown.push(format!("target {name} has a targetType this version cannot evaluate"));
            continue;
        }
        if name.eq_ignore_ascii_case("AllApplications") {
            return Match { tri: Tri::Yes, why: "AllApplications".into() };
        }
        if name.eq_ignore_ascii_case("Office365") {
            if let Some((id, n)) = ids.iter().find_map(|id| office365_name(id).map(|n| (id, n))) {
                return Match { tri: Tri::Yes, why: format!("Office365 ({n} {id}, table {TABLE_VERSION})") };
            }
            continue;
        }
        if name.eq_ignore_ascii_case("AllMicrosoftApps") {
            if let Some((id, n)) = ids.iter().find_map(|id| microsoft_name(id).map(|n| (id, n))) {
                return Match {
                    tri: Tri::Yes,
                    why: format!("AllMicrosoftApps ({n} {id}, table {TABLE_VERSION})"),
                };
            }
            continue;
        }
        if ids.iter().any(|id| id.eq_ignore_ascii_case(name)) {
            return Match { tri: Tri::Yes, why: format!("app {name}") };
        }
    }
    if ids.is_empty() && !cfg.targets.is_empty() {
        unknown.push("the sign-in names no app or resource".into());
    }
    if unknown.is_empty() {
        let keywords =
            cfg.targets.iter().any(|t| matches!(t.target.as_str(), "Office365" | "AllMicrosoftApps"));
        let note = if keywords { format!(" (keyword tables {TABLE_VERSION})") } else { String::new() };
        Match { tri: Tri::No, why: format!("no target matches the app{note}") }
    } else {
        Match { tri: Tri::Unknown, why: unknown.join("; ") }
    }
}

fn half_text(half: &str, cfg: &Sourced<TargetConfig>, m: &Match) -> String {
    format!(
        "{half} {} [{}] ({}): {}",
        cfg.value.access_type.as_str(),
        targets_text(&cfg.value),
        cfg.origin.as_str(),
        m.why
    )
}

pub fn targets_text(cfg: &TargetConfig) -> String {
    let mut t: Vec<&str> = cfg.targets.iter().map(|t| t.target.as_str()).collect();
    t.sort_unstable();
    if t.len() > 3 {
        format!("{}, {} and {} more", t[0], t[1], t.len() - 2)
    } else {
        t.join(", ")
    }
}

/// Evaluates one sign-in under one policy.
pub fn evaluate(policy: &Policy, req: &Request<'_>) -> Decision {
    evaluate_resolved(policy, &effective(policy, Some(req.partner)), req)
}

/// [`evaluate`] with the partner's settings already resolved (callers that
/// evaluate many sign-ins of one partner resolve it once).
pub fn evaluate_resolved(policy: &Policy, eff: &Effective, req: &Request<'_>) -> Decision {
    let decided = |verdict, reason: String| Decision { verdict, degraded: false, reason };
    let Some(section) = section_for(req.direction, req.access_type) else {
        return match req.access_type {
            AccessType::Unknown => decided(
                Verdict::Unknown,
                "the log does not record the cross-tenant access type (export from the Graph beta endpoint)"
                    .into(),
            ),
            other => decided(
                Verdict::NotGoverned,
                format!("{} sign-ins are not governed by cross-tenant access settings", other.as_str()),
            ),
        };
    };
    if req.partner == MICROSOFT_ACCOUNT_TENANT {
        return decided(
            Verdict::NotGoverned,
            format!(
                "{} is the personal Microsoft account tenant: such guests are governed by external collaboration settings, not cross-tenant access settings",
                req.partner
            ),
        );
    }
    let who = format!("partner {}", req.partner);

    if let Some(cloud) = &eff.cloud {
        if section.is_direct_connect() {
            return decided(
                Verdict::Blocked,
                format!("{who} is in another Microsoft cloud ({cloud}): B2B direct connect does not work across clouds"),
            );
        }
        if !policy.allowed_cloud_endpoints.iter().any(|c| c.eq_ignore_ascii_case(cloud)) {
            return decided(
                Verdict::Blocked,
                format!(
                    "{who} is in another Microsoft cloud ({cloud}) that allowedCloudEndpoints does not list"
                ),
            );
        }
    }

    let s = eff.section(section);
    let users = &s.users_and_groups;
    let apps = &s.applications;
    let u = user_match(&users.value, req);
    let a = app_match(&apps.value, req);
    let ua = users.value.access_type;
    let aa = apps.value.access_type;
    let prefix = format!("{who} {}", section.name());
    if ua == AccessKind::UnknownFutureValue || aa == AccessKind::UnknownFutureValue {
        return decided(
            Verdict::Unknown,
            format!("{prefix}: accessType unknownFutureValue cannot be evaluated"),
        );
    }
    // The four-row table (docs/policy-semantics.md). Each half becomes a
    // term that must hold for access: "matches" for an allow-list, "does
    // not match" for a deny-list. Both halves blocked is the one row where
    // either term suffices: only users AND apps both listed are blocked.
    let user_term = if ua == AccessKind::Allowed { u.tri } else { !u.tri };
    let app_term = if aa == AccessKind::Allowed { a.tri } else { !a.tri };
    let both_blocked = ua == AccessKind::Blocked && aa == AccessKind::Blocked;
    let allowed = if both_blocked { user_term.or(app_term) } else { user_term.and(app_term) };
    // Name the half that decided: the user half unless it is satisfied.
    let users_decide = if both_blocked { u.tri != Tri::Yes } else { user_term != Tri::Yes };
    let deciding = if users_decide {
        half_text("usersAndGroups", users, &u)
    } else {
        half_text("applications", apps, &a)
    };
    let mut reason = format!("{prefix}: {deciding}");
    if allowed == Tri::No {
        return decided(Verdict::Blocked, reason);
    }
    let mut verdict = if allowed == Tri::Yes { Verdict::Allowed } else { Verdict::Unknown };
    let mut degraded = false;
    if req.direction == Direction::Inbound {
        let t = trust(eff, section, req);
        match t.verdict {
            Verdict::Blocked => return decided(Verdict::Blocked, format!("{who} {}", t.reason)),
            Verdict::Unknown => {
                verdict = Verdict::Unknown;
                reason = format!("{reason}; {}", t.reason);
            }
            _ => {
                if t.degraded {
                    degraded = true;
                    reason = format!("{reason}; {}", t.reason);
                }
            }
        }
    }
    Decision { verdict, degraded, reason }
}

/// Inbound trust against what the sign-in needed.
fn trust(eff: &Effective, section: Section, req: &Request<'_>) -> Decision {
    let t = &eff.inbound_trust;
    let flag =
        |s: &Sourced<bool>, name: &str| format!("inboundTrust.{name} {} ({})", s.value, s.origin.as_str());
    let direct = section.is_direct_connect();
    let mut unknown = Vec::new();
    if req.trust.mfa == Need::Yes && !t.is_mfa_accepted.value {
        if direct {
            return Decision {
                verdict: Verdict::Blocked,
                degraded: false,
                reason: format!(
                    "{}: MFA is required, and B2B direct connect users cannot do MFA in our tenant",
                    flag(&t.is_mfa_accepted, "isMfaAccepted")
                ),
            };
        }
        if req.trust.mfa_by_claim {
            return Decision {
                verdict: Verdict::Allowed,
                degraded: true,
                reason: format!(
                    "{}: the MFA claim from the home tenant is not accepted, so the user must do MFA in our tenant",
                    flag(&t.is_mfa_accepted, "isMfaAccepted")
                ),
            };
        }
    }
    for (need, accepted, name, what) in [
        (
            req.trust.compliant_device,
            &t.is_compliant_device_accepted,
            "isCompliantDeviceAccepted",
            "a compliant device",
        ),
        (
            req.trust.hybrid_joined_device,
            &t.is_hybrid_joined_device_accepted,
            "isHybridAzureADJoinedDeviceAccepted",
            "a hybrid joined device",
        ),
    ] {
        match need {
            Need::Yes if !accepted.value => {
                return Decision {
                    verdict: Verdict::Blocked,
                    degraded: false,
                    reason: format!(
                        "{}: Conditional Access requires {what}, which external users can only prove with a trusted home-tenant claim",
                        flag(accepted, name)
                    ),
                }
            }
            Need::Unknown if !accepted.value => unknown.push(format!(
                "the export carries no Conditional Access details, so whether {what} was required is unknown ({})",
                flag(accepted, name)
            )),
            _ => {}
        }
    }
    if unknown.is_empty() {
        Decision { verdict: Verdict::Allowed, degraded: false, reason: String::new() }
    } else {
        Decision { verdict: Verdict::Unknown, degraded: false, reason: unknown.join("; ") }
    }
}

#[cfg(test)]
#[path = "evaluate_tests.rs"]
mod tests;
