//! Timeline: each cross-tenant policy change from the audit log, joined
//! with the sign-ins of the partner it touched in a window before and
//! after it, to show who lost access because of it.
//!
//! Settings take up to a few hours to apply, so the window after a change
//! is stretched by a grace period: `[t - window, t)` before and
//! `[t, t + grace + window)` after. A change is flagged when users who had
//! no policy block before it have one after, and policy blocks rose. A
//! change to the default is joined with the sign-ins of every partner
//! (without the policy, which partners inherit the default is not known).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::model::codes::is_policy_block;
use crate::model::{Direction, Guid, SignIn};
use crate::policy::change::{PolicyChange, Scope};

/// Sign-ins on one side of a change.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Side {
    pub sign_ins: u64,
    pub users: u64,
    pub policy_blocks: u64,
    pub blocked_users: u64,
}

#[derive(Default)]
struct SideAcc {
    sign_ins: u64,
    policy_blocks: u64,
    users: BTreeSet<String>,
    blocked: BTreeSet<String>,
}

impl SideAcc {
    fn add(&mut self, user: &str, blocked: bool) {
        self.sign_ins += 1;
        self.users.insert(user.to_string());
        if blocked {
            self.policy_blocks += 1;
            self.blocked.insert(user.to_string());
        }
    }

    fn side(&self) -> Side {
        Side {
            sign_ins: self.sign_ins,
            users: self.users.len() as u64,
            policy_blocks: self.policy_blocks,
            blocked_users: self.blocked.len() as u64,
        }
    }
}

/// What the sign-ins say about one change.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Effect {
    pub before: Side,
    pub after: Side,
    /// Users with a policy block after the change and none before it
    /// (user principal name where the logs give one, else the id).
    pub newly_blocked_users: Vec<String>,
    /// Followed by new policy blocks: likely the cause.
    pub flagged: bool,
}

/// One line of the timeline: a change, what the sign-ins say about it, and
/// whether the policy before it could be rebuilt.
pub struct ChangeRow {
    pub change: PolicyChange,
    pub partner_name: Option<String>,
    pub effect: Option<Effect>,
    pub check: Option<crate::policy::history::ChangeCheck>,
}

/// What a timeline run read, for its summary.
pub struct TimelineRun {
    pub audit: crate::model::ReadStats,
    pub signins: Option<crate::model::ReadStats>,
    pub joined_sign_ins: u64,
    pub policy: Option<String>,
    pub window: Duration,
    pub grace: Duration,
}

/// Joins changes with sign-ins, one sign-in at a time; memory holds the
/// users seen near each change, not the sign-ins.
pub struct Join {
    changes: Vec<(DateTime<Utc>, Scope)>,
    by_partner: HashMap<Guid, Vec<usize>>,
    defaults: Vec<usize>,
    window: Duration,
    grace: Duration,
    our_tenant: Option<Guid>,
    acc: Vec<(SideAcc, SideAcc)>,
    names: HashMap<Guid, String>,
    pub joined: u64,
}

impl Join {
    pub fn new(
        changes: &[PolicyChange],
        our_tenant: Option<Guid>,
        window: Duration,
        grace: Duration,
    ) -> Join {
        let mut by_partner: HashMap<Guid, Vec<usize>> = HashMap::new();
        let mut defaults = vec![];
        for (i, c) in changes.iter().enumerate() {
            if !c.succeeded || !c.kind.changes_access() {
                continue;
            }
            match c.scope {
                Scope::Partner(p) => by_partner.entry(p).or_default().push(i),
                Scope::Default => defaults.push(i),
                Scope::UnknownPartner => {}
            }
        }
        Join {
            changes: changes.iter().map(|c| (c.time, c.scope)).collect(),
            by_partner,
            defaults,
            window,
            grace,
            our_tenant,
            acc: changes.iter().map(|_| Default::default()).collect(),
            names: HashMap::new(),
            joined: 0,
        }
    }

    pub fn add(&mut self, s: &SignIn) {
        let Some(our) = self.our_tenant.or(s.log_tenant) else { return };
        let (Some(home), Some(resource)) = (s.home_tenant, s.resource_tenant) else { return };
        let Some((direction, partner)) = Direction::of(our, home, resource) else { return };
        if let (Direction::Inbound, Some(n)) = (direction, s.home_tenant_name()) {
            self.names.entry(partner).or_insert_with(|| n.into());
        }
        let user = s.user_principal_name().or(s.user_id()).unwrap_or("(unknown user)");
        let blocked = is_policy_block(s.error_code);
        let mut hit = false;
        let ids = self.by_partner.get(&partner).into_iter().flatten().chain(&self.defaults);
        for &i in ids {
            let t = self.changes[i].0;
            if s.time >= t - self.window && s.time < t {
                self.acc[i].0.add(user, blocked);
                hit = true;
            } else if s.time >= t && s.time < t + self.grace + self.window {
                self.acc[i].1.add(user, blocked);
                hit = true;
            }
        }
        self.joined += u64::from(hit);
    }

    /// Partner names the sign-ins gave.
    pub fn names(&self) -> BTreeMap<Guid, String> {
        self.names.iter().map(|(k, v)| (*k, v.clone())).collect()
    }

    /// One effect per change (`None` for changes that alter no access).
    pub fn finish(self) -> Vec<Option<Effect>> {
        let joined: BTreeSet<usize> =
            self.by_partner.values().flatten().chain(&self.defaults).copied().collect();
        self.acc
            .into_iter()
            .enumerate()
            .map(|(i, (before, after))| {
                if !joined.contains(&i) {
                    return None;
                }
                let newly: Vec<String> = after.blocked.difference(&before.blocked).cloned().collect();
                let flagged = !newly.is_empty() && after.policy_blocks > before.policy_blocks;
                Some(Effect {
                    before: before.side(),
                    after: after.side(),
                    newly_blocked_users: newly,
                    flagged,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AccessType, CaStatus, EventType, Text, Texts, UserType};
    use crate::policy::change::ChangeKind;

    const OURS: Guid = Guid(1);
    const PARTNER: Guid = Guid(2);

    fn signin(at: &str, user: &str, code: u32) -> SignIn {
        let (time, tenants) = (at.parse().unwrap(), (Some(PARTNER), Some(OURS)));
        SignIn {
            texts: Texts::of(&[(Text::Id, &format!("{at}{user}")), (Text::UserId, user)]),
            user_type: UserType::Guest,
            access_type: AccessType::B2bCollaboration,
            ca_status: CaStatus::NotApplied,
            ..SignIn::not_cross_tenant(time, EventType::Interactive, code, Some(OURS), tenants.0, tenants.1)
        }
    }

    fn change(at: &str, scope: Scope) -> PolicyChange {
        PolicyChange {
            id: at.into(),
            time: at.parse().unwrap(),
            actor: "a".into(),
            activity: "Update a partner cross-tenant access setting".into(),
            kind: ChangeKind::PartnerUpdated,
            succeeded: true,
            scope,
            owner: None,
            properties: vec![],
            notes: vec![],
        }
    }

    #[test]
    fn blocks_after_the_change_and_its_grace_are_attributed() {
        let changes = [
            change("2026-03-03T12:00:00Z", Scope::Partner(PARTNER)),
            change("2026-03-03T12:00:00Z", Scope::Partner(Guid(9))),
        ];
        let mut j = Join::new(&changes, None, Duration::hours(24), Duration::hours(6));
        for s in [
            signin("2026-03-03T01:00:00Z", "ann", 0),
            signin("2026-03-03T02:00:00Z", "bob", 500213),
            signin("2026-03-03T14:00:00Z", "ann", 500213),
            signin("2026-03-04T17:59:00Z", "cy", 500213),
            signin("2026-03-04T18:00:00Z", "dee", 500213), // past window + grace
            signin("2026-03-01T00:00:00Z", "eve", 500213), // before the window
        ] {
            j.add(&s);
        }
        let effects = j.finish();
        let e = effects[0].as_ref().unwrap();
        assert_eq!(e.before, Side { sign_ins: 2, users: 2, policy_blocks: 1, blocked_users: 1 });
        assert_eq!(e.after.policy_blocks, 2);
        assert_eq!(e.newly_blocked_users, ["ann", "cy"]);
        assert!(e.flagged);
        assert_eq!(effects[1].as_ref().unwrap().after.sign_ins, 0);
        assert!(!effects[1].as_ref().unwrap().flagged);
    }
}
