//! The policy in force at each moment of an audit window, rebuilt from
//! the policy at its end by undoing each change with the old values its
//! audit record carries.
//!
//! Where a record does not carry what undoing needs (a deleted partner
//! without its old settings, a reset default, an unreadable value, an
//! update that does not name its partner), the configuration it touched is
//! marked unknown for every earlier moment: evaluation there says
//! `unknown` instead of guessing. Where the policy given disagrees with a
//! change's new value, a note says so: a change is missing from the audit
//! window, or the policy given is not the one in force at its end.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use anyhow::Result;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::change::{clean, ChangeKind, Decoded, PolicyChange, PropertyChange, Scope};
use super::load::parse;
use super::model::{service_default, DefaultConfig, PartnerConfig, Policy, Settings};
use crate::model::activity::MAX_EPOCH_STARTS;
use crate::model::Guid;

/// A configuration whose settings are not known at some moment.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case", tag = "scope", content = "tenant_id")]
pub enum Unknown {
    Default,
    Partner(Guid),
    /// A change that did not name its partner: any partner may differ.
    AnyPartner,
}

/// One span between changes.
#[derive(Clone, Debug)]
pub struct Epoch {
    /// `None`: from before the first change.
    pub from: Option<DateTime<Utc>>,
    /// `None`: still in force at the end.
    pub until: Option<DateTime<Utc>>,
}

/// What reconstruction found at one change.
#[derive(Clone, Debug, Default)]
pub struct ChangeCheck {
    /// The policy before the change could be rebuilt completely.
    pub reconstructed: bool,
    /// Shared where alike (every change past those undone carries one).
    pub notes: Vec<Arc<str>>,
}

/// Every epoch, oldest first (one more than the changes that alter
/// access), one check per change given, and the policy in force in each
/// epoch.
///
/// A change touches one configuration (the default or one partner), so an
/// epoch's policy is the next one's with one entry swapped: the history
/// keeps, for each configuration a change touched, the entry each change
/// left (its versions), and the policy given for the rest. A copy of the
/// policy an epoch held every entry of every partner again: a pipeline
/// patching 1,000 partners daily for a month (30,000 changes) took
/// 1.75 GB, and more with every partner and every change.
#[derive(Clone, Debug)]
pub struct History {
    pub epochs: Vec<Epoch>,
    pub checks: Vec<ChangeCheck>,
    /// The policy given, in force in the newest epoch.
    end: Policy,
    /// The defaults in force, each alone in a policy with the end's other
    /// fields and no partners (what a [`super::resolve::Resolver`] takes):
    /// the end's first, then one for each change to the default, newest
    /// first.
    defaults: Vec<Policy>,
    /// Which of `defaults` is in force, by epoch.
    default_versions: Versions<usize>,
    partners: HashMap<Guid, Versions<PartnerVersion>>,
    /// Epochs this far back from the newest and older do not know the
    /// default (so no partner's settings: a partner may inherit it), or
    /// any partner's (a change that did not name its partner).
    default_unknown_from: Option<usize>,
    any_partner_unknown_from: Option<usize>,
    /// How many epochs know only part of the policy.
    partly_unknown: usize,
}

/// One partner's entry in some epochs, and whether it is known there.
#[derive(Clone, Debug)]
struct PartnerVersion {
    entry: Option<Arc<PartnerConfig>>,
    unknown: bool,
}

/// The versions of one configuration: `(back, version)`, `back` counting
/// epochs from the newest (0), ascending; a version holds from its epoch
/// back to the next one's. Epochs newer than the first hold the policy
/// given.
#[derive(Clone, Debug)]
struct Versions<T>(Vec<(usize, T)>);

impl<T> Default for Versions<T> {
    fn default() -> Self {
        Versions(vec![])
    }
}

impl<T> Versions<T> {
    /// The version `back` epochs from the newest, `None` for the policy given.
    fn at(&self, back: usize) -> Option<&T> {
        let newer = self.0.partition_point(|(from, _)| *from <= back);
        newer.checked_sub(1).map(|i| &self.0[i].1)
    }
}

impl History {
    /// The epoch in force at `t`.
    pub fn at(&self, t: DateTime<Utc>) -> &Epoch {
        let i = self.epochs.iter().rposition(|e| e.from.is_none_or(|f| f <= t)).unwrap_or(0);
        &self.epochs[i]
    }

    /// How many epochs back from the newest epoch `epoch` (oldest first) is.
    fn back(&self, epoch: usize) -> usize {
        self.epochs.len().saturating_sub(epoch + 1)
    }

    /// Whether this partner's settings (its own or the default it
    /// inherits) are known in `epoch`.
    pub fn knows(&self, epoch: usize, partner: Guid) -> bool {
        let back = self.back(epoch);
        let from = |f: Option<usize>| f.is_some_and(|f| f <= back);
        if from(self.default_unknown_from) || from(self.any_partner_unknown_from) {
            return false;
        }
        // A partner with its own sections may still inherit others.
        !self.partners.get(&partner).and_then(|v| v.at(back)).is_some_and(|v| v.unknown)
    }

    /// The default in force in `epoch`: its number in [`History::defaults`]
    /// (equal in epochs that share it).
    pub fn default_at(&self, epoch: usize) -> usize {
        self.default_versions.at(self.back(epoch)).copied().unwrap_or(0)
    }

    /// The defaults [`History::default_at`] numbers, by number, each in a
    /// policy with no partners and the policy given's other fields.
    pub fn defaults(&self) -> &[Policy] {
        &self.defaults
    }

    /// The partner's entry in `epoch`, `None` when it has none.
    pub fn partner_at(&self, epoch: usize, partner: Guid) -> Option<&Arc<PartnerConfig>> {
        match self.partners.get(&partner).and_then(|v| v.at(self.back(epoch))) {
            Some(version) => version.entry.as_ref(),
            None => self.end.partners.get(&partner),
        }
    }

    /// How many epochs know only part of the policy.
    pub fn partly_unknown(&self) -> usize {
        self.partly_unknown
    }

    /// The whole policy in force in `epoch`.
    #[cfg(test)]
    pub fn policy_at(&self, epoch: usize) -> Policy {
        let mut policy = self.end.clone();
        policy.default.clone_from(&self.defaults[self.default_at(epoch)].default);
        for (p, versions) in &self.partners {
            match versions.at(self.back(epoch)) {
                None => {}
                Some(PartnerVersion { entry: Some(e), .. }) => {
                    policy.partners.insert(*p, Arc::clone(e));
                }
                Some(PartnerVersion { entry: None, .. }) => {
                    policy.partners.remove(p);
                }
            }
        }
        policy
    }

    /// What is not known in `epoch`.
    #[cfg(test)]
    pub fn unknown_at(&self, epoch: usize) -> BTreeSet<Unknown> {
        let back = self.back(epoch);
        let from = |f: Option<usize>| f.is_some_and(|f| f <= back);
        let mut out: BTreeSet<Unknown> = self
            .partners
            .iter()
            .filter(|(_, v)| v.at(back).is_some_and(|v| v.unknown))
            .map(|(p, _)| Unknown::Partner(*p))
            .collect();
        if from(self.default_unknown_from) {
            out.insert(Unknown::Default);
        }
        if from(self.any_partner_unknown_from) {
            out.insert(Unknown::AnyPartner);
        }
        out
    }
}

/// The most epochs a history holds: no more than a grouping tells apart
/// ([`MAX_EPOCH_STARTS`]).
/// An audit window with more changes that alter access (a pipeline that
/// patches every partner daily writes one a partner a run) is rebuilt
/// back through the newest of them; before those, every setting is
/// unknown. Numbered past them, sign-ins after the last epoch a grouping
/// told apart were counted in it, and compared with a policy that was no
/// longer in force.
pub const MAX_EPOCHS: usize = MAX_EPOCH_STARTS;

/// Rebuilds the policy before each change, newest first, from `end`, back
/// through the newest [`MAX_EPOCHS`] - 1 changes that alter access.
/// `changes` must be in time order.
pub fn reconstruct(end: &Policy, changes: &[PolicyChange]) -> History {
    reconstruct_at_most(end, changes, MAX_EPOCHS)
}

/// [`reconstruct`] into at most `epochs_held` epochs (at least two).
fn reconstruct_at_most(end: &Policy, changes: &[PolicyChange], epochs_held: usize) -> History {
    let mut state = end.clone();
    let mut unknown: BTreeSet<Unknown> = BTreeSet::new();
    let mut history = History {
        epochs: vec![],
        checks: vec![ChangeCheck::default(); changes.len()],
        end: end.clone(),
        defaults: vec![alone(end, end.default.clone())],
        default_versions: Versions::default(),
        partners: HashMap::new(),
        default_unknown_from: None,
        any_partner_unknown_from: None,
        partly_unknown: 0,
    };
    let mut until = None;
    let held = epochs_held.max(2);
    // Every change past those undone carries it (shared: a copy each was a
    // tenth of a long audit trail's memory).
    let not_undone: Arc<str> = Arc::from(format!(
        "not undone: xtenant rebuilds the policy back through the newest {} changes that alter access; settings before them are unknown",
        held - 1
    ));
    for (i, c) in changes.iter().enumerate().rev() {
        if !c.alters_access() {
            history.checks[i] = ChangeCheck { reconstructed: unknown.is_empty(), notes: vec![] };
            continue;
        }
        // Epochs so far: the one this change starts is this far back.
        let back = history.epochs.len();
        if back + 1 >= held {
            // This change and every one before it: not undone.
            unknown.extend([Unknown::Default, Unknown::AnyPartner]);
            history.default_unknown_from.get_or_insert(back);
            history.any_partner_unknown_from.get_or_insert(back);
            history.checks[i] = ChangeCheck { reconstructed: false, notes: vec![Arc::clone(&not_undone)] };
            continue;
        }
        history.partly_unknown += usize::from(!unknown.is_empty());
        history.epochs.push(Epoch { from: Some(c.time), until });
        until = Some(c.time);
        let notes = undo(&mut state, &mut unknown, c);
        history.record(back + 1, c.scope, &state, &unknown);
        let notes = notes.into_iter().map(Arc::from).collect();
        history.checks[i] = ChangeCheck { reconstructed: unknown.is_empty(), notes };
    }
    history.partly_unknown += usize::from(!unknown.is_empty());
    history.epochs.push(Epoch { from: None, until });
    history.epochs.reverse();
    history
}

/// Each change's check as [`reconstruct`] gives it for a whole audit trail,
/// handed out a change at a time in time order ([`TrailChecks::next`]),
/// from the newest changes that alter access alone: a trail of a million
/// changes is not held for its checks, only those a history undoes are.
///
/// Why it gives the same: a change that alters access (succeeded and
/// changes access) and is among the newest is undone as in the whole
/// trail (the older changes are not undone anyway); one older than them is
/// not undone, as the oldest of them is not (a history holds one epoch
/// fewer than changes); and a change that alters nothing is rebuilt
/// exactly when the nearest newer change that alters access left nothing
/// unknown (the same state of the backward walk), or when there is none.
pub struct TrailChecks {
    /// The checks of the newest changes that alter access, oldest first.
    newest: Vec<ChangeCheck>,
    /// The changes that alter access older than those.
    older: usize,
    /// The changes that alter access handed out so far.
    met: usize,
}

impl TrailChecks {
    /// `newest`: the newest [`MAX_EPOCHS`] changes of the trail that alter
    /// access (all, if fewer), in time order ([`undoable`] copies will
    /// do); `altering`: how many of its changes alter access.
    pub fn new(end: &Policy, newest: &[PolicyChange], altering: usize) -> TrailChecks {
        TrailChecks::at_most(end, newest, altering, MAX_EPOCHS)
    }

    /// [`TrailChecks::new`] for a history of at most `epochs_held` epochs.
    fn at_most(end: &Policy, newest: &[PolicyChange], altering: usize, epochs_held: usize) -> TrailChecks {
        debug_assert!(newest.iter().all(PolicyChange::alters_access));
        let newest = reconstruct_at_most(end, newest, epochs_held).checks;
        TrailChecks { older: altering.saturating_sub(newest.len()), newest, met: 0 }
    }

    /// The check of the change that alters access at `rank` (counted from
    /// the oldest): one older than the newest is not undone, as the oldest
    /// of them is not.
    fn of_rank(&self, rank: usize) -> Option<&ChangeCheck> {
        rank.checked_sub(self.older).and_then(|k| self.newest.get(k)).or(self.newest.first())
    }

    /// The check of the next change of the trail, in time order; `alters`:
    /// whether it alters access.
    pub fn next(&mut self, alters: bool) -> ChangeCheck {
        if alters {
            let check = self.of_rank(self.met).cloned().unwrap_or_default();
            self.met += 1;
            return check;
        }
        // The nearest newer change that alters access is the next one met.
        let none_newer = self.met >= self.older + self.newest.len();
        let reconstructed = none_newer || self.of_rank(self.met).is_some_and(|c| c.reconstructed);
        ChangeCheck { reconstructed, notes: vec![] }
    }
}

/// What a history reads of a change (its time, kind, outcome,
/// configuration and values), without its texts for people (actor,
/// activity, summary lines, notes): the newest changes a history undoes
/// are held while a long audit trail is read.
pub fn undoable(c: &PolicyChange) -> PolicyChange {
    let properties = c
        .properties
        .iter()
        .map(|p| PropertyChange {
            property: p.property.clone(),
            old: p.old.clone(),
            new: p.new.clone(),
            summary: vec![],
        })
        .collect();
    PolicyChange {
        id: String::new(),
        actor: String::new(),
        activity: String::new(),
        properties,
        notes: vec![],
        ..*c
    }
}

impl History {
    /// The history of `policies`, oldest first, one an epoch (no times):
    /// what tests of the history's readers build it from.
    #[cfg(test)]
    pub(crate) fn of_policies(policies: &[Policy]) -> History {
        let end = policies.last().expect("a policy").clone();
        let mut history = History {
            epochs: vec![],
            checks: vec![],
            defaults: vec![alone(&end, end.default.clone())],
            end,
            default_versions: Versions::default(),
            partners: HashMap::new(),
            default_unknown_from: None,
            any_partner_unknown_from: None,
            partly_unknown: 0,
        };
        let none = BTreeSet::new();
        for (back, pair) in policies.windows(2).rev().enumerate() {
            let [before, after] = pair else { unreachable!() };
            history.record(back + 1, Scope::Default, before, &none);
            let partners: BTreeSet<Guid> =
                before.partners.keys().chain(after.partners.keys()).copied().collect();
            for p in partners {
                let (a, b) = (before.partners.get(&p), after.partners.get(&p));
                if a.map(Arc::as_ptr) != b.map(Arc::as_ptr) {
                    history.record(back + 1, Scope::Partner(p), before, &none);
                }
            }
        }
        history.epochs = vec![Epoch { from: None, until: None }; policies.len()];
        history
    }
}

/// A policy with `default`, no partners, and `end`'s other fields.
fn alone(end: &Policy, default: Option<Arc<DefaultConfig>>) -> Policy {
    Policy {
        allowed_cloud_endpoints: end.allowed_cloud_endpoints.clone(),
        default,
        partners: Default::default(),
        warnings: vec![],
        source: end.source.clone(),
    }
}

impl History {
    /// Keeps what undoing a change to `scope` left in `state` and
    /// `unknown`, which hold from the epoch `back` from the newest.
    fn record(&mut self, back: usize, scope: Scope, state: &Policy, unknown: &BTreeSet<Unknown>) {
        match scope {
            Scope::Partner(p) => {
                let version = PartnerVersion {
                    entry: state.partners.get(&p).cloned(),
                    unknown: unknown.contains(&Unknown::Partner(p)),
                };
                self.partners.entry(p).or_default().0.push((back, version));
            }
            Scope::Default => {
                let last = self.default_versions.0.last().map_or(0, |(_, i)| *i);
                // Epochs in a row with equal defaults share one.
                if self.defaults[last].default != state.default {
                    self.defaults.push(alone(&self.end, state.default.clone()));
                    self.default_versions.0.push((back, self.defaults.len() - 1));
                }
            }
            Scope::UnknownPartner => {}
        }
        if unknown.contains(&Unknown::Default) {
            self.default_unknown_from.get_or_insert(back);
        }
        if unknown.contains(&Unknown::AnyPartner) {
            self.any_partner_unknown_from.get_or_insert(back);
        }
    }
}

/// Applies each change's new values to `start`, oldest first: the policy
/// the audit trail says is in force at the end. Notes say what could not
/// be applied.
pub fn apply_forward(start: &Policy, changes: &[PolicyChange]) -> (Policy, Vec<String>) {
    let mut state = start.clone();
    let mut notes = vec![];
    for c in changes.iter().filter(|c| c.alters_access()) {
        let at = format!("{} ({})", c.time.to_rfc3339(), c.kind.as_str());
        match (c.kind, c.scope) {
            (_, Scope::UnknownPartner) => notes.push(format!("{at}: the record does not name the partner")),
            (ChangeKind::PartnerDeleted, Scope::Partner(p)) => {
                state.partners.remove(&p);
            }
            (ChangeKind::DefaultReset, _) => {
                let mut d = service_default();
                d.is_service_default = Some(true);
                state.default = Some(Arc::new(d));
                apply_values(&mut state, c, Side::New, &mut notes, &at);
            }
            (ChangeKind::PartnerAdded, Scope::Partner(p)) => {
                state.partners.insert(p, Arc::new(empty_partner(p)));
                apply_values(&mut state, c, Side::New, &mut notes, &at);
            }
            _ => apply_values(&mut state, c, Side::New, &mut notes, &at),
        }
    }
    (state, notes)
}

#[derive(Copy, Clone, PartialEq)]
enum Side {
    Old,
    New,
}

fn empty_partner(p: Guid) -> PartnerConfig {
    PartnerConfig {
        tenant_id: p,
        is_service_provider: None,
        is_in_multi_tenant_organization: None,
        settings: Settings::default(),
        cloud: None,
        extra: Default::default(),
    }
}

/// Steps `state` from after `c` to before it.
fn undo(state: &mut Policy, unknown: &mut BTreeSet<Unknown>, c: &PolicyChange) -> Vec<String> {
    let mut notes = check_new_values(state, c);
    let at = format!("{} ({})", c.time.to_rfc3339(), c.kind.as_str());
    let had_old = c.properties.iter().any(|p| !matches!(p.old, Decoded::Unset));
    match (c.kind, c.scope) {
        (_, Scope::UnknownPartner) => {
            notes.push(
                "the record does not name the partner, so no partner's earlier settings are known".into(),
            );
            unknown.insert(Unknown::AnyPartner);
        }
        (ChangeKind::PartnerAdded, Scope::Partner(p)) => {
            if state.partners.remove(&p).is_none() {
                notes.push(format!("partner {p} is not in the policy given: a later deletion is missing from the audit window"));
            }
            unknown.remove(&Unknown::Partner(p));
        }
        (ChangeKind::PartnerDeleted, Scope::Partner(p)) => {
            if state.partners.contains_key(&p) {
                notes.push(format!("partner {p} is in the policy given although this change deleted it: a later addition is missing"));
            }
            state.partners.insert(p, Arc::new(empty_partner(p)));
            if had_old {
                apply_values(state, c, Side::Old, &mut notes, &at);
            } else {
                notes.push(format!("the record does not carry partner {p}'s settings before deletion; they are unknown before {}", c.time.to_rfc3339()));
                unknown.insert(Unknown::Partner(p));
            }
        }
        (ChangeKind::DefaultReset, _) if !had_old => {
            notes.push(format!(
                "the record does not carry the default settings before the reset; they are unknown before {}",
                c.time.to_rfc3339()
            ));
            unknown.insert(Unknown::Default);
        }
        (_, scope) => {
            if let Scope::Partner(p) = scope {
                if let std::collections::btree_map::Entry::Vacant(e) = state.partners.entry(p) {
                    notes.push(format!(
                        "partner {p} is not in the policy given although this change updated it"
                    ));
                    e.insert(Arc::new(empty_partner(p)));
                }
            }
            let before = notes.len();
            apply_values(state, c, Side::Old, &mut notes, &at);
            if notes.len() > before || c.properties.iter().any(|p| matches!(p.old, Decoded::Undecodable(_))) {
                unknown.insert(match scope {
                    Scope::Partner(p) => Unknown::Partner(p),
                    _ => Unknown::Default,
                });
            }
        }
    }
    notes
}

/// Sets each property of `c` to its old or new value on the configuration
/// `c` applies to.
fn apply_values(state: &mut Policy, c: &PolicyChange, side: Side, notes: &mut Vec<String>, at: &str) {
    for p in &c.properties {
        let d = if side == Side::Old { &p.old } else { &p.new };
        let value = match d {
            Decoded::Unset => None,
            Decoded::Undecodable(why) => {
                notes.push(format!("{at}: {}: cannot be applied ({why})", p.property));
                continue;
            }
            Decoded::Value(_) => clean(d).map(|(v, _)| v),
        };
        let result = match c.scope {
            Scope::Default => {
                let d = state.default.get_or_insert_with(|| Arc::new(service_default()));
                set(&mut Arc::make_mut(d).settings, &p.property, value).map(|_| ())
            }
            Scope::Partner(t) => {
                let partner = state.partners.entry(t).or_insert_with(|| Arc::new(empty_partner(t)));
                set_partner(Arc::make_mut(partner), &p.property, value)
            }
            Scope::UnknownPartner => Ok(()),
        };
        if let Err(e) = result {
            notes.push(format!("{at}: {e:#}"));
        }
    }
}

fn set_partner(p: &mut PartnerConfig, property: &str, v: Option<Value>) -> Result<()> {
    match property {
        "isServiceProvider" => p.is_service_provider = v.map(|v| parse(v, property)).transpose()?,
        "isInMultiTenantOrganization" => {
            p.is_in_multi_tenant_organization = v.map(|v| parse(v, property)).transpose()?
        }
        _ => {
            if !set(&mut p.settings, property, v.clone())? {
                match v {
                    Some(v) => p.extra.insert(property.to_string(), v),
                    None => p.extra.remove(property),
                };
            }
        }
    }
    Ok(())
}

/// Sets one top-level property; `false` when it is not one of [`Settings`].
fn set(s: &mut Settings, property: &str, v: Option<Value>) -> Result<bool> {
    fn value<T: serde::de::DeserializeOwned>(v: Option<Value>, at: &str) -> Result<Option<T>> {
        v.map(|v| parse(v, at)).transpose()
    }
    match property {
        "b2bCollaborationInbound" => s.b2b_collaboration_inbound = value(v, property)?,
        "b2bCollaborationOutbound" => s.b2b_collaboration_outbound = value(v, property)?,
        "b2bDirectConnectInbound" => s.b2b_direct_connect_inbound = value(v, property)?,
        "b2bDirectConnectOutbound" => s.b2b_direct_connect_outbound = value(v, property)?,
        "inboundTrust" => s.inbound_trust = value(v, property)?,
        "automaticUserConsentSettings" => s.automatic_user_consent_settings = value(v, property)?,
        "tenantRestrictions" => s.tenant_restrictions = v,
        _ => return Ok(false),
    }
    Ok(true)
}

/// Where the state after `c` (from the policy given and later changes)
/// disagrees with the new values `c` logged.
fn check_new_values(state: &Policy, c: &PolicyChange) -> Vec<String> {
    if c.scope == Scope::UnknownPartner {
        return vec![];
    }
    if c.kind == ChangeKind::PartnerDeleted {
        return vec![];
    }
    // Only the configuration the change touched: a copy of every partner's
    // entry a change was as slow as the policy is long.
    let mut probe = Policy { default: state.default.clone(), ..Policy::default() };
    if let Scope::Partner(p) = c.scope {
        probe.partners.extend(state.partners.get(&p).map(|e| (p, Arc::clone(e))));
    }
    let mut ignored = vec![];
    apply_values(&mut probe, c, Side::New, &mut ignored, "");
    let same = match c.scope {
        Scope::Default => probe.default == state.default || state.default.is_none(),
        Scope::Partner(p) => probe.partners.get(&p) == state.partners.get(&p),
        Scope::UnknownPartner => true,
    };
    if same {
        vec![]
    } else {
        vec!["the policy given differs from what this change set: a later change is missing from the audit window, \
              or the policy given is not the one in force at its end"
            .into()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Actor, AuditEvent, AuditTarget, ModifiedProperty};
    use crate::policy::change::decode;
    use crate::policy::evaluate::Verdict;
    use crate::policy::model::Section;

    const P: &str = "1eae0b55-0000-4000-8000-000000000001";

    fn change(at: &str, activity: &str, props: &[(&str, Option<&str>, Option<&str>)]) -> PolicyChange {
        change_to(Some(P), at, activity, props)
    }

    /// A change to `partner`'s entry, or to the default.
    fn change_to(
        partner: Option<&str>,
        at: &str,
        activity: &str,
        props: &[(&str, Option<&str>, Option<&str>)],
    ) -> PolicyChange {
        let mut modified: Vec<ModifiedProperty> = partner
            .map(|p| ModifiedProperty { name: "tenantId".into(), old: None, new: Some(format!("\"{p}\"")) })
            .into_iter()
            .collect();
        modified.extend(props.iter().map(|(n, o, v)| ModifiedProperty {
            name: n.to_string(),
            old: o.map(str::to_string),
            new: v.map(str::to_string),
        }));
        decode(&AuditEvent {
            id: at.into(),
            time: at.parse().unwrap(),
            activity: activity.into(),
            category: Some("CrossTenantAccessSettings".into()),
            result: Some("success".into()),
            result_reason: None,
            correlation_id: None,
            actor: Actor::default(),
            log_tenant: None,
            targets: vec![AuditTarget { modified, ..AuditTarget::default() }],
            details: vec![],
        })
    }

    const ALL_APPS: &str = r#"{"usersAndGroups":{"accessType":1,"targets":[{"target":"AllUsers","targetType":1}]},"applications":{"accessType":1,"targets":[{"target":"AllApplications","targetType":3}]}}"#;
    const ONE_APP: &str = r#"{"usersAndGroups":{"accessType":1,"targets":[{"target":"AllUsers","targetType":1}]},"applications":{"accessType":1,"targets":[{"target":"00000003-0000-0ff1-ce00-000000000000","targetType":3}]}}"#;

    fn end_policy() -> Policy {
        let (start, _) = apply_forward(&Policy::default(), &changes());
        start
    }

    fn changes() -> Vec<PolicyChange> {
        vec![
            change("2026-03-01T09:00:00Z", "Add a partner to cross-tenant access setting", &[]),
            change(
                "2026-03-02T09:00:00Z",
                "Update a partner cross-tenant access setting",
                &[("b2bCollaborationInbound", None, Some(ALL_APPS))],
            ),
            change(
                "2026-03-03T09:00:00Z",
                "Update a partner cross-tenant access setting",
                &[
                    ("b2bCollaborationInbound", Some(ALL_APPS), Some(ONE_APP)),
                    ("inboundTrust", None, Some(r#"{"isMfaAccepted":true}"#)),
                ],
            ),
        ]
    }

    #[test]
    fn backward_then_forward_returns_the_end_policy() {
        let end = end_policy();
        let p = Guid::parse(P).unwrap();
        assert!(end.partners[&p].settings.inbound_trust.as_ref().unwrap().is_mfa_accepted.unwrap());
        let h = reconstruct(&end, &changes());
        assert_eq!(h.epochs.len(), 4);
        assert!(h.checks.iter().all(|c| c.reconstructed && c.notes.is_empty()), "{:?}", h.checks);
        assert!(!h.policy_at(0).partners.contains_key(&p));
        let before_narrowing = h.policy_at(2);
        let narrowed = before_narrowing.partners[&p].settings.section(Section::CollaborationInbound).unwrap();
        assert_eq!(narrowed.applications.as_ref().unwrap().targets[0].target, "AllApplications");
        let (again, notes) = apply_forward(&h.policy_at(0), &changes());
        assert!(notes.is_empty());
        assert_eq!(again.partners, end.partners);
        assert_eq!(
            h.at("2026-03-02T12:00:00Z".parse().unwrap()).from,
            Some("2026-03-02T09:00:00Z".parse().unwrap())
        );
        assert_eq!(h.at("2026-02-01T00:00:00Z".parse().unwrap()).from, None);
    }

    #[test]
    fn each_epoch_holds_the_policy_the_changes_before_it_leave_sharing_the_entries_they_did_not_touch() {
        // Three partners added, then their entries and the default changed
        // in turns, each between two target lists.
        let partners = [
            "1eae0b55-0000-4000-8000-000000000001",
            "1eae0b55-0000-4000-8000-000000000002",
            "1eae0b55-0000-4000-8000-000000000003",
        ];
        let at = |i: usize| format!("2026-03-01T{:02}:{:02}:00Z", i / 60, i % 60);
        let mut changes: Vec<PolicyChange> = partners
            .iter()
            .enumerate()
            .map(|(i, p)| change_to(Some(p), &at(i), "Add a partner to cross-tenant access setting", &[]))
            .collect();
        for i in 0..20 {
            let (old, new) = if i % 8 < 4 { (None, Some(ALL_APPS)) } else { (Some(ALL_APPS), Some(ONE_APP)) };
            let (partner, activity) = match i % 4 {
                3 => (None, "Update the company default cross-tenant access setting"),
                p => (Some(partners[p]), "Update a partner cross-tenant access setting"),
            };
            let old = if i >= 8 && i % 8 < 4 { Some(ONE_APP) } else { old };
            changes.push(change_to(partner, &at(10 + i), activity, &[("b2bCollaborationInbound", old, new)]));
        }
        let (end, notes) = apply_forward(&Policy::default(), &changes);
        assert!(notes.is_empty(), "{notes:?}");
        let h = reconstruct(&end, &changes);
        assert_eq!(h.epochs.len(), changes.len() + 1);
        assert!(h.checks.iter().all(|c| c.reconstructed && c.notes.is_empty()), "{:?}", h.checks);
        let start = h.policy_at(0);
        assert!(start.partners.is_empty());
        for epoch in 0..h.epochs.len() {
            let (forward, notes) = apply_forward(&start, &changes[..epoch]);
            assert!(notes.is_empty());
            let held = h.policy_at(epoch);
            assert_eq!(
                (&held.default, &held.partners),
                (&forward.default, &forward.partners),
                "epoch {epoch}"
            );
            assert!(h.knows(epoch, Guid::parse(partners[0]).unwrap()));
        }
        // An entry a change did not touch is the one the epoch after it holds.
        for (epoch, c) in changes.iter().enumerate().skip(1) {
            for p in partners.map(|p| Guid::parse(p).unwrap()) {
                let (before, after) = (h.partner_at(epoch, p), h.partner_at(epoch + 1, p));
                if c.scope != Scope::Partner(p) {
                    assert_eq!(before.map(Arc::as_ptr), after.map(Arc::as_ptr), "epoch {epoch}");
                }
            }
        }
        let defaults: BTreeSet<usize> = (0..h.epochs.len()).map(|e| h.default_at(e)).collect();
        assert_eq!(defaults.len(), 1 + changes.iter().filter(|c| c.scope == Scope::Default).count());
    }

    #[test]
    fn a_trail_deleting_thousands_of_partners_without_their_settings_holds_one_version_a_change() {
        // A forged trail (or a clean-up script): 3,000 partners deleted, none
        // of them with its settings. Each epoch before a deletion knows one
        // partner less; a set of what is unknown copied into every epoch
        // held 4.5 million entries here (24 GB at 30,000 deletions).
        let partners: Vec<String> = (1..=3000).map(|i| format!("1eae0b55-0000-4000-8000-{i:012x}")).collect();
        let changes: Vec<PolicyChange> = partners
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let at = format!("2026-03-01T{:02}:{:02}:{:02}Z", i / 3600, i / 60 % 60, i % 60);
                change_to(Some(p), &at, "Delete partner specific cross-tenant access setting", &[])
            })
            .collect();
        let h = reconstruct(&Policy::default(), &changes);
        assert_eq!(h.epochs.len(), 3001);
        let versions: usize = h.partners.values().map(|v| v.0.len()).sum();
        assert_eq!(versions, 3000);
        let guid = |i: usize| Guid::parse(&partners[i]).unwrap();
        // Before the i-th deletion (epoch i), partners i.. are unknown.
        for epoch in [0, 1, 1500, 2999, 3000] {
            assert_eq!(h.unknown_at(epoch).len(), 3000 - epoch, "epoch {epoch}");
            for i in [0, 1499, 1500, 2999] {
                assert_eq!(h.knows(epoch, guid(i)), i < epoch, "epoch {epoch}, partner {i}");
            }
        }
        assert_eq!(h.partly_unknown(), 3000);
        assert!(h.checks.iter().all(|c| !c.reconstructed));
    }

    #[test]
    fn the_narrowing_blocks_sharepoint_only_after_it() {
        use crate::model::{AccessType, Direction};
        use crate::policy::evaluate::{evaluate, Membership, Request, TrustNeeds};
        let h = reconstruct(&end_policy(), &changes());
        let p = Guid::parse(P).unwrap();
        let none = std::collections::BTreeSet::new();
        let req = |app: &'static str| Request {
            direction: Direction::Inbound,
            access_type: AccessType::B2bCollaboration,
            partner: p,
            user_id: Some("u"),
            groups: Membership::Known(&none),
            app_id: Some(app),
            app_owner: None,
            resource_id: None,
            resource_owner: None,
            trust: TrustNeeds::default(),
            apps: crate::policy::apps::AppCatalog::built_in(),
            cloud: Default::default(),
        };
        let teams = "1fec8e78-bce4-4aaf-ab1b-5451cc387264";
        assert_eq!(evaluate(&h.policy_at(2), &req(teams)).verdict, Verdict::Allowed);
        assert_eq!(evaluate(&h.policy_at(3), &req(teams)).verdict, Verdict::Blocked);
    }

    #[test]
    fn past_the_epochs_held_the_older_changes_are_not_undone_and_their_settings_unknown() {
        // Three changes that alter access, two epochs held: the newest is
        // undone, the two before it are not, and before it nothing is known.
        let end = end_policy();
        let p = Guid::parse(P).unwrap();
        let all = reconstruct(&end, &changes());
        let h = reconstruct_at_most(&end, &changes(), 2);
        assert_eq!(h.epochs.len(), 2);
        assert_eq!(h.epochs[1].from, all.epochs[3].from);
        assert!(h.knows(1, p) && !h.knows(0, p));
        assert_eq!(h.unknown_at(0), BTreeSet::from([Unknown::Default, Unknown::AnyPartner]));
        assert!(h.checks[2].reconstructed);
        for older in &h.checks[..2] {
            assert!(!older.reconstructed && older.notes[0].contains("not undone"), "{older:?}");
        }
        // As many held as needed: the same history.
        let h = reconstruct_at_most(&end, &changes(), 4);
        assert_eq!(h.epochs.len(), 4);
        assert!(h.checks.iter().all(|c| c.reconstructed));
    }

    #[test]
    fn the_checks_of_a_trail_from_its_newest_changes_that_alter_access_are_those_of_the_whole_trail() {
        // Changes that alter access, failed ones and ones that change no
        // access between them; one that leaves the partner unknown (a
        // deletion without its settings) in the middle; every number of
        // epochs held from two to more than needed.
        let (update, delete) = (
            "Update a partner cross-tenant access setting",
            "Delete partner specific cross-tenant access setting",
        );
        let mut trail = vec![];
        for (n, (activity, props, succeeded)) in [
            (update, vec![("b2bCollaborationInbound", Some(ALL_APPS), Some(ONE_APP))], true),
            (update, vec![("b2bCollaborationInbound", Some(ONE_APP), Some(ALL_APPS))], false),
            ("Migrated partner cross-tenant access settings to the scalable model", vec![], true),
            (delete, vec![], true),
            ("Add a partner to cross-tenant access setting", vec![], true),
            (update, vec![("b2bCollaborationInbound", None, Some(ALL_APPS))], true),
            (update, vec![("inboundTrust", None, Some(r#"{"isMfaAccepted":true}"#))], false),
            (update, vec![("b2bCollaborationInbound", Some(ALL_APPS), Some(ONE_APP))], true),
            ("Migrated partner cross-tenant access settings to the scalable model", vec![], true),
        ]
        .into_iter()
        .enumerate()
        {
            let mut c = change(&format!("2026-03-{:02}T09:00:00Z", n + 1), activity, &props);
            c.succeeded = succeeded;
            trail.push(c);
        }
        let alters: Vec<bool> = trail.iter().map(PolicyChange::alters_access).collect();
        assert_eq!(alters.iter().filter(|a| **a).count(), 5);
        let text = |checks: &[ChangeCheck]| -> Vec<(bool, Vec<String>)> {
            checks
                .iter()
                .map(|c| (c.reconstructed, c.notes.iter().map(|n| n.to_string()).collect()))
                .collect()
        };
        for end in [end_policy(), Policy::default()] {
            for held in 2..8 {
                let whole = reconstruct_at_most(&end, &trail, held);
                let altering: Vec<PolicyChange> =
                    trail.iter().filter(|c| c.alters_access()).cloned().collect();
                let newest = &altering[altering.len().saturating_sub(held)..];
                let newest: Vec<PolicyChange> = newest.iter().map(undoable).collect();
                let mut trail_checks = TrailChecks::at_most(&end, &newest, altering.len(), held);
                let checks: Vec<ChangeCheck> = alters.iter().map(|&a| trail_checks.next(a)).collect();
                assert_eq!(text(&checks), text(&whole.checks), "{held} epochs held");
                assert!(checks.iter().any(|c| !c.reconstructed) && checks.iter().any(|c| c.reconstructed));
            }
        }
    }

    #[test]
    fn gaps_are_marked_unknown_not_guessed() {
        let mut cs = changes();
        cs.push(change("2026-03-04T09:00:00Z", "Delete partner specific cross-tenant access setting", &[]));
        let end = Policy::default();
        let h = reconstruct(&end, &cs);
        let p = Guid::parse(P).unwrap();
        assert!(h.knows(4, p));
        assert!(!h.knows(3, p));
        assert!(!h.checks[3].reconstructed);
        assert!(h.checks[3].notes[0].contains("does not carry"), "{:?}", h.checks[3].notes);
        // A policy that disagrees with the logged new values is called out.
        let h = reconstruct(&Policy::default(), &changes());
        assert!(
            h.checks[2].notes.iter().any(|n| n.contains("not in the policy given")),
            "{:?}",
            h.checks[2].notes
        );
    }
}
