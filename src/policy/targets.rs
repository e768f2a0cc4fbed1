//! How one half of a section (`usersAndGroups`, `applications`) matches a
//! sign-in: which target decides, looked up instead of scanned.
//!
//! The rule: the answer is that of reading the targets in order, as
//! docs/policy-semantics.md writes it (the first target that matches names
//! the match; `AllUsers` or a named user before any group; without a
//! match, each reason the targets cannot decide, naming up to three
//! targets, else the first two and how many more: [`Listed`]). This module
//! gives the same answer, target for target and text for text, from lookups
//! built once per half ([`FromHalf`]; shared by the partners that inherit
//! it, [`super::resolve::Half`]): a map from each named
//! user or app id to its first position, and the few targets that need
//! more than a lookup (groups; the first `Office365` and `AllMicrosoftApps`,
//! a repeat answering as the first) in order.
//!
//! Why: `propose` names every user a section needs, so a partner's section
//! may list tens of thousands of users, and replay evaluates every row
//! against two policies. Reading the targets in order made replay's cost
//! rows times targets: 100k sign-ins against a proposal naming 33k users a
//! partner took 9.7 s, against 0.8 s for `activity` on the same file; and a
//! reason listing every user target was megabytes, on every row. The tests
//! check the lookups against the reading in order on random halves.

use std::borrow::Cow;
use std::hash::BuildHasher as _;

use super::apps::Keyword;
use super::evaluate::{Request, Tri};
use super::model::{Target, TargetConfig, TargetText, TargetType};
use super::resolve::Sourced;
use crate::model::{Direction, Guid};

/// How one half matched, and the target that decided (or why it is unknown).
pub(crate) struct Match {
    pub(crate) tri: Tri,
    /// Mostly a keyword (`AllUsers`, `no target matches the app`): words
    /// of our own are not made a string on every evaluation.
    pub(crate) why: Cow<'static, str>,
}

/// Lookups built from one half of a section, the first time a sign-in is
/// evaluated against it ([`super::resolve::Half`]: an
/// [`super::resolve::Effective`] is resolved for many more uses than
/// evaluating).
pub(crate) trait FromHalf {
    fn from_half(half: &Sourced<TargetConfig>) -> Self;
}

impl FromHalf for UserTargets {
    fn from_half(half: &Sourced<TargetConfig>) -> UserTargets {
        UserTargets::new(half)
    }
}

impl FromHalf for AppTargets {
    fn from_half(half: &Sourced<TargetConfig>) -> AppTargets {
        AppTargets::new(half)
    }
}

/// How a reason names a half: `usersAndGroups allowed [AllUsers] (default)`.
fn head(half: &str, cfg: &Sourced<TargetConfig>) -> String {
    format!(
        "{half} {} [{}] ({})",
        cfg.value.access_type.as_str(),
        super::evaluate::targets_text(&cfg.value),
        cfg.origin.as_str()
    )
}

/// A text as the lookups compare it: an id by its value (spelled in any
/// letter case), any other text ignoring ASCII case, as
/// `eq_ignore_ascii_case` compares. An id held as a number
/// ([`TargetText::Id`]) is hashed and compared without being spelled out.
#[derive(Clone, Copy)]
enum Key<'a> {
    Id(u128),
    Text(&'a str),
}

impl<'a> Key<'a> {
    fn of(text: &'a str) -> Key<'a> {
        Guid::parse_exact(text).map_or(Key::Text(text), |id| Key::Id(id.0))
    }

    fn of_target(target: &'a TargetText) -> Key<'a> {
        match target {
            TargetText::Id(bytes) => Key::Id(u128::from_be_bytes(*bytes)),
            TargetText::Text(text) => Key::of(text),
        }
    }

    fn hash(self, hasher: &rustc_hash::FxBuildHasher) -> u64 {
        match self {
            Key::Id(id) => hasher.hash_one(id),
            // In lower case (ASCII only), borrowed when it already is.
            Key::Text(text) if text.bytes().any(|b| b.is_ascii_uppercase()) => {
                hasher.hash_one(text.to_ascii_lowercase())
            }
            Key::Text(text) => hasher.hash_one(text),
        }
    }

    fn same(self, other: Key<'_>) -> bool {
        match (self, other) {
            (Key::Id(a), Key::Id(b)) => a == b,
            (Key::Text(a), Key::Text(b)) => a.eq_ignore_ascii_case(b),
            // An id's text in any case is read as the id.
            _ => false,
        }
    }
}

/// The first position of each of some targets' texts, found ignoring
/// ASCII case. A table of positions alone, the texts compared where the
/// targets hold them: a half naming a million users took some 80 MB as a
/// map of lower-case copies, and takes 9 so (positions as `u32`: a half
/// of four billion targets would be 128 GB). Hashed with FxHash, not
/// std's SipHash (some 55 instructions a lookup, two lookups a replayed
/// row): the table's keys are the policy's, which its admin writes; a log's
/// text only looks them up, and can make no chain longer than the
/// policy's own keys made it.
#[derive(Clone, Default)]
struct Positions {
    table: hashbrown::HashTable<u32>,
    hasher: rustc_hash::FxBuildHasher,
}

impl Positions {
    /// The positions of `targets` that `wanted` names, in order.
    fn of(targets: &[Target], wanted: impl Iterator<Item = usize>) -> Positions {
        let mut p =
            Positions { table: hashbrown::HashTable::with_capacity(targets.len()), ..Positions::default() };
        for i in wanted {
            let key = Key::of_target(&targets[i].target);
            let hash = key.hash(&p.hasher);
            if p.table.find(hash, |&j| Key::of_target(&targets[j as usize].target).same(key)).is_none() {
                let hasher = &p.hasher;
                p.table.insert_unique(hash, i as u32, |&j| {
                    Key::of_target(&targets[j as usize].target).hash(hasher)
                });
            }
        }
        p
    }

    /// The first position of `text` among `targets` (those the table was
    /// made of), ignoring ASCII case.
    fn get(&self, targets: &[Target], text: &str) -> Option<usize> {
        // A half of keywords alone (`AllUsers`, `AllApplications`, the most
        // common) names no id: nothing to parse the text for.
        if self.table.is_empty() {
            return None;
        }
        let key = Key::of(text);
        self.table
            .find(key.hash(&self.hasher), |&j| Key::of_target(&targets[j as usize].target).same(key))
            .map(|&j| j as usize)
    }
}

/// Targets named in a reason: all of up to three, else the first two and
/// how many more (a section may name a hundred thousand users, and a
/// reason is written on every row).
#[derive(Clone, Default)]
pub(crate) struct Listed {
    count: usize,
    first: Vec<String>,
}

impl Listed {
    fn of(names: impl Iterator<Item = impl AsRef<str>>) -> Listed {
        let mut listed = Listed::default();
        for name in names {
            listed.push(name.as_ref());
        }
        listed
    }

    fn push(&mut self, name: &str) {
        if self.count < 3 {
            self.first.push(name.to_string());
        }
        self.count += 1;
    }

    fn is_empty(&self) -> bool {
        self.count == 0
    }

    fn text(&self) -> String {
        if self.count <= 3 {
            self.first.join(", ")
        } else {
            format!("{}, {} and {} more", self.first[0], self.first[1], self.count - 2)
        }
    }

    /// `what` with an `s` when more than one is listed.
    fn noun(&self, what: &str) -> String {
        if self.count == 1 {
            what.to_string()
        } else {
            format!("{what}s")
        }
    }
}

/// Why user targets cannot be read without the user's id.
pub(crate) fn needs_id_text(users: &Listed, direction: Direction) -> String {
    format!(
        "{} {} {} the user's {}object id (supply --identities)",
        users.noun("user target"),
        users.text(),
        if users.count == 1 { "needs" } else { "need" },
        if direction == Direction::Inbound { "home-tenant " } else { "" }
    )
}

/// Why targets of a type this version does not know cannot be read.
pub(crate) fn foreign_type_text(targets: &Listed) -> String {
    format!(
        "{} {} {} a targetType this version cannot evaluate",
        targets.noun("target"),
        targets.text(),
        if targets.count == 1 { "has" } else { "have" }
    )
}

/// Why groups cannot be read without their members.
pub(crate) fn groups_not_known_text(groups: &Listed) -> String {
    format!("membership of group(s) {} is not known (supply --groups)", groups.text())
}

/// `usersAndGroups` as lookups.
#[derive(Clone)]
pub(crate) struct UserTargets {
    /// The first `AllUsers` (a user target).
    all_users: Option<usize>,
    /// Every other user target, by its id in any case.
    users: Positions,
    /// Those user targets, for a reason when the user's id is not known.
    users_listed: Listed,
    /// Group targets, in order.
    groups: Vec<usize>,
    /// Targets of a type this half cannot evaluate.
    foreign: Listed,
    /// How a reason names the half ([`head`]).
    pub(crate) head: String,
}

impl UserTargets {
    fn new(half: &Sourced<TargetConfig>) -> UserTargets {
        let cfg = &half.value;
        let is_all = |t: &super::model::Target| {
            t.target_type == TargetType::User && t.target.eq_ignore_ascii_case("AllUsers")
        };
        let named = || {
            cfg.targets.iter().enumerate().filter(|(_, t)| t.target_type == TargetType::User && !is_all(t))
        };
        UserTargets {
            all_users: cfg.targets.iter().position(is_all),
            users: Positions::of(&cfg.targets, named().map(|(i, _)| i)),
            users_listed: Listed::of(named().map(|(_, t)| t.target.as_str())),
            groups: cfg
                .targets
                .iter()
                .enumerate()
                .filter(|(_, t)| t.target_type == TargetType::Group)
                .map(|(i, _)| i)
                .collect(),
            foreign: Listed::of(
                cfg.targets
                    .iter()
                    .filter(|t| {
                        matches!(t.target_type, TargetType::Application | TargetType::UnknownFutureValue)
                    })
                    .map(|t| t.target.as_str()),
            ),
            head: head("usersAndGroups", half),
        }
    }
}

/// Reads `cfg` (whose lookups are `ix`) for the user of `req`.
pub(crate) fn user_match(cfg: &TargetConfig, ix: &UserTargets, req: &Request<'_>) -> Match {
    let named = req.user_id.and_then(|u| ix.users.get(&cfg.targets, u));
    if let Some(i) = [ix.all_users, named].into_iter().flatten().min() {
        let why = if Some(i) == ix.all_users {
            Cow::Borrowed("AllUsers")
        } else {
            // Joined, not `format!`ted: every row of a named user says it.
            Cow::Owned(["user ", &cfg.targets[i].target.as_str()].concat())
        };
        return Match { tri: Tri::Yes, why };
    }
    undecided_user(
        req.user_id.is_none().then_some(&ix.users_listed),
        &ix.foreign,
        ix.groups.iter().map(|&i| cfg.targets[i].target.as_str()),
        req,
    )
}

/// The answer once no target names the user: a member of one of `groups`
/// (in order) matches; else what the targets cannot decide on their own
/// (`needs_id`: user targets, when the user's id is not known; `foreign`:
/// targets of another type; groups whose members are not known), else no.
fn undecided_user(
    needs_id: Option<&Listed>,
    foreign: &Listed,
    groups: impl Iterator<Item = impl AsRef<str>>,
    req: &Request<'_>,
) -> Match {
    let mut unknown: Vec<String> = Vec::new();
    if let Some(users) = needs_id.filter(|users| !users.is_empty()) {
        unknown.push(needs_id_text(users, req.direction));
    }
    if !foreign.is_empty() {
        unknown.push(foreign_type_text(foreign));
    }
    let mut not_known = Listed::default();
    for g in groups {
        let g = g.as_ref();
        match req.groups.is_member(g) {
            Tri::Yes => return Match { tri: Tri::Yes, why: format!("group {g}").into() },
            Tri::No => {}
            Tri::Unknown => not_known.push(g),
        }
    }
    if !not_known.is_empty() {
        unknown.push(groups_not_known_text(&not_known));
    }
    if unknown.is_empty() {
        Match { tri: Tri::No, why: "no target matches the user".into() }
    } else {
        Match { tri: Tri::Unknown, why: unknown.join("; ").into() }
    }
}

/// `applications` as lookups.
#[derive(Clone)]
pub(crate) struct AppTargets {
    /// The first `AllApplications` (of a type this version evaluates).
    all_apps: Option<usize>,
    /// Every other target that is not a keyword, by its text in any case.
    ids: Positions,
    /// The first `Office365` and the first `AllMicrosoftApps`, in order:
    /// what a lookup cannot answer (a repeat answers as the first).
    keywords: Vec<(usize, Keyword)>,
    /// Targets of a type this version cannot evaluate.
    foreign: Listed,
    /// How a reason names the half ([`head`]).
    pub(crate) head: String,
    /// What [`app_match`] answered for the apps sign-ins named, when the
    /// half has a keyword to ask about them.
    memo: AppMemo,
}

/// [`app_match`]'s answers for the apps of sign-ins, kept by a half with a
/// keyword (`Office365`, `AllMicrosoftApps`): asking the app table about
/// each app and wording why it is no member was 3,500 instructions of a
/// replayed row of the admin center's export (most of evaluating it), and
/// a partner's rows name a few apps over and over. An answer depends on
/// nothing else of the sign-in (the half is this one, the app table the
/// catalog's, whose address is in the key), and it is dropped with the
/// half. Every half's memos together hold at most [`MEMO_BYTES`] of
/// answers, counted with their texts (a forged export's ids, and the
/// reasons naming them, can be kilobytes each), so that no policy or
/// export makes them grow: past that, an answer is worked out each time,
/// as it was.
#[derive(Default)]
struct AppMemo(std::sync::Mutex<hashbrown::HashTable<Remembered>>);

/// One answer of an [`AppMemo`], and what it answers.
struct Remembered {
    catalog: usize,
    app: Option<Box<str>>,
    app_owner: Option<Guid>,
    resource: Option<Box<str>>,
    resource_owner: Option<Guid>,
    tri: Tri,
    why: Cow<'static, str>,
}

/// The longest app id whose answers are remembered: Entra's are GUIDs
/// (36 bytes) and URIs a few dozen long.
const MEMO_ID_BYTES: usize = 128;

/// The bytes every [`AppMemo`] may hold at once ([`Remembered::weight`]):
/// some 16,000 answers of Entra's ids and the reasons naming them.
const MEMO_BYTES: usize = 6 << 20;

/// What is left of [`MEMO_BYTES`]: taken by each answer kept, given back
/// when its memo is dropped.
static MEMO_ROOM: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(MEMO_BYTES);

/// What an [`AppMemo`] answer depends on: the app table (its address),
/// the app and the resource, and the tenants that own them.
type AppsKey<'a> = (usize, Option<&'a str>, Option<Guid>, Option<&'a str>, Option<Guid>);

impl Remembered {
    /// What it holds: itself, its ids and its reason, and its place in a
    /// table, about.
    fn weight(&self) -> usize {
        let texts = [self.app.as_deref(), self.resource.as_deref(), Some(&*self.why)];
        std::mem::size_of::<Remembered>() + 16 + texts.iter().flatten().map(|t| t.len()).sum::<usize>()
    }

    fn key(&self) -> AppsKey<'_> {
        (self.catalog, self.app.as_deref(), self.app_owner, self.resource.as_deref(), self.resource_owner)
    }
}

impl AppMemo {
    fn key<'r>(req: &Request<'r>) -> AppsKey<'r> {
        let catalog = std::ptr::from_ref(req.apps) as usize;
        (catalog, req.app_id, req.app_owner, req.resource_id, req.resource_owner)
    }

    fn hash(key: AppsKey<'_>) -> u64 {
        rustc_hash::FxBuildHasher.hash_one(key)
    }

    /// The answer kept for `req`'s apps, else `answer()`, kept if there is
    /// room.
    fn get_or(&self, req: &Request<'_>, answer: impl FnOnce() -> Match) -> Match {
        let lock = || self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = AppMemo::key(req);
        let hash = AppMemo::hash(key);
        let same = |r: &Remembered| r.key() == key;
        if let Some(r) = lock().find(hash, same) {
            return Match { tri: r.tri, why: r.why.clone() };
        }
        // Worked out outside the lock; of two threads that both do, the
        // first one's is kept.
        let found = answer();
        let room = |weight: usize| {
            use std::sync::atomic::Ordering::Relaxed;
            MEMO_ROOM.fetch_update(Relaxed, Relaxed, |n| n.checked_sub(weight)).is_ok()
        };
        let mut table = lock();
        if table.find(hash, same).is_none() {
            let (catalog, app, app_owner, resource, resource_owner) = key;
            let kept = Remembered {
                catalog,
                app: app.map(Box::from),
                app_owner,
                resource: resource.map(Box::from),
                resource_owner,
                tri: found.tri,
                why: found.why.clone(),
            };
            if !room(kept.weight()) {
                return found;
            }
            table.insert_unique(hash, kept, |r| AppMemo::hash(r.key()));
        }
        found
    }
}

impl Clone for AppMemo {
    /// A copy of a half remembers nothing yet.
    fn clone(&self) -> AppMemo {
        AppMemo::default()
    }
}

impl Drop for AppMemo {
    fn drop(&mut self) {
        let table = self.0.get_mut().unwrap_or_else(|e| e.into_inner());
        let kept = table.iter().map(Remembered::weight).sum::<usize>();
        MEMO_ROOM.fetch_add(kept, std::sync::atomic::Ordering::Relaxed);
    }
}

impl AppTargets {
    fn new(half: &Sourced<TargetConfig>) -> AppTargets {
        let cfg = &half.value;
        let evaluable = |t: &super::model::Target| t.target_type != TargetType::UnknownFutureValue;
        let is_all =
            |t: &super::model::Target| evaluable(t) && t.target.eq_ignore_ascii_case("AllApplications");
        let plain = || cfg.targets.iter().enumerate().filter(|(_, t)| evaluable(t) && !is_all(t));
        let mut keywords: Vec<(usize, Keyword)> = Vec::new();
        for (i, t) in plain() {
            if let Some(k) =
                Keyword::parse(&t.target.as_str()).filter(|k| keywords.iter().all(|(_, seen)| seen != k))
            {
                keywords.push((i, k));
            }
        }
        AppTargets {
            all_apps: cfg.targets.iter().position(is_all),
            ids: Positions::of(
                &cfg.targets,
                plain().filter(|(_, t)| Keyword::parse(&t.target.as_str()).is_none()).map(|(i, _)| i),
            ),
            keywords,
            foreign: Listed::of(cfg.targets.iter().filter(|t| !evaluable(t)).map(|t| t.target.as_str())),
            head: head("applications", half),
            memo: AppMemo::default(),
        }
    }
}

/// Reads `cfg` (whose lookups are `ix`) for the client app and the
/// resource of `req`: either may be the one a target names.
pub(crate) fn app_match(cfg: &TargetConfig, ix: &AppTargets, req: &Request<'_>) -> Match {
    let long = |id: Option<&str>| id.is_some_and(|id| id.len() > MEMO_ID_BYTES);
    if ix.keywords.is_empty() || long(req.app_id) || long(req.resource_id) {
        // Lookups alone are no dearer than remembering; and a forged
        // export's kilobyte ids are not worth the room.
        return app_match_now(cfg, ix, req);
    }
    ix.memo.get_or(req, || app_match_now(cfg, ix, req))
}

/// [`app_match`], worked out.
fn app_match_now(cfg: &TargetConfig, ix: &AppTargets, req: &Request<'_>) -> Match {
    let ids = apps_of(req);
    let named = ids.iter().filter_map(|(id, _)| ix.ids.get(&cfg.targets, id)).min();
    let first = [ix.all_apps, named].into_iter().flatten().min();
    // The keywords, in order, up to the first target a lookup found: one
    // before it may match first; without a match, what they could not
    // decide and which keywords the apps are not members of.
    let mut unknown = Vec::new();
    if !ix.foreign.is_empty() {
        unknown.push(foreign_type_text(&ix.foreign));
    }
    let mut not_members = Vec::new();
    for &(_, keyword) in ix.keywords.iter().take_while(|(i, _)| first.is_none_or(|f| *i < f)) {
        if let Some(yes) = ask_keyword(keyword, &ids, req, &mut unknown, &mut not_members) {
            return yes;
        }
    }
    if let Some(i) = first {
        let why = if Some(i) == ix.all_apps {
            Cow::Borrowed("AllApplications")
        } else {
            // Joined, not `format!`ted: every row of a listed app says it.
            Cow::Owned(["app ", &cfg.targets[i].target.as_str()].concat())
        };
        return Match { tri: Tri::Yes, why };
    }
    undecided_app(unknown, not_members, ids.is_empty() && !cfg.targets.is_empty())
}

/// The client app and the resource of `req` (an app that is its own
/// resource is one app), with the tenant that owns each where known.
fn apps_of<'r>(req: &Request<'r>) -> AppsOf<'r> {
    let mut apps = AppsOf { ids: [("", None); 2], len: 0 };
    for (id, owner) in [(req.app_id, req.app_owner), (req.resource_id, req.resource_owner)] {
        let Some(id) = id else { continue };
        if apps.iter().any(|(seen, _)| seen.eq_ignore_ascii_case(id)) {
            continue;
        }
        apps.ids[apps.len] = (id, owner);
        apps.len += 1;
    }
    apps
}

/// What [`apps_of`] finds: at most two, held on the stack (a vector was an
/// allocation per evaluation, two per replayed row).
struct AppsOf<'r> {
    ids: [(&'r str, Option<crate::model::Guid>); 2],
    len: usize,
}

impl<'r> std::ops::Deref for AppsOf<'r> {
    type Target = [(&'r str, Option<crate::model::Guid>)];
    fn deref(&self) -> &Self::Target {
        &self.ids[..self.len]
    }
}

/// Whether the app or the resource is a member of `keyword`'s group: the
/// match, or `None` with what could not be decided added to `unknown` and
/// the apps that are not members to `not_members`.
fn ask_keyword(
    keyword: Keyword,
    ids: &[(&str, Option<crate::model::Guid>)],
    req: &Request<'_>,
    unknown: &mut Vec<String>,
    not_members: &mut Vec<String>,
) -> Option<Match> {
    let mut undecided = Vec::new();
    for (id, owner) in ids {
        let m = req.apps.member(keyword, id, *owner);
        match m.tri {
            Tri::Yes => {
                // Joined, not `format!`ted: every row of a covered app says it.
                let why = [keyword.as_str(), " (", &m.why, ")"].concat();
                return Some(Match { tri: Tri::Yes, why: why.into() });
            }
            Tri::Unknown => undecided.push(m.why),
            Tri::No => not_members.push(m.why),
        }
    }
    if !undecided.is_empty() {
        unknown.push(format!("{} membership: {}", keyword.as_str(), undecided.join("; ")));
    }
    None
}

/// The answer once no target matches the app: unknown with what could
/// not be decided (and `names_no_app`: the sign-in names none, though
/// targets are listed), else no, with the keywords the apps are not in.
fn undecided_app(mut unknown: Vec<String>, mut not_members: Vec<String>, names_no_app: bool) -> Match {
    if names_no_app {
        unknown.push("the sign-in names no app or resource".into());
    }
    if unknown.is_empty() {
        const NONE: &str = "no target matches the app";
        not_members.dedup();
        let why = if not_members.is_empty() {
            Cow::Borrowed(NONE)
        } else {
            Cow::Owned(format!("{NONE} ({})", not_members.join("; ")))
        };
        Match { tri: Tri::No, why }
    } else {
        Match { tri: Tri::Unknown, why: unknown.join("; ").into() }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;
    use crate::model::{AccessType, Guid};
    use crate::policy::apps::AppCatalog;
    use crate::policy::evaluate::{CloudHint, Membership, TrustNeeds};
    use crate::policy::model::{AccessKind, Target};
    use crate::policy::resolve::Origin;

    /// The reading in order the lookups must agree with: the targets one
    /// by one, the first that matches deciding (the evaluator's code before
    /// the lookups). What follows when none matches (groups, keywords'
    /// members, the reasons' words) is the evaluator's own code, shared:
    /// what is checked here is which target decides and what is listed.
    fn user_match_in_order(cfg: &TargetConfig, req: &Request<'_>) -> Match {
        let mut needs_id = Listed::default();
        let mut foreign = Listed::default();
        let mut groups = Vec::new();
        for t in &cfg.targets {
            match t.target_type {
                TargetType::User if t.target.eq_ignore_ascii_case("AllUsers") => {
                    return Match { tri: Tri::Yes, why: "AllUsers".into() };
                }
                TargetType::User => match req.user_id {
                    Some(u) if t.target.eq_ignore_ascii_case(u) => {
                        return Match { tri: Tri::Yes, why: format!("user {}", t.target).into() };
                    }
                    Some(_) => {}
                    None => needs_id.push(&t.target.as_str()),
                },
                TargetType::Group => groups.push(t.target.as_str()),
                TargetType::Application | TargetType::UnknownFutureValue => foreign.push(&t.target.as_str()),
            }
        }
        undecided_user(Some(&needs_id), &foreign, groups.into_iter(), req)
    }

    /// As [`user_match_in_order`], for `applications` (a keyword repeated
    /// answers as its first occurrence, and is not asked again).
    fn app_match_in_order(cfg: &TargetConfig, req: &Request<'_>) -> Match {
        let ids = apps_of(req);
        let mut foreign = Listed::default();
        let mut asked = Vec::new();
        let mut keyword_unknowns = Vec::new();
        let mut not_members = Vec::new();
        for t in &cfg.targets {
            let name = &*t.target.as_str();
            if t.target_type == TargetType::UnknownFutureValue {
                foreign.push(name);
                continue;
            }
            if name.eq_ignore_ascii_case("AllApplications") {
                return Match { tri: Tri::Yes, why: "AllApplications".into() };
            }
            if let Some(keyword) = Keyword::parse(name) {
                if asked.contains(&keyword) {
                    continue;
                }
                asked.push(keyword);
                if let Some(yes) = ask_keyword(keyword, &ids, req, &mut keyword_unknowns, &mut not_members) {
                    return yes;
                }
                continue;
            }
            if ids.iter().any(|(id, _)| id.eq_ignore_ascii_case(name)) {
                return Match { tri: Tri::Yes, why: format!("app {name}").into() };
            }
        }
        let mut unknown = Vec::new();
        if !foreign.is_empty() {
            unknown.push(foreign_type_text(&foreign));
        }
        unknown.extend(keyword_unknowns);
        undecided_app(unknown, not_members, ids.is_empty() && !cfg.targets.is_empty())
    }

    fn request(user: Option<&str>, direction: Direction) -> Request<'_> {
        Request {
            direction,
            access_type: AccessType::B2bCollaboration,
            partner: Guid(7),
            user_id: user,
            groups: Membership::Unknown,
            app_id: Some(APPS[0]),
            app_owner: None,
            resource_id: None,
            resource_owner: None,
            trust: TrustNeeds::default(),
            apps: AppCatalog::built_in(),
            cloud: CloudHint::Ours,
        }
    }

    fn users(n: usize) -> TargetConfig {
        TargetConfig {
            access_type: AccessKind::Allowed,
            targets: (0..n)
                .map(|i| Target {
                    target: format!("{:08x}-0000-4000-8000-000000000000", i).into(),
                    target_type: TargetType::User,
                })
                .collect(),
        }
    }

    #[test]
    fn a_reason_names_up_to_three_targets_and_counts_the_rest() {
        let why = |n: usize, direction| {
            let cfg = users(n);
            let half = Sourced { value: cfg.clone(), origin: Origin::Default };
            user_match(&cfg, &UserTargets::new(&half), &request(None, direction)).why
        };
        assert_eq!(
            why(1, Direction::Inbound),
            "user target 00000000-0000-4000-8000-000000000000 needs the user's home-tenant object id (supply --identities)"
        );
        assert_eq!(
            why(3, Direction::Outbound),
            "user targets 00000000-0000-4000-8000-000000000000, 00000001-0000-4000-8000-000000000000, \
             00000002-0000-4000-8000-000000000000 need the user's object id (supply --identities)"
        );
        assert_eq!(
            why(100_000, Direction::Inbound),
            "user targets 00000000-0000-4000-8000-000000000000, 00000001-0000-4000-8000-000000000000 and \
             99998 more need the user's home-tenant object id (supply --identities)"
        );
    }

    #[test]
    fn a_user_among_a_hundred_thousand_named_is_found_by_its_id_in_any_case() {
        let cfg = users(100_000);
        let half = Sourced { value: cfg.clone(), origin: Origin::Default };
        let ix = &UserTargets::new(&half);
        let last = "0001869F-0000-4000-8000-000000000000";
        let m = user_match(&cfg, ix, &request(Some(last), Direction::Outbound));
        assert_eq!((m.tri, &*m.why), (Tri::Yes, "user 0001869f-0000-4000-8000-000000000000"));
        let m = user_match(&cfg, ix, &request(Some(USERS[0]), Direction::Outbound));
        assert_eq!((m.tri, &*m.why), (Tri::No, "no target matches the user"));
    }

    const USERS: [&str; 3] = [
        "c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f",
        "d2e3f4a5-b6c7-4d8e-9f0a-1b2c3d4e5f60",
        "e3f4a5b6-c7d8-4e9f-0a1b-2c3d4e5f6071",
    ];
    const GROUPS: [&str; 2] =
        ["aaaa0001-0000-4000-8000-000000000001", "aaaa0002-0000-4000-8000-000000000002"];
    /// A line-of-business app, SharePoint (Office 365), Exchange, and an
    /// app the built-in table does not know.
    const APPS: [&str; 4] = [
        "4e5f6a7b-8c9d-4e0f-a1b2-c3d4e5f6a7b8",
        "00000003-0000-0ff1-ce00-000000000000",
        "00000002-0000-0ff1-ce00-000000000000",
        "c44b4083-3bb0-49c1-b47d-974e53cbdf3c",
    ];

    /// `s` with each ASCII letter's case as `mask`'s bits say.
    fn recase(s: &str, mask: u64) -> String {
        s.chars()
            .enumerate()
            .map(|(i, c)| if mask >> (i % 64) & 1 == 1 { c.to_ascii_uppercase() } else { c })
            .collect()
    }

    fn any_type() -> impl Strategy<Value = TargetType> {
        prop_oneof![
            4 => Just(TargetType::User),
            2 => Just(TargetType::Group),
            2 => Just(TargetType::Application),
            1 => Just(TargetType::UnknownFutureValue),
        ]
    }

    /// Any target text a half may hold, in any case, of any type.
    fn any_target() -> impl Strategy<Value = Target> {
        let texts: Vec<&'static str> = ["AllUsers", "AllApplications", "Office365", "AllMicrosoftApps"]
            .into_iter()
            .chain(USERS)
            .chain(GROUPS)
            .chain(APPS)
            .collect();
        (proptest::sample::select(texts), any::<u64>(), prop::bool::weighted(0.3), any_type()).prop_map(
            |(text, mask, recased, target_type)| Target {
                target: if recased { recase(text, mask) } else { text.to_string() }.into(),
                target_type,
            },
        )
    }

    fn maybe_recased(pool: &'static [&'static str]) -> impl Strategy<Value = Option<String>> {
        proptest::option::of((proptest::sample::select(pool), any::<u64>(), prop::bool::weighted(0.2)))
            .prop_map(|o| o.map(|(t, mask, recased)| if recased { recase(t, mask) } else { t.to_string() }))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        /// The lookups give what reading the targets in order gives: the
        /// same answer and the same words, for both halves, whatever the
        /// targets' order, case, types and repeats, and whatever the
        /// sign-in names or leaves unknown.
        #[test]
        fn the_lookups_answer_as_reading_the_targets_in_order(
            targets in proptest::collection::vec(any_target(), 0..12),
            user in maybe_recased(&USERS),
            member_of in proptest::option::of(proptest::sample::subsequence(GROUPS.to_vec(), 0..=2)),
            app in maybe_recased(&APPS),
            resource in maybe_recased(&APPS),
            owned in any::<bool>(),
            inbound in any::<bool>(),
        ) {
            let cfg = TargetConfig { access_type: AccessKind::Allowed, targets: targets.into() };
            let members: BTreeSet<String> = member_of.iter().flatten().map(|g| g.to_string()).collect();
            let req = Request {
                direction: if inbound { Direction::Inbound } else { Direction::Outbound },
                access_type: AccessType::B2bCollaboration,
                partner: Guid(7),
                user_id: user.as_deref(),
                groups: if member_of.is_some() { Membership::Known(&members) } else { Membership::Unknown },
                app_id: app.as_deref(),
                app_owner: owned.then_some(Guid(9)),
                resource_id: resource.as_deref(),
                resource_owner: None,
                trust: TrustNeeds::default(),
                apps: AppCatalog::built_in(),
                cloud: CloudHint::Ours,
            };
            let half = Sourced { value: cfg.clone(), origin: Origin::Partner };
            let (users, apps) = (&UserTargets::new(&half), &AppTargets::new(&half));
            let (found, read) = (user_match(&cfg, users, &req), user_match_in_order(&cfg, &req));
            prop_assert_eq!((found.tri, found.why), (read.tri, read.why));
            let (found, read) = (app_match(&cfg, apps, &req), app_match_in_order(&cfg, &req));
            prop_assert_eq!((found.tri, found.why), (read.tri, read.why));
            let text = crate::policy::evaluate::targets_text(&cfg);
            prop_assert_eq!(&users.head, &format!("usersAndGroups allowed [{text}] (partner)"));
        }

        /// A half that remembers its answers ([`AppMemo`]) answers every
        /// sign-in as reading the targets in order does, whatever it was
        /// asked before, and asked again.
        #[test]
        fn a_half_answers_each_sign_in_as_the_targets_read_in_order_whatever_it_was_asked_before(
            targets in proptest::collection::vec(any_target(), 0..8),
            asked in proptest::collection::vec(
                (maybe_recased(&APPS), maybe_recased(&APPS), any::<bool>(), any::<bool>()),
                1..12,
            ),
        ) {
            let cfg = TargetConfig { access_type: AccessKind::Allowed, targets: targets.into() };
            let half = Sourced { value: cfg.clone(), origin: Origin::Partner };
            let apps = AppTargets::new(&half);
            for (app, resource, owned, resource_owned) in asked.iter().chain(asked.iter()) {
                let req = Request {
                    app_id: app.as_deref(),
                    app_owner: owned.then_some(Guid(9)),
                    resource_id: resource.as_deref(),
                    resource_owner: resource_owned.then_some(crate::policy::apps::MICROSOFT_SERVICES_TENANT),
                    ..request(None, Direction::Inbound)
                };
                let (found, read) = (app_match(&cfg, &apps, &req), app_match_in_order(&cfg, &req));
                prop_assert_eq!((found.tri, found.why), (read.tri, read.why));
            }
        }
    }
}
