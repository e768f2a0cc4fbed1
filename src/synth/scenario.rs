//! A seeded, realistic tenant for generated sign-ins: our tenant, named
//! partner tenants, their users, the apps they use, and the mix of
//! directions, access types, failures and Conditional Access evidence seen
//! in real tenants. The same seed always gives the same sign-ins.

use chrono::{DateTime, Duration, TimeZone, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::model::{AccessType, EventType, Guid, UserType};

pub const OUR_TENANT: &str = "3b8e5f2a-7c41-4d9e-a6b0-1f2c3d4e5f60";
pub const OUR_TENANT_NAME: &str = "Contoso";
/// Northwind's project group (in Northwind's tenant): half its users.
pub const NORTHWIND_PROJECT_GROUP: &str = "6a1f3c2e-8d4b-4e7a-9c05-2b7d9e1f4a36";
const DOMAIN: &str = "contoso.com";

/// When our admin narrowed Tailspin's inbound apps (blocking the Azure
/// portal): the scenario's audit trail logs it, and its guests' portal
/// sign-ins fail from shortly after (settings take a while to apply).
pub fn tailspin_narrowed_at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 10, 14, 0, 0).unwrap()
}

/// Apps that cross-tenant users reach: (client app id, client name,
/// resource id, resource name).
pub const APPS: &[(&str, &str, &str, &str)] = &[
    (
        "1fec8e78-bce4-4aaf-ab1b-5451cc387264",
        "Microsoft Teams",
        "cc15fd57-2c6c-4117-a88c-83b1d56b4bbe",
        "Microsoft Teams Services",
    ),
    (
        "00000003-0000-0ff1-ce00-000000000000",
        "Office 365 SharePoint Online",
        "00000003-0000-0ff1-ce00-000000000000",
        "Office 365 SharePoint Online",
    ),
    (
        "00000002-0000-0ff1-ce00-000000000000",
        "Office 365 Exchange Online",
        "00000002-0000-0ff1-ce00-000000000000",
        "Office 365 Exchange Online",
    ),
    (
        "c44b4083-3bb0-49c1-b47d-974e53cbdf3c",
        "Azure Portal",
        "797f4846-ba00-4fd7-ba43-dac1f8f63013",
        "Windows Azure Service Management API",
    ),
    (
        "5d3e1a7b-92c4-4f10-b8e6-2a9c7d0f4e11",
        "Contoso Partner Portal",
        "5d3e1a7b-92c4-4f10-b8e6-2a9c7d0f4e11",
        "Contoso Partner Portal",
    ),
    (
        "d3590ed6-52b3-4102-aeff-aad2292ab01c",
        "Microsoft Office",
        "00000003-0000-0000-c000-000000000000",
        "Microsoft Graph",
    ),
];

const PARTNER_NAMES: &[&str] = &[
    "Fabrikam",
    "Northwind Traders",
    "Tailspin Toys",
    "Woodgrove Bank",
    "Adatum",
    "Litware",
    "Wingtip Toys",
    "Proseware",
    "Trey Research",
    "Fourth Coffee",
    "Alpine Ski House",
    "Coho Winery",
];
const FIRST: &[&str] = &[
    "alex", "sam", "kim", "lee", "maria", "noah", "olga", "priya", "ravi", "sofia", "tom", "yuki", "ana",
    "ben", "chen", "dana",
];
const LAST: &[&str] = &[
    "adams", "baker", "chan", "diaz", "evans", "fischer", "garcia", "hughes", "ito", "jones", "khan",
    "lopez", "meyer", "novak",
];

#[derive(Clone, Debug)]
pub struct Partner {
    pub id: Guid,
    pub name: String,
    pub domain: String,
    /// Trusts our MFA and we trust theirs: their users arrive with MFA claims.
    pub mfa_trusted: bool,
    /// Their users work in our tenant through B2B direct connect too.
    pub direct_connect: bool,
    /// Our settings block some of their users (500213 on our side).
    pub blocked_by_us: bool,
    /// Their settings block our users (500213 logged by them... seen by us as
    /// an outbound failure).
    pub blocks_us: bool,
    pub service_provider: bool,
    pub users: Vec<User>,
    /// A partner app our users sign in to.
    pub app: (Guid, String),
}

#[derive(Clone, Debug)]
pub struct User {
    /// Object id in the user's home tenant.
    pub home_id: Guid,
    /// Object id of the guest account in our tenant (B2B collaboration).
    pub guest_id: Guid,
    pub upn: String,
    pub display: String,
}

/// Everything an encoder needs to write one sign-in in any format.
#[derive(Clone, Debug)]
pub struct Synthetic {
    pub id: Guid,
    pub correlation_id: Guid,
    pub time: DateTime<Utc>,
    pub event_type: EventType,
    pub user_id: Guid,
    pub upn: String,
    pub user_display: String,
    pub user_type: UserType,
    pub home_tenant: Guid,
    pub home_tenant_name: Option<String>,
    pub resource_tenant: Guid,
    pub access_type: AccessType,
    pub app_id: String,
    pub app_name: String,
    pub resource_id: String,
    pub resource_name: String,
    pub error_code: u32,
    pub failure_reason: String,
    pub mfa_by_claim: bool,
    /// (policy id, name, grant control, result)
    pub ca_policies: Vec<(Guid, &'static str, &'static str, &'static str)>,
    pub ip: String,
    pub city: &'static str,
    pub country: &'static str,
    pub device_id: Option<Guid>,
    pub compliant: bool,
    pub managed: bool,
    pub os: &'static str,
    pub browser: &'static str,
}

impl Synthetic {
    pub fn mfa_required(&self) -> bool {
        self.mfa_by_claim || self.ca_policies.iter().any(|p| p.2 == "Mfa" && p.3 != "notApplied")
    }
}

pub struct Scenario {
    rng: ChaCha8Rng,
    pub our_tenant: Guid,
    pub partners: Vec<Partner>,
    pub our_users: Vec<User>,
    end: DateTime<Utc>,
    days: i64,
}

fn guid(rng: &mut ChaCha8Rng) -> Guid {
    // Version 4 layout, so the ids look like the real thing.
    let v: u128 = rng.gen();
    Guid((v & !(0xF000u128 << 64) & !(0xC000u128 << 48)) | (0x4000u128 << 64) | (0x8000u128 << 48))
}

fn people(rng: &mut ChaCha8Rng, n: usize, domain: &str) -> Vec<User> {
    (0..n)
        .map(|i| {
            let f = FIRST[rng.gen_range(0..FIRST.len())];
            let l = LAST[rng.gen_range(0..LAST.len())];
            User {
                home_id: guid(rng),
                guest_id: guid(rng),
                upn: format!("{f}.{l}{i}@{domain}"),
                display: format!("{} {}", capital(f), capital(l)),
            }
        })
        .collect()
}

fn capital(s: &str) -> String {
    let mut c = s.chars();
    c.next().map_or(String::new(), |f| f.to_ascii_uppercase().to_string() + c.as_str())
}

impl Scenario {
    /// The tenants and people depend only on `partners`, the traffic on
    /// `seed`: sample files made with different seeds share one universe.
    pub fn new(seed: u64, partners: usize) -> Scenario {
        let mut rng = ChaCha8Rng::seed_from_u64(0x007e_4aa7);
        let our_users = people(&mut rng, 40, DOMAIN);
        let partners = (0..partners.max(1))
            .map(|i| {
                let name = match PARTNER_NAMES.get(i) {
                    Some(n) => n.to_string(),
                    None => {
                        format!("{} {}", PARTNER_NAMES[i % PARTNER_NAMES.len()], i / PARTNER_NAMES.len() + 1)
                    }
                };
                let domain = format!("{}.example", name.to_ascii_lowercase().replace(' ', ""));
                let n_users = if i < 4 { 8 } else { rng.gen_range(2..6) };
                Partner {
                    id: guid(&mut rng),
                    users: people(&mut rng, n_users, &domain),
                    app: (guid(&mut rng), format!("{name} Extranet")),
                    name,
                    domain,
                    mfa_trusted: i % 3 == 0,
                    direct_connect: i % 2 == 0,
                    blocked_by_us: i == 2,
                    blocks_us: i == 3,
                    service_provider: i == 5,
                }
            })
            .collect();
        Scenario {
            rng: ChaCha8Rng::seed_from_u64(seed),
            our_tenant: Guid::parse(OUR_TENANT).unwrap(),
            partners,
            our_users,
            end: Utc.with_ymd_and_hms(2026, 11, 20, 0, 0, 0).unwrap(),
            days: 14,
        }
    }

    /// The next sign-in: about half within our tenant, a quarter inbound and
    /// a quarter outbound.
    pub fn sign_in(&mut self) -> Synthetic {
        let r = &mut self.rng;
        let secs = r.gen_range(0..self.days * 86400);
        let time = self.end - Duration::seconds(secs) + Duration::milliseconds(r.gen_range(0..1000));
        let event_type = if r.gen_bool(0.6) { EventType::Interactive } else { EventType::NonInteractive };
        let roll: f64 = r.gen();
        let pi = pick_skewed(r, self.partners.len());
        let partner = self.partners[pi].clone();
        let app = APPS[r.gen_range(0..APPS.len())];
        let ours = self.our_users[r.gen_range(0..self.our_users.len())].clone();
        let mut s = Synthetic {
            id: guid(r),
            correlation_id: guid(r),
            time,
            event_type,
            user_id: ours.home_id,
            upn: ours.upn.clone(),
            user_display: ours.display.clone(),
            user_type: UserType::Member,
            home_tenant: self.our_tenant,
            home_tenant_name: None,
            resource_tenant: self.our_tenant,
            access_type: AccessType::None,
            app_id: app.0.into(),
            app_name: app.1.into(),
            resource_id: app.2.into(),
            resource_name: app.3.into(),
            error_code: 0,
            failure_reason: String::new(),
            mfa_by_claim: false,
            ca_policies: Vec::new(),
            ip: format!("203.0.113.{}", r.gen_range(1..255)),
            city: ["Seattle", "London", "Berlin", "Sydney", "Toronto"][r.gen_range(0..5)],
            country: ["US", "GB", "DE", "AU", "CA"][r.gen_range(0..5)],
            device_id: None,
            compliant: false,
            managed: false,
            os: ["Windows 10", "MacOs", "Ios", "Android"][r.gen_range(0..4)],
            browser: ["Edge 120.0.0", "Chrome 121.0.0", "Safari 17.2", "Rich Client 5.2.1"]
                [r.gen_range(0..4)],
        };
        if r.gen_bool(0.5) {
            s.device_id = Some(guid(r));
            s.compliant = r.gen_bool(0.7);
            s.managed = s.compliant || r.gen_bool(0.3);
        }
        if roll < 0.5 {
            // Intra-tenant: our users in our apps.
        } else if roll < 0.75 {
            // Inbound: a partner's user in our tenant.
            let u = &partner.users[r.gen_range(0..partner.users.len())];
            s.home_tenant = partner.id;
            s.home_tenant_name = Some(partner.name.clone());
            s.upn = u.upn.clone();
            s.user_display = u.display.clone();
            s.user_type = UserType::Guest;
            s.user_id = u.guest_id;
            s.access_type = AccessType::B2bCollaboration;
            if partner.direct_connect && r.gen_bool(0.3) {
                // Teams shared channels: no guest account, the home object id.
                s.access_type = AccessType::B2bDirectConnect;
                s.user_id = u.home_id;
                s.user_type = UserType::Member;
                let teams = if r.gen_bool(0.5) { APPS[0] } else { APPS[1] };
                (s.app_id, s.app_name, s.resource_id, s.resource_name) =
                    (teams.0.into(), teams.1.into(), teams.2.into(), teams.3.into());
            }
            if partner.service_provider && r.gen_bool(0.5) {
                s.access_type = AccessType::ServiceProvider;
                (s.app_id, s.app_name, s.resource_id, s.resource_name) =
                    (APPS[3].0.into(), APPS[3].1.into(), APPS[3].2.into(), APPS[3].3.into());
            }
            s.mfa_by_claim = partner.mfa_trusted && r.gen_bool(0.8);
            // Direct connect users cannot do MFA in our tenant: the guest MFA
            // policy only reaches them when their MFA claim is trusted.
            if s.access_type != AccessType::B2bDirectConnect || partner.mfa_trusted {
                s.ca_policies.push((Guid(0x5a11), "Require MFA for guests", "Mfa", "success"));
            } else {
                s.mfa_by_claim = false;
            }
            // Our inbound settings keep this partner's guests out of the Azure portal.
            if partner.blocked_by_us && s.access_type == AccessType::B2bCollaboration {
                if r.gen_bool(0.3) {
                    (s.app_id, s.app_name, s.resource_id, s.resource_name) =
                        (APPS[3].0.into(), APPS[3].1.into(), APPS[3].2.into(), APPS[3].3.into());
                }
                if s.app_id == APPS[3].0 && s.time >= tailspin_narrowed_at() + Duration::minutes(40) {
                    s.error_code = 500213;
                }
            }
        } else {
            // Outbound: our user in a partner's tenant.
            s.resource_tenant = partner.id;
            s.access_type = if partner.direct_connect && r.gen_bool(0.2) {
                // Teams shared channels: Teams and SharePoint only.
                let teams = if r.gen_bool(0.5) { APPS[0] } else { APPS[1] };
                (s.app_id, s.app_name, s.resource_id, s.resource_name) =
                    (teams.0.into(), teams.1.into(), teams.2.into(), teams.3.into());
                AccessType::B2bDirectConnect
            } else {
                AccessType::B2bCollaboration
            };
            if r.gen_bool(0.5) && s.access_type == AccessType::B2bCollaboration {
                s.app_id = partner.app.0.to_string();
                s.app_name = partner.app.1.clone();
                s.resource_id = s.app_id.clone();
                s.resource_name = s.app_name.clone();
            }
            if partner.blocks_us && r.gen_bool(0.6) {
                s.error_code = 500213;
            }
            // Our outbound settings keep our users out of this partner's Azure portal.
            if pi == 4 && s.access_type == AccessType::B2bCollaboration {
                if r.gen_bool(0.5) {
                    (s.app_id, s.app_name, s.resource_id, s.resource_name) =
                        (APPS[3].0.into(), APPS[3].1.into(), APPS[3].2.into(), APPS[3].3.into());
                }
                if s.app_id == APPS[3].0 {
                    s.error_code = 500212;
                }
            }
        }
        if s.error_code == 0 && r.gen_bool(0.07) {
            s.error_code = [50126, 50074, 53003, 50140][r.gen_range(0..4)];
        }
        s.failure_reason = failure_reason(s.error_code).into();
        // Policies evaluated but not applied: the bulk of a real record.
        for (name, grant) in [
            ("Block legacy authentication", "Block"),
            ("Require compliant device for admins", "RequireCompliantDevice"),
            ("Require hybrid joined device on servers", "RequireDomainJoinedDevice"),
            ("Require approved client app on mobile", "RequireApprovedApp"),
            ("Sign-in frequency for unmanaged devices", "Mfa"),
            ("Block access from untrusted countries", "Block"),
        ] {
            s.ca_policies.push((guid(r), name, grant, "notApplied"));
        }
        if s.access_type == AccessType::None && r.gen_bool(0.3) {
            s.ca_policies.push((
                Guid(0x5a12),
                "Require compliant device for finance",
                "RequireCompliantDevice",
                "success",
            ));
        }
        s
    }
}

/// Partners in real tenants follow a long tail: a few carry most traffic.
fn pick_skewed(r: &mut ChaCha8Rng, n: usize) -> usize {
    let x: f64 = r.gen();
    ((x * x * x) * n as f64) as usize % n
}

pub fn failure_reason(code: u32) -> &'static str {
    match code {
        0 => "",
        50126 => "Error validating credentials due to invalid username or password.",
        50074 => "Strong Authentication is required.",
        53003 => "Access has been blocked by Conditional Access policies. The access policy does not allow token issuance.",
        50140 => "This error occurred due to 'Keep me signed in' interrupt when the user was signing in.",
        500212 => "NotAllowedByOutboundPolicyTenant - The user's administrator has set an outbound access policy that doesn't allow access to the resource tenant.",
        500213 => "NotAllowedByInboundPolicyTenant - The resource tenant's cross-tenant access policy doesn't allow this user to access this tenant.",
        _ => "Other.",
    }
}

impl Scenario {
    /// `local_user_id,user_principal_name,home_user_id` for every partner
    /// user: what `replay --identities` reads.
    pub fn identities_csv(&self) -> String {
        let mut out = String::from("local_user_id,user_principal_name,home_user_id\n");
        for p in &self.partners {
            for u in &p.users {
                out.push_str(&format!("{},{},{}\n", u.guest_id, u.upn, u.home_id));
            }
        }
        out
    }

    /// `group_id,member_id`: Northwind's project group (every other user).
    pub fn groups_csv(&self) -> String {
        let mut out = String::from("group_id,member_id\n");
        if let Some(nw) = self.partners.get(1) {
            for u in nw.users.iter().step_by(2) {
                out.push_str(&format!("{NORTHWIND_PROJECT_GROUP},{}\n", u.home_id));
            }
        }
        out
    }
}
