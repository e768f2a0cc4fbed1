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
//!
//! What a partner inherits is shared, not copied ([`Half`], [`Resolver`]):
//! a default that names 20,000 users, replayed for the 5,000 partners of a
//! large tenant's logs, was copied (and looked up) once per partner, and
//! that ran out of 24 GB; shared, it costs what the policy costs.

use std::collections::HashMap;
use std::fmt;
use std::ops::Deref;
use std::sync::{Arc, Mutex, OnceLock};

use serde::Serialize;

use super::model::{
    service_default, AccessKind, B2bSetting, DefaultConfig, PartnerConfig, Policy, Section, TargetConfig,
    TargetText,
};
use super::targets::{AppTargets, FromHalf, UserTargets};
use crate::model::Guid;

#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize)]
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

/// One half of a section (`usersAndGroups`, `applications`) after
/// inheritance, and its lookups `L` for evaluating sign-ins, built the
/// first time one is evaluated against it. Every partner that inherits the
/// half holds the same one: a clone shares it.
pub(crate) struct Half<L>(Arc<Shared<L>>);

struct Shared<L> {
    sourced: Sourced<TargetConfig>,
    lookups: OnceLock<L>,
    /// What [`Half::same_targets`] compares, made the first time it asks.
    key: OnceLock<TargetsKey>,
    /// [`Half::text`], made the first time it is asked for.
    text: OnceLock<String>,
}

/// A half's access type and targets in lower case, sorted, each once, and
/// a hash of them: halves whose hashes differ differ.
#[derive(PartialEq)]
struct TargetsKey {
    hash: u64,
    access: AccessKind,
    targets: Vec<TargetText>,
}

impl TargetsKey {
    fn of(cfg: &TargetConfig) -> TargetsKey {
        use std::hash::{Hash, Hasher};
        let mut targets: Vec<TargetText> =
            cfg.targets.iter().map(|t| t.target.to_ascii_lowercase()).collect();
        targets.sort_unstable();
        targets.dedup();
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (cfg.access_type, &targets).hash(&mut hasher);
        TargetsKey { hash: hasher.finish(), access: cfg.access_type, targets }
    }
}

impl<L> Half<L> {
    fn new(value: TargetConfig, origin: Origin) -> Half<L> {
        Half(Arc::new(Shared {
            sourced: Sourced { value, origin },
            lookups: OnceLock::new(),
            key: OnceLock::new(),
            text: OnceLock::new(),
        }))
    }

    /// `allowed [a, b and 19998 more]`: the access type and
    /// [`super::evaluate::targets_text`], as reasons, `policy show` and
    /// `policy diff` name a half, made once for all partners sharing it.
    pub(crate) fn text(&self) -> &str {
        self.0.text.get_or_init(|| {
            format!("{} [{}]", self.value.access_type.as_str(), super::evaluate::targets_text(&self.value))
        })
    }

    /// Which inherited half this is, the same for every partner sharing it;
    /// `None` for a partner's own. A [`Resolver`] holds its inherited
    /// halves as long as it lives, so no other half takes the id meanwhile.
    pub(crate) fn inherited_id(&self) -> Option<usize> {
        (self.origin != Origin::Partner).then_some(Arc::as_ptr(&self.0) as usize)
    }

    /// `f` of this half and `other`, found once for each pair of inherited
    /// halves ([`Half::inherited_id`]: the same for every partner that
    /// inherits both) and kept in `memo`; a partner's own half is asked
    /// afresh. (3,000 partners inheriting a default that names 20,000 users
    /// otherwise compare it 3,000 times.)
    pub(crate) fn once_per_inherited_pair<M, T: Clone>(
        &self,
        other: &Half<M>,
        memo: &mut HashMap<(usize, usize), T>,
        f: impl FnOnce() -> T,
    ) -> T {
        match self.inherited_id().zip(other.inherited_id()) {
            Some(ids) => memo.entry(ids).or_insert_with(f).clone(),
            None => f(),
        }
    }

    fn key(&self) -> &TargetsKey {
        self.0.key.get_or_init(|| TargetsKey::of(&self.0.sourced.value))
    }

    /// Same access type and same targets, in any order and letter case.
    /// Each half sorts its targets once, however many partners share it
    /// and however often it is compared (a proposal may name a hundred
    /// thousand users, and replay compares each partner's sections).
    pub(crate) fn same_targets<M>(&self, other: &Half<M>) -> bool {
        std::ptr::eq(Arc::as_ptr(&self.0).cast::<()>(), Arc::as_ptr(&other.0).cast::<()>()) || {
            let (a, b) = (self.key(), other.key());
            a.hash == b.hash && a == b
        }
    }
}

impl<L: FromHalf> Half<L> {
    pub(crate) fn lookups(&self) -> &L {
        self.0.lookups.get_or_init(|| L::from_half(&self.0.sourced))
    }
}

impl<L> Deref for Half<L> {
    type Target = Sourced<TargetConfig>;
    fn deref(&self) -> &Sourced<TargetConfig> {
        &self.0.sourced
    }
}

impl<L> Clone for Half<L> {
    fn clone(&self) -> Half<L> {
        Half(Arc::clone(&self.0))
    }
}

/// Equal halves mean equal lookups: these never make two halves differ.
impl<L> PartialEq for Half<L> {
    fn eq(&self, other: &Half<L>) -> bool {
        **self == **other
    }
}

impl<L> fmt::Debug for Half<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt(f)
    }
}

impl<L> Serialize for Half<L> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (**self).serialize(s)
    }
}

/// One B2B section after inheritance; both halves always present.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EffectiveSection {
    pub(crate) users_and_groups: Half<UserTargets>,
    pub(crate) applications: Half<AppTargets>,
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

/// The settings of one partner (or of the default) under one policy.
/// Callers that resolve several partners of a policy use one [`Resolver`].
pub fn effective(policy: &Policy, partner: Option<Guid>) -> Effective {
    Resolver::new(policy).effective(partner)
}

/// The halves made so far, by their target list: policies that share
/// their lists ([`super::model::Targets`]: the audit window's policy at
/// each moment is a copy of the next with one change undone) share their
/// halves, and so build each half's lookups once, not once a moment (300
/// changes to a policy whose default names 20,000 users took 3 GB).
#[derive(Clone, Default)]
pub(crate) struct Halves(Arc<Mutex<HalvesMade>>);

/// A half by what makes it: its target list (address and length: the
/// half holds the list, so no other list takes the address while it is
/// kept), access type and origin.
type HalfKey = (usize, usize, AccessKind, Origin);

/// Hashed with FxHash: the keys are addresses, not texts anyone writes, and
/// a replay looks its halves up once per partner it resolves (SipHash was
/// some 3% of the CPU of a proposal for one-sign-in partners).
#[derive(Default)]
struct HalvesMade {
    users: rustc_hash::FxHashMap<HalfKey, Half<UserTargets>>,
    apps: rustc_hash::FxHashMap<HalfKey, Half<AppTargets>>,
}

impl Halves {
    fn users(&self, value: &TargetConfig, origin: Origin) -> Half<UserTargets> {
        made(&mut self.made().users, value, origin)
    }

    fn apps(&self, value: &TargetConfig, origin: Origin) -> Half<AppTargets> {
        made(&mut self.made().apps, value, origin)
    }

    fn made(&self) -> std::sync::MutexGuard<'_, HalvesMade> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The half of `value` from `origin` in `halves`, made if it is not there.
fn made<L>(
    halves: &mut rustc_hash::FxHashMap<HalfKey, Half<L>>,
    value: &TargetConfig,
    origin: Origin,
) -> Half<L> {
    let key = (value.targets.as_ptr() as usize, value.targets.len(), value.access_type, origin);
    halves.entry(key).or_insert_with(|| Half::new(value.clone(), origin)).clone()
}

/// Resolves the partners of one policy, each half a partner does not set
/// itself shared among them ([`Half`]). A clone shares them too.
#[derive(Clone)]
pub struct Resolver<'a> {
    policy: &'a Policy,
    /// For each of [`Section::ALL`], the halves of a partner that sets
    /// neither: the default's, else the service default's.
    inherited: Vec<EffectiveSection>,
    halves: Halves,
    /// Whether a partner's own halves are kept in `halves` (shared by the
    /// epochs of an audit window, and by a proposal's trials), or made
    /// each time ([`Resolver::each_once`]).
    keep_partners: bool,
}

impl<'a> Resolver<'a> {
    pub fn new(policy: &'a Policy) -> Resolver<'a> {
        Resolver::sharing(policy, &Halves::default())
    }

    /// A resolver that shares `halves` with others: the halves of policies
    /// that share target lists are made once.
    pub(crate) fn sharing(policy: &'a Policy, halves: &Halves) -> Resolver<'a> {
        let service = service_default();
        let default = policy.default.as_deref();
        let inherited = Section::ALL
            .iter()
            .map(|&s| {
                let half = |get: fn(&B2bSetting) -> Option<&TargetConfig>| {
                    let def = default.and_then(|d: &DefaultConfig| d.settings.section(s)).and_then(get);
                    let svc = service.settings.section(s).and_then(get).expect("service default is complete");
                    pick(None, def, svc)
                };
                let (users, apps) =
                    (half(|b| b.users_and_groups.as_ref()), half(|b| b.applications.as_ref()));
                EffectiveSection {
                    users_and_groups: halves.users(users.value, users.origin),
                    applications: halves.apps(apps.value, apps.origin),
                }
            })
            .collect();
        Resolver { policy, inherited, halves: halves.clone(), keep_partners: true }
    }

    /// A resolver for resolving each partner once (`policy check`, `policy
    /// diff`): a partner's own halves are made and let go with its
    /// settings, not kept (a policy of 200,000 partners kept 120 MB of
    /// them).
    pub fn each_once(policy: &'a Policy) -> Resolver<'a> {
        Resolver { keep_partners: false, ..Resolver::new(policy) }
    }

    /// The policy it resolves.
    pub fn policy(&self) -> &'a Policy {
        self.policy
    }

    pub fn effective(&self, partner: Option<Guid>) -> Effective {
        let entry = partner.and_then(|t| self.policy.partners.get(&t));
        self.effective_with(partner, entry.map(|e| &**e))
    }

    /// The settings of `partner` with `entry` as its own (`None`: it has
    /// none) and this policy's default: an audit window's epochs hold the
    /// entries apart from their defaults ([`super::history::History`]).
    pub fn effective_with(&self, partner: Option<Guid>, entry: Option<&PartnerConfig>) -> Effective {
        let default = self.policy.default.as_ref();
        let p = entry;
        let mut notes = Vec::new();

        let mut sections = Vec::new();
        for (s, inherited) in Section::ALL.into_iter().zip(&self.inherited) {
            let own = p.and_then(|p| p.settings.section(s));
            if let Some(o) = own {
                for (half, missing) in [
                    ("usersAndGroups", o.users_and_groups.is_none()),
                    ("applications", o.applications.is_none()),
                ] {
                    if missing {
                        notes.push(format!(
                        "{}.{half} is null on the partner: the default's {half} applies (assumption, see docs/policy-semantics.md)",
                        s.name()
                    ));
                    }
                }
            }
            let keep = self.keep_partners;
            let users = match own.and_then(|o| o.users_and_groups.as_ref()) {
                Some(own) if keep => self.halves.users(own, Origin::Partner),
                Some(own) => Half::new(own.clone(), Origin::Partner),
                None => inherited.users_and_groups.clone(),
            };
            let apps = match own.and_then(|o| o.applications.as_ref()) {
                Some(own) if keep => self.halves.apps(own, Origin::Partner),
                Some(own) => Half::new(own.clone(), Origin::Partner),
                None => inherited.applications.clone(),
            };
            sections.push((s, EffectiveSection { users_and_groups: users, applications: apps }));
        }

        let own_trust = p.and_then(|p| p.settings.inbound_trust.as_ref());
        let def_trust = default.and_then(|d| d.settings.inbound_trust.as_ref());
        let flag = |name: &str,
                    get: fn(&super::model::InboundTrust) -> Option<bool>,
                    notes: &mut Vec<String>| {
            let own = own_trust.and_then(get);
            if own_trust.is_some() && own.is_none() {
                notes
                    .push(format!("inboundTrust.{name} is null on the partner: the default's value applies"));
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
            automatic_consent_outbound: pick(
                own_consent.and_then(|c| c.outbound_allowed),
                Some(false),
                false,
            ),
            is_service_provider: p.and_then(|p| p.is_service_provider).unwrap_or(false),
            is_in_multi_tenant_organization: p
                .and_then(|p| p.is_in_multi_tenant_organization)
                .unwrap_or(false),
            cloud: p.and_then(|p| p.cloud.clone()),
            notes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::model::{PartnerConfig, Settings, Target, TargetType};

    fn users(kind: AccessKind, ids: &[&str]) -> TargetConfig {
        TargetConfig {
            access_type: kind,
            targets: ids
                .iter()
                .map(|t| Target { target: (*t).into(), target_type: TargetType::User })
                .collect(),
        }
    }

    fn partner(id: u128, settings: Settings) -> (Guid, Arc<PartnerConfig>) {
        let tenant_id = Guid(id);
        let config = PartnerConfig {
            tenant_id,
            is_service_provider: None,
            is_in_multi_tenant_organization: None,
            settings,
            cloud: None,
            extra: Default::default(),
        };
        (tenant_id, Arc::new(config))
    }

    /// The default names users in every section; partner 1 sets its own
    /// B2B collaboration inbound users; partners 2 to 1,000 set nothing.
    fn policy() -> Policy {
        let named = users(AccessKind::Allowed, &["00000000-0000-4000-8000-00000000000a", "AllUsers"]);
        let mut default = service_default();
        for s in Section::ALL {
            default.settings.section_mut(s).as_mut().unwrap().users_and_groups = Some(named.clone());
        }
        let own = Settings {
            b2b_collaboration_inbound: Some(B2bSetting {
                users_and_groups: Some(users(AccessKind::Blocked, &["00000000-0000-4000-8000-00000000000b"])),
                applications: None,
            }),
            ..Settings::default()
        };
        let mut partners: std::collections::BTreeMap<Guid, Arc<PartnerConfig>> =
            (2..=1000).map(|i| partner(i, Settings::default())).collect();
        partners.extend([partner(1, own)]);
        Policy { default: Some(Arc::new(default)), partners, ..Policy::default() }
    }

    #[test]
    fn partners_that_inherit_a_half_share_one_copy_and_one_set_of_lookups() {
        let policy = policy();
        let resolver = Resolver::new(&policy);
        let default = resolver.effective(None);
        for i in 2..=1000 {
            let eff = resolver.effective(Some(Guid(i)));
            for s in Section::ALL {
                let (mine, theirs) = (&eff.section(s).users_and_groups, &default.section(s).users_and_groups);
                assert_eq!(mine.origin, Origin::Default);
                assert!(mine.inherited_id().is_some() && mine.inherited_id() == theirs.inherited_id());
                assert!(std::ptr::eq(mine.lookups(), theirs.lookups()));
            }
        }
        // A partner's own half is its own; the halves it does not set are
        // the default's.
        let own = resolver.effective(Some(Guid(1)));
        let inbound = own.section(Section::CollaborationInbound);
        assert_eq!(
            (inbound.users_and_groups.origin, inbound.users_and_groups.inherited_id()),
            (Origin::Partner, None)
        );
        assert_eq!(
            inbound.applications.inherited_id(),
            default.section(Section::CollaborationInbound).applications.inherited_id()
        );
        assert_eq!(
            own.section(Section::CollaborationOutbound).users_and_groups.inherited_id(),
            default.section(Section::CollaborationOutbound).users_and_groups.inherited_id()
        );
    }

    #[test]
    fn copies_of_a_policy_resolved_sharing_halves_share_each_half_they_have_in_common() {
        let later = policy();
        let mut earlier = later.clone();
        earlier.partners.remove(&Guid(2));
        let own = Arc::make_mut(earlier.partners.get_mut(&Guid(1)).unwrap());
        own.settings.b2b_collaboration_inbound.as_mut().unwrap().users_and_groups =
            Some(users(AccessKind::Allowed, &["AllUsers"]));
        let halves = Halves::default();
        let (a, b) = (Resolver::sharing(&later, &halves), Resolver::sharing(&earlier, &halves));
        for s in Section::ALL {
            let (x, y) = (a.effective(Some(Guid(3))), b.effective(Some(Guid(3))));
            let (x, y) = (&x.section(s).users_and_groups, &y.section(s).users_and_groups);
            assert!(x.inherited_id().is_some() && x.inherited_id() == y.inherited_id());
            assert!(std::ptr::eq(x.lookups(), y.lookups()));
        }
        // The half that changed is its own in each.
        let (x, y) = (a.effective(Some(Guid(1))), b.effective(Some(Guid(1))));
        let (x, y) = (x.section(Section::CollaborationInbound), y.section(Section::CollaborationInbound));
        assert!(!x.users_and_groups.same_targets(&y.users_and_groups));
        assert!(std::ptr::eq(x.applications.lookups(), y.applications.lookups()));
    }

    #[test]
    fn resolving_with_one_resolver_or_one_at_a_time_or_keeping_no_partner_halves_gives_the_same_settings() {
        let policy = policy();
        let (resolver, once) = (Resolver::new(&policy), Resolver::each_once(&policy));
        let kept = |r: &Resolver| {
            let made = r.halves.made();
            made.users.len() + made.apps.len()
        };
        let inherited = kept(&once);
        for p in [None, Some(Guid(1)), Some(Guid(2)), Some(Guid(5000))] {
            assert_eq!(resolver.effective(p), effective(&policy, p));
            assert_eq!(once.effective(p), effective(&policy, p));
        }
        assert!(kept(&resolver) > inherited);
        assert_eq!(kept(&once), inherited, "a partner's own halves are let go");
    }

    #[test]
    fn same_targets_ignores_order_letter_case_and_repeats_but_not_the_access_type() {
        let half = |kind, ids: &[&str]| Half::<()>::new(users(kind, ids), Origin::Partner);
        let a = half(AccessKind::Allowed, &["AAAA0000-0000-4000-8000-000000000001", "AllUsers"]);
        let b = half(AccessKind::Allowed, &["allusers", "aaaa0000-0000-4000-8000-000000000001", "AllUsers"]);
        assert!(a.same_targets(&b) && b.same_targets(&a) && a.same_targets(&a.clone()));
        assert!(!a
            .same_targets(&half(AccessKind::Blocked, &["AAAA0000-0000-4000-8000-000000000001", "AllUsers"])));
        assert!(!a.same_targets(&half(AccessKind::Allowed, &["AllUsers"])));
    }
}
