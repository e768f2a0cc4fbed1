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

use std::collections::BTreeSet;
use std::sync::Arc;

use anyhow::Result;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::change::{clean, ChangeKind, Decoded, PolicyChange, Scope};
use super::load::parse;
use super::model::{service_default, PartnerConfig, Policy, Settings};
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

/// The policy over one span between changes.
#[derive(Clone, Debug)]
pub struct Epoch {
    /// `None`: from before the first change.
    pub from: Option<DateTime<Utc>>,
    /// `None`: still in force at the end.
    pub until: Option<DateTime<Utc>>,
    pub policy: Policy,
    pub unknown: BTreeSet<Unknown>,
}

impl Epoch {
    /// Whether this partner's settings (its own or the default it
    /// inherits) are known in this epoch.
    pub fn knows(&self, partner: Guid) -> bool {
        if self.unknown.contains(&Unknown::Partner(partner)) || self.unknown.contains(&Unknown::AnyPartner) {
            return false;
        }
        // A partner with its own sections may still inherit others.
        !self.unknown.contains(&Unknown::Default)
    }
}

/// What reconstruction found at one change.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ChangeCheck {
    /// The policy before the change could be rebuilt completely.
    pub reconstructed: bool,
    pub notes: Vec<String>,
}

/// Every epoch, oldest first (one more than the changes that alter
/// access), and one check per change given.
#[derive(Clone, Debug)]
pub struct History {
    pub epochs: Vec<Epoch>,
    pub checks: Vec<ChangeCheck>,
}

impl History {
    /// The epoch in force at `t`.
    pub fn at(&self, t: DateTime<Utc>) -> &Epoch {
        let i = self.epochs.iter().rposition(|e| e.from.is_none_or(|f| f <= t)).unwrap_or(0);
        &self.epochs[i]
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
    let mut epochs = vec![];
    let mut checks = vec![ChangeCheck::default(); changes.len()];
    let mut until = None;
    let held = epochs_held.max(2);
    // Short: every change past those undone carries it (a million of them
    // past the newest 65,534 would hold 458 MB of a longer text).
    let not_undone = format!(
        "not undone: xtenant rebuilds the policy back through the newest {} changes that alter access; settings before them are unknown",
        held - 1
    );
    for (i, c) in changes.iter().enumerate().rev() {
        if !c.succeeded || !c.kind.changes_access() {
            checks[i] = ChangeCheck { reconstructed: unknown.is_empty(), notes: vec![] };
            continue;
        }
        if epochs.len() + 1 >= held {
            // This change and every one before it: not undone.
            unknown.extend([Unknown::Default, Unknown::AnyPartner]);
            checks[i] = ChangeCheck { reconstructed: false, notes: vec![not_undone.clone()] };
            continue;
        }
        epochs.push(Epoch { from: Some(c.time), until, policy: state.clone(), unknown: unknown.clone() });
        until = Some(c.time);
        let notes = undo(&mut state, &mut unknown, c);
        checks[i] = ChangeCheck { reconstructed: unknown.is_empty(), notes };
    }
    epochs.push(Epoch { from: None, until, policy: state, unknown });
    epochs.reverse();
    History { epochs, checks }
}

/// Applies each change's new values to `start`, oldest first: the policy
/// the audit trail says is in force at the end. Notes say what could not
/// be applied.
pub fn apply_forward(start: &Policy, changes: &[PolicyChange]) -> (Policy, Vec<String>) {
    let mut state = start.clone();
    let mut notes = vec![];
    for c in changes.iter().filter(|c| c.succeeded && c.kind.changes_access()) {
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
    let mut probe = state.clone();
    let mut ignored = vec![];
    if c.scope == Scope::UnknownPartner {
        return vec![];
    }
    if c.kind == ChangeKind::PartnerDeleted {
        return vec![];
    }
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
        let mut modified =
            vec![ModifiedProperty { name: "tenantId".into(), old: None, new: Some(format!("\"{P}\"")) }];
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
        assert!(!h.epochs[0].policy.partners.contains_key(&p));
        let narrowed =
            h.epochs[2].policy.partners[&p].settings.section(Section::CollaborationInbound).unwrap();
        assert_eq!(narrowed.applications.as_ref().unwrap().targets[0].target, "AllApplications");
        let (again, notes) = apply_forward(&h.epochs[0].policy, &changes());
        assert!(notes.is_empty());
        assert_eq!(again.partners, end.partners);
        assert_eq!(
            h.at("2026-03-02T12:00:00Z".parse().unwrap()).from,
            Some("2026-03-02T09:00:00Z".parse().unwrap())
        );
        assert_eq!(h.at("2026-02-01T00:00:00Z".parse().unwrap()).from, None);
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
        assert_eq!(evaluate(&h.epochs[2].policy, &req(teams)).verdict, Verdict::Allowed);
        assert_eq!(evaluate(&h.epochs[3].policy, &req(teams)).verdict, Verdict::Blocked);
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
        assert!(h.epochs[1].knows(p) && !h.epochs[0].knows(p));
        assert_eq!(h.epochs[0].unknown, BTreeSet::from([Unknown::Default, Unknown::AnyPartner]));
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
    fn gaps_are_marked_unknown_not_guessed() {
        let mut cs = changes();
        cs.push(change("2026-03-04T09:00:00Z", "Delete partner specific cross-tenant access setting", &[]));
        let end = Policy::default();
        let h = reconstruct(&end, &cs);
        let p = Guid::parse(P).unwrap();
        assert!(h.epochs[4].knows(p));
        assert!(!h.epochs[3].knows(p));
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
