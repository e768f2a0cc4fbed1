//! `policy check`: structural errors, Microsoft's documented rules, and
//! warnings about settings that are legal but likely to hurt.
//!
//! An error is only what Microsoft states cannot be configured, or what is
//! not a policy at all (a target that is no id or keyword, a type that does
//! not belong in its half, a partner twice). Every configuration Graph
//! documents as valid passes: "block users in group g1 from all
//! applications" (the admin center refuses it, Graph's own overview lists
//! it) is a warning. Each rule and its source: docs/policy-semantics.md.

use serde::Serialize;

use super::apps::RECOMMENDED_ALLOWED;
use super::evaluate::targets_text;
use super::model::{AccessKind, Policy, Section, TargetConfig, TargetType};
use super::resolve::Resolver;
use crate::model::Guid;

#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Problem {
    pub severity: Severity,
    /// Where: `default.b2bCollaborationInbound.usersAndGroups.targets[0]`,
    /// `partners[<tenant id>]...`.
    pub at: String,
    pub message: String,
}

const USER_KEYWORDS: &[&str] = &["AllUsers"];
const APP_KEYWORDS: &[&str] = &["AllApplications", "Office365", "AllMicrosoftApps"];

fn is_keyword(list: &[&str], t: &str) -> bool {
    list.iter().any(|k| k.eq_ignore_ascii_case(t))
}

fn all(cfg: &TargetConfig, keyword: &str) -> bool {
    cfg.targets.iter().any(|t| t.target.eq_ignore_ascii_case(keyword))
}

pub fn check(policy: &Policy, load_errors: &[String]) -> Vec<Problem> {
    let mut out: Vec<Problem> = load_errors
        .iter()
        .map(|m| Problem { severity: Severity::Error, at: policy.source.clone(), message: m.clone() })
        .collect();
    let mut problems: Vec<Problem> = Vec::new();
    let mut err =
        |at: String, message: String| problems.push(Problem { severity: Severity::Error, at, message });
    // The default's sections, then each partner's, each named as it comes
    // (named all first, a policy of 200,000 partners held 20 MB of names).
    let sections = (policy.default.iter().map(|d| (None, &d.settings)))
        .chain(policy.partners.iter().map(|(id, p)| (Some(*id), &p.settings)))
        .flat_map(|(partner, settings)| {
            Section::ALL.into_iter().filter_map(move |s| settings.section(s).map(|b| (partner, s, b)))
        });
    let mut notes: Vec<(String, String)> = Vec::new();
    for (partner, section, b) in sections {
        let at = &scope_name(partner, Some(section));
        let is_default = partner.is_none();
        let (Some(users), Some(apps)) = (&b.users_and_groups, &b.applications) else {
            if b.users_and_groups.is_none() && b.applications.is_none() {
                notes.push((
                    at.clone(),
                    "the section sets neither usersAndGroups nor applications: both are taken from the default (assumption, see docs/policy-semantics.md)".into(),
                ));
            }
            continue;
        };
        for (half, cfg, is_users) in [("usersAndGroups", users, true), ("applications", apps, false)] {
            if cfg.targets.is_empty() {
                notes.push((
                    format!("{at}.{half}.targets"),
                    format!(
                        "no targets: an {} list that names nothing {}",
                        cfg.access_type.as_str(),
                        if cfg.access_type == AccessKind::Allowed {
                            "allows nothing"
                        } else {
                            "blocks nothing"
                        }
                    ),
                ));
            }
            for (i, t) in cfg.targets.iter().enumerate() {
                // Made only for a problem: a section may name a million users.
                let here = || format!("{at}.{half}.targets[{i}]");
                let fits = match t.target_type {
                    TargetType::User | TargetType::Group => is_users,
                    TargetType::Application => !is_users,
                    TargetType::UnknownFutureValue => true,
                };
                if !fits {
                    let name =
                        serde_json::to_value(t.target_type).ok().and_then(|v| v.as_str().map(str::to_string));
                    err(
                        here(),
                        format!("targetType `{}` does not belong in {half}", name.unwrap_or_default()),
                    );
                    continue;
                }
                if t.target.id().is_some() {
                    // An id in canonical spelling: no keyword, and well formed.
                    continue;
                }
                let text = t.target.as_str();
                let keyword =
                    if is_users { is_keyword(USER_KEYWORDS, &text) } else { is_keyword(APP_KEYWORDS, &text) };
                if keyword {
                    if is_users && t.target_type != TargetType::User {
                        err(here(), format!("{} must have targetType user", t.target));
                    }
                } else if Guid::parse(&text).is_none() {
                    let what = if is_users {
                        "an object id (GUID) or AllUsers"
                    } else {
                        "an app id (GUID), AllApplications, Office365 or AllMicrosoftApps"
                    };
                    err(here(), format!("`{}` is not {what}", t.target));
                }
            }
        }
        // Microsoft's rules for a section (docs/policy-semantics.md cites each).
        let blocks_all_users = users.access_type == AccessKind::Blocked && all(users, "AllUsers");
        let blocks_all_apps = apps.access_type == AccessKind::Blocked && all(apps, "AllApplications");
        if blocks_all_users && !blocks_all_apps {
            err(
                at.clone(),
                "blocking all users and groups requires blocking all applications too (Microsoft: \"If you block inbound access for all external users and groups, access to all your applications must also be blocked\")".into(),
            );
        }
        if blocks_all_apps && !blocks_all_users {
            notes.push((
                at.clone(),
                "blocks all applications for some users only: Graph documents this (\"Users in group 'g1' can't access any application. Other users not in group 'g1' have access to all applications\") and xtenant evaluates it so, but the admin center asks for all users to be blocked with all applications and cannot show it".into(),
            ));
        }
        if users.access_type == AccessKind::Allowed
            && (blocks_all_apps || (apps.access_type == AccessKind::Allowed && apps.targets.is_empty()))
        {
            err(
                at.clone(),
                "allowing users and groups requires at least one allowed application (Microsoft: \"access to at least one application must be allowed\")".into(),
            );
        }
        if is_default && section.is_inbound() && !(users.targets.len() == 1 && all(users, "AllUsers")) {
            err(
                format!("{at}.usersAndGroups"),
                "the default inbound settings cannot target specific users or groups (only AllUsers); configure them per partner (Microsoft: \"You cannot target users or groups in inbound default settings\")".into(),
            );
        }
    }
    out.extend(problems);
    // Warnings, on what applies after inheritance.
    let mut warn =
        |at: String, message: String| out.push(Problem { severity: Severity::Warning, at, message });
    for (at, message) in notes {
        warn(at, message);
    }
    let resolver = Resolver::each_once(policy);
    for partner in std::iter::once(None).chain(policy.partners.keys().map(|g| Some(*g))) {
        let at = &scope_name(partner, None);
        let eff = resolver.effective(partner);
        for s in [Section::CollaborationInbound, Section::CollaborationOutbound] {
            let e = eff.section(s);
            if partner.is_some() && e.applications.origin != super::resolve::Origin::Partner {
                continue; // reported once, on the default
            }
            let apps = &e.applications.value;
            let users = &e.users_and_groups.value;
            if users.access_type == AccessKind::Blocked && all(users, "AllUsers") {
                warn(
                    format!("{at}.{}", s.name()),
                    format!("blocks everyone, including Microsoft's recommended apps ({})", names()),
                );
                continue;
            }
            let missing: Vec<&str> = RECOMMENDED_ALLOWED
                .iter()
                .filter(|(id, _)| {
                    let listed = apps.targets.iter().any(|t| {
                        t.target.eq_ignore_ascii_case(id) || t.target.eq_ignore_ascii_case("AllApplications")
                    });
                    match apps.access_type {
                        AccessKind::Allowed => !listed,
                        AccessKind::Blocked => listed,
                        AccessKind::UnknownFutureValue => false,
                    }
                })
                .map(|(_, n)| *n)
                .collect();
            if !missing.is_empty() {
                warn(
                    format!("{at}.{}.applications", s.name()),
                    format!(
                        "applications {} [{}] does not keep these recommended apps allowed: {}",
                        apps.access_type.as_str(),
                        targets_text(apps),
                        missing.join(", ")
                    ),
                );
            }
        }
        let dc = eff.section(Section::DirectConnectInbound);
        let opens = !(dc.users_and_groups.value.access_type == AccessKind::Blocked
            && all(&dc.users_and_groups.value, "AllUsers"));
        if opens
            && !eff.inbound_trust.is_mfa_accepted.value
            && (partner.is_none() || dc.users_and_groups.origin == super::resolve::Origin::Partner)
        {
            warn(
                format!("{at}.b2bDirectConnectInbound"),
                "B2B direct connect inbound is allowed but the partner's MFA is not trusted (inboundTrust.isMfaAccepted): direct connect users cannot do MFA in your tenant, so any Conditional Access MFA requirement blocks them".into(),
            );
        }
        for n in &eff.notes {
            warn(at.clone(), n.clone());
        }
    }
    for w in &policy.warnings {
        warn(policy.source.clone(), w.clone());
    }
    out.sort();
    out.dedup();
    out
}

/// `default` or `partners[ID]`, and the section's name after a dot.
fn scope_name(partner: Option<Guid>, section: Option<Section>) -> String {
    let scope = partner.map_or_else(|| "default".to_string(), |g| format!("partners[{g}]"));
    match section {
        Some(s) => format!("{scope}.{}", s.name()),
        None => scope,
    }
}

fn names() -> String {
    RECOMMENDED_ALLOWED.iter().map(|(_, n)| *n).collect::<Vec<_>>().join(", ")
}
