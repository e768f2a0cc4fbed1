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
//!    the users: ours by object id for outbound, or with `--groups` the
//!    smallest set of groups holding them (users no group holds stay
//!    named); all of the partner's for inbound (its users' home-tenant ids
//!    are not in our logs), or with `--identities` exactly the home ids.
//! 3. Inbound trust: every flag the partner's sign-ins could have relied on,
//!    then each one dropped again if replay shows nobody loses or is
//!    degraded without it.
//! 4. Replay of every row against the proposal: a partner with any access
//!    still lost or degraded has the section widened (all users, then all
//!    apps) and is said so in its rationale.
//!
//! Steps 2 to 4 need one partner's rows at a time, read once per trial of
//! its plan, and the proof every row once more: the rows come as a stream
//! and go through the disk past the memory budget ([`propose`]), a
//! partner's rows too ([`Kept`]), so that memory follows the policy
//! itself, not the number of groups or the users of the largest partner.
//! Nor does it follow the number of partners: no partner's rows depend on
//! another's entry, so the proof replays each partner's rows against the
//! default and its own entry alone, in partner order beside the plans
//! ([`prove`]), and the plans, the partners left out and what `--current`
//! loses are spooled in that order for the formats to write
//! ([`Proposal`]). A forged export naming a million partners held a
//! million plans and entries, 5.4 GB.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{self, BufRead};
use std::rc::Rc;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use rayon::prelude::*;
use serde::Serialize;

use super::replay::{count_impact, Impact, ImpactCounts, Inputs, ReplayRow, Replayer};
use super::runs::codec::{Dec, Enc};
use super::runs::{Kept, Order, Record, Sorter, Spool, Stream};
use crate::model::{AccessType, ActivityRow, Direction, Guid};
use crate::policy::apps::RECOMMENDED_ALLOWED;
use crate::policy::directory::{GroupHolding, Identities};
use crate::policy::evaluate::section_for;
use crate::policy::model::{
    service_default, AccessKind, B2bSetting, DefaultConfig, InboundTrust, PartnerConfig, Section, Settings,
    Target, TargetConfig, TargetStr, TargetText, TargetType, Targets,
};
use crate::policy::resolve::{Effective, Half, Resolver};
use crate::policy::{Policy, Verdict};

/// What to propose from.
pub struct ProposeInputs<'a> {
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
    /// User targets: object ids (ours outbound, the partner's inbound);
    /// none, with no groups either, means all users. The very list the
    /// proposed policy's section names: a proposal may name a million
    /// users, held once, and a trial's copy of a plan copies none of them.
    #[serde(serialize_with = "target_names")]
    pub users: Targets,
    /// Group targets (`--groups`, outbound): our groups covering the users.
    pub groups: Vec<GroupPick>,
    /// Application targets (app ids, or `AllApplications`).
    pub apps: Vec<String>,
    pub sign_ins: u64,
    /// Failed attempts kept because the current policy allows them (the
    /// proposal only narrows), for a section with no success.
    pub failed_attempts: u64,
    pub distinct_users: usize,
    pub last_seen: Option<DateTime<Utc>>,
    /// Why a target list is wider than the evidence, when it is.
    pub widened: Option<String>,
}

/// A group proposed as a user target, and what it brings.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct GroupPick {
    pub group: String,
    /// The section's observed users it holds.
    pub observed: usize,
    /// Its members in all (through nested groups): more than `observed`
    /// means people allowed who were not seen.
    pub members: usize,
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

/// The proposal and its rationale, each list a stream in partner order,
/// read once by the format written. Why: a forged export naming a million
/// partners made a million plans and policy entries, 5 GB, held until
/// they were written; now a budget of them is in memory, the rest on disk.
pub(crate) struct Proposal {
    /// The proposal's default: everything blocked ([`blocked_default`]).
    pub(crate) default: DefaultConfig,
    /// The partners allowed, each with its plan, by tenant id.
    pub(crate) partners: Stream<PartnerPlan>,
    pub(crate) partner_count: usize,
    /// Partners seen but not allowed, by tenant id.
    pub(crate) left_out: Stream<LeftOut>,
    pub(crate) left_out_count: usize,
    /// Every row replayed against the proposal (the proof): impact ->
    /// (rows, sign-ins), as a replay's summary counts them.
    pub(crate) proof: ImpactCounts,
    /// Partners the current policy configures (`--current`): updated, or
    /// deleted when the proposal has no entry for them.
    pub(crate) current_partners: BTreeSet<Guid>,
    /// The partners `--current` configures and the proposal has no entry
    /// for, by tenant id: their entries are deleted.
    pub(crate) dropped: Vec<Guid>,
    /// Successful sign-ins the current policy blocks today, not granted.
    pub(crate) not_granted: u64,
    /// What the current policy allows and the proposal no longer does
    /// (`--current`): none of it had a successful sign-in in the period.
    /// The default's first, then by partner.
    pub(crate) removed: Stream<Removal>,
    pub(crate) removed_count: usize,
    /// Each plan's entry in the proposed policy.
    pub(crate) entries: Entries,
}

/// The entries of the proposed policy, made from the plans as they are
/// read: each plan's own ([`partner_config`]), but for a partner kept by
/// `--keep`, its `--current` entry when it has one.
pub(crate) struct Entries {
    /// The `--current` entries of partners kept by `--keep`.
    kept: BTreeMap<Guid, Arc<PartnerConfig>>,
}

impl Entries {
    pub(crate) fn of(&self, plan: &PartnerPlan) -> Arc<PartnerConfig> {
        match (&plan.kept, self.kept.get(&plan.partner_tenant_id)) {
            (Some(_), Some(c)) => Arc::clone(c),
            _ => Arc::new(partner_config(plan)),
        }
    }
}

/// One thing the current policy allows that the proposal takes away.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Removal {
    /// The partner, or `None` for the default (tenants without an entry).
    pub partner: Option<Guid>,
    /// `b2bCollaborationInbound.applications`, `inboundTrust.isMfaAccepted`, ...
    pub setting: String,
    /// What is no longer allowed.
    pub removed: String,
}

impl Record for PartnerPlan {
    fn write(&self, enc: &mut Enc) {
        enc.u128(self.partner_tenant_id.0);
        enc.opt_str(self.partner_tenant_name.as_deref());
        enc.u32(self.sections.len() as u32);
        for s in &self.sections {
            enc.one_of(&Section::ALL, s.section);
            enc.u32(s.users.len() as u32);
            for t in s.users.iter() {
                enc.one_of(&TARGET_TYPES, t.target_type);
                match &t.target {
                    TargetText::Id(bytes) => {
                        enc.u8(0);
                        enc.u128(u128::from_be_bytes(*bytes));
                    }
                    TargetText::Text(text) => {
                        enc.u8(1);
                        enc.str(text);
                    }
                }
            }
            enc.u32(s.groups.len() as u32);
            for g in &s.groups {
                enc.str(&g.group);
                enc.u64(g.observed as u64);
                enc.u64(g.members as u64);
            }
            enc.u32(s.apps.len() as u32);
            for a in &s.apps {
                enc.str(a);
            }
            enc.u64(s.sign_ins);
            enc.u64(s.failed_attempts);
            enc.u64(s.distinct_users as u64);
            enc.opt_time(s.last_seen);
            enc.opt_str(s.widened.as_deref());
        }
        let trust = [self.trust_mfa, self.trust_compliant_device, self.trust_hybrid_joined_device];
        enc.u8(trust.iter().enumerate().fold(0, |bits, (i, on)| bits | (u8::from(*on) << i)));
        enc.opt_str(self.kept.as_deref());
    }

    fn read<R: BufRead>(dec: &mut Dec<R>) -> io::Result<Self> {
        let partner_tenant_id = Guid(dec.u128()?);
        let partner_tenant_name = dec.opt_string()?;
        let sections = (0..dec.u32()?)
            .map(|_| {
                let section = dec.one_of(&Section::ALL, "section")?;
                let users = (0..dec.u32()?)
                    .map(|_| {
                        let target_type = dec.one_of(&TARGET_TYPES, "target type")?;
                        let target = match dec.u8()? {
                            0 => TargetText::Id(dec.u128()?.to_be_bytes()),
                            _ => TargetText::Text(dec.string()?.into()),
                        };
                        Ok(Target { target, target_type })
                    })
                    .collect::<io::Result<Vec<Target>>>()?
                    .into();
                let groups = (0..dec.u32()?)
                    .map(|_| {
                        Ok(GroupPick {
                            group: dec.string()?,
                            observed: dec.u64()? as usize,
                            members: dec.u64()? as usize,
                        })
                    })
                    .collect::<io::Result<_>>()?;
                let apps = (0..dec.u32()?).map(|_| dec.string()).collect::<io::Result<_>>()?;
                Ok(SectionPlan {
                    section,
                    users,
                    groups,
                    apps,
                    sign_ins: dec.u64()?,
                    failed_attempts: dec.u64()?,
                    distinct_users: dec.u64()? as usize,
                    last_seen: dec.opt_time()?,
                    widened: dec.opt_string()?,
                })
            })
            .collect::<io::Result<_>>()?;
        let trust = dec.u8()?;
        Ok(PartnerPlan {
            partner_tenant_id,
            partner_tenant_name,
            sections,
            trust_mfa: trust & 1 != 0,
            trust_compliant_device: trust & 2 != 0,
            trust_hybrid_joined_device: trust & 4 != 0,
            kept: dec.opt_string()?,
        })
    }

    fn text_bytes(&self) -> usize {
        let texts = [&self.partner_tenant_name, &self.kept]
            .iter()
            .map(|t| t.as_ref().map_or(0, String::len))
            .sum::<usize>();
        let sections = self.sections.iter().map(|s| {
            // An id target is 24 bytes as it is held.
            s.users.len() * 24
                + s.groups.iter().map(|g| g.group.len()).sum::<usize>()
                + s.apps.iter().map(String::len).sum::<usize>()
                + s.widened.as_ref().map_or(0, String::len)
        });
        texts + sections.sum::<usize>()
    }
}

/// [`TargetType`]s by their number on disk.
const TARGET_TYPES: [TargetType; 4] =
    [TargetType::User, TargetType::Group, TargetType::Application, TargetType::UnknownFutureValue];

impl Record for LeftOut {
    fn write(&self, enc: &mut Enc) {
        enc.u128(self.partner_tenant_id.0);
        enc.opt_str(self.partner_tenant_name.as_deref());
        enc.u64(self.successes);
        enc.str(&self.reason);
    }

    fn read<R: BufRead>(dec: &mut Dec<R>) -> io::Result<Self> {
        Ok(LeftOut {
            partner_tenant_id: Guid(dec.u128()?),
            partner_tenant_name: dec.opt_string()?,
            successes: dec.u64()?,
            reason: dec.string()?,
        })
    }

    fn text_bytes(&self) -> usize {
        self.partner_tenant_name.as_ref().map_or(0, String::len) + self.reason.len()
    }
}

impl Record for Removal {
    fn write(&self, enc: &mut Enc) {
        enc.opt_guid(self.partner);
        enc.str(&self.setting);
        enc.str(&self.removed);
    }

    fn read<R: BufRead>(dec: &mut Dec<R>) -> io::Result<Self> {
        Ok(Removal { partner: dec.opt_guid()?, setting: dec.string()?, removed: dec.string()? })
    }

    fn text_bytes(&self) -> usize {
        self.setting.len() + self.removed.len()
    }
}

/// A plan's user targets as the object ids they name.
fn target_names<S: serde::Serializer>(users: &Targets, s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(users.iter().map(|t| &t.target))
}

fn targets(kind: AccessKind, all: &str, ty: TargetType, ids: &[String]) -> TargetConfig {
    let targets = if ids.is_empty() {
        vec![Target { target: all.into(), target_type: ty }].into()
    } else {
        ids.iter().map(|t| Target { target: t.as_str().into(), target_type: ty }).collect()
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

/// [`closed`] of each of [`Section::ALL`], made once and shared: every
/// trial of a proposal makes a partner's policy anew, its unused sections
/// closed.
fn closed_sections() -> &'static [B2bSetting; 4] {
    static CLOSED: std::sync::OnceLock<[B2bSetting; 4]> = std::sync::OnceLock::new();
    CLOSED.get_or_init(|| Section::ALL.map(closed))
}

/// The default of the proposal: everything blocked, nothing trusted (the
/// service default's trust and consent, which trust nothing).
pub fn blocked_default() -> DefaultConfig {
    let mut d = service_default();
    d.is_service_default = Some(false);
    for (section, closed) in Section::ALL.into_iter().zip(closed_sections()) {
        set_section(&mut d.settings, section, closed.clone());
    }
    d
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
    for (section, closed) in Section::ALL.into_iter().zip(closed_sections()) {
        set_section(&mut settings, section, closed.clone());
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
        let mut users = if s.users.is_empty() {
            targets(AccessKind::Allowed, "AllUsers", TargetType::User, &[])
        } else {
            TargetConfig { access_type: AccessKind::Allowed, targets: s.users.clone() }
        };
        if !s.groups.is_empty() {
            let groups = s
                .groups
                .iter()
                .map(|g| Target { target: g.group.as_str().into(), target_type: TargetType::Group });
            let named = if s.users.is_empty() { &[][..] } else { &users.targets[..] };
            users.targets = named.iter().cloned().chain(groups).collect();
        }
        set_section(
            &mut settings,
            s.section,
            B2bSetting {
                users_and_groups: Some(users),
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

/// The proposed policy as one partner's rows see it: `default`, and the
/// partner's `entry` if it has one (replay reads no other partner's).
fn policy_with(default: DefaultConfig, entry: Option<Arc<PartnerConfig>>) -> Policy {
    Policy {
        allowed_cloud_endpoints: vec![],
        default: Some(Arc::new(default)),
        partners: entry.map(|e| (e.tenant_id, e)).into_iter().collect(),
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
    /// The users to name (an id as its 16 bytes: a section may have a
    /// million users).
    users: BTreeSet<TargetText>,
    apps: BTreeSet<String>,
    /// Some sign-in cannot be targeted by user (inbound, or no user id).
    all_users: bool,
    /// Why, when the reason is worth saying.
    all_users_because: Option<String>,
    /// Some sign-in names no app.
    all_apps: bool,
    sign_ins: u64,
    failed_attempts: u64,
    last_seen: Option<DateTime<Utc>>,
    /// The sign-ins' user ids, for the rationale's count of users (an id
    /// as its 16 bytes: a section may have a million users).
    user_ids: BTreeSet<TargetText>,
}

/// Graph takes object and app ids (GUIDs) as targets; a sign-in naming
/// something else can only be allowed by "all".
fn target_id(s: Option<&str>) -> Option<String> {
    s.and_then(Guid::parse).map(|g| g.to_string())
}

/// [`target_id`] of a user, as a target's text.
fn user_target(s: Option<&str>) -> Option<TargetText> {
    s.and_then(Guid::parse).map(TargetText::from)
}

/// The id an inbound section's user targets would name: the partner's
/// (home) object id. A B2B collaboration guest's logged id is our local
/// one, mapped by `--identities`; direct connect has no guest account and
/// logs the home id (docs/policy-semantics.md). Without `--identities`
/// none is named (all of the partner's users, nothing to explain); an
/// unmapped guest also gives all users, and says why.
fn inbound_target(r: &ActivityRow, identities: Option<&Identities>) -> Result<TargetText, Option<String>> {
    let Some(ids) = identities else { return Err(None) };
    let home = match r.access_type {
        AccessType::B2bDirectConnect => r.user_id.as_deref().map(TargetStr::Text),
        _ => ids.home_id(r.user_id.as_deref(), r.user_principal_name.as_deref()),
    };
    user_target(home.as_deref()).ok_or_else(|| {
        Some(format!(
            "all users: {} has no home-tenant object id in --identities",
            r.user_principal_name.as_deref().or(r.user_id.as_deref()).unwrap_or("a user without an id")
        ))
    })
}

/// One partner's rows, read once for its first plan and once for every
/// trial of it ([`broken`]): in memory up to the budget, past it from a
/// file, a chunk at a time ([`ROWS_AT_A_TIME`]).
type PartnerRows = Kept<ActivityRow>;

/// Rows of a partner read from its file at a time: three such chunks are
/// in memory at once (one read, one waiting, one worked on), some 400
/// bytes a row (at 16,384 a chunk they were 20 MB of `propose --current`'s
/// peak); enough for both cores to share each.
const ROWS_AT_A_TIME: usize = 4 << 10;

/// The first plan of each used section, straight from the evidence; the
/// partner named `name`, as its rows name it (its first row that does: a
/// grouping names a partner alike on all its rows).
fn first_plan(
    partner: Guid,
    name: Option<String>,
    rows: &PartnerRows,
    inputs: &ProposeInputs<'_>,
    holdings: &[GroupHolding],
) -> anyhow::Result<PartnerPlan> {
    let mut sections: BTreeMap<Section, Evidence> = BTreeMap::new();
    rows.each_chunk(ROWS_AT_A_TIME, |chunk| {
        for r in chunk {
            add_evidence(&mut sections, r, inputs);
        }
    })?;
    Ok(PartnerPlan {
        partner_tenant_id: partner,
        partner_tenant_name: name,
        sections: sections
            .into_iter()
            .map(|(section, e)| {
                let (groups, users) = if e.all_users {
                    (vec![], vec![])
                } else if section == Section::CollaborationOutbound
                    || section == Section::DirectConnectOutbound
                {
                    cover(&e.users, holdings)
                } else {
                    (vec![], e.users.into_iter().collect())
                };
                let users = users
                    .into_iter()
                    .map(|target| Target { target, target_type: TargetType::User })
                    .collect();
                SectionPlan {
                    section,
                    users,
                    groups,
                    apps: if e.all_apps { vec![] } else { e.apps.into_iter().collect() },
                    sign_ins: e.sign_ins,
                    failed_attempts: e.failed_attempts,
                    distinct_users: e.user_ids.len(),
                    last_seen: e.last_seen,
                    widened: e.all_users_because,
                }
            })
            .collect(),
        trust_mfa: false,
        trust_compliant_device: false,
        trust_hybrid_joined_device: false,
        kept: None,
    })
}

/// Adds a row to the evidence of its section.
fn add_evidence(sections: &mut BTreeMap<Section, Evidence>, r: &ActivityRow, inputs: &ProposeInputs<'_>) {
    let Some(section) = section_for(r.direction, r.access_type) else { return };
    let e = sections.entry(section).or_default();
    let user = match r.direction {
        Direction::Outbound => user_target(r.user_id.as_deref())
            .ok_or_else(|| Some("all users: some sign-ins carry no user object id".to_string())),
        Direction::Inbound => inbound_target(r, inputs.replay.identities),
    };
    match user {
        Ok(u) => {
            e.users.insert(u);
        }
        Err(why) => {
            e.all_users = true;
            if e.all_users_because.is_none() {
                e.all_users_because = why;
            }
        }
    }
    match target_id(app_target(r)) {
        Some(a) => {
            e.apps.insert(a);
        }
        None => e.all_apps = true,
    }
    e.sign_ins = e.sign_ins.saturating_add(r.counters.successes);
    if r.counters.successes == 0 {
        e.failed_attempts = e.failed_attempts.saturating_add(r.counters.failures);
    }
    e.last_seen = e.last_seen.max(r.counters.last_seen);
    if let Some(id) = r.user_id.as_deref() {
        e.user_ids.insert(id.into());
    }
}

/// Whether a replayed row's impact breaks the guarantee: access lost or
/// degraded.
fn breaks(impact: Impact) -> bool {
    matches!(impact, Impact::Lost | Impact::Degraded)
}

/// What every trial of a plan replays with: the inputs, and the current
/// policy resolved once for all of them (a default naming 20,000 users was
/// copied, sorted and looked up again on each of thousands of trials).
struct Trials<'a> {
    inputs: &'a ProposeInputs<'a>,
    current: Option<Resolver<'a>>,
    /// The proposal's default, made once: each trial's policy takes a
    /// copy, its lists shared (a million one-sign-in partners made it
    /// anew some four million times).
    blocked: DefaultConfig,
}

/// Replays one partner's rows against the plan: how many break. Counted
/// as they are replayed, on the pool: a partner's rows are asked several
/// times (once per trust flag, once per widening), and holding (and
/// sorting) its replayed rows each time cost as much memory again as the
/// rows (a partner with 333k users).
fn broken(plan: &PartnerPlan, rows: &PartnerRows, inputs: &Trials<'_>) -> anyhow::Result<usize> {
    let proposed = policy_with(inputs.blocked.clone(), Some(Arc::new(partner_config(plan))));
    let replay_inputs = Inputs { proposed: &proposed, ..inputs.inputs.replay };
    // Its rows are the partner's alone.
    let replayer =
        Replayer::with_current(&replay_inputs, inputs.current.as_ref(), Some(plan.partner_tenant_id));
    let mut broken = 0;
    rows.each_chunk(ROWS_AT_A_TIME, |chunk| {
        let breaking = |r: &&ActivityRow| breaks(replayer.impact(r));
        broken += match chunk.len() < ON_THE_POOL_FROM {
            true => chunk.iter().filter(breaking).count(),
            false => chunk.par_iter().filter(breaking).count(),
        };
    })?;
    Ok(broken)
}

/// Rows of a partner replayed on the pool from this many; fewer are
/// replayed where they are. Handing a job to the pool and waiting for it
/// costs more than replaying a few rows: a million partners of one
/// sign-in each spent a tenth of their proposal switching threads.
const ON_THE_POOL_FROM: usize = 64;

/// Trust: every flag on where inbound sign-ins could rely on it, then each
/// dropped when nothing breaks without it. Returns how many rows break
/// under the plan settled on (what [`widen_until_whole`] starts from).
fn settle_trust(plan: &mut PartnerPlan, rows: &PartnerRows, inputs: &Trials<'_>) -> anyhow::Result<usize> {
    // What the inbound sign-ins required or claimed; a policy kept whole
    // (several controls, a strength) may rest on any claim.
    let (mut clauses, mut mfa, mut compliant, mut hybrid) = (false, 0u64, 0u64, 0u64);
    rows.each_chunk(ROWS_AT_A_TIME, |chunk| {
        for c in chunk.iter().filter(|r| r.direction == Direction::Inbound).map(|r| &r.counters) {
            clauses |= !c.grant_clauses.is_empty();
            mfa = mfa.saturating_add(c.mfa_required).saturating_add(c.mfa_by_claim);
            compliant =
                compliant.saturating_add(c.compliant_device_required).saturating_add(c.ca_details_missing);
            hybrid = hybrid.saturating_add(c.hybrid_join_required).saturating_add(c.ca_details_missing);
        }
    })?;
    plan.trust_mfa = clauses || mfa > 0;
    plan.trust_compliant_device = clauses || compliant > 0;
    plan.trust_hybrid_joined_device = clauses || hybrid > 0;
    let base = broken(plan, rows, inputs)?;
    let mut now = base;
    for flag in 0..3 {
        if !*trust_flag(plan, flag) {
            continue;
        }
        let mut trial = plan.clone();
        *trust_flag(&mut trial, flag) = false;
        let without = broken(&trial, rows, inputs)?;
        if without <= base {
            *plan = trial;
            now = without;
        }
    }
    Ok(now)
}

/// The inbound trust flags by number: MFA, compliant device, hybrid join.
fn trust_flag(p: &mut PartnerPlan, flag: usize) -> &mut bool {
    match flag {
        0 => &mut p.trust_mfa,
        1 => &mut p.trust_compliant_device,
        _ => &mut p.trust_hybrid_joined_device,
    }
}

/// A partner's rows that allow nothing (failed attempts, successes the
/// current policy blocks), added up for the rationale of leaving it out.
#[derive(Default)]
struct Unused {
    name: Option<String>,
    successes: u64,
    failures: u64,
    policy_blocks: u64,
}

/// Whether a row's access is evidence to allow. The proposal only narrows:
/// a success the current policy (`--current`) blocks today is not granted
/// again (the policy changed after it), and an attempt it allows that
/// failed for another reason (a mistyped password) is kept, or replay
/// would find it lost. `now`: the current policy's verdict of the row.
fn used(r: &ActivityRow, now: Option<Verdict>) -> bool {
    let c = &r.counters;
    if c.successes > 0 {
        now != Some(Verdict::Blocked)
    } else {
        c.failures > 0 && c.policy_blocks == 0 && now == Some(Verdict::Allowed)
    }
}

/// Rows by partner (stable: a partner's rows keep the order they came in),
/// for taking one partner's rows at a time through the disk.
const BY_PARTNER: Order<ActivityRow> = Order {
    cmp: |a, b| a.partner_tenant_id.cmp(&b.partner_tenant_id),
    key: |r, out| out.extend_from_slice(&r.partner_tenant_id.0.to_be_bytes()),
    sort: None,
};

/// Builds the proposal from the activity rows at the user grain (in any
/// order); see the module doc. Memory holds one partner's rows at a time,
/// on disk past `budget` rows: the rows that are evidence go through a sort
/// by partner, every row through another for the proof, and the plans and
/// the rest of the rationale are spooled, on disk past `budget` too, so
/// that nothing held grows with the number of partners.
pub(crate) fn propose(
    rows: &mut Stream<ActivityRow>,
    inputs: &ProposeInputs<'_>,
    budget: Option<usize>,
) -> anyhow::Result<Proposal> {
    let trials =
        Trials { inputs, current: inputs.replay.current.map(Resolver::new), blocked: blocked_default() };
    let as_current = inputs.replay.current.map(|current| Inputs { proposed: current, ..inputs.replay });
    let current = as_current.as_ref().map(Replayer::new);
    // The evidence, and every row for the proof (those that are no
    // evidence now, the evidence once its partner's plan is made), each
    // sorted by partner in half the budget.
    let half = budget.map(|b| (b / 2).max(1));
    let mut evidence = Sorter::new("propose", BY_PARTNER, half);
    let mut proof = Sorter::new("propose", BY_PARTNER, half);
    let mut not_granted = 0u64;
    // How many rows of evidence the first partners have: a partner's rows
    // go to a file at once when they fill the budget ([`Spool::expect`]).
    // Counted for Entra's few thousand partners; a forged export's
    // millions past them are not (their rows fill the budget first).
    let mut evidence_rows: HashMap<Guid, usize> = HashMap::new();
    // Outbound users, whose groups `--groups` may allow instead.
    let mut outbound_users = BTreeSet::new();
    for r in rows.by_ref() {
        if section_for(r.direction, r.access_type).is_none() {
            proof.push(r)?;
            continue;
        }
        let now = current.as_ref().and_then(|c| c.current_verdict(&r));
        if used(&r, now) {
            if inputs.replay.groups.is_some() && r.direction == Direction::Outbound {
                outbound_users.extend(target_id(r.user_id.as_deref()));
            }
            let room = evidence_rows.len() < COUNTED_PARTNERS;
            match evidence_rows.get_mut(&r.partner_tenant_id) {
                Some(n) => *n += 1,
                None if room => {
                    evidence_rows.insert(r.partner_tenant_id, 1);
                }
                None => {}
            }
            evidence.push(r)?;
        } else {
            if r.counters.successes > 0 {
                not_granted = not_granted.saturating_add(r.counters.successes);
            }
            proof.push(r)?;
        }
    }
    let holdings = match inputs.replay.groups {
        Some(groups) => {
            groups.holding(&outbound_users).into_iter().filter(|h| Guid::parse(&h.group).is_some()).collect()
        }
        None => vec![],
    };
    drop(outbound_users);
    // Each partner with evidence: its plan, or why it is left out.
    let mut planned = Spool::new("propose", budget);
    let mut too_few = Spool::new("propose", budget);
    let mut evidence = evidence.finish()?;
    let mut next = evidence.next();
    while let Some(first) = next.take() {
        let partner = first.partner_tenant_id;
        // The partner's rows, read once per trial of its plan: kept in
        // memory up to the budget, past it in a file (a partner may have a
        // third of a million users).
        let (mut successes, mut name) = (0u64, None);
        let mut spool = Spool::new("propose", budget);
        spool.expect(evidence_rows.get(&partner).copied().unwrap_or(0))?;
        let mut add = |r: ActivityRow| {
            successes = successes.saturating_add(r.counters.successes);
            if name.is_none() {
                name = r.partner_tenant_name.as_deref().map(str::to_string);
            }
            spool.push(r)
        };
        add(first)?;
        loop {
            match evidence.next() {
                Some(r) if r.partner_tenant_id == partner => add(r)?,
                other => break next = other,
            }
        }
        let rows = spool.keep()?;
        if successes < inputs.min_sign_ins {
            too_few.push(LeftOut {
                partner_tenant_id: partner,
                partner_tenant_name: name,
                successes,
                reason: format!(
                    "{successes} successful sign-in(s), fewer than --min-sign-ins {}",
                    inputs.min_sign_ins
                ),
            })?;
        } else {
            let mut plan = first_plan(partner, name, &rows, inputs, &holdings)?;
            let broken = settle_trust(&mut plan, &rows, &trials)?;
            widen_until_whole(&mut plan, broken, &rows, &trials)?;
            planned.push(plan)?;
        }
        rows.into_each(|r| proof.push(r))?;
    }
    evidence.finish()?;
    let sources = Sources { planned: planned.finish()?, too_few: too_few.finish()?, proof: proof.finish()? };
    prove(sources, inputs, &trials, not_granted, budget)
}

/// Partners whose rows of evidence are counted, at most (some 40 bytes
/// each in memory).
const COUNTED_PARTNERS: usize = 1 << 16;

/// What [`prove`] reads side by side, by partner.
struct Sources {
    /// The plans of partners with evidence.
    planned: Stream<PartnerPlan>,
    /// Partners with evidence but too few successful sign-ins.
    too_few: Stream<LeftOut>,
    /// Every row.
    proof: Stream<ActivityRow>,
}

/// The partners of every source, each once, in order: a partner's plan
/// (or its `--keep` plan), its entry of `--current`, its rows. For each:
/// the plan with `--keep` applied, its rows replayed against it (the
/// proof), what it takes away from `--current`, why a partner without one
/// is left out. `not_granted`: the successes `--current` blocks today,
/// counted as the rows were first read.
fn prove(
    mut sources: Sources,
    inputs: &ProposeInputs<'_>,
    trials: &Trials<'_>,
    not_granted: u64,
    budget: Option<usize>,
) -> anyhow::Result<Proposal> {
    let default = blocked_default();
    let current_policy = inputs.replay.current;
    let current_partners: BTreeSet<Guid> =
        current_policy.map_or_else(BTreeSet::new, |c| c.partners.keys().copied().collect());
    // Partners kept by --keep, with the reason their plan says when they
    // have no evidence (the first given); the current entries they keep.
    let mut keep_partners: BTreeMap<Guid, &str> = BTreeMap::new();
    for k in inputs.keep {
        if let Keep::Partner { id, reason } = k {
            keep_partners.entry(*id).or_insert(reason);
        }
    }
    let entries = Entries {
        kept: keep_partners
            .keys()
            .filter_map(|id| current_policy.and_then(|c| c.partners.get(id)).map(|e| (*id, Arc::clone(e))))
            .collect(),
    };
    // The proposal for partners without an entry, and what it takes away
    // (resolved once: its halves are the same for every such partner).
    let default_only = policy_with(default.clone(), None);
    let default_inputs = Inputs { proposed: &default_only, ..inputs.replay };
    let unconfigured = Replayer::with_current(&default_inputs, trials.current.as_ref(), None);
    let default_resolver = Resolver::new(&default_only);
    let default_after = default_resolver.effective(None);
    let mut taking = Taking::default();

    let mut partners = Spool::new("propose", budget);
    let mut left_out = Spool::new("propose", budget);
    let mut removed = Spool::new("propose", budget);
    let (mut partner_count, mut left_out_count, mut removed_count) = (0, 0, 0);
    let mut dropped = Vec::new();
    let mut impacts = ImpactCounts::new();
    if let Some(current) = &trials.current {
        for r in taking.away(None, &current.effective(None), &default_after, &default_after) {
            removed.push(r)?;
            removed_count += 1;
        }
    }
    {
        let mut planned = sources.planned.by_ref().peekable();
        let mut too_few = sources.too_few.by_ref().peekable();
        let mut proof = sources.proof.by_ref().peekable();
        let mut configured = current_partners.iter().copied().peekable();
        let mut keeps = keep_partners.iter().peekable();
        loop {
            let heads = [
                planned.peek().map(|p| p.partner_tenant_id),
                too_few.peek().map(|l| l.partner_tenant_id),
                proof.peek().map(|r| r.partner_tenant_id),
                configured.peek().copied(),
                keeps.peek().map(|(id, _)| **id),
            ];
            let Some(partner) = heads.into_iter().flatten().min() else { break };
            let evidence = planned.next_if(|p| p.partner_tenant_id == partner);
            let short = too_few.next_if(|l| l.partner_tenant_id == partner);
            let with_evidence = evidence.is_some() || short.is_some();
            let in_current = configured.next_if_eq(&partner).is_some();
            let kept_without_evidence = keeps.next_if(|(id, _)| **id == partner).map(|(_, reason)| *reason);
            let mut plan =
                evidence.or_else(|| kept_without_evidence.map(|reason| kept_plan(partner, reason)));
            if let Some(plan) = &mut plan {
                apply_keeps(plan, inputs.keep);
            }
            let entry = plan.as_ref().map(|p| entries.of(p));
            let own = entry.as_ref().map(|e| policy_with(default.clone(), Some(Arc::clone(e))));
            let own_inputs = own.as_ref().map(|p| Inputs { proposed: p, ..inputs.replay });
            let own_replayer = own_inputs
                .as_ref()
                .map(|i| Replayer::with_current(i, trials.current.as_ref(), Some(partner)));
            // The partner's rows, replayed against its entry (or the
            // default); those of a partner without evidence added up for
            // the reason it is left out.
            let mut unused: Option<Unused> = None;
            let mut rows =
                std::iter::from_fn(|| proof.next_if(|r| r.partner_tenant_id == partner)).inspect(|r| {
                    if !with_evidence && section_for(r.direction, r.access_type).is_some() {
                        unused.get_or_insert_with(Unused::default).add(r);
                    }
                });
            count_replayed(&mut rows, own_replayer.as_ref().unwrap_or(&unconfigured), &mut impacts);
            drop(rows);
            if let Some(current) = &trials.current {
                if in_current || own.is_some() {
                    let after = match &own {
                        Some(p) => Resolver::new(p).effective(Some(partner)),
                        None => default_resolver.effective(Some(partner)),
                    };
                    for r in
                        taking.away(Some(partner), &current.effective(Some(partner)), &after, &default_after)
                    {
                        removed.push(r)?;
                        removed_count += 1;
                    }
                }
            }
            if in_current && plan.is_none() {
                dropped.push(partner);
            }
            let left = short.or_else(|| unused.map(|u| u.left_out(partner)));
            if let Some(l) = left {
                left_out.push(l)?;
                left_out_count += 1;
            }
            if let Some(plan) = plan {
                partners.push(plan)?;
                partner_count += 1;
            }
        }
    }
    sources.planned.finish()?;
    sources.too_few.finish()?;
    sources.proof.finish()?;
    Ok(Proposal {
        default,
        partners: partners.finish()?,
        partner_count,
        left_out: left_out.finish()?,
        left_out_count,
        proof: impacts,
        current_partners,
        dropped,
        not_granted,
        removed: removed.finish()?,
        removed_count,
        entries,
    })
}

/// Replays `rows`, adding their impacts to `impacts`: a chunk at a time,
/// on the pool when the chunk is large enough to be worth it.
fn count_replayed(
    rows: &mut dyn Iterator<Item = ActivityRow>,
    replayer: &Replayer<'_>,
    impacts: &mut ImpactCounts,
) {
    loop {
        let chunk: Vec<ActivityRow> = rows.take(ROWS_AT_A_TIME).collect();
        if chunk.is_empty() {
            return;
        }
        let replayed: Vec<ReplayRow> = match chunk.len() < ON_THE_POOL_FROM {
            true => chunk.into_iter().map(|r| replayer.row(r)).collect(),
            false => chunk.into_par_iter().map(|r| replayer.row(r)).collect(),
        };
        replayed.iter().for_each(|r| count_impact(impacts, r));
    }
}

impl Unused {
    /// Adds a row that allows nothing.
    fn add(&mut self, r: &ActivityRow) {
        if self.name.is_none() {
            self.name = r.partner_tenant_name.as_deref().map(str::to_string);
        }
        self.successes = self.successes.saturating_add(r.counters.successes);
        self.failures = self.failures.saturating_add(r.counters.failures);
        self.policy_blocks = self.policy_blocks.saturating_add(r.counters.policy_blocks);
    }

    /// Why the partner these rows are of is left out.
    fn left_out(self, partner: Guid) -> LeftOut {
        LeftOut {
            partner_tenant_id: partner,
            partner_tenant_name: self.name,
            successes: self.successes,
            reason: if self.successes > 0 {
                format!(
                    "{} successful sign-in(s), all of which the current policy blocks today",
                    self.successes
                )
            } else {
                format!(
                    "no successful sign-in: {} failed attempt(s), {} of them blocked by cross-tenant access settings",
                    self.failures, self.policy_blocks
                )
            },
        }
    }
}

/// Who or what one half of a section lets through.
#[derive(Debug, PartialEq)]
enum Reach {
    Everyone,
    Only(BTreeSet<TargetText>),
    AllBut(BTreeSet<TargetText>),
    Nobody,
}

fn reach(cfg: &TargetConfig) -> Option<Reach> {
    let all = cfg.targets.iter().any(|t| {
        t.target.eq_ignore_ascii_case("AllUsers") || t.target.eq_ignore_ascii_case("AllApplications")
    });
    // Ids compare in any letter case (as the ids they are: 24 bytes, where a
    // text took 64, and a proposal may name a million users); keywords
    // (`Office365`) keep theirs.
    let ids: BTreeSet<TargetText> = cfg
        .targets
        .iter()
        .map(|t| match t.target.id() {
            Some(_) => t.target.clone(),
            None => Guid::parse(&t.target.as_str()).map_or_else(|| t.target.clone(), TargetText::from),
        })
        .collect();
    Some(match (cfg.access_type, all) {
        (AccessKind::Allowed, true) => Reach::Everyone,
        (AccessKind::Allowed, false) => Reach::Only(ids),
        (AccessKind::Blocked, true) => Reach::Nobody,
        (AccessKind::Blocked, false) => Reach::AllBut(ids),
        (AccessKind::UnknownFutureValue, _) => return None,
    })
}

/// What each half reaches, an inherited one ([`crate::policy::resolve::Half::inherited_id`])
/// found once for all the partners that inherit it.
#[derive(Default)]
struct Reaches(HashMap<usize, Rc<Option<Reach>>>);

impl Reaches {
    fn of(&mut self, cfg: &TargetConfig, inherited: Option<usize>) -> Rc<Option<Reach>> {
        match inherited {
            Some(id) => Rc::clone(self.0.entry(id).or_insert_with(|| Rc::new(reach(cfg)))),
            None => Rc::new(reach(cfg)),
        }
    }

    /// [`taken_away`] from `before` to `after`.
    fn taken_away<L, M>(&mut self, before: &Half<L>, after: &Half<M>, noun: &str) -> Option<String> {
        let (before, after) =
            (self.of(&before.value, before.inherited_id()), self.of(&after.value, after.inherited_id()));
        (*before).as_ref().zip((*after).as_ref()).and_then(|(b, a)| taken_away(b, a, noun))
    }
}

fn listed(ids: &BTreeSet<TargetText>) -> String {
    const SHOWN: usize = 20;
    let shown: Vec<String> = ids.iter().take(SHOWN).map(TargetText::to_string).collect();
    match ids.len() {
        n if n > SHOWN => format!("{} and {} more", shown.join(", "), n - SHOWN),
        _ => shown.join(", "),
    }
}

/// What `before` lets through that `after` does not, in words; `None`
/// when nothing is taken away.
fn taken_away(before: &Reach, after: &Reach, noun: &str) -> Option<String> {
    use Reach::*;
    let text = match (before, after) {
        (Nobody, _) | (Everyone, Everyone) | (Only(_), Everyone) | (AllBut(_), Everyone) => return None,
        (Everyone, Nobody) => format!("all {noun}"),
        (Everyone, Only(kept)) => format!("all {noun} but the {} the proposal names", kept.len()),
        (Everyone, AllBut(gone)) => listed(gone),
        (Only(had), Nobody) => listed(had),
        (Only(had), Only(kept)) => {
            // A keyword (`Office365`) replaced by the ids of the apps used
            // loses the rest of what it stands for.
            let gone: BTreeSet<TargetText> = had
                .difference(kept)
                .map(|t| match noun == "applications" && t.id().is_none() {
                    true => format!("{t} (but the apps the proposal names)").into(),
                    false => t.clone(),
                })
                .collect();
            listed(&gone)
        }
        (Only(had), AllBut(gone)) => listed(&had.intersection(gone).cloned().collect()),
        (AllBut(was), Nobody) => format!("all {noun} but {}", listed(was)),
        (AllBut(was), Only(kept)) => {
            format!(
                "all {noun} but the {} the proposal names (and {}, blocked already)",
                kept.len(),
                listed(was)
            )
        }
        (AllBut(was), AllBut(gone)) => listed(&gone.difference(was).cloned().collect()),
    };
    (!text.is_empty()).then_some(text)
}

/// What the current policy allows that the proposal does not, scope by
/// scope (the default, then every partner either names), with what was
/// found for a pair of inherited halves kept for every partner that
/// inherits both (a default naming 20,000 users and 3,000 partners).
#[derive(Default)]
struct Taking {
    reaches: Reaches,
    inherited: HashMap<(usize, usize), Option<String>>,
}

impl Taking {
    /// What `before` (the current policy's settings of `partner`, or of the
    /// default) allows that `after` (the proposal's) does not. `after`'s
    /// inherited halves are taken from `default` (the proposal's default
    /// as one resolver, alive throughout, resolves it): a partner's own
    /// policy is resolved on its own, and the address that tells an
    /// inherited half would then be a different one each time, or one
    /// reused.
    fn away(
        &mut self,
        partner: Option<Guid>,
        before: &Effective,
        after: &Effective,
        default: &Effective,
    ) -> Vec<Removal> {
        let mut out = Vec::new();
        for section in Section::ALL {
            let (b, a, d) = (before.section(section), after.section(section), default.section(section));
            let au = match a.users_and_groups.inherited_id() {
                Some(_) => &d.users_and_groups,
                None => &a.users_and_groups,
            };
            let ap = match a.applications.inherited_id() {
                Some(_) => &d.applications,
                None => &a.applications,
            };
            let (bu, bp) = (&b.users_and_groups, &b.applications);
            let (reaches, memo) = (&mut self.reaches, &mut self.inherited);
            let users = bu.once_per_inherited_pair(au, memo, || reaches.taken_away(bu, au, "users"));
            let apps = bp.once_per_inherited_pair(ap, memo, || reaches.taken_away(bp, ap, "applications"));
            for (half, removed) in [("usersAndGroups", users), ("applications", apps)] {
                if let Some(removed) = removed {
                    out.push(Removal { partner, setting: format!("{}.{half}", section.name()), removed });
                }
            }
        }
        let (bt, at) = (&before.inbound_trust, &after.inbound_trust);
        for (flag, b, a) in [
            ("isMfaAccepted", &bt.is_mfa_accepted, &at.is_mfa_accepted),
            ("isCompliantDeviceAccepted", &bt.is_compliant_device_accepted, &at.is_compliant_device_accepted),
            (
                "isHybridAzureADJoinedDeviceAccepted",
                &bt.is_hybrid_joined_device_accepted,
                &at.is_hybrid_joined_device_accepted,
            ),
        ] {
            if b.value && !a.value {
                out.push(Removal {
                    partner,
                    setting: format!("inboundTrust.{flag}"),
                    removed: "trust in the partner's claim".into(),
                });
            }
        }
        out
    }
}

/// `--keep` applied to one partner's plan: kept (the reason of its last
/// `partner:`), and the apps of every `app:` added to each allowed B2B
/// collaboration section that lists apps.
fn apply_keeps(plan: &mut PartnerPlan, keep: &[Keep]) {
    for k in keep {
        match k {
            Keep::Partner { id, reason } if *id == plan.partner_tenant_id => plan.kept = Some(reason.clone()),
            Keep::Partner { .. } => {}
            Keep::App { id, reason } => {
                let id = id.to_string();
                for s in plan.sections.iter_mut() {
                    if !s.section.is_direct_connect() && !s.apps.is_empty() && !s.apps.contains(&id) {
                        s.apps.push(id.clone());
                        let note = format!("app {id} kept: {reason}");
                        s.widened = Some(s.widened.take().map_or(note.clone(), |w| format!("{w}; {note}")));
                    }
                }
            }
        }
    }
}

/// The plan of a partner kept by `--keep` without evidence: B2B
/// collaboration both ways for all users and apps (or, with `--current`,
/// its entry there: [`Proposal::entry`]).
fn kept_plan(partner: Guid, reason: &str) -> PartnerPlan {
    PartnerPlan {
        partner_tenant_id: partner,
        partner_tenant_name: None,
        sections: [Section::CollaborationInbound, Section::CollaborationOutbound]
            .into_iter()
            .map(|section| SectionPlan {
                section,
                users: Targets::default(),
                groups: vec![],
                apps: vec![],
                sign_ins: 0,
                failed_attempts: 0,
                distinct_users: 0,
                last_seen: None,
                widened: Some(format!("kept without sign-ins: {reason}")),
            })
            .collect(),
        trust_mfa: false,
        trust_compliant_device: false,
        trust_hybrid_joined_device: false,
        kept: Some(reason.to_string()),
    }
}

/// Widens a section whose access would still break (users first, then
/// apps), saying so: the evidence could not be targeted exactly. `now`:
/// how many rows break under the plan as it is.
fn widen_until_whole(
    plan: &mut PartnerPlan,
    mut now: usize,
    rows: &PartnerRows,
    inputs: &Trials<'_>,
) -> anyhow::Result<()> {
    if now == 0 {
        return Ok(());
    }
    for i in 0..plan.sections.len() {
        for step in 0..2 {
            let mut trial = plan.clone();
            let s = &mut trial.sections[i];
            if step == 0 && !(s.users.is_empty() && s.groups.is_empty()) {
                s.users = Targets::default();
                s.groups.clear();
                s.widened = Some("all users: the observed users alone still lose access".into());
            } else if step == 1 && !s.apps.is_empty() {
                s.apps.clear();
                s.widened = Some("all users and apps: the observed ones alone still lose access".into());
            } else {
                continue;
            }
            let after = broken(&trial, rows, inputs)?;
            if after < now {
                *plan = trial;
                now = after;
            }
            if now == 0 {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// Up to this many candidate groups the cover is exact (every subset);
/// beyond, greedy (the largest new coverage first) and then pruned of any
/// group the others make redundant.
const EXACT_COVER: usize = 12;

/// The smallest set of groups holding the users that any group holds
/// (fewest groups, then fewest members in all, then by id); users no group
/// holds stay named. Returns (groups, users).
fn cover(users: &BTreeSet<TargetText>, holdings: &[GroupHolding]) -> (Vec<GroupPick>, Vec<TargetText>) {
    let candidates: Vec<(&GroupHolding, BTreeSet<&str>)> = holdings
        .iter()
        .map(|h| {
            let held = h.held.iter().filter(|u| users.contains(&TargetText::from(u.as_str())));
            (h, held.map(String::as_str).collect::<BTreeSet<_>>())
        })
        .filter(|(_, held)| !held.is_empty())
        .collect();
    let coverable: BTreeSet<&str> = candidates.iter().flat_map(|(_, held)| held.iter().copied()).collect();
    let named: Vec<TargetText> =
        users.iter().filter(|u| !coverable.contains(&*u.as_str())).cloned().collect();
    let covers = |picked: &[usize]| {
        let got: BTreeSet<&str> = picked.iter().flat_map(|&i| candidates[i].1.iter().copied()).collect();
        got.len() == coverable.len()
    };
    let members = |picked: &[usize]| picked.iter().map(|&i| candidates[i].0.members).sum::<usize>();
    let picked: Vec<usize> = if candidates.len() <= EXACT_COVER {
        let mut best: Option<(usize, usize, Vec<usize>)> = None;
        for mask in 1u32..(1u32 << candidates.len()) {
            let set: Vec<usize> = (0..candidates.len()).filter(|i| mask >> i & 1 == 1).collect();
            if best.as_ref().is_some_and(|b| set.len() > b.0) || !covers(&set) {
                continue;
            }
            let key = (set.len(), members(&set), set);
            if best.as_ref().is_none_or(|b| key < *b) {
                best = Some(key);
            }
        }
        best.map(|b| b.2).unwrap_or_default()
    } else {
        let mut left = coverable.clone();
        let mut picked = Vec::new();
        while !left.is_empty() {
            let Some(i) = (0..candidates.len()).filter(|i| !picked.contains(i)).max_by_key(|&i| {
                let new = candidates[i].1.iter().filter(|u| left.contains(*u)).count();
                (new, std::cmp::Reverse(candidates[i].0.members), std::cmp::Reverse(i))
            }) else {
                break;
            };
            candidates[i].1.iter().for_each(|u| {
                left.remove(u);
            });
            picked.push(i);
        }
        for i in picked.clone().into_iter().rev() {
            let without: Vec<usize> = picked.iter().copied().filter(|&j| j != i).collect();
            if covers(&without) {
                picked = without;
            }
        }
        picked.sort_unstable();
        picked
    };
    let groups = picked
        .iter()
        .map(|&i| GroupPick {
            group: candidates[i].0.group.clone(),
            observed: candidates[i].1.len(),
            members: candidates[i].0.members,
        })
        .collect();
    (groups, named)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::runs::codec::tests::read_back;
    use crate::model::{AccessType, Counters};
    use crate::policy::apps::AppCatalog;
    use crate::policy::conditional_access::CaPolicies;

    fn holding(group: &str, held: &[&str], members: usize) -> GroupHolding {
        GroupHolding { group: group.into(), held: held.iter().map(|s| s.to_string()).collect(), members }
    }

    fn users(ids: &[&str]) -> BTreeSet<String> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    fn targets(ids: &[&str]) -> BTreeSet<TargetText> {
        ids.iter().map(|&s| TargetText::from(s)).collect()
    }

    #[test]
    fn the_cover_is_the_fewest_groups_then_the_fewest_members_and_users_no_group_holds_stay_named() {
        let h = [
            holding("a", &["u1", "u2"], 2),
            holding("b", &["u3"], 1),
            holding("big", &["u1", "u2", "u3"], 50),
            holding("same", &["u1", "u2", "u3"], 3),
        ];
        let (groups, named) = cover(&targets(&["u1", "u2", "u3", "u4"]), &h);
        assert_eq!(groups.iter().map(|g| g.group.as_str()).collect::<Vec<_>>(), ["same"]);
        assert_eq!((groups[0].observed, groups[0].members), (3, 3));
        assert_eq!(named, ["u4"]);
        let (groups, named) = cover(&targets(&["u3"]), &h);
        assert_eq!(groups.iter().map(|g| g.group.as_str()).collect::<Vec<_>>(), ["b"]);
        assert!(named.is_empty());
    }

    #[test]
    fn past_the_exact_limit_the_greedy_cover_keeps_no_redundant_group() {
        // u0..u19; pairs (u2i, u2i+1) as ten groups, and two halves: the
        // halves are the smallest cover; the pairs must all be pruned.
        let ids: Vec<String> = (0..20).map(|i| format!("u{i:02}")).collect();
        let mut h: Vec<GroupHolding> = (0..10)
            .map(|i| GroupHolding {
                group: format!("pair{i:02}"),
                held: users(&[&ids[2 * i], &ids[2 * i + 1]]),
                members: 2,
            })
            .collect();
        h.push(GroupHolding {
            group: "half1".into(),
            held: ids[..10].iter().cloned().collect(),
            members: 10,
        });
        h.push(GroupHolding {
            group: "half2".into(),
            held: ids[10..].iter().cloned().collect(),
            members: 10,
        });
        h.push(holding("stray", &["u00"], 1));
        assert!(h.len() > EXACT_COVER);
        let (groups, named) = cover(&ids.iter().map(|s| TargetText::from(s.as_str())).collect(), &h);
        assert_eq!(groups.iter().map(|g| g.group.as_str()).collect::<Vec<_>>(), ["half1", "half2"]);
        assert!(named.is_empty());
    }

    #[test]
    fn taken_away_names_what_the_current_reach_has_and_the_proposed_lacks() {
        use Reach::*;
        let s = |ids: &[&str]| ids.iter().map(|&id| TargetText::from(id)).collect::<BTreeSet<_>>();
        assert_eq!(taken_away(&Everyone, &Everyone, "users"), None);
        assert_eq!(taken_away(&Nobody, &Only(s(&["a"])), "users"), None);
        assert_eq!(taken_away(&Only(s(&["a", "b"])), &Only(s(&["a"])), "users").unwrap(), "b");
        assert_eq!(taken_away(&Only(s(&["a"])), &Nobody, "users").unwrap(), "a");
        assert_eq!(taken_away(&Everyone, &AllBut(s(&["x"])), "users").unwrap(), "x");
        assert_eq!(taken_away(&AllBut(s(&["x"])), &AllBut(s(&["x", "y"])), "users").unwrap(), "y");
        assert_eq!(
            taken_away(&Everyone, &Only(s(&["a", "b"])), "applications").unwrap(),
            "all applications but the 2 the proposal names"
        );
        assert_eq!(taken_away(&Only(s(&["a"])), &Everyone, "users"), None);
    }

    fn row(partner: u128, successes: u64, failures: u64, blocks: u64) -> ActivityRow {
        ActivityRow {
            direction: Direction::Outbound,
            access_type: AccessType::B2bCollaboration,
            partner_tenant_id: Guid(partner),
            partner_tenant_name: Some(format!("partner {partner}").into()),
            app_id: Some("11111111-2222-4333-8444-555555555555".into()),
            app_name: None,
            app_owner_tenant_id: None,
            resource_id: None,
            resource_name: None,
            resource_owner_tenant_id: None,
            user_id: Some("aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee".into()),
            user_principal_name: None,
            user_type: None,
            counters: Counters {
                sign_ins: successes + failures,
                successes,
                failures,
                policy_blocks: blocks,
                ..Counters::default()
            },
            distinct_users: None,
            distinct_apps: None,
            by_epoch: vec![],
        }
    }

    fn proposed(rows: &[ActivityRow], budget: Option<usize>) -> Proposal {
        proposed_with(rows, budget, None, &[])
    }

    fn proposed_with(
        rows: &[ActivityRow],
        budget: Option<usize>,
        current: Option<&Policy>,
        keep: &[Keep],
    ) -> Proposal {
        let placeholder = Policy::default();
        let apps = AppCatalog::default();
        let ca = CaPolicies::default();
        let inputs = ProposeInputs {
            replay: Inputs {
                current,
                proposed: &placeholder,
                groups: None,
                identities: None,
                history: None,
                apps: &apps,
                ca: &ca,
            },
            min_sign_ins: 2,
            keep,
        };
        propose(&mut Stream::memory(rows.to_vec()), &inputs, budget).unwrap()
    }

    /// A proposal's lists, read.
    struct Read {
        partners: Vec<PartnerPlan>,
        left_out: Vec<LeftOut>,
        removed: Vec<Removal>,
    }

    fn read(p: Proposal) -> Read {
        let (partners, left_out, removed) = (p.partners.collect(), p.left_out.collect(), p.removed.collect());
        Read { partners, left_out, removed }
    }

    #[test]
    fn a_partner_with_only_failed_attempts_is_left_out_and_the_reason_counts_them() {
        let p = proposed(&[row(1, 2, 0, 0), row(2, 0, 3, 2)], None);
        let (partner_count, left_out_count) = (p.partner_count, p.left_out_count);
        let p = read(p);
        assert_eq!(p.partners.iter().map(|x| x.partner_tenant_id).collect::<Vec<_>>(), [Guid(1)]);
        assert_eq!((partner_count, left_out_count), (1, 1));
        assert_eq!(p.left_out.len(), 1);
        assert_eq!(p.left_out[0].partner_tenant_id, Guid(2));
        assert_eq!(
            p.left_out[0].reason,
            "no successful sign-in: 3 failed attempt(s), 2 of them blocked by cross-tenant access settings"
        );
    }

    #[test]
    fn the_proposal_is_the_same_when_its_rows_go_through_the_disk() {
        // Partners' rows interleaved, users of one partner spread apart.
        let mut rows = Vec::new();
        for i in 0..12u32 {
            let mut r = row(1 + u128::from(i % 3), u64::from(i % 4), u64::from(i % 2), 0);
            r.user_id = Some(format!("aaaaaaaa-bbbb-4ccc-8ddd-{i:012}").into());
            rows.push(r);
        }
        let seen = |p: Proposal| {
            let (proof, not_granted) = (p.proof.clone(), p.not_granted);
            let p = read(p);
            (
                serde_json::to_string(&p.partners).unwrap(),
                p.left_out.iter().map(|l| (l.partner_tenant_id, l.reason.clone())).collect::<Vec<_>>(),
                proof,
                not_granted,
            )
        };
        let memory = seen(proposed(&rows, None));
        assert!(memory.0.contains("aaaaaaaa-bbbb-4ccc-8ddd-000000000005"), "{}", memory.0);
        for budget in [1, 2, 5] {
            assert_eq!(seen(proposed(&rows, Some(budget))), memory, "budget {budget}");
        }
    }

    /// An entry that sets nothing: the partner inherits the default.
    fn bare_entry(partner: u128) -> Arc<PartnerConfig> {
        Arc::new(PartnerConfig {
            tenant_id: Guid(partner),
            is_service_provider: None,
            is_in_multi_tenant_organization: None,
            settings: Settings::default(),
            cloud: None,
            extra: BTreeMap::new(),
        })
    }

    #[test]
    fn plans_left_out_partners_and_removals_read_back_as_written() {
        let mut plan = kept_plan(Guid(7), "audit");
        plan.partner_tenant_name = Some("Contoso \u{1b}[31m".into());
        plan.sections[0].users = vec![
            Target {
                target: TargetText::from("aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"),
                target_type: TargetType::User,
            },
            Target { target: TargetText::from("Not An Id"), target_type: TargetType::Group },
        ]
        .into();
        plan.sections[0].groups = vec![GroupPick { group: "g".into(), observed: 2, members: 5 }];
        plan.sections[1].apps = vec!["app".into(), String::new()];
        plan.sections[1].last_seen = Some(DateTime::from_timestamp(1_700_000_000, 5).unwrap());
        plan.trust_compliant_device = true;
        for p in [plan.clone(), PartnerPlan { sections: vec![], kept: None, trust_mfa: true, ..plan }] {
            assert_eq!(read_back(&p), p);
        }
        let left = LeftOut {
            partner_tenant_id: Guid(u128::MAX),
            partner_tenant_name: None,
            successes: 3,
            reason: "r".into(),
        };
        assert_eq!(read_back(&left), left);
        for partner in [None, Some(Guid(1))] {
            let r = Removal { partner, setting: "inboundTrust.isMfaAccepted".into(), removed: "x".into() };
            assert_eq!(read_back(&r), r);
        }
    }

    #[test]
    fn with_a_current_policy_and_keeps_the_proposal_is_the_same_through_the_disk() {
        // Partners 1-6 in the logs, interleaved: 1 and 4 allowed, 2 (in
        // --current) too, 3 with too few successes, 5 with failures only,
        // 6 blocked today; 7 kept without sign-ins, 9 only in --current.
        let mut rows = Vec::new();
        for i in 0..30u32 {
            let partner = 1 + u128::from(i % 6);
            let (successes, failures) = match partner {
                3 => (u64::from(i == 2), 0),
                5 => (0, 2),
                _ => (1 + u64::from(i % 2), u64::from(i % 3 == 0)),
            };
            let mut r = row(partner, successes, failures, u64::from(partner == 5));
            r.user_id = Some(format!("aaaaaaaa-bbbb-4ccc-8ddd-{i:012}").into());
            if i % 4 == 0 {
                r.direction = Direction::Inbound;
            }
            rows.push(r);
        }
        let mut current =
            Policy { default: Some(std::sync::Arc::new(service_default())), ..Policy::default() };
        for partner in [2, 9] {
            current.partners.insert(Guid(partner), bare_entry(partner));
        }
        let mut blocked = bare_entry(6);
        Arc::make_mut(&mut blocked).settings.b2b_collaboration_outbound =
            Some(closed(Section::DirectConnectOutbound));
        current.partners.insert(Guid(6), blocked);
        let keep = [
            Keep::parse("partner:00000000-0000-0000-0000-000000000007=year end").unwrap(),
            Keep::parse("partner:00000000-0000-0000-0000-000000000002").unwrap(),
            Keep::parse("app:11111111-2222-4333-8444-000000000000=seasonal").unwrap(),
        ];
        let seen = |p: Proposal| {
            let counts =
                (p.partner_count, p.left_out_count, p.removed_count, p.dropped.clone(), p.not_granted);
            let (proof, entries) = (p.proof.clone(), p.entries.kept.keys().copied().collect::<Vec<_>>());
            let p = read(p);
            let ids = |v: &[PartnerPlan]| v.iter().map(|p| p.partner_tenant_id).collect::<Vec<_>>();
            (
                ids(&p.partners),
                serde_json::to_string(&p.partners).unwrap(),
                format!("{:?}", p.left_out),
                format!("{:?}", p.removed),
                counts,
                proof,
                entries,
            )
        };
        let memory = seen(proposed_with(&rows, None, Some(&current), &keep));
        assert_eq!(memory.0, [Guid(1), Guid(2), Guid(4), Guid(7)]);
        assert_eq!(memory.6, [Guid(2)], "the kept partner 2 keeps its current entry; 7 has none");
        assert!(memory.1.contains("kept without sign-ins: year end"), "{}", memory.1);
        assert!(memory.1.contains("app 11111111-2222-4333-8444-000000000000 kept: seasonal"), "{}", memory.1);
        let left: Vec<Guid> = memory
            .2
            .match_indices("partner_tenant_id: ")
            .map(|(i, _)| {
                let id = &memory.2[i + 19..i + 55];
                Guid::parse(id).unwrap()
            })
            .collect();
        assert_eq!(left, [Guid(3), Guid(5), Guid(6)]);
        assert_eq!(memory.4 .3, [Guid(6), Guid(9)], "configured today and not proposed: deleted");
        assert!(memory.4 .4 > 0, "partner 6's successes are blocked today");
        assert!(
            memory.3.starts_with("[Removal { partner: None"),
            "the default's removals come first: {}",
            memory.3
        );
        assert!(memory.3.contains("partner: Some(00000000-0000-0000-0000-000000000009)"), "{}", memory.3);
        for budget in [1, 2, 3] {
            assert_eq!(
                seen(proposed_with(&rows, Some(budget), Some(&current), &keep)),
                memory,
                "budget {budget}"
            );
        }
    }
}
