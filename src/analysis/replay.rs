//! Replay: every activity group evaluated under the current and the
//! proposed policy, and what changes for it.
//!
//! The current verdict comes from the current policy when one is given
//! (and is then checked against what the logs saw: calibration), else
//! from the logs themselves. The partner's half of the decision is read
//! from the logs too: sign-ins the partner's own settings refused stay
//! refused whatever we change.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{self, BufRead};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use rayon::prelude::*;
use serde::Serialize;

use crate::analysis::activity::{ActivityRow, Totals, ROW_ORDER};
use crate::analysis::runs::codec::{Dec, Enc};
use crate::analysis::runs::{
    on_the_pool_in_chunks, ByKey, Order, Record, Sorter, Spool, Stream, Tally, TenantText, TENANT_TEXTS,
};
use crate::model::activity::Name;
use crate::model::{earliest, AccessType, Controls, Direction, EventType, Guid};
use crate::policy::apps::AppCatalog;
use crate::policy::conditional_access::{CaPolicies, ResolvedClause};
use crate::policy::directory::{Groups, Identities};
use crate::policy::evaluate::{
    evaluate_resolved, section_for, CloudHint, Decision, Membership, Need, Request, TrustNeeds, Verdict,
};
use crate::policy::history::History;
use crate::policy::model::{Section, TargetStr};
use crate::policy::resolve::{Effective, Halves, Resolver};
use crate::policy::Policy;

/// What the proposal does to a group of sign-ins, worst first.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Impact {
    /// Allowed now, blocked under the proposal.
    Lost,
    /// Still allowed, but users must now do something in our tenant.
    Degraded,
    /// Cannot be decided from the inputs; the reason says what is missing.
    Unknown,
    /// Blocked now, allowed under the proposal.
    Gained,
    Unchanged,
}

impl Impact {
    /// Every impact, worst first (the output order).
    pub const ALL: [Impact; 5] =
        [Impact::Lost, Impact::Degraded, Impact::Unknown, Impact::Gained, Impact::Unchanged];

    /// Severity on the CEF scale (0-10): lost > degraded > unknown > gained
    /// > unchanged. Every machine-readable output carries it.
    pub fn severity(self) -> u8 {
        match self {
            Impact::Lost => 8,
            Impact::Degraded => 6,
            Impact::Unknown => 4,
            Impact::Gained => 2,
            Impact::Unchanged => 0,
        }
    }

    pub fn severity_label(self) -> &'static str {
        match self {
            Impact::Lost => "high",
            Impact::Degraded => "medium",
            Impact::Unknown => "low",
            Impact::Gained => "informational",
            Impact::Unchanged => "none",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Impact::Lost => "lost",
            Impact::Degraded => "degraded",
            Impact::Unknown => "unknown",
            Impact::Gained => "gained",
            Impact::Unchanged => "unchanged",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReplayRow {
    #[serde(skip)]
    pub activity: ActivityRow,
    pub current: Verdict,
    pub current_reason: String,
    pub proposed: Verdict,
    pub impact: Impact,
    /// Why, under the proposal: the partner, section and target that decide.
    pub reason: String,
    /// With `--current`: where the current policy disagrees with the logs.
    pub calibration: Option<String>,
}

impl ReplayRow {
    /// A stable id for a finding: the group's key and its impact. The same
    /// access found lost by two runs has the same id, so a SIEM can
    /// deduplicate and `--new-only` can remember what it sent.
    pub fn finding_hash(&self) -> u64 {
        // The hash of the key's parts joined by `|`, joined on the stack
        // (ids are GUIDs: some 180 bytes) and hashed in one call. Fed part by
        // part to the streaming hasher it cost half as much again (83
        // against 57 samples of a million-group replay's 5,200): that
        // hasher starts by copying its 192-byte secret and buffers every
        // part.
        let a = &self.activity;
        let partner = a.partner_tenant_id.hyphenated();
        let parts: [&[u8]; 7] = [
            a.direction.as_str().as_bytes(),
            a.access_type.as_str().as_bytes(),
            partner.as_bytes(),
            a.app_id.as_deref().unwrap_or("").as_bytes(),
            a.resource_id.as_deref().unwrap_or("").as_bytes(),
            a.user_id.as_deref().unwrap_or("").as_bytes(),
            self.impact.as_str().as_bytes(),
        ];
        let len = parts.iter().map(|p| p.len()).sum::<usize>() + parts.len() - 1;
        let (mut stack, mut heap) = ([0u8; 256], Vec::new());
        let key: &mut [u8] = match stack.get_mut(..len) {
            Some(key) => key,
            None => {
                heap.resize(len, 0);
                &mut heap
            }
        };
        let mut at = 0;
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                key[at] = b'|';
                at += 1;
            }
            key[at..at + part.len()].copy_from_slice(part);
            at += part.len();
        }
        xxhash_rust::xxh3::xxh3_64(key)
    }

    /// [`ReplayRow::finding_hash`] as the 16 hex digits the outputs carry.
    pub fn finding_id(&self) -> String {
        format!("{:016x}", self.finding_hash())
    }
}

const VERDICTS: [Verdict; 4] = [Verdict::Allowed, Verdict::Blocked, Verdict::Unknown, Verdict::NotGoverned];

/// A replayed row in a sorted run on disk ([`crate::analysis::runs`]).
impl Record for ReplayRow {
    fn write(&self, enc: &mut Enc) {
        self.write_after(None, enc)
    }

    fn read<R: BufRead>(dec: &mut Dec<R>) -> io::Result<Self> {
        Self::read_after(dec, None)
    }

    /// Rows in order repeat their reasons (the partner's section and
    /// target that decide, a hundred bytes and more) and their group's
    /// names: each the same as the row before's is its flag alone.
    fn write_after(&self, before: Option<&Self>, enc: &mut Enc) {
        enc.row_after(&self.activity, before.map(|b| &b.activity));
        enc.one_of(&VERDICTS, self.current);
        enc.text_after(Some(&self.current_reason), before.map(|b| Some(&*b.current_reason)));
        enc.one_of(&VERDICTS, self.proposed);
        enc.one_of(&Impact::ALL, self.impact);
        enc.text_after(Some(&self.reason), before.map(|b| Some(&*b.reason)));
        enc.text_after(self.calibration.as_deref(), before.map(|b| b.calibration.as_deref()));
    }

    fn read_after<R: BufRead>(dec: &mut Dec<R>, before: Option<&Self>) -> io::Result<Self> {
        let damaged =
            || io::Error::new(io::ErrorKind::InvalidData, "a replayed row that was not written here");
        Ok(ReplayRow {
            activity: dec.row_after(before.map(|b| &b.activity))?,
            current: dec.one_of(&VERDICTS, "verdict")?,
            current_reason: dec
                .string_after(before.map(|b| Some(&*b.current_reason)))?
                .ok_or_else(damaged)?,
            proposed: dec.one_of(&VERDICTS, "verdict")?,
            impact: dec.one_of(&Impact::ALL, "impact")?,
            reason: dec.string_after(before.map(|b| Some(&*b.reason)))?.ok_or_else(damaged)?,
            calibration: dec.string_after(before.map(|b| b.calibration.as_deref()))?,
        })
    }

    fn text_bytes(&self) -> usize {
        let reasons = [&*self.current_reason, &self.reason, self.calibration.as_deref().unwrap_or("")];
        self.activity.text_bytes() + reasons.iter().map(|r| r.len()).sum::<usize>()
    }
}

/// Everything replay needs besides the activity.
pub struct Inputs<'a> {
    pub current: Option<&'a Policy>,
    pub proposed: &'a Policy,
    pub groups: Option<&'a Groups>,
    pub identities: Option<&'a Identities>,
    /// With `--audit`: the current policy rebuilt back through the audit
    /// window. Calibration then compares each epoch's sign-ins with the
    /// policy in force in that epoch (rows carry [`ActivityRow::by_epoch`]).
    pub history: Option<&'a History>,
    /// What `Office365` and `AllMicrosoftApps` stand for (built in, plus
    /// `--app-table`).
    pub apps: &'a AppCatalog,
    /// Grant operators and authentication strengths (`--ca-policies`).
    pub ca: &'a CaPolicies,
}

/// Each partner's settings under one policy (the current or the proposed),
/// resolved the first time a row of the partner asks. Partners without an
/// entry in the policy all get the default's settings, resolved once for
/// all of them: a forged export can name a million partners, and every
/// policy names a few hundred.
struct Resolved<'a> {
    resolver: Resolver<'a>,
    /// The partners with an entry of their own, within the scope
    /// ([`Scope`]); one outside it is resolved each time it asks.
    partners: ByPartner<std::sync::OnceLock<Box<Effective>>>,
    unconfigured: std::sync::OnceLock<Box<Effective>>,
}

/// What a replay keeps for each partner with an entry in a policy, looked
/// up on every row: hashed (FxHash; the keys are the policies' partners,
/// a log only looks them up), where a sorted map's search through 300
/// partners was some 200 instructions a lookup, three lookups a row.
type ByPartner<T> = HashMap<Guid, T, rustc_hash::FxBuildHasher>;

/// The partners whose settings a [`Replayer`] keeps once resolved: all
/// (`None`), or the one whose rows it replays (`propose`'s trials, one a
/// partner a plan: keeping a map of every partner of a 3,000-partner
/// current policy for each trial made `propose` 3.5 times as slow).
type Scope = Option<Guid>;

fn in_scope(scope: Scope, partner: Guid) -> bool {
    scope.is_none_or(|s| s == partner)
}

impl<'a> Resolved<'a> {
    /// `halves`: shared by the policies of one replay.
    fn new(policy: &'a Policy, halves: &Halves, scope: Scope) -> Self {
        Resolved::with(Resolver::sharing(policy, halves), scope)
    }

    fn with(resolver: Resolver<'a>, scope: Scope) -> Self {
        let configured = resolver.policy().partners.keys().filter(|p| in_scope(scope, **p));
        let partners = configured.map(|p| (*p, std::sync::OnceLock::new())).collect();
        Resolved { resolver, partners, unconfigured: std::sync::OnceLock::new() }
    }

    fn policy(&self) -> &'a Policy {
        self.resolver.policy()
    }

    fn of(&self, partner: Guid) -> Cow<'_, Effective> {
        if let Some(own) = self.partners.get(&partner) {
            return Cow::Borrowed(own.get_or_init(|| Box::new(self.resolver.effective(Some(partner)))));
        }
        if self.policy().partners.contains_key(&partner) {
            // Outside the scope: not kept.
            return Cow::Owned(self.resolver.effective(Some(partner)));
        }
        // The default's settings, as any partner without an entry gets
        // them (what tells partners apart, `Effective::partner`, is not
        // read by the evaluation: it names `req.partner`).
        Cow::Borrowed(self.unconfigured.get_or_init(|| Box::new(self.resolver.effective(None))))
    }

    fn evaluate(&self, req: &Request<'_>) -> Decision {
        evaluate_resolved(self.policy(), &self.of(req.partner), req)
    }
}

/// The current policy in each epoch of an audit window. A partner's
/// settings follow from its own entry and the default in force, and a
/// change leaves every other partner's entry, and mostly the default, as
/// they were: each partner is resolved once for each pair of the two it
/// had, in one place the epochs share, and no epoch keeps a place of its
/// own for each partner (300 epochs and 5,000 partners: 46 MB of places,
/// and a resolution a partner an epoch its sign-ins span).
struct Moments<'a> {
    history: &'a History,
    /// One for each default in force, by [`History::default_at`]'s number.
    resolvers: Vec<Resolver<'a>>,
    /// The partners' settings resolved, by the default's number, the
    /// partner's entry (its address: epochs share the entries a change did
    /// not touch, and the history holds every entry while the replay runs)
    /// and the partner.
    resolved: Mutex<HashMap<(usize, usize, Guid), Arc<Effective>>>,
}

impl<'a> Moments<'a> {
    /// `halves` as for [`Resolved::new`].
    fn new(history: &'a History, halves: &Halves) -> Self {
        let resolvers = history.defaults().iter().map(|p| Resolver::sharing(p, halves)).collect();
        Moments { history, resolvers, resolved: Mutex::default() }
    }

    /// Evaluates `req` under the policy in force in `epoch` (oldest first).
    fn evaluate(&self, epoch: usize, req: &Request<'_>) -> Decision {
        let default = self.history.default_at(epoch);
        let resolver = &self.resolvers[default];
        let entry = self.history.partner_at(epoch, req.partner);
        // Partners without an entry share the default's settings.
        let key = match entry {
            Some(p) => (default, Arc::as_ptr(p) as usize, req.partner),
            None => (default, 0, Guid(0)),
        };
        let lock = || self.resolved.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let found = lock().get(&key).cloned();
        let effective = found.unwrap_or_else(|| {
            // Resolved outside the lock; of two threads that both resolve
            // it, the first one's is kept.
            let made = Arc::new(resolver.effective_with(Some(req.partner), entry.map(|e| &**e)));
            Arc::clone(lock().entry(key).or_insert(made))
        });
        evaluate_resolved(resolver.policy(), &effective, req)
    }
}

struct Context<'a> {
    inputs: &'a Inputs<'a>,
    current: Option<Resolved<'a>>,
    proposed: Resolved<'a>,
    /// The current policy of each audit epoch.
    epochs: Option<Moments<'a>>,
    /// Which cloud each partner with an entry in either policy is in, as
    /// far as the policies tell (the others are in ours: [`cloud_hint`]).
    clouds: ByPartner<CloudHint>,
    /// For each partner with an entry in either policy, which sections
    /// ([`Section::ALL`]) the proposal leaves as the current policy has
    /// them: found the first time a row of the partner asks
    /// ([`same_settings`]); for all the others at once, in `unconfigured`.
    unchanged: ByPartner<std::sync::OnceLock<[bool; 4]>>,
    unconfigured: std::sync::OnceLock<[bool; 4]>,
}

fn trust_needs<'a>(r: &ActivityRow, clauses: &'a [ResolvedClause]) -> TrustNeeds<'a> {
    let c = &r.counters;
    let device = |n: u64| {
        if n > 0 {
            Need::Yes
        } else if c.ca_details_missing > 0 {
            Need::Unknown
        } else {
            Need::No
        }
    };
    TrustNeeds {
        mfa: if c.mfa_required > 0 { Need::Yes } else { Need::No },
        mfa_by_claim: c.mfa_by_claim > 0,
        compliant_device: device(c.compliant_device_required),
        hybrid_joined_device: device(c.hybrid_join_required),
        clauses,
    }
}

/// The user id the section's targets would name, and a note when it
/// cannot be known.
fn target_user<'a>(r: &'a ActivityRow, inputs: &'a Inputs<'_>) -> Option<TargetStr<'a>> {
    let local = r.user_id.as_deref()?;
    match (r.direction, r.access_type) {
        // Our own users: the logged id is the one our outbound targets name.
        (Direction::Outbound, _) => Some(TargetStr::Text(local)),
        // No guest account exists for direct connect: the logged id is the
        // home-tenant id (docs/policy-semantics.md).
        (Direction::Inbound, AccessType::B2bDirectConnect) => Some(TargetStr::Text(local)),
        // A B2B collaboration guest: our local id; the targets name the home id.
        (Direction::Inbound, _) => {
            inputs.identities.and_then(|i| i.home_id(Some(local), r.user_principal_name.as_deref()))
        }
    }
}

/// An export without Conditional Access details leaves device
/// requirements unknown. But an external user can satisfy one only with a
/// trusted home-tenant claim: if such sign-ins succeeded while the current
/// policy did not trust that claim, no device requirement applied to them.
fn refine_with_current<'a>(
    mut needs: TrustNeeds<'a>,
    r: &ActivityRow,
    current: Option<&Resolved<'_>>,
) -> TrustNeeds<'a> {
    let Some(current) = current else { return needs };
    if r.direction != Direction::Inbound
        || r.counters.successes == 0
        || r.counters.successes != r.counters.sign_ins
    {
        return needs;
    }
    let trust = &current.of(r.partner_tenant_id).inbound_trust;
    if needs.compliant_device == Need::Unknown && !trust.is_compliant_device_accepted.value {
        needs.compliant_device = Need::No;
    }
    if needs.hybrid_joined_device == Need::Unknown && !trust.is_hybrid_joined_device_accepted.value {
        needs.hybrid_joined_device = Need::No;
    }
    needs
}

/// `f` of what the evaluator is asked of `r`. The request borrows what is
/// made for it here: the group's policies resolved, and the user id its
/// targets would name ([`target_user`]: a home id spelled out on the stack).
fn with_request<T>(r: &ActivityRow, cx: &Context<'_>, f: impl FnOnce(&Request<'_>) -> T) -> T {
    let clauses = resolved_clauses(r, cx);
    let user = target_user(r, cx.inputs);
    f(&request(r, cx, &clauses, user.as_deref()))
}

/// What the evaluator is asked of `r`; `user` is its [`target_user`].
fn request<'a>(
    r: &'a ActivityRow,
    cx: &'a Context<'_>,
    clauses: &'a [ResolvedClause],
    user: Option<&'a str>,
) -> Request<'a> {
    let inputs = cx.inputs;
    let groups = match (inputs.groups, user) {
        (Some(g), Some(u)) => Membership::Described { directory: g, user: u },
        _ => Membership::Unknown,
    };
    Request {
        direction: r.direction,
        access_type: r.access_type,
        partner: r.partner_tenant_id,
        user_id: user,
        groups,
        app_id: r.app_id.as_deref(),
        app_owner: r.app_owner_tenant_id,
        resource_id: r.resource_id.as_deref(),
        resource_owner: r.resource_owner_tenant_id,
        trust: refine_with_current(trust_needs(r, clauses), r, cx.current.as_ref()),
        apps: inputs.apps,
        cloud: match cx.clouds.get(&r.partner_tenant_id) {
            Some(kept) => kept.clone(),
            None => cloud_hint(r.partner_tenant_id, cx.inputs.current, cx.inputs.proposed),
        },
    }
}

/// The group's policies kept whole, with what `--ca-policies` says.
fn resolved_clauses(r: &ActivityRow, cx: &Context<'_>) -> Vec<ResolvedClause> {
    r.counters.grant_clauses.iter().map(|c| cx.inputs.ca.resolve(c)).collect()
}

/// Which cloud a partner is in. Graph does not say; xtenant's
/// `x-xtenant-cloud` marker on a partner entry of either policy does. A
/// partner whose entry the proposal removes, while the current policy
/// collaborates with other clouds, may be in one of them: then it is not
/// known, and the proposal's verdict says so.
fn cloud_hint(partner: Guid, current: Option<&Policy>, proposed: &Policy) -> CloudHint {
    let marker = |p: &Policy| p.partners.get(&partner).and_then(|e| e.cloud.clone());
    if let Some(c) = marker(proposed).or_else(|| current.and_then(marker)) {
        return CloudHint::Other(c);
    }
    match current {
        Some(cur)
            if cur.partners.contains_key(&partner)
                && !proposed.partners.contains_key(&partner)
                && !cur.allowed_cloud_endpoints.is_empty() =>
        {
            CloudHint::Unknown(format!(
                "the proposal removes its entry while the current policy collaborates with other Microsoft clouds ({}): in one of them the partner would be blocked, in ours it gets the default. Graph does not say which; mark the partner with \"x-xtenant-cloud\" in the current policy to decide",
                cur.allowed_cloud_endpoints.join(", ")
            ))
        }
        _ => CloudHint::Ours,
    }
}

/// What the logs saw, as a verdict on our half.
fn observed(r: &ActivityRow) -> Decision {
    let c = &r.counters;
    let d = |verdict, reason: String| Decision { verdict, degraded: false, reason };
    if section_for(r.direction, r.access_type).is_none() && r.access_type != AccessType::Unknown {
        return d(Verdict::NotGoverned, format!("{} sign-ins are not governed", r.access_type.as_str()));
    }
    if c.successes > 0 {
        // Every row of a replay without `--current` says this: written
        // without `format!`'s machinery.
        let mut why = String::with_capacity(48);
        why.push_str(itoa::Buffer::new().format(c.successes));
        why.push_str(" of ");
        why.push_str(itoa::Buffer::new().format(c.sign_ins));
        why.push_str(" sign-ins succeeded");
        return d(Verdict::Allowed, why);
    }
    if r.blocked_by_us() > 0 && r.blocked_by_us() + r.blocked_by_partner() == c.sign_ins {
        return d(
            Verdict::Blocked,
            format!("all {} sign-ins failed with our cross-tenant policy error", c.sign_ins),
        );
    }
    d(
        Verdict::Unknown,
        "no sign-in succeeded and the failures were not our cross-tenant policy blocks".into(),
    )
}

/// The settings of a tenant restrictions policy that could apply to this
/// partner: its own entry's, else the default's.
fn tenant_restrictions(p: &Policy, partner: Guid) -> Option<&serde_json::Value> {
    p.partners
        .get(&partner)
        .and_then(|e| e.settings.tenant_restrictions.as_ref())
        .or_else(|| p.default.as_ref().and_then(|d| d.settings.tenant_restrictions.as_ref()))
}

/// Every sign-in of this group was refused by something our cross-tenant
/// access settings do not decide: the partner's own settings (AADSTS500213
/// on our outbound sign-ins, 500212 on inbound ones), or tenant restrictions
/// (AADSTS5000211, 500021, 500022), which Microsoft documents as independent
/// of the other cross-tenant access settings. Nothing we change in the
/// B2B sections helps. If the proposal changes `tenantRestrictions` itself
/// (which xtenant does not evaluate), the outcome of tenant-restricted
/// sign-ins is not known.
fn refused_elsewhere(r: &ActivityRow, cx: &Context<'_>) -> Option<(Impact, String)> {
    let c = &r.counters;
    let (partner, restricted) = (r.blocked_by_partner(), c.tenant_restriction_blocks());
    if c.successes > 0 || r.blocked_by_us() > 0 || partner + restricted == 0 {
        return None;
    }
    let mut why = Vec::new();
    if partner > 0 {
        let code = if r.direction == Direction::Outbound {
            "AADSTS500213, their inbound settings"
        } else {
            "AADSTS500212, their outbound settings"
        };
        why.push(format!("partner {} refused {partner} sign-in(s) itself ({code})", r.partner_tenant_id));
    }
    if restricted > 0 {
        why.push(format!(
            "{restricted} sign-in(s) were refused by tenant restrictions (AADSTS5000211 or 500021), which a device or network policy enforces independently of cross-tenant access settings"
        ));
        if let Some(cur) = cx.inputs.current {
            let (a, b) = (
                tenant_restrictions(cur, r.partner_tenant_id),
                tenant_restrictions(cx.inputs.proposed, r.partner_tenant_id),
            );
            if a != b {
                return Some((
                    Impact::Unknown,
                    format!(
                        "{}; the proposal also changes tenantRestrictions, which xtenant does not evaluate: if the restricting policy is ours, the outcome may change (check the sign-ins' device or network)",
                        why.join("; ")
                    ),
                ));
            }
        }
    }
    Some((
        Impact::Unchanged,
        format!(
            "none of {} sign-in(s) succeeded and none was refused by our settings: {}. It stays blocked whatever our cross-tenant access policy says",
            c.sign_ins,
            why.join("; ")
        ),
    ))
}

/// When the proposal turns an inbound trust setting on, users may do
/// things elsewhere than before: said in the reason, whatever the impact.
fn trust_turned_on(r: &ActivityRow, cx: &Context<'_>) -> Option<String> {
    let cur = cx.current.as_ref()?;
    if r.direction != Direction::Inbound || section_for(r.direction, r.access_type).is_none() {
        return None;
    }
    let (a, b) =
        (&cur.of(r.partner_tenant_id).inbound_trust, &cx.proposed.of(r.partner_tenant_id).inbound_trust);
    let c = &r.counters;
    let clause_has = |x: Controls| c.grant_clauses.iter().any(|k| k.controls.contains(x));
    let mut notes = Vec::new();
    if !a.is_mfa_accepted.value
        && b.is_mfa_accepted.value
        && (c.mfa_required > 0 || clause_has(Controls::MFA) || clause_has(Controls::AUTH_STRENGTH))
    {
        notes.push("inboundTrust.isMfaAccepted turns on: users who have not done MFA in their home tenant will be sent there for it instead of doing it in ours (Microsoft: \"If not, an MFA challenge is initiated in the user's home tenant\")");
    }
    if !a.is_compliant_device_accepted.value && b.is_compliant_device_accepted.value {
        notes.push("inboundTrust.isCompliantDeviceAccepted turns on: compliant-device claims from the home tenant will satisfy our Conditional Access");
    }
    if !a.is_hybrid_joined_device_accepted.value && b.is_hybrid_joined_device_accepted.value {
        notes.push("inboundTrust.isHybridAzureADJoinedDeviceAccepted turns on: hybrid-joined-device claims from the home tenant will satisfy our Conditional Access");
    }
    (!notes.is_empty()).then(|| notes.join("; "))
}

fn calibrate(r: &ActivityRow, cur: &Decision) -> Option<String> {
    let c = &r.counters;
    let ours = r.blocked_by_us();
    match cur.verdict {
        Verdict::Blocked if c.successes > 0 => Some(format!(
            "{} sign-ins succeeded but the current policy blocks them: the policy changed during the window, or this is not the policy in force",
            c.successes
        )),
        Verdict::Allowed if ours > 0 => Some(format!(
            "{ours} sign-ins failed with our cross-tenant policy error but the current policy allows them: the policy changed during the window, or this is not the policy in force"
        )),
        _ => None,
    }
}

/// The epochs a row's calibration names; past them it counts the others
/// that disagree. A trail of thousands of changes (a pipeline toggling a
/// setting) made a note a mismatching epoch, megabytes a row.
const EPOCHS_NAMED: usize = 8;

/// Calibration against the policy in force in each epoch: sign-ins before
/// a change are compared with the policy before it.
fn calibrate_by_epoch(r: &ActivityRow, moments: &Moments<'_>, cx: &Context<'_>) -> Option<String> {
    let h = moments.history;
    let mut out = vec![];
    let mut more = 0usize;
    // The row with one epoch's counters at a time, made once: made for each
    // epoch, it copied every epoch's counters each time (a guest signing in
    // in each of 50,000 epochs: 43 s).
    let mut part = ActivityRow { by_epoch: vec![], ..r.clone() };
    for (e, counters) in &r.by_epoch {
        let e = usize::from(*e);
        if !h.knows(e, r.partner_tenant_id) {
            // Nothing to compare with: the audit trail does not say what
            // applied then. Not a mismatch, and not a match either.
            continue;
        }
        part.counters.clone_from(counters);
        let decision = with_request(&part, cx, |req| moments.evaluate(e, req));
        let Some(m) = calibrate(&part, &decision) else { continue };
        if out.len() == EPOCHS_NAMED {
            more += 1;
            continue;
        }
        let epoch = &h.epochs[e];
        let span = match (epoch.from, epoch.until) {
            (None, Some(u)) => format!("before {}", crate::model::rfc3339(&u)),
            (Some(f), None) => format!("since {}", crate::model::rfc3339(&f)),
            (Some(f), Some(u)) => format!("{} to {}", crate::model::rfc3339(&f), crate::model::rfc3339(&u)),
            (None, None) => "in the window".into(),
        };
        out.push(format!("{span}: {m}"));
    }
    if more > 0 {
        out.push(format!("and in {more} more epoch(s) (see `xtenant timeline --policy`)"));
    }
    (!out.is_empty()).then(|| out.join("; "))
}

/// Same settings for this partner and section in both policies (`false`
/// without a current one): whatever the (perhaps unknown) verdict, it
/// cannot change. Found once per partner ([`Context::unchanged`]).
fn same_settings(cx: &Context<'_>, r: &ActivityRow) -> bool {
    let Some(current) = &cx.current else { return false };
    let Some(section) = section_for(r.direction, r.access_type) else { return true };
    let at = Section::ALL.iter().position(|s| *s == section).unwrap_or_default();
    let partner = r.partner_tenant_id;
    let sections = match cx.unchanged.get(&partner) {
        Some(kept) => kept,
        None if configured_in(cx, partner) => return unchanged_sections(current, &cx.proposed, partner)[at],
        None => &cx.unconfigured,
    };
    sections.get_or_init(|| unchanged_sections(current, &cx.proposed, partner))[at]
}

/// Whether `partner` has an entry in the current or the proposed policy.
fn configured_in(cx: &Context<'_>, partner: Guid) -> bool {
    cx.inputs.current.iter().chain([&cx.inputs.proposed]).any(|p| p.partners.contains_key(&partner))
}

/// [`same_settings`] of each section of `partner` (comparing two target
/// lists sorts them: a proposal may name a hundred thousand users, and an
/// unknown verdict asks on every row).
fn unchanged_sections(current: &Resolved<'_>, proposed: &Resolved<'_>, partner: Guid) -> [bool; 4] {
    Section::ALL.map(|section| same_section(current, proposed, partner, section))
}

fn same_section(current: &Resolved<'_>, proposed: &Resolved<'_>, partner: Guid, section: Section) -> bool {
    let a = current.of(partner);
    let b = proposed.of(partner);
    let (x, y) = (a.section(section), b.section(section));
    x.users_and_groups.same_targets(&y.users_and_groups)
        && x.applications.same_targets(&y.applications)
        && a.inbound_trust.is_mfa_accepted.value == b.inbound_trust.is_mfa_accepted.value
        && a.inbound_trust.is_compliant_device_accepted.value
            == b.inbound_trust.is_compliant_device_accepted.value
        && a.inbound_trust.is_hybrid_joined_device_accepted.value
            == b.inbound_trust.is_hybrid_joined_device_accepted.value
        && a.cloud == b.cloud
        && current.policy().allowed_cloud_endpoints == proposed.policy().allowed_cloud_endpoints
}

/// The current and the proposed decision on `r`.
fn decisions(r: &ActivityRow, cx: &Context<'_>) -> (Decision, Decision) {
    with_request(r, cx, |req| {
        let cur = match &cx.current {
            Some(c) => c.evaluate(req),
            None => observed(r),
        };
        (cur, cx.proposed.evaluate(req))
    })
}

/// What the change from `cur` to `prop` does to `r`'s access (the row not
/// refused elsewhere: [`refused_elsewhere`] decides first).
fn impact_of(r: &ActivityRow, cur: &Decision, prop: &Decision, cx: &Context<'_>) -> Impact {
    match (cur.verdict, prop.verdict) {
        (Verdict::NotGoverned, _) | (_, Verdict::NotGoverned) => Impact::Unchanged,
        (Verdict::Allowed, Verdict::Blocked) => Impact::Lost,
        (Verdict::Blocked, Verdict::Allowed) => Impact::Gained,
        (Verdict::Allowed, Verdict::Allowed) if prop.degraded && !cur.degraded => Impact::Degraded,
        (Verdict::Unknown, _) | (_, Verdict::Unknown) => {
            if same_settings(cx, r) {
                Impact::Unchanged
            } else {
                Impact::Unknown
            }
        }
        _ => Impact::Unchanged,
    }
}

/// What replaying a row finds of it, without the row: its verdicts and
/// reasons ([`Found::of`] makes the replayed row).
struct Found {
    current: Verdict,
    current_reason: String,
    proposed: Verdict,
    impact: Impact,
    reason: String,
    calibration: Option<String>,
}

impl Found {
    /// The replayed row of `activity`, the row this was found of.
    fn of(self, activity: ActivityRow) -> ReplayRow {
        let Found { current, current_reason, proposed, impact, reason, calibration } = self;
        ReplayRow { current, current_reason, proposed, impact, reason, calibration, activity }
    }

    /// The bytes of its texts, as [`ReplayRow::text_bytes`] counts them.
    fn text_bytes(&self) -> usize {
        self.current_reason.len() + self.reason.len() + self.calibration.as_deref().map_or(0, str::len)
    }
}

fn found(r: &ActivityRow, cx: &Context<'_>) -> Found {
    let (cur, prop) = decisions(r, cx);
    let calibration = match &cx.epochs {
        Some(moments) if !r.by_epoch.is_empty() => calibrate_by_epoch(r, moments, cx),
        _ => cx.current.as_ref().and_then(|_| calibrate(r, &cur)),
    };
    let (impact, mut reason) = match refused_elsewhere(r, cx) {
        Some(refused) => refused,
        None => (impact_of(r, &cur, &prop, cx), prop.reason),
    };
    if let Some(note) = trust_turned_on(r, cx) {
        reason = format!("{reason}; {note}");
    }
    Found {
        current: cur.verdict,
        current_reason: cur.reason,
        proposed: prop.verdict,
        impact,
        reason,
        calibration,
    }
}

fn replay_row(r: ActivityRow, cx: &Context<'_>) -> ReplayRow {
    found(&r, cx).of(r)
}

/// Replays every row (in parallel), worst impact first, then most sign-ins.
/// Replays rows already in memory, in output order ([`replay_order`]).
pub fn replay(rows: Vec<ActivityRow>, inputs: &Inputs<'_>) -> Vec<ReplayRow> {
    let replayer = Replayer::new(inputs);
    let mut out: Vec<ReplayRow> = rows.into_par_iter().map(|r| replayer.row(r)).collect();
    out.sort_by(replay_order);
    out
}

/// Evaluates rows one at a time, for rows that come as a stream.
pub struct Replayer<'a> {
    cx: Context<'a>,
}

impl<'a> Replayer<'a> {
    pub fn new(inputs: &'a Inputs<'a>) -> Replayer<'a> {
        Replayer::with_current(inputs, None, None)
    }

    /// [`Replayer::new`] with the current policy already resolved, for a
    /// caller that replays against many proposals (`propose`'s trials: the
    /// current policy's halves are shared, and their lookups built once),
    /// keeping the settings of the partners in `scope` ([`Scope`]).
    pub fn with_current(
        inputs: &'a Inputs<'a>,
        resolved: Option<&Resolver<'a>>,
        scope: Scope,
    ) -> Replayer<'a> {
        let halves = Halves::default();
        let current = inputs.current.map(|p| match resolved {
            Some(r) if std::ptr::eq(r.policy(), p) => Resolved::with(r.clone(), scope),
            _ => Resolved::new(p, &halves, scope),
        });
        let proposed = Resolved::new(inputs.proposed, &halves, scope);
        // The partners with an entry in either policy (the rest are
        // alike), within the scope.
        let configured: BTreeSet<Guid> = inputs
            .current
            .iter()
            .chain([&inputs.proposed])
            .flat_map(|p| p.partners.keys().copied())
            .filter(|p| in_scope(scope, *p))
            .collect();
        let cx = Context {
            inputs,
            current,
            proposed,
            unchanged: configured.iter().map(|p| (*p, std::sync::OnceLock::new())).collect(),
            unconfigured: std::sync::OnceLock::new(),
            epochs: inputs.history.map(|h| Moments::new(h, &halves)),
            clouds: configured
                .iter()
                .map(|p| (*p, cloud_hint(*p, inputs.current, inputs.proposed)))
                .collect(),
        };
        Replayer { cx }
    }

    pub fn row(&self, r: ActivityRow) -> ReplayRow {
        replay_row(r, &self.cx)
    }

    /// The impact [`Replayer::row`] finds for `r`, without the rest of the
    /// replayed row (its calibration, its reason's notes) or a copy of
    /// `r`: `propose` asks it of a partner's every row on every trial of
    /// its plan, where whole replayed rows were built from copies and
    /// dropped (the trials' samples 1833 -> 1320 of a million guests'
    /// proposal; its user time 3-7% less).
    pub fn impact(&self, r: &ActivityRow) -> Impact {
        // A row refused elsewhere needs neither policy's decision.
        if let Some((impact, _)) = refused_elsewhere(r, &self.cx) {
            return impact;
        }
        let (cur, prop) = decisions(r, &self.cx);
        impact_of(r, &cur, &prop, &self.cx)
    }

    /// Replays `rows` a batch at a time, in parallel (replay is pure per
    /// row), handing each replayed row to `each` in the order they came.
    pub fn each(
        &self,
        rows: &mut dyn Iterator<Item = ActivityRow>,
        mut each: impl FnMut(ReplayRow) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        // The rows come from the grouping's last merge or a table being
        // read; the replayed go on to a sort, mostly. A batch holds about
        // REPLAY_BATCH_BYTES by the rows so far (64 rows before any):
        // 4,096 rows of a forged export's 4 KB ids and names, three batches
        // in flight, were 170 MB.
        let seen = std::cell::Cell::new((0usize, 0usize));
        let mut rows = rows.inspect(|r| {
            let (n, bytes) = seen.get();
            seen.set((n + 1, bytes + r.text_bytes()));
        });
        let batch = || match seen.get() {
            (0, _) => FIRST_REPLAY_BATCH,
            (n, bytes) => (REPLAY_BATCH_BYTES / (bytes / n + ROW_BYTES)).clamp(1, REPLAY_BATCH),
        };
        on_the_pool_in_chunks(
            &mut rows,
            batch,
            |batch| batch.into_par_iter().map(|r| self.row(r)).collect::<Vec<_>>(),
            |replayed| replayed.into_iter().try_for_each(&mut each),
        )
    }

    /// What the current policy says of `r` (`None` without one): the
    /// `current` of [`Replayer::row`], without the rest of the row.
    pub fn current_verdict(&self, r: &ActivityRow) -> Option<Verdict> {
        let current = self.cx.current.as_ref()?;
        Some(with_request(r, &self.cx, |req| current.evaluate(req).verdict))
    }
}

impl Replayer<'_> {
    /// Replays rows held in memory into output order ([`REPLAY_THEN_ROW`]),
    /// as a stream that makes each replayed row as it is read. What is
    /// found of each row waits beside the rows, not in a replayed copy of
    /// each: some 80 bytes and the reasons a row on top of the rows,
    /// where sorting replayed rows held the rows twice over while they were
    /// replayed (so a sorter kept half as many in memory, and a replay of
    /// 60,000 groups, all in memory when grouped, went through the disk).
    /// `text_budget`: bytes of reasons held at most; past them, the rows
    /// come back as they were, for a sorter that can go to the disk.
    pub(crate) fn in_place(
        &self,
        rows: Vec<ActivityRow>,
        text_budget: Option<usize>,
    ) -> Result<Stream<ReplayRow>, Vec<ActivityRow>> {
        let mut found_all: Vec<Found> = Vec::with_capacity(rows.len());
        let mut bytes = 0usize;
        // A chunk at a time, so that reasons past the budget are found
        // with a chunk's at most; and given up as soon as those found so
        // far, as many again for every row, would pass it.
        for chunk in rows.chunks(IN_PLACE_CHUNK) {
            let more: Vec<Found> = chunk.par_iter().map(|r| found(r, &self.cx)).collect();
            bytes = more.iter().map(Found::text_bytes).fold(bytes, usize::saturating_add);
            found_all.extend(more);
            let expected = (bytes / found_all.len()).saturating_mul(rows.len());
            if text_budget.is_some_and(|b| bytes > b || expected > b) {
                return Err(rows);
            }
        }
        let mut order: Vec<usize> = (0..rows.len()).collect();
        order.par_sort_unstable_by(|&a, &b| {
            in_replay_order((found_all[a].impact, &rows[a]), (found_all[b].impact, &rows[b]))
        });
        let mut rows: Vec<Option<ActivityRow>> = rows.into_iter().map(Some).collect();
        let mut found_all: Vec<Option<Found>> = found_all.into_iter().map(Some).collect();
        let mut order = order.into_iter();
        Ok(Stream::made(move || {
            let Some(i) = order.next() else { return Ok(None) };
            match (found_all[i].take(), rows[i].take()) {
                (Some(found), Some(row)) => Ok(Some(found.of(row))),
                _ => anyhow::bail!("internal error: a replayed row was taken twice; please report this"),
            }
        }))
    }
}

/// Rows [`Replayer::in_place`] replays on the pool at a time.
const IN_PLACE_CHUNK: usize = 1024;
/// Rows replayed on the pool at a time by [`Replayer::each`], at most.
const REPLAY_BATCH: usize = 4096;
/// The rows of the first batch, before any row's texts are known.
const FIRST_REPLAY_BATCH: usize = 64;
/// The text a batch of rows and their replayed rows is meant to hold at
/// most: 4,096 rows at Entra's lengths.
const REPLAY_BATCH_BYTES: usize = 4 << 20;
/// What a row and its replayed row hold besides the row's texts (the
/// structs, the reasons), about.
const ROW_BYTES: usize = 768;

/// The output order: worst impact first, then the most sign-ins, then the
/// group's direction, partner, app, resource and user. A stable sort of
/// rows in activity order by it gives the order of every replay output.
pub fn replay_order(a: &ReplayRow, b: &ReplayRow) -> std::cmp::Ordering {
    order_key(a).cmp(&order_key(b))
}

/// [`replay_order`] as bytes in the same order, for the merge.
fn order_key_bytes(r: &ReplayRow, out: &mut Vec<u8>) {
    use crate::analysis::runs::key;
    let (impact, std::cmp::Reverse(sign_ins), direction, partner, app, resource, user) = order_key(r);
    out.push(impact as u8);
    out.extend_from_slice(&(!sign_ins).to_be_bytes());
    out.push(direction as u8);
    out.extend_from_slice(&partner.0.to_be_bytes());
    key::opt_text(out, app);
    key::opt_text(out, resource);
    key::opt_text(out, user);
}

/// The output order of replayed rows ([`replay_order`]), for sorting
/// through the disk.
pub(crate) const REPLAY_ORDER: crate::analysis::runs::Order<ReplayRow> =
    crate::analysis::runs::Order { cmp: replay_order, key: order_key_bytes, sort: None };

/// [`REPLAY_ORDER`], its ties broken by the grouping's order
/// ([`ROW_ORDER`]): what a stable sort into replay order of rows in the
/// grouping's order gives, as a total order, so that runs sorted apart
/// (the grouping's partitions) merge into the same output.
///
/// As bytes, the replay order's then the access type's: rows the replay
/// order ties have the same direction, partner, app, resource and user,
/// so of the grouping's order only the access type is left to decide.
/// (The grouping's whole key after it repeated 150 bytes a row that
/// every run wrote, read back and copied: at a million rows, a sixth of
/// the runs' bytes.)
pub(crate) const REPLAY_THEN_ROW: crate::analysis::runs::Order<ReplayRow> = crate::analysis::runs::Order {
    cmp: |a, b| in_replay_order((a.impact, &a.activity), (b.impact, &b.activity)),
    key: |r, out| {
        order_key_bytes(r, out);
        crate::analysis::runs::key::text(out, r.activity.access_type.as_str());
    },
    sort: None,
};

/// [`REPLAY_THEN_ROW`]'s comparison of two rows replayed to the impacts
/// beside them.
fn in_replay_order(a: (Impact, &ActivityRow), b: (Impact, &ActivityRow)) -> std::cmp::Ordering {
    order_key_of(a.0, a.1).cmp(&order_key_of(b.0, b.1)).then_with(|| (ROW_ORDER.cmp)(a.1, b.1))
}

type OrderKey<'a> =
    (Impact, std::cmp::Reverse<u64>, Direction, Guid, Option<&'a str>, Option<&'a str>, Option<&'a str>);

fn order_key(r: &ReplayRow) -> OrderKey<'_> {
    order_key_of(r.impact, &r.activity)
}

/// [`order_key`] of a row replayed to `impact`.
fn order_key_of(impact: Impact, g: &ActivityRow) -> OrderKey<'_> {
    (
        impact,
        std::cmp::Reverse(g.counters.sign_ins),
        g.direction,
        g.partner_tenant_id,
        g.app_id.as_deref(),
        g.resource_id.as_deref(),
        g.user_id.as_deref(),
    )
}

/// Per partner: who and what is affected.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct PartnerImpact {
    pub partner_tenant_id: String,
    pub partner_tenant_name: Option<String>,
    pub lost_users: usize,
    pub lost_apps: usize,
    pub lost_sign_ins: u64,
    pub degraded_users: usize,
    pub degraded_sign_ins: u64,
    pub unknown_sign_ins: u64,
    pub gained_sign_ins: u64,
    pub last_seen: Option<DateTime<Utc>>,
}

impl PartnerImpact {
    /// Lost users, lost apps, lost sign-ins, degraded users, unknown and
    /// gained sign-ins, as table cells.
    pub fn count_cells(&self) -> [String; 6] {
        [
            self.lost_users.to_string(),
            self.lost_apps.to_string(),
            self.lost_sign_ins.to_string(),
            self.degraded_users.to_string(),
            self.unknown_sign_ins.to_string(),
            self.gained_sign_ins.to_string(),
        ]
    }
}

impl Record for PartnerImpact {
    fn write(&self, enc: &mut Enc) {
        enc.str(&self.partner_tenant_id);
        enc.opt_str(self.partner_tenant_name.as_deref());
        for n in [self.lost_users, self.lost_apps, self.degraded_users] {
            enc.u64(n as u64);
        }
        for n in [self.lost_sign_ins, self.degraded_sign_ins, self.unknown_sign_ins, self.gained_sign_ins] {
            enc.u64(n);
        }
        enc.opt_time(self.last_seen);
    }

    fn read<R: BufRead>(dec: &mut Dec<R>) -> io::Result<Self> {
        let (partner_tenant_id, partner_tenant_name) = (dec.string()?, dec.opt_string()?);
        let (lost_users, lost_apps, degraded_users) =
            (dec.u64()? as usize, dec.u64()? as usize, dec.u64()? as usize);
        Ok(PartnerImpact {
            partner_tenant_id,
            partner_tenant_name,
            lost_users,
            lost_apps,
            degraded_users,
            lost_sign_ins: dec.u64()?,
            degraded_sign_ins: dec.u64()?,
            unknown_sign_ins: dec.u64()?,
            gained_sign_ins: dec.u64()?,
            last_seen: dec.opt_time()?,
        })
    }

    fn text_bytes(&self) -> usize {
        self.partner_tenant_id.len() + self.partner_tenant_name.as_deref().map_or(0, str::len)
    }
}

/// Partners as the summary lists them: most lost sign-ins first, then by id.
const MOST_LOST_FIRST: Order<PartnerImpact> = Order {
    cmp: |a, b| {
        b.lost_sign_ins.cmp(&a.lost_sign_ins).then_with(|| a.partner_tenant_id.cmp(&b.partner_tenant_id))
    },
    key: |p, out| {
        out.extend_from_slice(&(u64::MAX - p.lost_sign_ins).to_be_bytes());
        crate::analysis::runs::key::text(out, &p.partner_tenant_id);
    },
    sort: None,
};

/// Each partner's impact in the summary's order ([`MOST_LOST_FIRST`]),
/// read once: in memory up to the budget, on disk past it (a forged export
/// can name a million partners).
#[derive(Default)]
pub struct PartnerImpacts {
    count: usize,
    rows: std::sync::Mutex<Option<Stream<PartnerImpact>>>,
}

impl PartnerImpacts {
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The partners in order, the first time asked (none after it); after
    /// the last, [`Stream::finish`] says whether every one was read.
    pub(crate) fn take(&self) -> Stream<PartnerImpact> {
        let mut rows = self.rows.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        rows.take().unwrap_or_else(|| Stream::memory(Vec::new()))
    }
}

impl std::fmt::Debug for PartnerImpacts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} partners", self.count)
    }
}

#[derive(Debug, Default)]
pub struct Summary {
    pub window_first: Option<DateTime<Utc>>,
    pub window_last: Option<DateTime<Utc>>,
    pub coverage_warnings: Vec<String>,
    pub impacts: ImpactCounts,
    pub partners: PartnerImpacts,
    /// Groups where the current policy disagrees with the logs (`--current`).
    pub calibration_mismatch_count: usize,
}

/// How many calibration mismatches a terminal shows; the documents list all.
pub const MISMATCHES_SHOWN: usize = 10;

/// The calibration mismatches of a replay in output order, each a line of
/// text: the first few at hand (what a terminal shows), all of them as a
/// stream (in memory up to the budget, on disk past it: there can be one
/// a row).
pub(crate) struct Mismatches {
    pub(crate) first: Vec<String>,
    pub(crate) all: Stream<MismatchText>,
}

/// One calibration mismatch as the summary lists it.
pub(crate) struct MismatchText(pub(crate) String);

impl Record for MismatchText {
    fn write(&self, enc: &mut Enc) {
        enc.str(&self.0);
    }

    fn read<R: BufRead>(dec: &mut Dec<R>) -> io::Result<Self> {
        Ok(MismatchText(dec.string()?))
    }

    fn text_bytes(&self) -> usize {
        self.0.len()
    }
}

/// Impact -> (rows, sign-ins).
pub type ImpactCounts = BTreeMap<&'static str, (usize, u64)>;

/// Counts a replayed row under its impact.
pub fn count_impact(counts: &mut ImpactCounts, r: &ReplayRow) {
    let e = counts.entry(r.impact.as_str()).or_default();
    e.0 += 1;
    e.1 = e.1.saturating_add(r.activity.counters.sign_ins);
}

/// The summary of replayed rows, a row at a time: fed the rows in output
/// order ([`replay_order`]), while the caller keeps only the rows it shows.
/// What grows with users (the distinct users each partner loses or is
/// degraded for) is counted through a sort, on disk past the memory
/// budget; the rest grows with partners and apps.
pub struct Summarizer<'t> {
    s: Summary,
    totals: Option<&'t Totals>,
    current_given: bool,
    /// Each partner's sign-ins by impact, added up by partner: as many as
    /// partners, on disk past a quarter of the budget.
    per: Tally<Guid, PartnerSums>,
    /// The rows added so far: which came first, for a partner's name.
    rows: u64,
    budget: Option<usize>,
    /// A mark per row that loses or degrades its user, counted distinct at the end.
    users: Sorter<UserMark>,
    /// The apps each partner loses, each told once: as many as apps, on
    /// disk past the budget.
    lost_apps: Tally<(Guid, Name), TenantText>,
    /// Each calibration mismatch written out, unless the sink does not show them.
    mismatches: Option<Spool<MismatchText>>,
    first_mismatches: Vec<String>,
    /// The rows' own time span, for activity tables (no totals).
    first: Option<DateTime<Utc>>,
    last: Option<DateTime<Utc>>,
}

/// A partner's sign-ins by impact, added up from its rows; its name that
/// of its first row (`first`: the row's number), whatever order the rows
/// are added up in.
#[derive(Clone, Debug, Default)]
struct PartnerSums {
    partner: Guid,
    first: u64,
    name: Option<String>,
    lost: u64,
    degraded: u64,
    unknown: u64,
    gained: u64,
    last_seen: Option<DateTime<Utc>>,
}

impl PartnerSums {
    fn add(&mut self, other: PartnerSums) {
        if other.first < self.first {
            self.first = other.first;
            self.name = other.name;
        }
        self.lost = self.lost.saturating_add(other.lost);
        self.degraded = self.degraded.saturating_add(other.degraded);
        self.unknown = self.unknown.saturating_add(other.unknown);
        self.gained = self.gained.saturating_add(other.gained);
        self.last_seen = self.last_seen.max(other.last_seen);
    }
}

impl Record for PartnerSums {
    fn write(&self, enc: &mut Enc) {
        enc.u128(self.partner.0);
        enc.u64(self.first);
        enc.opt_str(self.name.as_deref());
        for n in [self.lost, self.degraded, self.unknown, self.gained] {
            enc.u64(n);
        }
        enc.opt_time(self.last_seen);
    }

    fn read<R: BufRead>(dec: &mut Dec<R>) -> io::Result<Self> {
        Ok(PartnerSums {
            partner: Guid(dec.u128()?),
            first: dec.u64()?,
            name: dec.opt_string()?,
            lost: dec.u64()?,
            degraded: dec.u64()?,
            unknown: dec.u64()?,
            gained: dec.u64()?,
            last_seen: dec.opt_time()?,
        })
    }

    fn text_bytes(&self) -> usize {
        self.name.as_deref().map_or(0, str::len)
    }
}

/// [`PartnerSums`] a partner, by partner.
const PARTNER_SUMS: ByKey<Guid, PartnerSums> = ByKey {
    key: |p| p.partner,
    order: Order {
        cmp: |a, b| a.partner.cmp(&b.partner),
        key: |p, out| out.extend_from_slice(&p.partner.0.to_be_bytes()),
        sort: None,
    },
    combine: PartnerSums::add,
};

/// A user that a row of `partner` lost (or, with `degraded`, degraded).
struct UserMark {
    partner: Guid,
    degraded: bool,
    user: String,
}

impl Record for UserMark {
    fn write(&self, enc: &mut Enc) {
        enc.u128(self.partner.0);
        enc.u8(u8::from(self.degraded));
        enc.str(&self.user);
    }

    fn read<R: BufRead>(dec: &mut Dec<R>) -> io::Result<Self> {
        Ok(UserMark { partner: Guid(dec.u128()?), degraded: dec.u8()? == 1, user: dec.string()? })
    }

    fn text_bytes(&self) -> usize {
        self.user.len()
    }
}

fn user_mark_key(m: &UserMark, out: &mut Vec<u8>) {
    out.extend_from_slice(&m.partner.0.to_be_bytes());
    out.push(u8::from(m.degraded));
    crate::analysis::runs::key::text(out, &m.user);
}

/// Marks by partner, kind and user: the same user's marks meet, and are
/// combined into one.
const USER_MARKS: Order<UserMark> = Order {
    cmp: |a, b| (a.partner, a.degraded, &a.user).cmp(&(b.partner, b.degraded, &b.user)),
    key: user_mark_key,
    sort: None,
};

impl<'t> Summarizer<'t> {
    /// `budget`: the marks of users kept in memory at most (`None`: all).
    pub fn new(totals: Option<&'t Totals>, current_given: bool, budget: Option<usize>) -> Summarizer<'t> {
        let mut s = Summary::default();
        for i in Impact::ALL {
            s.impacts.insert(i.as_str(), (0, 0));
        }
        // Equal marks are the same user: one is kept.
        // A mark is a user id: a GUID at Entra's lengths.
        let users = Sorter::new("summary", USER_MARKS, budget).text_a_record(64).combining(|_, _| {});
        // Apps are as few as Entra's logs name, unless forged: a quarter
        // of the budget, beside the users' marks.
        let quarter = budget.map(|b| (b / 4).max(1));
        let lost_apps = Tally::new("summary", TENANT_TEXTS, quarter).text_a_record(64);
        Summarizer {
            s,
            totals,
            current_given,
            per: Tally::new("summary", PARTNER_SUMS, quarter).text_a_record(64),
            rows: 0,
            budget,
            users,
            lost_apps,
            // A mismatch is a sentence naming a partner, an app and a user.
            mismatches: Some(Spool::new("summary", budget).text_a_record(512)),
            first_mismatches: Vec::new(),
            first: None,
            last: None,
        }
    }

    /// Leaves the calibration mismatches out of the summary, for a sink that
    /// does not show them (there can be one a row).
    pub fn without_mismatches(mut self) -> Self {
        self.mismatches = None;
        self
    }

    /// Adds a row; an error if its user cannot be written to the disk.
    pub fn add(&mut self, r: &ReplayRow) -> anyhow::Result<()> {
        let a = &r.activity;
        self.first = earliest(self.first, a.counters.first_seen);
        self.last = self.last.max(a.counters.last_seen);
        count_impact(&mut self.s.impacts, r);
        if let (Some(m), Some(texts)) = (r.calibration.as_ref(), self.mismatches.as_mut()) {
            let text = format!(
                "{} {} partner {} app {} user {}: {m}",
                a.direction.as_str(),
                a.access_type.as_str(),
                a.partner_tenant_id,
                a.app_name.as_deref().or(a.app_id.as_deref()).unwrap_or("-"),
                a.user_principal_name.as_deref().or(a.user_id.as_deref()).unwrap_or("-")
            );
            self.s.calibration_mismatch_count += 1;
            if self.first_mismatches.len() < MISMATCHES_SHOWN {
                self.first_mismatches.push(text.clone());
            }
            texts.push(MismatchText(text))?;
        }
        if r.impact == Impact::Unchanged {
            return Ok(());
        }
        let partner = a.partner_tenant_id;
        let mut sums = PartnerSums {
            partner,
            first: self.rows,
            name: a.partner_tenant_name.as_deref().map(str::to_string),
            last_seen: a.counters.last_seen,
            ..PartnerSums::default()
        };
        self.rows += 1;
        let user = || a.user_id.as_deref().unwrap_or_default().to_string();
        match r.impact {
            Impact::Lost => {
                sums.lost = a.counters.sign_ins;
                let app = a.app_id.clone().unwrap_or_else(|| Name::from(""));
                self.lost_apps.add(TenantText { tenant: partner, text: app })?;
                self.users.push(UserMark { partner, degraded: false, user: user() })?;
            }
            Impact::Degraded => {
                sums.degraded = a.counters.sign_ins;
                self.users.push(UserMark { partner, degraded: true, user: user() })?;
            }
            Impact::Unknown => sums.unknown = a.counters.sign_ins,
            Impact::Gained => sums.gained = a.counters.sign_ins,
            Impact::Unchanged => {}
        }
        self.per.add(sums)
    }

    /// The summary, and its calibration mismatches (none without `--current`
    /// or after [`Summarizer::without_mismatches`]).
    pub(crate) fn finish(self) -> anyhow::Result<(Summary, Mismatches)> {
        let Summarizer {
            mut s,
            totals,
            current_given,
            per,
            budget,
            users,
            lost_apps,
            first,
            last,
            mismatches,
            first_mismatches,
            ..
        } = self;
        let (first, last) = match totals {
            Some(t) => (t.first_seen, t.last_seen),
            None => (first, last),
        };
        s.window_first = first;
        s.window_last = last;
        if let (Some(a), Some(b)) = (first, last) {
            let days = (b - a).num_hours() as f64 / 24.0;
            if b - a < Duration::days(28) {
                s.coverage_warnings.push(format!(
                    "the logs cover {days:.1} days: Entra keeps sign-ins for 30 days at most, so access used rarely or seasonally may be missing; keep history with a longer export"
                ));
            }
        }
        match totals {
            Some(t) => {
                if !t.cross_tenant_by_event_type.contains_key(EventType::NonInteractive.as_str()) {
                    s.coverage_warnings.push(
                        "no non-interactive sign-ins in the input: token refreshes by apps and clients that keep access alive are not covered; export NonInteractiveUserSignInLogs too".into(),
                    );
                }
            }
            None => s.coverage_warnings.push(
                "replaying an activity table: which sign-in logs it was built from is not known".into(),
            ),
        }
        s.partners = partner_impacts(per, users, lost_apps, budget)?;
        let mismatches = match mismatches.filter(|_| current_given) {
            Some(texts) => Mismatches { first: first_mismatches, all: texts.finish()? },
            None => {
                s.calibration_mismatch_count = 0;
                Mismatches { first: vec![], all: Stream::memory(vec![]) }
            }
        };
        Ok((s, mismatches))
    }
}

/// Each partner's impact: its sums, its distinct lost and degraded users
/// (one mark per partner, kind and user is left) and its distinct lost
/// apps, all three in partner order and read side by side, then sorted
/// into the summary's order.
fn partner_impacts(
    per: Tally<Guid, PartnerSums>,
    users: Sorter<UserMark>,
    lost_apps: Tally<(Guid, Name), TenantText>,
    budget: Option<usize>,
) -> anyhow::Result<PartnerImpacts> {
    let (mut sums, mut marks, mut apps) = (per.finish()?, users.finish()?, lost_apps.finish()?);
    let (mut mark, mut app) = (marks.next(), apps.next());
    let mut sorted = Sorter::new("summary", MOST_LOST_FIRST, budget).text_a_record(64);
    let mut count = 0;
    for p in sums.by_ref() {
        let (mut lost_users, mut degraded_users, mut lost_apps) = (0, 0, 0);
        of_partner(
            p.partner,
            (&mut mark, &mut marks),
            |m| m.partner,
            |m| {
                *(if m.degraded { &mut degraded_users } else { &mut lost_users }) += 1;
            },
        );
        of_partner(p.partner, (&mut app, &mut apps), |a| a.tenant, |_| lost_apps += 1);
        sorted.push(PartnerImpact {
            partner_tenant_id: p.partner.to_string(),
            partner_tenant_name: p.name,
            lost_users,
            lost_apps,
            lost_sign_ins: p.lost,
            degraded_users,
            degraded_sign_ins: p.degraded,
            unknown_sign_ins: p.unknown,
            gained_sign_ins: p.gained,
            last_seen: p.last_seen,
        })?;
        count += 1;
    }
    sums.finish()?;
    marks.finish()?;
    apps.finish()?;
    Ok(PartnerImpacts { count, rows: std::sync::Mutex::new(Some(sorted.finish()?)) })
}

/// Hands `each` the records of `partner` in a stream in partner order
/// (`next`: the record at hand, read from `stream`), passing those before
/// it; the first record after it stays at hand for the next partner.
fn of_partner<T: Record>(
    partner: Guid,
    (next, stream): (&mut Option<T>, &mut Stream<T>),
    partner_of: fn(&T) -> Guid,
    mut each: impl FnMut(T),
) {
    while let Some(r) = next.take_if(|r| partner_of(r) <= partner) {
        if partner_of(&r) == partner {
            each(r);
        }
        *next = stream.next();
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::analysis::runs::codec::tests::{keys_sort_as_compared, read_back};
    use proptest::prelude::*;

    impl PartnerImpacts {
        /// All of them at once.
        pub(crate) fn all(&self) -> Vec<PartnerImpact> {
            self.take().collect_rows().unwrap()
        }
    }

    /// Replay's inputs of a current and a proposed policy alone.
    pub(crate) fn policies_only<'a>(
        current: Option<&'a Policy>,
        proposed: &'a Policy,
        ca: &'a CaPolicies,
    ) -> Inputs<'a> {
        Inputs {
            current,
            proposed,
            groups: None,
            identities: None,
            history: None,
            apps: AppCatalog::built_in(),
            ca,
        }
    }

    /// A partner's entry with `settings` and nothing else.
    fn entry(
        partner: Guid,
        settings: crate::policy::model::Settings,
    ) -> Arc<crate::policy::model::PartnerConfig> {
        Arc::new(crate::policy::model::PartnerConfig {
            tenant_id: partner,
            is_service_provider: None,
            is_in_multi_tenant_organization: None,
            settings,
            cloud: None,
            extra: Default::default(),
        })
    }

    #[test]
    fn the_impact_alone_is_the_impact_of_the_whole_replayed_row_for_every_fixture_policy() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = crate::files::files_under(&root.join("tests/fixtures/policies")).unwrap();
        files.extend(crate::files::files_under(&root.join("samples/policies")).unwrap());
        let policies: Vec<Policy> = files
            .iter()
            .filter(|f| f.extension().is_some_and(|e| e == "json"))
            .filter_map(|f| crate::policy::load::load(f).ok().map(|(p, _)| p))
            .collect();
        assert!(policies.len() >= 10);
        // Every partner any policy names, one none does, and Microsoft
        // accounts'; users and apps as targets name them (all of them, an
        // id, a name).
        let mut partners: BTreeSet<Guid> = policies.iter().flat_map(|p| p.partners.keys().copied()).collect();
        partners.extend([Guid(0x5eed), crate::policy::evaluate::MICROSOFT_ACCOUNT_TENANT]);
        let users = ["AllUsers", "c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f", "guest@partner.example"];
        let apps = ["00000003-0000-0ff1-ce00-000000000000", "AllApplications", "app"];
        let mut rows = Vec::new();
        let kinds = [AccessType::B2bCollaboration, AccessType::B2bDirectConnect, AccessType::Unknown];
        for &partner in &partners {
            for direction in [Direction::Inbound, Direction::Outbound] {
                for (access_type, user, app, mfa) in kinds.iter().flat_map(|k| {
                    users.iter().flat_map(move |u| {
                        apps.map(|a| [(*k, *u, a, 0), (*k, *u, a, 2)]).into_iter().flatten()
                    })
                }) {
                    let mut r = crate::analysis::runs::codec::tests::sample_row();
                    (r.partner_tenant_id, r.direction, r.access_type) = (partner, direction, access_type);
                    (r.user_id, r.app_id) = (Some(user.into()), Some(app.into()));
                    r.counters.mfa_required = mfa;
                    // Then without the clauses the grant named, without an
                    // MFA claim and needing a compliant device, and without
                    // Conditional Access details.
                    rows.push(r.clone());
                    r.counters.grant_clauses.clear();
                    rows.push(r.clone());
                    (r.counters.mfa_by_claim, r.counters.compliant_device_required) = (0, mfa);
                    rows.push(r.clone());
                    r.counters.ca_details_missing = 1;
                    rows.push(r);
                }
            }
        }
        let ca = CaPolicies::default();
        let mut seen = BTreeSet::new();
        let currents: Vec<Option<&Policy>> = std::iter::once(None).chain(policies.iter().map(Some)).collect();
        for (current, proposed) in currents.iter().flat_map(|c| policies.iter().map(move |p| (*c, p))) {
            let inputs = policies_only(current, proposed, &ca);
            let replayer = Replayer::new(&inputs);
            for r in &rows {
                let impact = replayer.impact(r);
                assert_eq!(impact, replayer.row(r.clone()).impact, "{r:?}");
                seen.insert(impact);
            }
        }
        assert_eq!(seen, Impact::ALL.into_iter().collect(), "every impact met");
    }

    #[test]
    fn the_summary_s_partner_records_sort_by_bytes_as_by_comparison_and_read_back_the_same() {
        fn agree<T: Record + std::fmt::Debug>(records: &[T], order: Order<T>, same: impl Fn(&T, &T) -> bool) {
            for a in records {
                let back = read_back(a);
                assert!(same(&back, a) && (order.cmp)(&back, a).is_eq(), "{a:?}");
            }
            keys_sort_as_compared(records, order);
        }
        let (mut impacts, mut sums) = (Vec::new(), Vec::new());
        for partner in [0, 1, 256, u128::MAX] {
            for lost in [0, 1, 256, u64::MAX] {
                impacts.push(PartnerImpact {
                    partner_tenant_id: Guid(partner).to_string(),
                    partner_tenant_name: (lost % 2 == 1).then(|| "\u{1b}[31m".to_string()),
                    lost_users: lost as usize,
                    lost_sign_ins: lost,
                    last_seen: DateTime::from_timestamp(lost as i64 % 1_000_000, 0),
                    ..PartnerImpact::default()
                });
                sums.push(PartnerSums {
                    partner: Guid(partner),
                    first: lost,
                    lost,
                    ..PartnerSums::default()
                });
            }
        }
        agree(&impacts, MOST_LOST_FIRST, |a, b| a == b);
        agree(&sums, PARTNER_SUMS.order, |a, b| (a.partner, a.first, a.lost) == (b.partner, b.first, b.lost));
        // Combined in either order, a partner's sums name it after its first row.
        let named = |first, name: &str| PartnerSums {
            first,
            name: Some(name.into()),
            lost: 1,
            ..PartnerSums::default()
        };
        for (mut a, b) in [(named(3, "later"), named(1, "first")), (named(1, "first"), named(3, "later"))] {
            a.add(b);
            assert_eq!((a.name.as_deref(), a.lost), (Some("first"), 2));
        }
    }

    #[test]
    fn rows_replayed_in_place_come_as_the_replayed_rows_sorted_into_output_order() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let load =
            |name: &str| crate::policy::load::load(&root.join("samples/policies").join(name)).unwrap().0;
        let (current, proposed) = (load("current.json"), load("proposed.json"));
        let mut partners: Vec<Guid> =
            current.partners.keys().chain(proposed.partners.keys()).copied().collect();
        partners.push(Guid(0x5eed));
        // Rows alike but for their access type (tied in the replay order),
        // their sign-ins, users and apps; in no order.
        let mut rows = Vec::new();
        for (i, partner) in partners.iter().enumerate() {
            for direction in [Direction::Inbound, Direction::Outbound] {
                for access_type in
                    [AccessType::B2bCollaboration, AccessType::B2bDirectConnect, AccessType::Unknown]
                {
                    for (user, app) in [("u1", "00000003-0000-0ff1-ce00-000000000000"), ("u2", "app")] {
                        let mut r = crate::analysis::runs::codec::tests::sample_row();
                        (r.partner_tenant_id, r.direction, r.access_type) =
                            (*partner, direction, access_type);
                        (r.user_id, r.app_id) = (Some(user.into()), Some(app.into()));
                        r.counters.sign_ins = 1 + (i as u64 % 3);
                        r.counters.successes = r.counters.sign_ins * (i as u64 % 2);
                        rows.push(r);
                    }
                }
            }
        }
        rows.reverse();
        let ca = CaPolicies::default();
        for current in [None, Some(&current)] {
            let inputs = policies_only(current, &proposed, &ca);
            let replayer = Replayer::new(&inputs);
            let mut want: Vec<ReplayRow> = rows.iter().map(|r| replayer.row(r.clone())).collect();
            REPLAY_THEN_ROW.sort(&mut want);
            let impacts: BTreeSet<Impact> = want.iter().map(|r| r.impact).collect();
            assert!(impacts.len() >= 3, "{impacts:?}");
            let Ok(stream) = replayer.in_place(rows.clone(), None) else {
                panic!("no budget, yet the rows came back")
            };
            assert_eq!(stream.collect_rows().unwrap(), want);
            // Past the budget of reasons, the rows come back as they were.
            match replayer.in_place(rows.clone(), Some(10)) {
                Err(back) => assert_eq!(back, rows),
                Ok(_) => panic!("replayed in place past the budget"),
            }
        }
    }

    /// `propose`'s trials keep one partner's settings ([`Scope`]); a row
    /// of any other partner, with an entry or without, still gets the
    /// verdict, reason and impact an unscoped replayer gives it.
    #[test]
    fn a_replayer_kept_to_one_partner_replays_any_partner_as_one_that_keeps_all() {
        use crate::policy::model::{AccessKind, B2bSetting, Settings, Target, TargetConfig, TargetType};
        let blocked = || {
            let half = |target: &str, target_type| TargetConfig {
                access_type: AccessKind::Blocked,
                targets: vec![Target { target: target.into(), target_type }].into(),
            };
            Settings {
                b2b_collaboration_outbound: Some(B2bSetting {
                    users_and_groups: Some(half("AllUsers", TargetType::User)),
                    applications: Some(half("AllApplications", TargetType::Application)),
                }),
                ..Settings::default()
            }
        };
        let (a, b, unconfigured) = (Guid(0xa), Guid(0xb), Guid(0xc));
        let current = Policy { partners: [(a, entry(a, blocked()))].into(), ..Policy::default() };
        let proposed = Policy { partners: [(b, entry(b, blocked()))].into(), ..Policy::default() };
        let ca = CaPolicies::default();
        let inputs = policies_only(Some(&current), &proposed, &ca);
        let (all, one) = (Replayer::new(&inputs), Replayer::with_current(&inputs, None, Some(a)));
        for partner in [a, b, unconfigured] {
            let mut row = crate::analysis::runs::codec::tests::sample_row();
            (row.partner_tenant_id, row.direction, row.access_type) =
                (partner, Direction::Outbound, AccessType::B2bCollaboration);
            row.counters.home_outbound_blocks = 0;
            assert_eq!(one.row(row.clone()), all.row(row), "{partner}");
        }
    }

    #[test]
    fn an_unknown_verdict_is_unchanged_only_where_a_current_policy_has_the_same_section() {
        use crate::policy::model::{AccessKind, B2bSetting, Settings, Target, TargetConfig, TargetType};
        let partner = Guid(0x5eed);
        let group_policy = |group: &str| {
            let half = |target: &str, target_type| TargetConfig {
                access_type: AccessKind::Allowed,
                targets: vec![Target { target: target.into(), target_type }].into(),
            };
            let settings = Settings {
                b2b_collaboration_outbound: Some(B2bSetting {
                    users_and_groups: Some(half(group, TargetType::Group)),
                    applications: Some(half("AllApplications", TargetType::Application)),
                }),
                ..Settings::default()
            };
            Policy { partners: [(partner, entry(partner, settings))].into(), ..Policy::default() }
        };
        let (g1, g2) = (
            group_policy("aaaa0001-0000-4000-8000-000000000001"),
            group_policy("aaaa0002-0000-4000-8000-000000000002"),
        );
        let ca = CaPolicies::default();
        let impact = |current: Option<&Policy>, proposed: &Policy, access_type: AccessType| {
            let mut row = crate::analysis::runs::codec::tests::sample_row();
            (row.partner_tenant_id, row.direction, row.access_type) =
                (partner, Direction::Outbound, access_type);
            row.user_id = Some("c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f".into());
            row.counters.home_outbound_blocks = 0;
            let inputs = policies_only(current, proposed, &ca);
            let replayed = Replayer::new(&inputs).row(row);
            (replayed.proposed, replayed.impact)
        };
        let collaboration = AccessType::B2bCollaboration;
        // Group membership not supplied: unknown under either policy.
        assert_eq!(impact(Some(&g1), &g1, collaboration), (Verdict::Unknown, Impact::Unchanged));
        assert_eq!(impact(Some(&g1), &g2, collaboration), (Verdict::Unknown, Impact::Unknown));
        assert_eq!(impact(None, &g1, collaboration), (Verdict::Unknown, Impact::Unknown));
        // An access type the log does not record: no section, so nothing a
        // current policy could keep or change.
        assert_eq!(impact(Some(&g1), &g2, AccessType::Unknown), (Verdict::Unknown, Impact::Unchanged));
        assert_eq!(impact(None, &g2, AccessType::Unknown), (Verdict::Unknown, Impact::Unknown));
    }

    #[test]
    fn the_moments_of_an_audit_window_resolve_a_partner_once_while_its_entry_and_the_default_stay() {
        use crate::policy::model::{
            service_default, AccessKind, B2bSetting, Settings, Target, TargetConfig, TargetType,
        };
        let configured = |partner: Guid, access_type: AccessKind| {
            let half = |target: &str, target_type| TargetConfig {
                access_type,
                targets: vec![Target { target: target.into(), target_type }].into(),
            };
            let settings = Settings {
                b2b_collaboration_inbound: Some(B2bSetting {
                    users_and_groups: Some(half("AllUsers", TargetType::User)),
                    applications: Some(half("AllApplications", TargetType::Application)),
                }),
                ..Settings::default()
            };
            entry(partner, settings)
        };
        let (a, b, unconfigured) = (Guid(0xa), Guid(0xb), Guid(0xc));
        // A is changed, then the default; B and the unconfigured partner never.
        let first = Policy {
            partners: [(a, configured(a, AccessKind::Allowed)), (b, configured(b, AccessKind::Allowed))]
                .into(),
            ..Policy::default()
        };
        let mut second = first.clone();
        second.partners.insert(a, configured(a, AccessKind::Blocked));
        let mut third = second.clone();
        third.default = Some(std::sync::Arc::new(service_default()));
        std::sync::Arc::make_mut(third.default.as_mut().unwrap()).settings.b2b_collaboration_inbound = None;
        let policies = [first, second, third];
        let history = History::of_policies(&policies);
        let moments = Moments::new(&history, &Halves::default());
        let apps = AppCatalog::built_in();
        let request = |partner| Request {
            direction: Direction::Inbound,
            access_type: AccessType::B2bCollaboration,
            partner,
            user_id: Some("c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f"),
            groups: Membership::Unknown,
            app_id: Some("00000003-0000-0ff1-ce00-000000000000"),
            app_owner: None,
            resource_id: None,
            resource_owner: None,
            trust: TrustNeeds::default(),
            apps,
            cloud: CloudHint::Ours,
        };
        for (epoch, policy) in policies.iter().enumerate() {
            let alone = Resolved::new(policy, &Halves::default(), None);
            for partner in [a, b, unconfigured] {
                assert_eq!(
                    moments.evaluate(epoch, &request(partner)),
                    alone.evaluate(&request(partner)),
                    "{partner}"
                );
            }
        }
        // A: once for each entry it had, and again under the new default;
        // B and the unconfigured partner: once for each default.
        let resolved = moments.resolved.lock().unwrap().len();
        assert_eq!(resolved, 3 + 2 + 2);
        let defaults: Vec<usize> = (0..3).map(|e| history.default_at(e)).collect();
        assert_eq!(defaults, [1, 1, 0]);
    }

    #[test]
    fn a_row_calibrated_against_thousands_of_epochs_names_the_first_few_and_counts_the_rest() {
        use crate::policy::model::{AccessKind, B2bSetting, Settings, Target, TargetConfig, TargetType};
        // A pipeline toggling a partner between allowed and blocked, 2,000
        // times; the partner's guest signed in, and succeeded, throughout.
        let partner = Guid(0xa);
        let configured = |access_type: AccessKind| {
            let half = |target: &str, target_type| TargetConfig {
                access_type,
                targets: vec![Target { target: target.into(), target_type }].into(),
            };
            let inbound = B2bSetting {
                users_and_groups: Some(half("AllUsers", TargetType::User)),
                applications: Some(half("AllApplications", TargetType::Application)),
            };
            let settings = Settings { b2b_collaboration_inbound: Some(inbound), ..Settings::default() };
            Policy { partners: [(partner, entry(partner, settings))].into(), ..Policy::default() }
        };
        let (allowed, blocked) = (configured(AccessKind::Allowed), configured(AccessKind::Blocked));
        let policies: Vec<Policy> =
            (0..2001).map(|e| if e % 2 == 0 { allowed.clone() } else { blocked.clone() }).collect();
        let history = History::of_policies(&policies);
        let mut row = crate::analysis::runs::codec::tests::sample_row();
        row.direction = Direction::Inbound;
        row.access_type = AccessType::B2bCollaboration;
        row.partner_tenant_id = partner;
        row.counters.policy_blocks = 0;
        row.counters.home_outbound_blocks = 0;
        row.counters.failures = 0;
        row.counters.successes = row.counters.sign_ins;
        row.by_epoch = (0..2001u16).map(|e| (e, row.counters.clone())).collect();
        let ca = CaPolicies::default();
        let mut inputs = policies_only(policies.last(), &allowed, &ca);
        inputs.history = Some(&history);
        let calibration = Replayer::new(&inputs).row(row).calibration.unwrap();
        let named = calibration.matches("succeeded but the current policy blocks them").count();
        assert_eq!(named, EPOCHS_NAMED, "{calibration}");
        assert!(
            calibration.ends_with("and in 992 more epoch(s) (see `xtenant timeline --policy`)"),
            "{calibration}"
        );
    }

    #[test]
    fn the_summary_of_rows_that_name_each_partner_alike_is_the_same_in_any_order() {
        // What `report` relies on to summarize the grouping's rows unsorted.
        let mut rows: Vec<ReplayRow> = (0..60u32)
            .map(|i| {
                let mut activity = crate::analysis::runs::codec::tests::sample_row();
                activity.partner_tenant_id = Guid(u128::from(i % 4));
                activity.partner_tenant_name = Some(format!("Partner {}", i % 4).into());
                activity.user_id = Some(format!("u{}", i % 9).into());
                activity.app_id = Some(format!("a{}", i % 5).into());
                activity.counters.sign_ins = u64::from(i % 7 + 1);
                activity.counters.last_seen =
                    DateTime::from_timestamp(1_790_000_000 + i64::from(i % 11) * 3600, 0);
                unexplained(activity, Impact::ALL[(i % 5) as usize])
            })
            .collect();
        let summary = |rows: &[ReplayRow]| {
            let mut s = Summarizer::new(None, true, Some(4)).without_mismatches();
            rows.iter().for_each(|r| s.add(r).unwrap());
            let s = s.finish().unwrap().0;
            let partners = s.partners.all();
            (format!("{s:?}"), partners)
        };
        rows.sort_by(replay_order);
        let in_order = summary(&rows);
        assert!(in_order.1.iter().all(|p| p.partner_tenant_name.is_some() && p.lost_users > 0));
        rows.reverse();
        assert_eq!(summary(&rows), in_order);
        rows.rotate_left(17);
        assert_eq!(summary(&rows), in_order);
    }

    #[test]
    fn the_summary_counts_each_partners_users_once_at_any_budget() {
        let row = |partner: u128, user: &str, app: &str, impact: Impact| {
            let mut activity = crate::analysis::runs::codec::tests::sample_row();
            activity.partner_tenant_id = Guid(partner);
            activity.user_id = Some(user.into());
            activity.app_id = Some(app.into());
            ReplayRow {
                activity,
                current: Verdict::Allowed,
                current_reason: String::new(),
                proposed: Verdict::Blocked,
                impact,
                reason: String::new(),
                calibration: None,
            }
        };
        use Impact::*;
        let rows = [
            row(1, "u1", "a1", Lost),
            row(1, "u2", "a1", Lost),
            row(2, "u3", "a1", Lost),
            row(1, "u1", "a2", Lost),
            row(1, "u1", "a3", Degraded),
            row(1, "u4", "a3", Degraded),
            row(1, "u2", "a1", Degraded),
            row(1, "u5", "a1", Unchanged),
            row(2, "u3", "a2", Lost),
        ];
        let counts = |budget: Option<usize>| {
            let mut s = Summarizer::new(None, false, budget);
            for r in &rows {
                s.add(r).unwrap();
            }
            let (s, _) = s.finish().unwrap();
            s.partners
                .all()
                .into_iter()
                .map(|p| (p.partner_tenant_id, p.lost_users, p.lost_apps, p.degraded_users))
                .collect::<Vec<_>>()
        };
        let memory = counts(None);
        assert_eq!(memory, [(Guid(1).to_string(), 2, 2, 3), (Guid(2).to_string(), 1, 2, 0)]);
        for budget in [1, 2, 5] {
            assert_eq!(counts(Some(budget)), memory, "budget {budget}");
        }
    }

    /// A replayed row of `activity` with `impact` and nothing else said.
    pub(crate) fn unexplained(activity: ActivityRow, impact: Impact) -> ReplayRow {
        ReplayRow {
            activity,
            current: Verdict::Allowed,
            current_reason: String::new(),
            proposed: Verdict::Allowed,
            impact,
            reason: String::new(),
            calibration: None,
        }
    }

    proptest! {
        /// The merge's bytes of two replayed rows order them as [`replay_order`].
        #[test]
        fn the_bytes_of_the_replay_order_order_rows_as_it_does(
            a in (0..Impact::ALL.len(), 0u64..3, any::<bool>(), crate::analysis::activity::tests::key_text(), crate::analysis::activity::tests::key_text()),
            b in (0..Impact::ALL.len(), 0u64..3, any::<bool>(), crate::analysis::activity::tests::key_text(), crate::analysis::activity::tests::key_text()),
        ) {
            let row = |(impact, sign_ins, outbound, app, user): (usize, u64, bool, Option<String>, Option<String>)| {
                let mut activity = crate::analysis::runs::codec::tests::sample_row();
                activity.counters.sign_ins = sign_ins;
                activity.direction = if outbound { Direction::Outbound } else { Direction::Inbound };
                activity.app_id = app.map(Into::into);
                activity.user_id = user.map(Into::into);
                unexplained(activity, Impact::ALL[impact])
            };
            let (a, b) = (row(a), row(b));
            let (mut ka, mut kb) = (Vec::new(), Vec::new());
            order_key_bytes(&a, &mut ka);
            order_key_bytes(&b, &mut kb);
            prop_assert_eq!(ka.cmp(&kb), replay_order(&a, &b));
        }

        /// The same of [`REPLAY_THEN_ROW`], whose ties (rows apart only in
        /// what replay order does not look at) the grouping's order breaks.
        #[test]
        fn the_bytes_of_replay_then_row_order_rows_as_it_does_and_it_is_total(
            a in (0..Impact::ALL.len(), 0u64..2, any::<bool>(), any::<bool>(), crate::analysis::activity::tests::key_text(), crate::analysis::activity::tests::key_text()),
            b in (0..Impact::ALL.len(), 0u64..2, any::<bool>(), any::<bool>(), crate::analysis::activity::tests::key_text(), crate::analysis::activity::tests::key_text()),
        ) {
            let row = |(impact, sign_ins, direct, outbound, app, user): (usize, u64, bool, bool, Option<String>, Option<String>)| {
                let mut activity = crate::analysis::runs::codec::tests::sample_row();
                activity.counters.sign_ins = sign_ins;
                activity.access_type = if direct { AccessType::B2bDirectConnect } else { AccessType::B2bCollaboration };
                activity.direction = if outbound { Direction::Outbound } else { Direction::Inbound };
                activity.app_id = app.map(Into::into);
                activity.user_id = user.map(Into::into);
                unexplained(activity, Impact::ALL[impact])
            };
            let (a, b) = (row(a), row(b));
            let (mut ka, mut kb) = (Vec::new(), Vec::new());
            (REPLAY_THEN_ROW.key)(&a, &mut ka);
            (REPLAY_THEN_ROW.key)(&b, &mut kb);
            let order = (REPLAY_THEN_ROW.cmp)(&a, &b);
            prop_assert_eq!(ka.cmp(&kb), order);
            let same_group = a.activity.sort_key() == b.activity.sort_key();
            prop_assert_eq!(order == std::cmp::Ordering::Equal, same_group && replay_order(&a, &b).is_eq());
        }
    }

    #[test]
    fn a_finding_id_is_the_hash_of_its_key_joined_by_bars() {
        let mut row = ReplayRow {
            activity: crate::analysis::runs::codec::tests::sample_row(),
            current: Verdict::Allowed,
            current_reason: String::new(),
            proposed: Verdict::Blocked,
            impact: Impact::Lost,
            reason: String::new(),
            calibration: None,
        };
        // A key on the stack, one just too long for it, one far too long.
        let long = |n| "é".repeat(n);
        for user in [
            None,
            Some("u|1".into()),
            Some(String::new()),
            Some(long(30)),
            Some(long(80)),
            Some(long(100_000)),
        ] {
            row.activity.user_id = user.map(Into::into);
            let a = &row.activity;
            let key = [
                a.direction.as_str(),
                a.access_type.as_str(),
                &a.partner_tenant_id.to_string(),
                a.app_id.as_deref().unwrap_or(""),
                a.resource_id.as_deref().unwrap_or(""),
                a.user_id.as_deref().unwrap_or(""),
                row.impact.as_str(),
            ]
            .join("|");
            assert_eq!(row.finding_id(), format!("{:016x}", xxhash_rust::xxh3::xxh3_64(key.as_bytes())));
        }
    }

    #[test]
    fn a_replayed_row_written_and_read_back_is_the_same_row() {
        let rows: Vec<ReplayRow> = Impact::ALL
            .iter()
            .zip(VERDICTS.iter().cycle())
            .map(|(impact, verdict)| ReplayRow {
                activity: crate::analysis::runs::codec::tests::sample_row(),
                current: *verdict,
                current_reason: "1 of 1 sign-ins succeeded".into(),
                proposed: VERDICTS[3 - VERDICTS.iter().position(|v| v == verdict).unwrap()],
                impact: *impact,
                reason: "partner \u{1b}[31m: <b>|\n".into(),
                calibration: (*impact == Impact::Lost).then(|| "".into()),
            })
            .collect();
        let mut buf = Vec::new();
        for r in &rows {
            r.write(&mut Enc(&mut buf));
        }
        let mut dec = Dec::new(&buf[..]);
        for r in &rows {
            assert_eq!(&ReplayRow::read(&mut dec).unwrap(), r);
        }
        assert!(dec.at_end().unwrap());
        // Each after the one before, as a run holds them: the reasons and
        // names they share are written once, and read back whole.
        let mut after = Vec::new();
        for (i, r) in rows.iter().enumerate() {
            r.write_after(i.checked_sub(1).map(|b| &rows[b]), &mut Enc(&mut after));
        }
        let shared = rows[0].current_reason.len() + rows[0].reason.len() + "Contoso \u{1b}[31m".len();
        assert!(after.len() <= buf.len() - (rows.len() - 1) * shared, "{} of {}", after.len(), buf.len());
        let mut dec = Dec::new(&after[..]);
        let mut read: Vec<ReplayRow> = Vec::new();
        for _ in &rows {
            read.push(ReplayRow::read_after(&mut dec, read.last()).unwrap());
        }
        assert_eq!(read, rows);
        assert!(dec.at_end().unwrap());
    }
}
