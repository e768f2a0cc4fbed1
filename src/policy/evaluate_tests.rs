//! The evaluator's decision table, exhaustively.

use std::collections::BTreeSet;

use proptest::prelude::*;

use super::*;
use crate::model::{Clause, Controls};
use crate::policy::apps::AppCatalog;
use crate::policy::conditional_access::{CaPolicies, Operator};
use crate::policy::model::{
    service_default, AccessKind, B2bSetting, DefaultConfig, InboundTrust, PartnerConfig, Settings, Target,
    TargetConfig, TargetType,
};

const PARTNER: &str = "9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d";
const USER: &str = "c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f";
const OTHER_USER: &str = "d2e3f4a5-b6c7-4d8e-9f0a-1b2c3d4e5f60";
const GROUP: &str = "aaaa0001-0000-4000-8000-000000000001";
const LOB_APP: &str = "4e5f6a7b-8c9d-4e0f-a1b2-c3d4e5f6a7b8";
const SHAREPOINT: &str = "00000003-0000-0ff1-ce00-000000000000";
/// The tenant that owns LOB_APP: neither Microsoft tenant.
const OWNER: Guid = Guid(0x0b0b_0000_0000_4000_8000_0000_0000_0001);

fn partner() -> Guid {
    Guid::parse(PARTNER).unwrap()
}

fn cfg(kind: AccessKind, targets: &[(&str, TargetType)]) -> TargetConfig {
    TargetConfig {
        access_type: kind,
        targets: targets.iter().map(|(t, ty)| Target { target: (*t).into(), target_type: *ty }).collect(),
    }
}

fn setting(users: TargetConfig, apps: TargetConfig) -> B2bSetting {
    B2bSetting { users_and_groups: Some(users), applications: Some(apps) }
}

/// A policy whose partner carries `section` = `s`, everything else default.
fn policy_with(section: Section, s: B2bSetting) -> Policy {
    let mut settings = Settings::default();
    *settings.section_mut(section) = Some(s);
    let mut p = Policy { default: Some(std::sync::Arc::new(service_default())), ..Policy::default() };
    p.partners.insert(
        partner(),
        PartnerConfig {
            tenant_id: partner(),
            is_service_provider: None,
            is_in_multi_tenant_organization: None,
            settings,
            cloud: None,
            extra: Default::default(),
        }
        .into(),
    );
    p
}

fn request<'a>(
    direction: Direction,
    access: AccessType,
    user: Option<&'a str>,
    groups: Membership<'a>,
    app: &'a str,
) -> Request<'a> {
    Request {
        direction,
        access_type: access,
        partner: partner(),
        user_id: user,
        groups,
        app_id: Some(app),
        app_owner: (app == LOB_APP).then_some(OWNER),
        resource_id: Some(app),
        resource_owner: (app == LOB_APP).then_some(OWNER),
        trust: TrustNeeds::default(),
        apps: AppCatalog::built_in(),
        cloud: CloudHint::Ours,
    }
}

#[derive(Clone, Copy, Debug)]
enum UserCase {
    AllUsers,
    ListedUser,
    UnlistedUser,
    GroupMember,
    GroupNonMember,
    GroupUnknown,
}

impl UserCase {
    const ALL: [UserCase; 6] = [
        UserCase::AllUsers,
        UserCase::ListedUser,
        UserCase::UnlistedUser,
        UserCase::GroupMember,
        UserCase::GroupNonMember,
        UserCase::GroupUnknown,
    ];
    fn targets(self) -> Vec<(&'static str, TargetType)> {
        match self {
            UserCase::AllUsers => vec![("AllUsers", TargetType::User)],
            UserCase::ListedUser | UserCase::UnlistedUser => vec![(USER, TargetType::User)],
            _ => vec![(GROUP, TargetType::Group)],
        }
    }
    fn expected(self) -> Tri {
        match self {
            UserCase::AllUsers | UserCase::ListedUser | UserCase::GroupMember => Tri::Yes,
            UserCase::UnlistedUser | UserCase::GroupNonMember => Tri::No,
            UserCase::GroupUnknown => Tri::Unknown,
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum AppCase {
    AllApplications,
    ListedApp,
    UnlistedApp,
    Office365Member,
    Office365NonMember,
}

impl AppCase {
    const ALL: [AppCase; 5] = [
        AppCase::AllApplications,
        AppCase::ListedApp,
        AppCase::UnlistedApp,
        AppCase::Office365Member,
        AppCase::Office365NonMember,
    ];
    fn targets(self) -> Vec<(&'static str, TargetType)> {
        match self {
            AppCase::AllApplications => vec![("AllApplications", TargetType::Application)],
            AppCase::ListedApp | AppCase::UnlistedApp => vec![(LOB_APP, TargetType::Application)],
            _ => vec![("Office365", TargetType::Application)],
        }
    }
    fn app(self) -> &'static str {
        match self {
            AppCase::ListedApp | AppCase::AllApplications | AppCase::Office365NonMember => LOB_APP,
            AppCase::UnlistedApp => SHAREPOINT,
            AppCase::Office365Member => SHAREPOINT,
        }
    }
    fn expected(self) -> Tri {
        match self {
            AppCase::AllApplications | AppCase::ListedApp | AppCase::Office365Member => Tri::Yes,
            _ => Tri::No,
        }
    }
}

/// The four-row table from Microsoft's documented examples.
fn oracle(ua: AccessKind, aa: AccessKind, u: Tri, a: Tri) -> Verdict {
    let v = match (ua, aa) {
        (AccessKind::Allowed, AccessKind::Allowed) => u.and(a),
        (AccessKind::Allowed, AccessKind::Blocked) => u.and(!a),
        (AccessKind::Blocked, AccessKind::Allowed) => (!u).and(a),
        _ => !u.and(a),
    };
    match v {
        Tri::Yes => Verdict::Allowed,
        Tri::No => Verdict::Blocked,
        Tri::Unknown => Verdict::Unknown,
    }
}

#[test]
fn decision_table_every_section_target_kind_and_access_type() {
    let members: BTreeSet<String> = [GROUP.to_string()].into();
    let nobody: BTreeSet<String> = BTreeSet::new();
    let mut checked = 0;
    for direction in [Direction::Inbound, Direction::Outbound] {
        for access in [AccessType::B2bCollaboration, AccessType::B2bDirectConnect] {
            let section = section_for(direction, access).unwrap();
            for ua in [AccessKind::Allowed, AccessKind::Blocked] {
                for aa in [AccessKind::Allowed, AccessKind::Blocked] {
                    for uc in UserCase::ALL {
                        for ac in AppCase::ALL {
                            let p =
                                policy_with(section, setting(cfg(ua, &uc.targets()), cfg(aa, &ac.targets())));
                            let user = match uc {
                                UserCase::UnlistedUser => OTHER_USER,
                                _ => USER,
                            };
                            let groups = match uc {
                                UserCase::GroupMember => Membership::Known(&members),
                                UserCase::GroupNonMember => Membership::Known(&nobody),
                                _ => Membership::Unknown,
                            };
                            let req = request(direction, access, Some(user), groups, ac.app());
                            let d = evaluate(&p, &req);
                            let want = oracle(ua, aa, uc.expected(), ac.expected());
                            assert_eq!(
                                d.verdict, want,
                                "{section:?} users {ua:?} {uc:?}, apps {aa:?} {ac:?}: {}",
                                d.reason
                            );
                            assert!(d.reason.contains(section.name()), "{}", d.reason);
                            assert!(d.reason.contains(PARTNER), "{}", d.reason);
                            checked += 1;
                        }
                    }
                }
            }
        }
    }
    assert_eq!(checked, 4 * 4 * 6 * 5);
}

#[test]
fn unknown_membership_is_decided_where_it_does_not_matter() {
    // Users allowed = group, apps allowed = one LOB app; a different app is
    // blocked whatever the membership.
    let p = policy_with(
        Section::CollaborationInbound,
        setting(
            cfg(AccessKind::Allowed, &[(GROUP, TargetType::Group)]),
            cfg(AccessKind::Allowed, &[(LOB_APP, TargetType::Application)]),
        ),
    );
    let d = evaluate(
        &p,
        &request(
            Direction::Inbound,
            AccessType::B2bCollaboration,
            Some(USER),
            Membership::Unknown,
            SHAREPOINT,
        ),
    );
    assert_eq!(d.verdict, Verdict::Blocked, "{}", d.reason);
    let d = evaluate(
        &p,
        &request(Direction::Inbound, AccessType::B2bCollaboration, Some(USER), Membership::Unknown, LOB_APP),
    );
    assert_eq!(d.verdict, Verdict::Unknown);
    assert!(d.reason.contains("--groups") && d.reason.contains(GROUP), "{}", d.reason);
}

#[test]
fn unmapped_guest_is_unknown_only_for_user_targets() {
    let p = policy_with(
        Section::CollaborationInbound,
        setting(
            cfg(AccessKind::Allowed, &[(USER, TargetType::User)]),
            cfg(AccessKind::Allowed, &[("AllApplications", TargetType::Application)]),
        ),
    );
    let d = evaluate(
        &p,
        &request(Direction::Inbound, AccessType::B2bCollaboration, None, Membership::Unknown, LOB_APP),
    );
    assert_eq!(d.verdict, Verdict::Unknown);
    assert!(d.reason.contains("--identities"), "{}", d.reason);
    let all = policy_with(
        Section::CollaborationInbound,
        setting(
            cfg(AccessKind::Allowed, &[("AllUsers", TargetType::User)]),
            cfg(AccessKind::Allowed, &[("AllApplications", TargetType::Application)]),
        ),
    );
    assert_eq!(
        evaluate(
            &all,
            &request(Direction::Inbound, AccessType::B2bCollaboration, None, Membership::Unknown, LOB_APP)
        )
        .verdict,
        Verdict::Allowed
    );
}

#[test]
fn a_partner_without_a_section_follows_the_default() {
    let mut p = policy_with(
        Section::CollaborationOutbound,
        setting(
            cfg(AccessKind::Allowed, &[("AllUsers", TargetType::User)]),
            cfg(AccessKind::Allowed, &[("AllApplications", TargetType::Application)]),
        ),
    );
    let mut d = service_default();
    d.is_service_default = Some(false);
    d.settings.b2b_collaboration_inbound = Some(setting(
        cfg(AccessKind::Blocked, &[("AllUsers", TargetType::User)]),
        cfg(AccessKind::Blocked, &[("AllApplications", TargetType::Application)]),
    ));
    p.default = Some(std::sync::Arc::new(d));
    // Inbound is not set on the partner: the default's block applies.
    let r = evaluate(
        &p,
        &request(Direction::Inbound, AccessType::B2bCollaboration, Some(USER), Membership::Unknown, LOB_APP),
    );
    assert_eq!(r.verdict, Verdict::Blocked);
    assert!(r.reason.contains("(default)"), "{}", r.reason);
    // Outbound is set on the partner: its own allow applies.
    let r = evaluate(
        &p,
        &request(Direction::Outbound, AccessType::B2bCollaboration, Some(USER), Membership::Unknown, LOB_APP),
    );
    assert_eq!(r.verdict, Verdict::Allowed);
    assert!(r.reason.contains("(partner)"), "{}", r.reason);
    // A tenant with no configuration at all: the default, and direct connect
    // stays at the service default (blocked).
    let stranger = Guid::parse("11111111-2222-4333-8444-555555555555").unwrap();
    let mut req =
        request(Direction::Outbound, AccessType::B2bDirectConnect, Some(USER), Membership::Unknown, LOB_APP);
    req.partner = stranger;
    assert_eq!(evaluate(&p, &req).verdict, Verdict::Blocked);
    // No default supplied at all: the service default.
    let none = Policy::default();
    let mut req =
        request(Direction::Inbound, AccessType::B2bCollaboration, Some(USER), Membership::Unknown, LOB_APP);
    req.partner = stranger;
    let r = evaluate(&none, &req);
    assert_eq!(r.verdict, Verdict::Allowed);
    assert!(r.reason.contains("service default"), "{}", r.reason);
}

#[test]
fn access_types_the_policy_does_not_govern() {
    let p = Policy::default();
    for a in
        [AccessType::MicrosoftSupport, AccessType::ServiceProvider, AccessType::Passthrough, AccessType::None]
    {
        let d = evaluate(&p, &request(Direction::Inbound, a, Some(USER), Membership::Unknown, LOB_APP));
        assert_eq!(d.verdict, Verdict::NotGoverned, "{a:?}");
    }
    let d = evaluate(
        &p,
        &request(Direction::Inbound, AccessType::Unknown, Some(USER), Membership::Unknown, LOB_APP),
    );
    assert_eq!(d.verdict, Verdict::Unknown);
}

fn trusting(mfa: bool, compliant: bool) -> Policy {
    let mut p = policy_with(
        Section::DirectConnectInbound,
        setting(
            cfg(AccessKind::Allowed, &[("AllUsers", TargetType::User)]),
            cfg(AccessKind::Allowed, &[("AllApplications", TargetType::Application)]),
        ),
    );
    let e = std::sync::Arc::make_mut(p.partners.get_mut(&partner()).unwrap());
    e.settings.inbound_trust = Some(InboundTrust {
        is_mfa_accepted: Some(mfa),
        is_compliant_device_accepted: Some(compliant),
        is_hybrid_joined_device_accepted: Some(false),
    });
    p
}

#[test]
fn trust_direct_connect_needs_mfa_trust_collaboration_degrades() {
    let mut req =
        request(Direction::Inbound, AccessType::B2bDirectConnect, Some(USER), Membership::Unknown, LOB_APP);
    req.trust = TrustNeeds { mfa: Need::Yes, mfa_by_claim: true, ..TrustNeeds::default() };
    assert_eq!(evaluate(&trusting(true, false), &req).verdict, Verdict::Allowed);
    let d = evaluate(&trusting(false, false), &req);
    assert_eq!(d.verdict, Verdict::Blocked);
    assert!(d.reason.contains("isMfaAccepted false"), "{}", d.reason);

    req.access_type = AccessType::B2bCollaboration;
    let d = evaluate(&trusting(false, false), &req);
    assert_eq!((d.verdict, d.degraded), (Verdict::Allowed, true), "{}", d.reason);
    // MFA done in our tenant (no claim): trust does not matter.
    req.trust.mfa_by_claim = false;
    let d = evaluate(&trusting(false, false), &req);
    assert_eq!((d.verdict, d.degraded), (Verdict::Allowed, false));
}

#[test]
fn trust_device_requirements_block_both_kinds_or_are_unknown() {
    for access in [AccessType::B2bCollaboration, AccessType::B2bDirectConnect] {
        let mut req = request(Direction::Inbound, access, Some(USER), Membership::Unknown, LOB_APP);
        req.trust.compliant_device = Need::Yes;
        let mut p = trusting(true, false);
        if access == AccessType::B2bCollaboration {
            let e = std::sync::Arc::make_mut(p.partners.get_mut(&partner()).unwrap());
            e.settings.b2b_collaboration_inbound = e.settings.b2b_direct_connect_inbound.clone();
        }
        assert_eq!(evaluate(&p, &req).verdict, Verdict::Blocked, "{access:?}");
        assert_eq!(evaluate(&trusting(true, true), &req).verdict, Verdict::Allowed);
        req.trust.compliant_device = Need::Unknown;
        assert_eq!(evaluate(&p, &req).verdict, Verdict::Unknown, "{access:?}");
    }
    // Outbound sign-ins are not subject to our inbound trust.
    let mut req =
        request(Direction::Outbound, AccessType::B2bCollaboration, Some(USER), Membership::Unknown, LOB_APP);
    req.trust.compliant_device = Need::Yes;
    assert_eq!(evaluate(&trusting(false, false), &req).verdict, Verdict::Allowed);
}

fn inbound_collab_all(mfa: bool, compliant: bool) -> Policy {
    let mut p = trusting(mfa, compliant);
    let e = std::sync::Arc::make_mut(p.partners.get_mut(&partner()).unwrap());
    e.settings.b2b_collaboration_inbound = e.settings.b2b_direct_connect_inbound.clone();
    p
}

fn clause(controls: Controls, strength: Option<u128>) -> Clause {
    Clause {
        policy: Guid::parse("5a110000-0000-4000-8000-000000000009"),
        controls,
        strength: strength.map(Guid),
    }
}

#[test]
fn a_grant_of_one_of_several_controls_is_not_all_of_them() {
    let mfa_or_device = clause(Controls::MFA.union(Controls::COMPLIANT_DEVICE), None);
    let unknown_op = CaPolicies::default().resolve(&mfa_or_device);
    let mut or = unknown_op.clone();
    or.operator = Some(Operator::Or);
    let mut and = unknown_op.clone();
    and.operator = Some(Operator::And);
    let base =
        request(Direction::Inbound, AccessType::B2bCollaboration, Some(USER), Membership::Unknown, LOB_APP);
    // No trust at all: MFA can be done here, a compliant device cannot be proven.
    let p = inbound_collab_all(false, false);
    for (clauses, want) in [
        (vec![or.clone()], Verdict::Allowed),
        (vec![and.clone()], Verdict::Blocked),
        (vec![unknown_op.clone()], Verdict::Unknown),
    ] {
        let mut req = base.clone();
        req.trust.clauses = &clauses;
        let d = evaluate(&p, &req);
        assert_eq!(d.verdict, want, "{:?}: {}", clauses[0].operator, d.reason);
        if want == Verdict::Unknown {
            assert!(
                d.reason.contains("--ca-policies") && d.reason.contains("compliantDevice and mfa"),
                "{}",
                d.reason
            );
        }
    }
    // "One of" a compliant device and a control trust does not touch: the
    // other control may not be usable by a guest, so not known; "all of"
    // needs the device, which cannot be proven without trust.
    let device_or_app =
        CaPolicies::default().resolve(&clause(Controls::COMPLIANT_DEVICE.union(Controls::OTHER), None));
    for (op, want) in [
        (Some(Operator::Or), Verdict::Unknown),
        (Some(Operator::And), Verdict::Blocked),
        (None, Verdict::Unknown),
    ] {
        let mut c = device_or_app.clone();
        c.operator = op;
        let clauses = vec![c];
        let mut req = base.clone();
        req.trust.clauses = &clauses;
        assert_eq!(evaluate(&p, &req).verdict, want, "{op:?}");
    }
    // When every control fares the same, the operator does not matter.
    let trusted = inbound_collab_all(true, true);
    let clauses = vec![unknown_op];
    let mut req = base.clone();
    req.trust.clauses = &clauses;
    assert_eq!(evaluate(&trusted, &req).verdict, Verdict::Allowed);
}

#[test]
fn more_policies_kept_whole_than_xtenant_keeps_are_unknown_unless_one_kept_refuses() {
    // A forged export: past CLAUSES_KEPT the sign-ins' other policies were
    // dropped, and any of them may ask what trust cannot give.
    let ca = CaPolicies::default();
    let many = |controls: Controls| -> Vec<_> {
        (0..=CLAUSES_KEPT as u128)
            .map(|i| {
                let mut c = clause(controls, None);
                c.policy = Some(Guid(i));
                let mut r = ca.resolve(&c);
                r.operator = Some(Operator::And);
                r
            })
            .collect()
    };
    let base =
        request(Direction::Inbound, AccessType::B2bCollaboration, Some(USER), Membership::Unknown, LOB_APP);
    let mfa_and_terms = many(Controls::MFA.union(Controls::OTHER));
    let mut req = base.clone();
    req.trust.clauses = &mfa_and_terms;
    // Every policy kept is met, even with full trust: still not known.
    for p in [inbound_collab_all(false, false), inbound_collab_all(true, true)] {
        let d = evaluate(&p, &req);
        assert_eq!(d.verdict, Verdict::Unknown, "{}", d.reason);
        assert!(d.reason.contains("forged or garbled") && d.reason.len() < 400, "{}", d.reason);
    }
    // One kept needs a device the policy cannot see proven: blocked.
    let mfa_and_device = many(Controls::MFA.union(Controls::COMPLIANT_DEVICE));
    req.trust.clauses = &mfa_and_device;
    assert_eq!(evaluate(&inbound_collab_all(false, false), &req).verdict, Verdict::Blocked);
    // As many as kept: decided as ever.
    req.trust.clauses = &mfa_and_terms[..CLAUSES_KEPT];
    assert_eq!(evaluate(&inbound_collab_all(false, false), &req).verdict, Verdict::Allowed);
}

#[test]
fn authentication_strength_is_not_plain_mfa_for_external_users() {
    let ca = CaPolicies::default();
    let phishing_resistant = vec![ca.resolve(&clause(Controls::AUTH_STRENGTH, Some(4)))];
    let mfa_strength = vec![ca.resolve(&clause(Controls::AUTH_STRENGTH, Some(2)))];
    let unreadable = vec![ca.resolve(&clause(Controls::AUTH_STRENGTH, None))];
    let mut req =
        request(Direction::Inbound, AccessType::B2bCollaboration, Some(USER), Membership::Unknown, LOB_APP);
    req.trust.mfa = Need::Yes;
    req.trust.mfa_by_claim = true;
    let untrusted = inbound_collab_all(false, false);
    req.trust.clauses = &phishing_resistant;
    let d = evaluate(&untrusted, &req);
    assert_eq!(d.verdict, Verdict::Blocked, "{}", d.reason);
    assert!(d.reason.contains("Phishing-resistant MFA"), "{}", d.reason);
    assert_eq!(evaluate(&inbound_collab_all(true, false), &req).verdict, Verdict::Allowed);
    req.trust.clauses = &mfa_strength;
    let d = evaluate(&untrusted, &req);
    assert_eq!((d.verdict, d.degraded), (Verdict::Allowed, true), "{}", d.reason);
    req.trust.clauses = &unreadable;
    let d = evaluate(&untrusted, &req);
    assert_eq!(d.verdict, Verdict::Unknown, "{}", d.reason);
    assert!(d.reason.contains("--ca-policies"), "{}", d.reason);
}

#[test]
fn office365_membership_is_unknown_for_apps_it_cannot_place() {
    let p = policy_with(
        Section::CollaborationInbound,
        setting(
            cfg(AccessKind::Allowed, &[("AllUsers", TargetType::User)]),
            cfg(AccessKind::Allowed, &[("Office365", TargetType::Application)]),
        ),
    );
    let mut req =
        request(Direction::Inbound, AccessType::B2bCollaboration, Some(USER), Membership::Unknown, LOB_APP);
    assert_eq!(evaluate(&p, &req).verdict, Verdict::Blocked, "a third-party app");
    req.app_owner = None;
    req.resource_owner = None;
    let d = evaluate(&p, &req);
    assert_eq!(d.verdict, Verdict::Unknown, "owner not known: {}", d.reason);
    assert!(d.reason.contains("--app-table"), "{}", d.reason);
    req.app_owner = Some(crate::policy::apps::MICROSOFT_SERVICES_TENANT);
    req.resource_owner = req.app_owner;
    assert_eq!(evaluate(&p, &req).verdict, Verdict::Unknown, "a Microsoft app the table lacks");
    let portal = "00000006-0000-0ff1-ce00-000000000000";
    let req =
        request(Direction::Inbound, AccessType::B2bCollaboration, Some(USER), Membership::Unknown, portal);
    assert_eq!(evaluate(&p, &req).verdict, Verdict::Allowed, "the Office 365 portal");
}

#[test]
fn cross_cloud_partners_are_never_allowed_by_accident() {
    let mut p = policy_with(
        Section::CollaborationInbound,
        setting(
            cfg(AccessKind::Allowed, &[("AllUsers", TargetType::User)]),
            cfg(AccessKind::Allowed, &[("AllApplications", TargetType::Application)]),
        ),
    );
    std::sync::Arc::make_mut(p.partners.get_mut(&partner()).unwrap()).cloud =
        Some("microsoftonline.us".into());
    let req =
        request(Direction::Inbound, AccessType::B2bCollaboration, Some(USER), Membership::Unknown, LOB_APP);
    assert_eq!(evaluate(&p, &req).verdict, Verdict::Blocked);
    p.allowed_cloud_endpoints.push("microsoftonline.us".into());
    assert_eq!(evaluate(&p, &req).verdict, Verdict::Allowed);
    let mut dc = req.clone();
    dc.access_type = AccessType::B2bDirectConnect;
    assert_eq!(evaluate(&p, &dc).verdict, Verdict::Blocked);
    // Without an entry of its own, a partner of another cloud is blocked
    // even when its cloud is allowed; one whose cloud is not known is unknown.
    let mut bare = Policy { default: Some(std::sync::Arc::new(service_default())), ..Policy::default() };
    bare.allowed_cloud_endpoints.push("microsoftonline.us".into());
    let mut other = req.clone();
    other.cloud = CloudHint::Other("microsoftonline.us".into());
    let d = evaluate(&bare, &other);
    assert_eq!(d.verdict, Verdict::Blocked, "{}", d.reason);
    assert!(d.reason.contains("no partner entry"), "{}", d.reason);
    other.cloud = CloudHint::Unknown("its cloud is not known".into());
    assert_eq!(evaluate(&bare, &other).verdict, Verdict::Unknown);
    assert_eq!(evaluate(&p, &other).verdict, Verdict::Allowed, "configured partners are not affected");
}

#[test]
fn unknown_future_values_evaluate_to_unknown() {
    let p = policy_with(
        Section::CollaborationInbound,
        setting(
            cfg(AccessKind::UnknownFutureValue, &[("AllUsers", TargetType::User)]),
            cfg(AccessKind::Allowed, &[("AllApplications", TargetType::Application)]),
        ),
    );
    let req =
        request(Direction::Inbound, AccessType::B2bCollaboration, Some(USER), Membership::Unknown, LOB_APP);
    assert_eq!(evaluate(&p, &req).verdict, Verdict::Unknown);
    let _ = DefaultConfig::default();
}

fn arb_target() -> impl Strategy<Value = (String, TargetType)> {
    prop_oneof![
        Just(("AllUsers".to_string(), TargetType::User)),
        Just((USER.to_string(), TargetType::User)),
        Just((OTHER_USER.to_string(), TargetType::User)),
        Just((GROUP.to_string(), TargetType::Group)),
    ]
}

fn arb_app() -> impl Strategy<Value = (String, TargetType)> {
    prop_oneof![
        Just(("AllApplications".to_string(), TargetType::Application)),
        Just(("Office365".to_string(), TargetType::Application)),
        Just(("AllMicrosoftApps".to_string(), TargetType::Application)),
        Just((LOB_APP.to_string(), TargetType::Application)),
        Just((SHAREPOINT.to_string(), TargetType::Application)),
    ]
}

proptest! {
    /// Swapping allowed and blocked on both halves over the same lists flips
    /// every decided verdict, and keeps every undecided one undecided.
    #[test]
    fn swapping_allowed_and_blocked_flips_every_decided_verdict(
        users in proptest::collection::vec(arb_target(), 1..4),
        apps in proptest::collection::vec(arb_app(), 1..4),
        inbound in any::<bool>(),
        direct in any::<bool>(),
        member in proptest::option::of(any::<bool>()),
        user_known in any::<bool>(),
        app in prop_oneof![Just(LOB_APP), Just(SHAREPOINT), Just("c44b4083-3bb0-49c1-b47d-974e53cbdf3c")],
    ) {
        let direction = if inbound { Direction::Inbound } else { Direction::Outbound };
        let access = if direct { AccessType::B2bDirectConnect } else { AccessType::B2bCollaboration };
        let section = section_for(direction, access).unwrap();
        let members: BTreeSet<String> = [GROUP.to_string()].into();
        let nobody = BTreeSet::new();
        let groups = match member { Some(true) => Membership::Known(&members), Some(false) => Membership::Known(&nobody), None => Membership::Unknown };
        let to = |v: &[(String, TargetType)]| v.iter().map(|(t, ty)| Target { target: t.as_str().into(), target_type: *ty }).collect::<Vec<_>>();
        let make = |k: AccessKind| policy_with(section, B2bSetting {
            users_and_groups: Some(TargetConfig { access_type: k, targets: to(&users).into() }),
            applications: Some(TargetConfig { access_type: k, targets: to(&apps).into() }),
        });
        let req = request(direction, access, user_known.then_some(USER), groups, app);
        let a = evaluate(&make(AccessKind::Allowed), &req).verdict;
        let b = evaluate(&make(AccessKind::Blocked), &req).verdict;
        let flipped = match a { Verdict::Allowed => Verdict::Blocked, Verdict::Blocked => Verdict::Allowed, v => v };
        prop_assert_eq!(b, flipped);
    }
}

#[test]
fn personal_microsoft_accounts_are_not_governed() {
    assert_eq!(MICROSOFT_ACCOUNT_TENANT.to_string(), "9188040d-6c67-4c5b-b112-36a304b66dad");
    let p = Policy::default();
    let mut req =
        request(Direction::Inbound, AccessType::B2bCollaboration, Some(USER), Membership::Unknown, LOB_APP);
    req.partner = MICROSOFT_ACCOUNT_TENANT;
    let d = evaluate(&p, &req);
    assert_eq!(d.verdict, Verdict::NotGoverned);
    assert!(d.reason.contains("external collaboration settings"), "{}", d.reason);
}

proptest! {
    /// A reason names the first two targets in sorted order without sorting
    /// them all (a section may name a hundred thousand users).
    #[test]
    fn a_half_is_named_by_its_first_two_targets_in_sorted_order(
        names in proptest::collection::vec("[a-c]{0,3}", 0..12),
    ) {
        let config = TargetConfig {
            access_type: AccessKind::Allowed,
            targets: names.iter().map(|t| Target { target: t.as_str().into(), target_type: TargetType::User }).collect(),
        };
        let mut sorted = names.clone();
        sorted.sort();
        let expected = if sorted.len() > 3 {
            format!("{}, {} and {} more", sorted[0], sorted[1], sorted.len() - 2)
        } else {
            sorted.join(", ")
        };
        prop_assert_eq!(targets_text(&config), expected);
    }
}

#[test]
fn a_reasons_room_holds_the_prefix_of_every_section() {
    for section in Section::ALL {
        let prefix = Prefix(Who(Guid(u128::MAX)), section).to_string();
        assert!(prefix.len() <= PREFIX_LEN, "{prefix}");
    }
    assert_eq!(Prefix(Who(Guid(u128::MAX)), Section::DirectConnectOutbound).to_string().len(), PREFIX_LEN);
}

#[test]
fn a_reason_prefix_is_the_partner_then_the_section_and_fits_its_room() {
    for section in Section::ALL {
        for partner in [Guid(0), Guid(u128::MAX), MICROSOFT_ACCOUNT_TENANT] {
            let prefix = Prefix(Who(partner), section);
            let mut pushed = String::new();
            prefix.push_to(&mut pushed);
            assert_eq!(pushed, format!("{} {}", Who(partner), section.name()));
            assert_eq!(prefix.to_string(), pushed);
            assert!(pushed.len() <= PREFIX_LEN);
        }
    }
}

/// A trust flag's text, written without `format!`, is what `format!`
/// wrote: for either value and every origin.
#[test]
fn a_trust_flag_reads_as_its_name_value_and_origin() {
    use crate::policy::resolve::{Origin, Sourced};
    for value in [false, true] {
        for origin in [Origin::Partner, Origin::Default, Origin::ServiceDefault] {
            let s = Sourced { value, origin };
            let expected = format!("inboundTrust.isCompliantDeviceAccepted {value} ({})", origin.as_str());
            assert_eq!(flag(&s, "isCompliantDeviceAccepted"), expected);
        }
    }
}
