//! The least-privilege policy: the tightest cross-tenant access policy under
//! which every access the logs show still works.
//!
//! Built from the activity table (user grain) and then proved with the
//! replay engine itself, so that the guarantee is the evaluator's, not a
//! second reading of the rules:
//!
//! 1. Default: B2B collaboration and B2B direct connect blocked both ways,
//!    no inbound trust (Microsoft's advice: block by default, allow-list);
//!    B2B collaboration keeps Microsoft's recommended apps reachable
//!    (encrypted mail, My Apps, Terms of Use), as `policy check` asks.
//! 2. Per partner with at least `min_sign_ins` successful sign-ins: each
//!    section (direction and access type) it used, allowed for exactly the
//!    apps used (the resource each sign-in reached, else its client app) and
//!    the users: ours by object id for outbound; all of the partner's for
//!    inbound (its users' home-tenant ids are not in our logs).
//! 3. Inbound trust: every flag the partner's sign-ins could have relied on,
//!    then each one dropped again if replay shows nobody loses or is
//!    degraded without it.
//! 4. Replay of every row against the proposal: a partner with any access
//!    still lost or degraded has the section widened (all users, then all
//!    apps) and is said so in its rationale.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::replay::{replay, Impact, Inputs, ReplayRow};
use crate::model::{ActivityRow, Direction, Guid};
use crate::policy::apps::RECOMMENDED_ALLOWED;
use crate::policy::evaluate::section_for;
use crate::policy::model::{
    AccessKind, B2bSetting, ConsentSettings, DefaultConfig, InboundTrust, PartnerConfig, Section, Settings,
    Target, TargetConfig, TargetType,
};
use crate::policy::{Policy, Verdict};

/// What to propose from.
pub struct ProposeInputs<'a> {
    /// The activity table at the user grain.
    pub rows: &'a [ActivityRow],
    /// Everything replay needs besides the proposal (`current` included).
    pub replay: Inputs<'a>,
    /// Partners with fewer successful sign-ins than this are not allowed.
    pub min_sign_ins: u64,
    /// Access to keep that the logs did not show (`--keep`).
    pub keep: &'a [Keep],
}

/// `--keep`: access the logs did not show (seasonal use, a partner about to
/// start) kept anyway, with the reason recorded in the rationale.
#[derive(Clone, Debug, PartialEq)]
pub enum Keep {
    /// The partner keeps its entry of `--current`, or, without one, B2B
    /// collaboration both ways for all users and apps.
    Partner { id: Guid, reason: String },
    /// The app stays allowed in every partner's allowed B2B collaboration sections.
    App { id: Guid, reason: String },
}

impl Keep {
    /// `partner:ID` or `app:ID`, optionally `=REASON`.
    pub fn parse(s: &str) -> Result<Keep, String> {
        let (spec, reason) = s.split_once('=').map_or((s, None), |(a, b)| (a, Some(b.trim().to_string())));
        let bad = || format!("`{s}`: expected partner:TENANT-ID or app:APP-ID, optionally =REASON");
        let (kind, id) = spec.split_once(':').ok_or_else(bad)?;
        let id = Guid::parse(id).ok_or_else(bad)?;
        let reason = reason.filter(|r| !r.is_empty()).unwrap_or_else(|| format!("--keep {spec}"));
        match kind.trim() {
            "partner" => Ok(Keep::Partner { id, reason }),
            "app" => Ok(Keep::App { id, reason }),
            _ => Err(bad()),
        }
    }
}

/// One section of one partner as proposed, with the evidence behind it.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct SectionPlan {
    pub section: Section,
    /// User targets (`AllUsers`, or our users' object ids).
    pub users: Vec<String>,
    /// Application targets (app ids, or `AllApplications`).
    pub apps: Vec<String>,
    pub sign_ins: u64,
    pub distinct_users: usize,
    pub last_seen: Option<DateTime<Utc>>,
    /// Why a target list is wider than the evidence, when it is.
    pub widened: Option<String>,
}

/// One partner as proposed.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct PartnerPlan {
    pub partner_tenant_id: Guid,
    pub partner_tenant_name: Option<String>,
    pub sections: Vec<SectionPlan>,
    pub trust_mfa: bool,
    pub trust_compliant_device: bool,
    pub trust_hybrid_joined_device: bool,
    /// Kept by `--keep`: the reason.
    pub kept: Option<String>,
}

/// A partner seen in the logs but not allowed, and why.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct LeftOut {
    pub partner_tenant_id: Guid,
    pub partner_tenant_name: Option<String>,
    pub successes: u64,
    pub reason: String,
}

/// The proposal and its rationale.
pub struct Proposal {
    pub policy: Policy,
    pub partners: Vec<PartnerPlan>,
    pub left_out: Vec<LeftOut>,
    /// Every row replayed against the proposal (the proof).
    pub replayed: Vec<ReplayRow>,
    /// Partners the current policy configures (`--current`): updated, or
    /// deleted when the proposal has no entry for them.
    pub current_partners: Vec<Guid>,
    /// Successful sign-ins the current policy blocks today, not granted.
    pub not_granted: u64,
}

fn targets(kind: AccessKind, all: &str, ty: TargetType, ids: &[String]) -> TargetConfig {
    let targets = if ids.is_empty() {
        vec![Target { target: all.into(), target_type: ty }]
    } else {
        ids.iter().map(|t| Target { target: t.clone(), target_type: ty }).collect()
    };
    TargetConfig { access_type: kind, targets }
}

/// Microsoft's recommended apps (encrypted mail, My Apps, Terms of Use),
/// which B2B collaboration keeps reachable when everything else is blocked.
fn recommended() -> Vec<String> {
    RECOMMENDED_ALLOWED.iter().map(|(id, _)| id.to_string()).collect()
}

/// A section nobody uses: B2B direct connect blocked; B2B collaboration
/// blocked but for Microsoft's recommended apps (`policy check` warns
/// otherwise: blocking them breaks encrypted mail and terms of use).
fn closed(section: Section) -> B2bSetting {
    if section.is_direct_connect() {
        B2bSetting {
            users_and_groups: Some(targets(AccessKind::Blocked, "AllUsers", TargetType::User, &[])),
            applications: Some(targets(AccessKind::Blocked, "AllApplications", TargetType::Application, &[])),
        }
    } else {
        B2bSetting {
            users_and_groups: Some(targets(AccessKind::Allowed, "AllUsers", TargetType::User, &[])),
            applications: Some(targets(AccessKind::Allowed, "", TargetType::Application, &recommended())),
        }
    }
}

fn no_trust() -> InboundTrust {
    InboundTrust {
        is_mfa_accepted: Some(false),
        is_compliant_device_accepted: Some(false),
        is_hybrid_joined_device_accepted: Some(false),
    }
}

/// The default of the proposal: everything blocked, nothing trusted.
pub fn blocked_default() -> DefaultConfig {
    DefaultConfig {
        is_service_default: Some(false),
        settings: Settings {
            b2b_collaboration_inbound: Some(closed(Section::CollaborationInbound)),
            b2b_collaboration_outbound: Some(closed(Section::CollaborationOutbound)),
            b2b_direct_connect_inbound: Some(closed(Section::DirectConnectInbound)),
            b2b_direct_connect_outbound: Some(closed(Section::DirectConnectOutbound)),
            inbound_trust: Some(no_trust()),
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

fn set_section(s: &mut Settings, section: Section, value: B2bSetting) {
    let slot = match section {
        Section::CollaborationInbound => &mut s.b2b_collaboration_inbound,
        Section::CollaborationOutbound => &mut s.b2b_collaboration_outbound,
        Section::DirectConnectInbound => &mut s.b2b_direct_connect_inbound,
        Section::DirectConnectOutbound => &mut s.b2b_direct_connect_outbound,
    };
    *slot = Some(value);
}

/// The partner entry a plan stands for: its sections allowed for their
/// targets, the others blocked (not inherited: the entry says it all).
fn partner_config(plan: &PartnerPlan) -> PartnerConfig {
    let mut settings = Settings {
        inbound_trust: Some(InboundTrust {
            is_mfa_accepted: Some(plan.trust_mfa),
            is_compliant_device_accepted: Some(plan.trust_compliant_device),
            is_hybrid_joined_device_accepted: Some(plan.trust_hybrid_joined_device),
        }),
        ..Settings::default()
    };
    for section in Section::ALL {
        set_section(&mut settings, section, closed(section));
    }
    for s in &plan.sections {
        let mut apps = s.apps.clone();
        if !apps.is_empty() && !s.section.is_direct_connect() {
            for r in recommended() {
                if !apps.iter().any(|a| a.eq_ignore_ascii_case(&r)) {
                    apps.push(r);
                }
            }
        }
        set_section(
            &mut settings,
            s.section,
            B2bSetting {
                users_and_groups: Some(targets(AccessKind::Allowed, "AllUsers", TargetType::User, &s.users)),
                applications: Some(targets(
                    AccessKind::Allowed,
                    "AllApplications",
                    TargetType::Application,
                    &apps,
                )),
            },
        );
    }
    PartnerConfig {
        tenant_id: plan.partner_tenant_id,
        is_service_provider: None,
        is_in_multi_tenant_organization: None,
        settings,
        cloud: None,
        extra: BTreeMap::new(),
    }
}

fn policy_of(plans: &[PartnerPlan], current: Option<&Policy>) -> Policy {
    // A partner kept by --keep keeps what the current policy gives it.
    let config = |p: &PartnerPlan| match (&p.kept, current.and_then(|c| c.partners.get(&p.partner_tenant_id)))
    {
        (Some(_), Some(c)) => c.clone(),
        _ => partner_config(p),
    };
    Policy {
        allowed_cloud_endpoints: vec![],
        default: Some(blocked_default()),
        partners: plans.iter().map(|p| (p.partner_tenant_id, config(p))).collect(),
        warnings: vec![],
        source: "xtenant propose".into(),
    }
}

/// The app a sign-in needs allowed: the resource it reached, else its client.
fn app_target(r: &ActivityRow) -> Option<&str> {
    r.resource_id.as_deref().or(r.app_id.as_deref())
}

/// What one section's successful sign-ins show.
#[derive(Default)]
struct Evidence {
    users: BTreeSet<String>,
    apps: BTreeSet<String>,
    /// Some sign-in cannot be targeted by user (inbound, or no user id).
    all_users: bool,
    /// Some sign-in names no app.
    all_apps: bool,
    sign_ins: u64,
    last_seen: Option<DateTime<Utc>>,
}

/// The first plan of each used section, straight from the evidence.
fn first_plan(partner: Guid, rows: &[&ActivityRow]) -> PartnerPlan {
    let mut sections: BTreeMap<Section, Evidence> = BTreeMap::new();
    for r in rows {
        let Some(section) = section_for(r.direction, r.access_type) else { continue };
        let e = sections.entry(section).or_default();
        // Graph takes object and app ids (GUIDs) as targets; a sign-in
        // naming something else can only be allowed by "all".
        let id = |s: Option<&str>| s.and_then(Guid::parse).map(|g| g.to_string());
        match (r.direction, id(r.user_id.as_deref())) {
            (Direction::Outbound, Some(u)) => {
                e.users.insert(u);
            }
            (Direction::Outbound, None) => e.all_users = true,
            // Inbound targets are the partner's ids; ours are local guest ids.
            (Direction::Inbound, _) => e.all_users = true,
        }
        match id(app_target(r)) {
            Some(a) => {
                e.apps.insert(a);
            }
            None => e.all_apps = true,
        }
        e.sign_ins += r.counters.successes;
        e.last_seen = e.last_seen.max(r.counters.last_seen);
    }
    let distinct = |section: Section| {
        rows.iter()
            .filter(|r| section_for(r.direction, r.access_type) == Some(section))
            .filter_map(|r| r.user_id.as_deref())
            .collect::<BTreeSet<_>>()
            .len()
    };
    PartnerPlan {
        partner_tenant_id: partner,
        partner_tenant_name: rows
            .iter()
            .rev()
            .find_map(|r| r.partner_tenant_name.as_deref().map(str::to_string)),
        sections: sections
            .into_iter()
            .map(|(section, e)| SectionPlan {
                section,
                users: if e.all_users { vec![] } else { e.users.into_iter().collect() },
                apps: if e.all_apps { vec![] } else { e.apps.into_iter().collect() },
                sign_ins: e.sign_ins,
                distinct_users: distinct(section),
                last_seen: e.last_seen,
                widened: None,
            })
            .collect(),
        trust_mfa: false,
        trust_compliant_device: false,
        trust_hybrid_joined_device: false,
        kept: None,
    }
}

/// Whether a replayed row breaks the guarantee: access lost or degraded.
fn breaks(r: &ReplayRow) -> bool {
    matches!(r.impact, Impact::Lost | Impact::Degraded)
}

/// Replays one partner's rows against the plan: how many break.
fn broken(plan: &PartnerPlan, rows: &[&ActivityRow], inputs: &ProposeInputs<'_>) -> usize {
    let proposed = policy_of(std::slice::from_ref(plan), None);
    let replay_inputs = Inputs { proposed: &proposed, ..clone_inputs(&inputs.replay) };
    replay(rows.iter().map(|r| (*r).clone()).collect(), &replay_inputs).iter().filter(|r| breaks(r)).count()
}

fn clone_inputs<'a>(i: &Inputs<'a>) -> Inputs<'a> {
    Inputs {
        current: i.current,
        proposed: i.proposed,
        groups: i.groups,
        identities: i.identities,
        history: i.history,
        apps: i.apps,
        ca: i.ca,
    }
}

/// Trust: every flag on where inbound sign-ins could rely on it, then each
/// dropped when nothing breaks without it.
fn settle_trust(plan: &mut PartnerPlan, rows: &[&ActivityRow], inputs: &ProposeInputs<'_>) {
    let inbound: Vec<&ActivityRow> =
        rows.iter().copied().filter(|r| r.direction == Direction::Inbound).collect();
    let sum = |f: fn(&ActivityRow) -> u64| inbound.iter().map(|r| f(r)).sum::<u64>();
    plan.trust_mfa = sum(|r| r.counters.mfa_required + r.counters.mfa_by_claim) > 0
        || inbound.iter().any(|r| !r.counters.grant_clauses.is_empty());
    plan.trust_compliant_device =
        sum(|r| r.counters.compliant_device_required + r.counters.ca_details_missing) > 0
            || inbound.iter().any(|r| !r.counters.grant_clauses.is_empty());
    plan.trust_hybrid_joined_device =
        sum(|r| r.counters.hybrid_join_required + r.counters.ca_details_missing) > 0
            || inbound.iter().any(|r| !r.counters.grant_clauses.is_empty());
    let base = broken(plan, rows, inputs);
    for flag in 0..3 {
        if !*trust_flag(plan, flag) {
            continue;
        }
        let mut trial = plan.clone();
        *trust_flag(&mut trial, flag) = false;
        if broken(&trial, rows, inputs) <= base {
            *plan = trial;
        }
    }
}

/// The inbound trust flags by number: MFA, compliant device, hybrid join.
fn trust_flag(p: &mut PartnerPlan, flag: usize) -> &mut bool {
    match flag {
        0 => &mut p.trust_mfa,
        1 => &mut p.trust_compliant_device,
        _ => &mut p.trust_hybrid_joined_device,
    }
}

/// What the current policy (`--current`) says of each row, by group key.
/// The proposal only narrows: a success it blocks today is not granted
/// again (the policy changed after it), and an attempt it allows that
/// failed for another reason (a mistyped password) is kept, or replay
/// would find it lost.
fn current_verdicts(inputs: &ProposeInputs<'_>) -> BTreeMap<String, Verdict> {
    let Some(current) = inputs.replay.current else { return BTreeMap::new() };
    let as_proposed = Inputs { proposed: current, ..clone_inputs(&inputs.replay) };
    replay(inputs.rows.to_vec(), &as_proposed)
        .iter()
        .map(|r| (format!("{:?}", r.activity.sort_key()), r.current))
        .collect()
}

/// Builds the proposal; see the module doc.
pub fn propose(inputs: &ProposeInputs<'_>) -> Proposal {
    let current = current_verdicts(inputs);
    let mut by_partner: BTreeMap<Guid, Vec<&ActivityRow>> = BTreeMap::new();
    let mut not_granted = 0u64;
    for r in inputs.rows {
        if section_for(r.direction, r.access_type).is_none() {
            continue;
        }
        let now = current.get(&format!("{:?}", r.sort_key())).copied();
        let c = &r.counters;
        let used = if c.successes > 0 {
            if now == Some(Verdict::Blocked) {
                not_granted += c.successes;
                false
            } else {
                true
            }
        } else {
            c.failures > 0 && c.policy_blocks == 0 && now == Some(Verdict::Allowed)
        };
        if used {
            by_partner.entry(r.partner_tenant_id).or_default().push(r);
        }
    }
    let mut plans = Vec::new();
    let mut left_out = Vec::new();
    for (partner, rows) in &by_partner {
        let successes: u64 = rows.iter().map(|r| r.counters.successes).sum();
        if successes < inputs.min_sign_ins {
            left_out.push(LeftOut {
                partner_tenant_id: *partner,
                partner_tenant_name: rows
                    .iter()
                    .find_map(|r| r.partner_tenant_name.as_deref().map(str::to_string)),
                successes,
                reason: format!(
                    "{successes} successful sign-in(s), fewer than --min-sign-ins {}",
                    inputs.min_sign_ins
                ),
            });
            continue;
        }
        let mut plan = first_plan(*partner, rows);
        settle_trust(&mut plan, rows, inputs);
        widen_until_whole(&mut plan, rows, inputs);
        plans.push(plan);
    }
    apply_keeps(&mut plans, inputs.keep);
    let policy = policy_of(&plans, inputs.replay.current);
    let replay_inputs = Inputs { proposed: &policy, ..clone_inputs(&inputs.replay) };
    let replayed = replay(inputs.rows.to_vec(), &replay_inputs);
    let current_partners =
        inputs.replay.current.map_or_else(Vec::new, |c| c.partners.keys().copied().collect());
    Proposal { policy, partners: plans, left_out, replayed, current_partners, not_granted }
}

/// `--keep`: partners without use added (B2B collaboration both ways for all
/// users and apps unless `--current` has their entry), apps added to every
/// allowed collaboration section that lists apps.
fn apply_keeps(plans: &mut Vec<PartnerPlan>, keep: &[Keep]) {
    for k in keep {
        match k {
            Keep::Partner { id, reason } => match plans.iter_mut().find(|p| p.partner_tenant_id == *id) {
                Some(p) => p.kept = Some(reason.clone()),
                None => plans.push(PartnerPlan {
                    partner_tenant_id: *id,
                    partner_tenant_name: None,
                    sections: [Section::CollaborationInbound, Section::CollaborationOutbound]
                        .into_iter()
                        .map(|section| SectionPlan {
                            section,
                            users: vec![],
                            apps: vec![],
                            sign_ins: 0,
                            distinct_users: 0,
                            last_seen: None,
                            widened: Some(format!("kept without sign-ins: {reason}")),
                        })
                        .collect(),
                    trust_mfa: false,
                    trust_compliant_device: false,
                    trust_hybrid_joined_device: false,
                    kept: Some(reason.clone()),
                }),
            },
            Keep::App { id, reason } => {
                let id = id.to_string();
                for s in plans.iter_mut().flat_map(|p| p.sections.iter_mut()) {
                    if !s.section.is_direct_connect() && !s.apps.is_empty() && !s.apps.contains(&id) {
                        s.apps.push(id.clone());
                        let note = format!("app {id} kept: {reason}");
                        s.widened = Some(s.widened.take().map_or(note.clone(), |w| format!("{w}; {note}")));
                    }
                }
            }
        }
    }
    plans.sort_by_key(|p| p.partner_tenant_id);
}

/// Widens a section whose access would still break (users first, then
/// apps), saying so: the evidence could not be targeted exactly.
fn widen_until_whole(plan: &mut PartnerPlan, rows: &[&ActivityRow], inputs: &ProposeInputs<'_>) {
    if broken(plan, rows, inputs) == 0 {
        return;
    }
    for i in 0..plan.sections.len() {
        for step in 0..2 {
            let mut trial = plan.clone();
            let s = &mut trial.sections[i];
            if step == 0 && !s.users.is_empty() {
                s.users.clear();
                s.widened = Some("all users: the observed users alone still lose access".into());
            } else if step == 1 && !s.apps.is_empty() {
                s.apps.clear();
                s.widened = Some("all users and apps: the observed ones alone still lose access".into());
            } else {
                continue;
            }
            let before = broken(plan, rows, inputs);
            let after = broken(&trial, rows, inputs);
            if after < before {
                *plan = trial;
            }
            if after == 0 {
                return;
            }
        }
    }
}
