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

use super::apps::AppCatalog;
use super::conditional_access::{Operator, ResolvedClause, StrengthNeed};
use super::directory::Groups;
use super::model::{AccessKind, Policy, Section, TargetConfig, TargetText};
use super::resolve::{effective, Effective, Sourced};
use super::targets::{app_match, user_match};
use crate::model::grant::{clauses_past_kept, CLAUSES_KEPT};
use crate::model::{AccessType, Controls, Direction, Guid};

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
#[derive(Clone, Debug)]
pub enum Membership<'a> {
    /// Membership in every group is known: these are the user's groups.
    Known(&'a BTreeSet<String>),
    /// Known only for the groups a directory export describes.
    Described {
        directory: &'a Groups,
        user: &'a str,
    },
    Unknown,
}

impl Membership<'_> {
    pub(crate) fn is_member(&self, group: &str) -> Tri {
        let g = group.to_ascii_lowercase();
        match self {
            Membership::Known(set) => {
                if set.contains(&g) {
                    Tri::Yes
                } else {
                    Tri::No
                }
            }
            Membership::Described { directory, user } if directory.described.contains(&g) => {
                if directory.has_member(&g, user) {
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
#[derive(Clone, Debug, PartialEq, Default)]
pub struct TrustNeeds<'a> {
    /// MFA was required (by a policy with that one control, or the
    /// sign-in's own authentication requirement).
    pub mfa: Need,
    /// The MFA requirement was met by a claim in the incoming token.
    pub mfa_by_claim: bool,
    pub compliant_device: Need,
    pub hybrid_joined_device: Need,
    /// Policies with several grant controls or an authentication strength,
    /// with what `--ca-policies` says about them.
    pub clauses: &'a [ResolvedClause],
}

/// Which Microsoft cloud the partner is in, as far as replay can tell
/// (Graph does not say; xtenant's `x-xtenant-cloud` marker on a partner
/// entry does).
#[derive(Clone, Debug, PartialEq, Default)]
pub enum CloudHint {
    /// Ours, or nothing says otherwise.
    #[default]
    Ours,
    /// Another cloud (`microsoftonline.us`, ...), marked on an entry of this
    /// or the other policy.
    Other(String),
    /// Not known, and it matters: why.
    Unknown(String),
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
    /// The tenant that owns the client app, where the export says.
    pub app_owner: Option<Guid>,
    pub resource_id: Option<&'a str>,
    pub resource_owner: Option<Guid>,
    pub trust: TrustNeeds<'a>,
    /// What `Office365` and `AllMicrosoftApps` stand for.
    pub apps: &'a AppCatalog,
    pub cloud: CloudHint,
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

pub fn targets_text(cfg: &TargetConfig) -> String {
    // Texts order as [`TargetText`]s do.
    let names = cfg.targets.iter().map(|t| &t.target);
    if cfg.targets.len() > 3 {
        // The first two in sorted order, found without sorting them all
        // (a section may name a hundred thousand users).
        let mut first = [&cfg.targets[0].target; 2];
        for (i, t) in names.enumerate() {
            if i < 2 {
                first[i] = t;
                if i == 1 && first[1] < first[0] {
                    first.swap(0, 1);
                }
            } else if t < first[0] {
                first = [t, first[0]];
            } else if t < first[1] {
                first[1] = t;
            }
        }
        format!("{}, {} and {} more", first[0], first[1], cfg.targets.len() - 2)
    } else {
        let mut t: Vec<&TargetText> = names.collect();
        t.sort_unstable();
        t.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(", ")
    }
}

/// `partner <id>`, as reasons begin (written into the reason, not made a
/// string of its own on every evaluation).
#[derive(Clone, Copy)]
struct Who(Guid);

impl fmt::Display for Who {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "partner {}", self.0)
    }
}

/// `partner <id> <section>`, as the reason of a section's verdict begins.
#[derive(Clone, Copy)]
struct Prefix(Who, Section);

impl Prefix {
    /// Appends the prefix: what `Display` writes, without the formatting
    /// machinery (every replayed row's reason starts with it).
    fn push_to(self, out: &mut String) {
        out.push_str("partner ");
        out.push_str(self.0 .0.hyphenated().as_str());
        out.push(' ');
        out.push_str(self.1.name());
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = String::with_capacity(PREFIX_LEN);
        self.push_to(&mut text);
        f.write_str(&text)
    }
}

/// The longest [`Prefix`]: `partner `, an id, a space and the longest
/// section name (`b2bDirectConnectOutbound`).
const PREFIX_LEN: usize = 8 + 36 + 1 + 24;

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
    let who = Who(req.partner);

    let cloud = match (&eff.cloud, &req.cloud) {
        (Some(c), _) | (None, CloudHint::Other(c)) => Some(c),
        _ => None,
    };
    if let Some(cloud) = cloud {
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
        if !eff.configured {
            return decided(
                Verdict::Blocked,
                format!(
                    "{who} is in another Microsoft cloud ({cloud}) and has no partner entry: tenants in another cloud are blocked until they are added to the organizational settings"
                ),
            );
        }
    } else if let (CloudHint::Unknown(why), false) = (&req.cloud, eff.configured) {
        return decided(Verdict::Unknown, format!("{who} has no partner entry in this policy, and {why}"));
    }

    let s = eff.section(section);
    let users = &s.users_and_groups;
    let apps = &s.applications;
    let u = user_match(&users.value, users.lookups(), req);
    let a = app_match(&apps.value, apps.lookups(), req);
    let ua = users.value.access_type;
    let aa = apps.value.access_type;
    let prefix = Prefix(who, section);
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
    let (head, why) =
        if users_decide { (&users.lookups().head, &u.why) } else { (&apps.lookups().head, &a.why) };
    // Every row replayed has a reason: written once into room made for it
    // (`format!` grew it from 8 bytes, five copies for a reason of 130:
    // two fifths of evaluating).
    let mut reason = String::with_capacity(PREFIX_LEN + head.len() + why.len() + 4);
    prefix.push_to(&mut reason);
    for part in [": ", &**head, ": ", &**why] {
        reason.push_str(part);
    }
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
                push_after(&mut reason, &t.reason);
            }
            _ => {
                if t.degraded {
                    degraded = true;
                    push_after(&mut reason, &t.reason);
                }
            }
        }
    }
    Decision { verdict, degraded, reason }
}

/// Appends `; ` and `more` to a reason, growing it once.
fn push_after(reason: &mut String, more: &str) {
    reason.reserve(2 + more.len());
    reason.push_str("; ");
    reason.push_str(more);
}

/// How one requirement fares under a policy's inbound trust, worst last:
/// AND takes the worst of its controls, OR the best.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Outcome {
    Met,
    /// Met, but the user must now do MFA in our tenant.
    Degraded(String),
    Unknown(String),
    Refused(String),
}

fn rank(o: &Outcome) -> u8 {
    match o {
        Outcome::Met => 0,
        Outcome::Degraded(_) => 1,
        Outcome::Unknown(_) => 2,
        Outcome::Refused(_) => 3,
    }
}

fn worst(a: Outcome, b: Outcome) -> Outcome {
    if rank(&b) > rank(&a) {
        b
    } else {
        a
    }
}

fn best(a: Outcome, b: Outcome) -> Outcome {
    if rank(&b) < rank(&a) {
        b
    } else {
        a
    }
}

/// A trust flag as reasons name it: `inboundTrust.<name> <value>
/// (<origin>)`.
fn flag(s: &Sourced<bool>, name: &str) -> String {
    flag_parts(s, name).concat()
}

/// [`flag`]'s text in parts, for a reason that joins them with its own.
/// Joined, not `format!`ted: a sign-in logged without Conditional Access
/// details names a device flag in its reason at every evaluation, and
/// `propose` evaluates a row against several trials (a tenth of its
/// instructions were these texts).
fn flag_parts<'a>(s: &Sourced<bool>, name: &'a str) -> [&'a str; 5] {
    let value = if s.value { " true (" } else { " false (" };
    ["inboundTrust.", name, value, s.origin.as_str(), ")"]
}

/// Each grant control on its own, under this partner's trust settings.
struct TrustCheck<'a> {
    eff: &'a Effective,
    direct: bool,
    mfa_by_claim: bool,
}

impl TrustCheck<'_> {
    fn mfa(&self) -> Outcome {
        let t = &self.eff.inbound_trust.is_mfa_accepted;
        if t.value {
            Outcome::Met
        } else if self.direct {
            Outcome::Refused(format!(
                "{}: MFA is required, and B2B direct connect users cannot do MFA in our tenant",
                flag(t, "isMfaAccepted")
            ))
        } else if self.mfa_by_claim {
            Outcome::Degraded(format!(
                "{}: the MFA claim from the home tenant is not accepted, so the user must do MFA in our tenant",
                flag(t, "isMfaAccepted")
            ))
        } else {
            Outcome::Met
        }
    }

    fn device(&self, hybrid: bool) -> Outcome {
        let (accepted, name, what) = if hybrid {
            (
                &self.eff.inbound_trust.is_hybrid_joined_device_accepted,
                "isHybridAzureADJoinedDeviceAccepted",
                "a hybrid joined device",
            )
        } else {
            (
                &self.eff.inbound_trust.is_compliant_device_accepted,
                "isCompliantDeviceAccepted",
                "a compliant device",
            )
        };
        if accepted.value {
            Outcome::Met
        } else {
            Outcome::Refused(format!(
                "{}: Conditional Access requires {what}, which external users can only prove with a trusted home-tenant claim",
                flag(accepted, name)
            ))
        }
    }

    fn strength(&self, need: Option<&StrengthNeed>) -> Outcome {
        let t = &self.eff.inbound_trust.is_mfa_accepted;
        if t.value {
            // Microsoft: with MFA trust, the home tenant's MFA satisfies the
            // strength when done with an allowed method (all are allowed at home).
            return Outcome::Met;
        }
        if self.direct {
            return Outcome::Refused(format!(
                "{}: an authentication strength is required, and B2B direct connect users cannot do MFA in our tenant",
                flag(t, "isMfaAccepted")
            ));
        }
        match need {
            Some(StrengthNeed::Known(s)) if s.external_users_can_meet_in_resource_tenant() => {
                if self.mfa_by_claim {
                    Outcome::Degraded(format!(
                        "{}: the authentication strength {} ({}) must now be met in our tenant, with text message, voice, Authenticator push or a software OATH token",
                        flag(t, "isMfaAccepted"),
                        s.name,
                        s.id
                    ))
                } else {
                    Outcome::Met
                }
            }
            Some(StrengthNeed::Known(s)) => Outcome::Refused(format!(
                "{}: the authentication strength {} ({}) needs methods external users can only use in their home tenant (Microsoft allows only text message, voice, Authenticator push and software OATH in the resource tenant)",
                flag(t, "isMfaAccepted"),
                s.name,
                s.id
            )),
            Some(StrengthNeed::Unknown(why)) => Outcome::Unknown(format!(
                "{} and an authentication strength is required: {why}",
                flag(t, "isMfaAccepted")
            )),
            None => Outcome::Unknown("an authentication strength is required but not described".into()),
        }
    }

    /// One control. `alternative`: the control is weighed as one option of
    /// "require one of" (then a control trust settings do not touch is not
    /// known to be usable: Microsoft does not support approved client app or
    /// app protection policy for external users, while terms of use are);
    /// as one part of "require all of", such a control is as met as before.
    fn control(&self, c: Controls, clause: &ResolvedClause, alternative: bool) -> Outcome {
        match c {
            Controls::MFA => self.mfa(),
            Controls::COMPLIANT_DEVICE => self.device(false),
            Controls::HYBRID_JOIN => self.device(true),
            Controls::AUTH_STRENGTH => self.strength(clause.strength.as_ref()),
            _ if alternative => Outcome::Unknown(
                "whether the user can meet its other control instead (approved client app, app protection, terms of use, a custom control) is not known: Microsoft supports only some of them for external users".into(),
            ),
            _ => Outcome::Met,
        }
    }

    /// A policy kept whole: its controls combined by its operator; when the
    /// operator is not known and decides the outcome, unknown.
    fn clause(&self, clause: &ResolvedClause) -> Outcome {
        let each = |alternative: bool| -> Vec<(&str, Outcome)> {
            clause
                .clause
                .controls
                .each()
                .map(|(c, name)| (name, self.control(c, clause, alternative)))
                .collect()
        };
        let outcomes = each(false);
        let all = outcomes.iter().map(|(_, o)| o.clone()).fold(Outcome::Met, worst);
        let one = each(true).into_iter().map(|(_, o)| o).reduce(best).unwrap_or(Outcome::Met);
        let names: Vec<&str> = outcomes.iter().map(|(n, _)| *n).collect();
        let within = |o: Outcome, how: &str| {
            let head = if how.is_empty() { clause.label() } else { format!("{} ({how})", clause.label()) };
            match o {
                Outcome::Met => Outcome::Met,
                Outcome::Degraded(w) => Outcome::Degraded(format!("{head}: {w}")),
                Outcome::Unknown(w) => Outcome::Unknown(format!("{head}: {w}")),
                Outcome::Refused(w) => Outcome::Refused(format!("{head}: {w}")),
            }
        };
        match clause.operator {
            _ if outcomes.len() < 2 => within(all, ""),
            Some(Operator::And) => within(all, "requires all of its controls: operator AND"),
            Some(Operator::Or) => within(one, "requires one of its controls: operator OR"),
            None if rank(&all) == rank(&one) => within(all, "whether it requires all or one of its controls does not matter here"),
            None => Outcome::Unknown(format!(
                "{} requires {}; the log does not say whether all or one of them is required, and that decides the outcome (supply --ca-policies, the output of GET /identity/conditionalAccess/policies)",
                clause.label(),
                names.join(" and ")
            )),
        }
    }
}

/// Inbound trust against what the sign-in needed.
fn trust(eff: &Effective, section: Section, req: &Request<'_>) -> Decision {
    let check = TrustCheck { eff, direct: section.is_direct_connect(), mfa_by_claim: req.trust.mfa_by_claim };
    let t = &eff.inbound_trust;
    let mut outcomes = Vec::new();
    if req.trust.mfa == Need::Yes {
        outcomes.push(check.mfa());
    }
    for (need, hybrid, accepted, name, what) in [
        (
            req.trust.compliant_device,
            false,
            &t.is_compliant_device_accepted,
            "isCompliantDeviceAccepted",
            "a compliant device",
        ),
        (
            req.trust.hybrid_joined_device,
            true,
            &t.is_hybrid_joined_device_accepted,
            "isHybridAzureADJoinedDeviceAccepted",
            "a hybrid joined device",
        ),
    ] {
        match need {
            Need::Yes => outcomes.push(check.device(hybrid)),
            Need::Unknown if !accepted.value => {
                let [a, b, c, d, e] = flag_parts(accepted, name);
                let why = "the export carries no Conditional Access details, so whether ";
                outcomes.push(Outcome::Unknown(
                    [why, what, " was required is unknown (", a, b, c, d, e, ")"].concat(),
                ))
            }
            _ => {}
        }
    }
    for c in req.trust.clauses {
        outcomes.push(check.clause(c));
    }
    // The refusal decides; otherwise every unknown is said; a degraded
    // outcome is said when nothing is unknown.
    if let Some(Outcome::Refused(why)) = outcomes.iter().find(|o| matches!(o, Outcome::Refused(_))) {
        return Decision { verdict: Verdict::Blocked, degraded: false, reason: why.clone() };
    }
    // Past the policies kept whole, those dropped may decide: said alone,
    // the kept ones' unknowns are a forged export's noise.
    if clauses_past_kept(req.trust.clauses) {
        let reason = format!(
            "the sign-ins name more Conditional Access policies with several controls than the {CLAUSES_KEPT} xtenant keeps (a tenant may have 195 policies): the export is forged or garbled, and the policies dropped may decide"
        );
        return Decision { verdict: Verdict::Unknown, degraded: false, reason };
    }
    let unknown: Vec<&str> = outcomes
        .iter()
        .filter_map(|o| if let Outcome::Unknown(w) = o { Some(w.as_str()) } else { None })
        .collect();
    if !unknown.is_empty() {
        return Decision { verdict: Verdict::Unknown, degraded: false, reason: unknown.join("; ") };
    }
    let degraded: Vec<&str> = outcomes
        .iter()
        .filter_map(|o| if let Outcome::Degraded(w) = o { Some(w.as_str()) } else { None })
        .collect();
    Decision { verdict: Verdict::Allowed, degraded: !degraded.is_empty(), reason: degraded.join("; ") }
}

#[cfg(test)]
#[path = "evaluate_tests.rs"]
mod tests;
