//! What evaluation may need from the directory: group memberships
//! (`--groups`) and the home-tenant ids of guests (`--identities`).
//!
//! Groups: a CSV with `group_id,member_id` columns, or Graph
//! `transitiveMembers` (or `members`) JSON, one group per file, the group
//! id taken from the response's `@odata.context` or else the file name.
//! Group-in-group rows are closed transitively, as Entra evaluates them.
//! Identities: a CSV with `home_user_id` and `local_user_id` and/or
//! `user_principal_name`.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::hash::BuildHasher as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context as _, Result};
use serde_json::Value;

use super::model::TargetStr;
use crate::model::guid::normalize_id;
use crate::model::Guid;

/// Group memberships as the files list them, closed over nested groups on
/// demand.
///
/// The closure is never materialised for every member: in a chain of n
/// nested groups that is n^2/2 entries (a 4000-deep chain took 838 MB).
/// Only the groups a policy targets are ever asked about, so each asked
/// group's members are gathered once, in one walk linear in the groups
/// and members below it (cycles stop at the first group seen twice), and
/// kept for the next question.
#[derive(Debug, Default)]
pub struct Groups {
    /// Every group the files describe (lower-case ids).
    pub described: BTreeSet<String>,
    /// group -> its direct members (lower-case ids).
    direct: HashMap<String, Vec<String>>,
    /// group -> every member below it, for the groups asked about so far.
    closed: Mutex<HashMap<String, Arc<HashSet<String>>>>,
}

/// A group and which of some wanted members it holds ([`Groups::holding`]).
#[derive(Clone, Debug, PartialEq)]
pub struct GroupHolding {
    pub group: String,
    pub held: BTreeSet<String>,
    /// Members that are not groups, nested ones included.
    pub members: usize,
}

impl Groups {
    fn from_direct(direct: BTreeMap<String, BTreeSet<String>>) -> Groups {
        Groups {
            described: direct.keys().cloned().collect(),
            direct: direct.into_iter().map(|(g, m)| (g, m.into_iter().collect())).collect(),
            closed: Mutex::default(),
        }
    }

    /// Whether `member` belongs to `group`, directly or through nested
    /// groups. Ids are compared lower-case.
    pub fn has_member(&self, group: &str, member: &str) -> bool {
        self.members_of(&group.to_ascii_lowercase()).contains(&normalize_id(member))
    }

    fn members_of(&self, group: &str) -> Arc<HashSet<String>> {
        let mut closed = self.closed.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(m) = closed.get(group) {
            return m.clone();
        }
        let members = Arc::new(self.walk(group));
        closed.insert(group.to_string(), members.clone());
        members
    }

    /// Every member below `group` (nested groups included), in one walk.
    fn walk(&self, group: &str) -> HashSet<String> {
        let mut seen: HashSet<String> = HashSet::new();
        let mut stack = vec![group];
        while let Some(g) = stack.pop() {
            for m in self.direct.get(g).into_iter().flatten() {
                if seen.insert(m.clone()) && self.direct.contains_key(m.as_str()) {
                    stack.push(m);
                }
            }
        }
        seen
    }

    /// Each described group holding any of `wanted` (lower-case ids),
    /// directly or through nested groups: which of them it holds, and how
    /// many members that are not groups it has in all. One walk per group,
    /// nothing kept: `propose --groups` asks once.
    pub fn holding(&self, wanted: &BTreeSet<String>) -> Vec<GroupHolding> {
        self.described
            .iter()
            .filter_map(|g| {
                let all = self.walk(g);
                let held: BTreeSet<String> = wanted.iter().filter(|w| all.contains(*w)).cloned().collect();
                let members = all.iter().filter(|m| !self.direct.contains_key(m.as_str())).count();
                (!held.is_empty()).then(|| GroupHolding { group: g.clone(), held, members })
            })
            .collect()
    }
}

fn header_index(headers: &csv::StringRecord, names: &[&str]) -> Option<usize> {
    headers.iter().position(|h| {
        let h: String =
            h.trim().trim_start_matches('\u{feff}').chars().filter(|c| c.is_ascii_alphanumeric()).collect();
        names.iter().any(|n| h.eq_ignore_ascii_case(n))
    })
}

fn files(path: &Path) -> Result<Vec<PathBuf>> {
    if path.is_dir() {
        crate::files::files_under(path)
    } else {
        Ok(vec![path.to_path_buf()])
    }
}

pub fn load_groups(paths: &[PathBuf]) -> Result<Groups> {
    let mut direct: BTreeMap<String, BTreeSet<String>> = BTreeMap::new(); // group -> members
    for path in paths {
        for f in files(path)? {
            let text = crate::files::read_text(&f)?;
            let t = text.trim_start_matches('\u{feff}').trim_start();
            if t.starts_with('{') || t.starts_with('[') {
                groups_json(&f, t, &mut direct)?;
            } else {
                groups_csv(&f, t, &mut direct)?;
            }
        }
    }
    Ok(Groups::from_direct(direct))
}

fn groups_csv(f: &Path, text: &str, out: &mut BTreeMap<String, BTreeSet<String>>) -> Result<()> {
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let h = r.headers().with_context(|| format!("{}: cannot read the CSV header", f.display()))?.clone();
    let (Some(gi), Some(mi)) =
        (header_index(&h, &["groupid"]), header_index(&h, &["memberid", "userid", "id"]))
    else {
        bail!("{}: a groups CSV needs `group_id` and `member_id` columns", f.display());
    };
    for (n, rec) in r.records().enumerate() {
        let rec = rec.with_context(|| format!("{}: row {}", f.display(), n + 2))?;
        let (g, m) = (rec.get(gi).unwrap_or("").trim(), rec.get(mi).unwrap_or("").trim());
        if g.is_empty() || m.is_empty() {
            bail!("{}: line {}: empty group_id or member_id", f.display(), n + 2);
        }
        out.entry(normalize_id(g)).or_default().insert(normalize_id(m));
    }
    Ok(())
}

fn groups_json(f: &Path, text: &str, out: &mut BTreeMap<String, BTreeSet<String>>) -> Result<()> {
    let v: Value = serde_json::from_str(text).with_context(|| format!("{}: invalid JSON", f.display()))?;
    let pages = match v {
        Value::Array(a) => a,
        other => vec![other],
    };
    for page in pages {
        let ctx = page.get("@odata.context").and_then(Value::as_str).unwrap_or("");
        let from_ctx = ctx
            .split("groups('")
            .nth(1)
            .and_then(|r| r.split('\'').next())
            .or_else(|| ctx.split("groups/").nth(1).and_then(|r| r.split('/').next()))
            .map(str::to_string);
        let from_name = f
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .filter(|s| crate::model::Guid::parse(s).is_some());
        let Some(group) = from_ctx.or(from_name) else {
            bail!(
                "{}: cannot tell which group this is: expected @odata.context with groups('<id>') or a file named <group id>.json",
                f.display()
            );
        };
        let members = out.entry(normalize_id(&group)).or_default();
        for m in page.get("value").and_then(Value::as_array).into_iter().flatten() {
            match m.get("id").and_then(Value::as_str) {
                Some(id) => {
                    members.insert(normalize_id(id));
                }
                None => bail!("{}: a member without an `id`", f.display()),
            }
        }
    }
    Ok(())
}

/// Guests' home-tenant object ids, by local object id and by UPN. Hashed:
/// replay looks a guest up for every row, and a mapping may name a million
/// guests (a sorted map's twenty comparisons a lookup were a tenth of such
/// a replay). Object ids are GUIDs: kept as numbers, not as strings (a
/// mapping of a million guests took 310 MB); the tables hold the place of
/// each home id in a list made to size, not the id, since a table has up
/// to twice the slots it fills (a million guests: 136 MB in home ids in
/// the table, 66 in a list of their text, 42 of their values).
#[derive(Debug, Default, Clone)]
pub struct Identities {
    /// The home id of each row, in order, as a GUID's value (16 bytes a
    /// row, where its 36 characters inline took 40: a million guests'
    /// home ids are 16 MB), unless `other_homes` holds it.
    homes: Vec<u128>,
    /// The rows whose home id is not a GUID, by row, as [`normalize_id`]
    /// writes it.
    other_homes: HashMap<u32, Box<str>>,
    /// Local ids that are GUIDs, by their value, to a place in `homes`.
    by_local_guid: ByGuid,
    /// Other local ids, as [`normalize_id`] writes them.
    by_local_id: HashMap<String, u32>,
    by_upn: HashMap<String, u32>,
}

/// GUIDs to rows: a table of rows alone, each row's GUID in a list beside
/// it (a million guests: 26 MB, where a map of GUID to row took 52).
#[derive(Debug, Default, Clone)]
struct ByGuid {
    /// The GUID of each row, in order (0 for a row that has none, which
    /// the table never holds).
    guids: Vec<u128>,
    rows: hashbrown::HashTable<u32>,
    hasher: std::hash::RandomState,
}

impl ByGuid {
    /// Adds the next row, with its GUID if it has one; a GUID seen before
    /// is the new row's from now on.
    fn push(&mut self, guid: Option<Guid>) {
        let row = self.guids.len() as u32;
        self.guids.push(guid.map_or(0, |g| g.0));
        let Some(Guid(g)) = guid else { return };
        let (guids, hasher) = (&self.guids, &self.hasher);
        let hash = hasher.hash_one(g);
        match self.rows.find_mut(hash, |&r| guids[r as usize] == g) {
            Some(r) => *r = row,
            None => {
                self.rows.insert_unique(hash, row, |&r| hasher.hash_one(guids[r as usize]));
            }
        }
    }

    fn get(&self, Guid(g): Guid) -> Option<u32> {
        self.rows.find(self.hasher.hash_one(g), |&r| self.guids[r as usize] == g).copied()
    }

    fn len(&self) -> usize {
        self.rows.len()
    }

    fn reserve(&mut self, rows: usize) {
        self.guids.reserve(rows);
        let (guids, hasher) = (&self.guids, &self.hasher);
        self.rows.reserve(rows, |&r| hasher.hash_one(guids[r as usize]));
    }
}

impl Identities {
    /// The home id of the guest with this local id, else this UPN, as
    /// [`normalize_id`] writes it (a GUID in lower case, hyphenated).
    pub fn home_id(&self, local_id: Option<&str>, upn: Option<&str>) -> Option<TargetStr<'_>> {
        local_id
            .and_then(|l| match Guid::parse(l) {
                Some(g) => self.by_local_guid.get(g),
                None => self.by_local_id.get(&normalize_id(l)).copied(),
            })
            .or_else(|| upn.and_then(|u| self.by_upn.get(&u.trim().to_ascii_lowercase()).copied()))
            .map(|at| match self.other_homes.get(&at) {
                Some(text) => TargetStr::Text(text),
                None => TargetStr::Id(Guid(self.homes[at as usize]).hyphenated()),
            })
    }

    /// Adds the next row's home id (`text`, trimmed and not empty).
    fn push_home(&mut self, text: &str, at: u32) {
        match Guid::parse(text) {
            Some(Guid(g)) => self.homes.push(g),
            None => {
                self.homes.push(0);
                self.other_homes.insert(at, normalize_id(text).into());
            }
        }
    }

    pub fn len(&self) -> usize {
        (self.by_local_guid.len() + self.by_local_id.len()).max(self.by_upn.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

pub fn load_identities(path: &Path) -> Result<Identities> {
    use std::io::BufRead as _;
    // Read as it streams (the file of a million guests is 74 MB), as UTF-8
    // whatever Windows wrote it in.
    let file = std::fs::File::open(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let size = file.metadata().map_or(0, |m| m.len());
    let mut input = std::io::BufReader::with_capacity(256 << 10, file);
    let start = input.fill_buf().with_context(|| format!("{}: cannot read", path.display()))?;
    // The rows the file holds, as many as its first lines foretell: the
    // maps are made that large at once, not doubled their way up (each
    // doubling held the old table and the new).
    let rows = (size as u128 * memchr::memchr_iter(b'\n', start).count() as u128 / start.len().max(1) as u128)
        .min(1 << 26) as usize;
    let input =
        crate::files::as_utf8(Box::new(input)).with_context(|| format!("{}: cannot read", path.display()))?;
    let mut r = csv::Reader::from_reader(input);
    let h = r.headers().with_context(|| format!("{}: cannot read the CSV header", path.display()))?.clone();
    let home = header_index(&h, &["homeuserid", "originuserid"]).ok_or_else(|| {
        anyhow::anyhow!("{}: an identities CSV needs a `home_user_id` column", path.display())
    })?;
    let local = header_index(&h, &["localuserid", "id", "userid"]);
    let upn = header_index(&h, &["userprincipalname", "upn"]);
    if local.is_none() && upn.is_none() {
        bail!("{}: an identities CSV needs `local_user_id` or `user_principal_name`", path.display());
    }
    let mut ids = Identities::default();
    ids.homes.reserve(rows);
    ids.by_local_guid.reserve(if local.is_some() { rows } else { 0 });
    if upn.is_some() {
        ids.by_upn.reserve(rows);
    }
    let mut rec = csv::StringRecord::new();
    for n in 0.. {
        let more = r.read_record(&mut rec).with_context(|| format!("{}: row {}", path.display(), n + 2))?;
        if !more {
            break;
        }
        let Some(h) = rec.get(home).map(str::trim).filter(|s| !s.is_empty()) else { continue };
        let at = u32::try_from(ids.homes.len())
            .map_err(|_| anyhow::anyhow!("{}: more than {} rows", path.display(), u32::MAX))?;
        ids.push_home(h, at);
        if let Some(column) = local {
            let l = rec.get(column).map(str::trim).filter(|s| !s.is_empty());
            let guid = l.and_then(Guid::parse);
            // A row of each, in `homes`' order.
            ids.by_local_guid.push(guid);
            if let (Some(l), None) = (l, guid) {
                ids.by_local_id.insert(normalize_id(l), at);
            }
        }
        if let Some(u) = upn.and_then(|i| rec.get(i)).map(str::trim).filter(|s| !s.is_empty()) {
            ids.by_upn.insert(u.to_ascii_lowercase(), at);
        }
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_groups_close_over_nested_groups_and_json_pages_name_their_group() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("groups.csv");
        std::fs::write(&csv, "group_id,member_id\nAAAA0001-0000-4000-8000-000000000001,aaaa0002-0000-4000-8000-000000000002\naaaa0002-0000-4000-8000-000000000002,u1\n").unwrap();
        let json = dir.path().join("members.json");
        std::fs::write(&json, r##"{"@odata.context":"https://graph.microsoft.com/v1.0/$metadata#groups('bbbb0001-0000-4000-8000-000000000001')/transitiveMembers","value":[{"@odata.type":"#microsoft.graph.user","id":"u2"}]}"##).unwrap();
        let g = load_groups(&[csv, json]).unwrap();
        assert!(g.has_member("aaaa0001-0000-4000-8000-000000000001", "u1"), "nested membership");
        assert!(g.has_member("AAAA0002-0000-4000-8000-000000000002", "u1"));
        assert!(g.has_member("bbbb0001-0000-4000-8000-000000000001", "u2"));
        assert!(!g.has_member("bbbb0001-0000-4000-8000-000000000001", "u1"));
        assert_eq!(g.described.len(), 3);
    }

    #[test]
    fn a_deep_chain_and_a_cycle_of_nested_groups_close_in_linear_space() {
        // group i holds group i+1 and user i; the last group holds the first.
        let n = 20_000;
        let mut direct: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for i in 0..n {
            let members = direct.entry(format!("g{i}")).or_default();
            members.insert(format!("g{}", (i + 1) % n));
            members.insert(format!("u{i}"));
        }
        let g = Groups::from_direct(direct);
        assert!(g.has_member("g0", &format!("u{}", n - 1)));
        assert!(g.has_member(&format!("g{}", n - 1), "u0"), "through the cycle");
        assert!(!g.has_member("g0", "stranger"));
        // One closure per group asked about, not per member.
        assert_eq!(g.closed.lock().unwrap().len(), 2);
    }

    #[test]
    fn identities_by_local_id_or_upn() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ids.csv");
        std::fs::write(&p, "local_user_id,user_principal_name,home_user_id\nC1D2E3F4-A5B6-4C7D-8E9F-0A1B2C3D4E5F,Ann@x.example,h1\n,bob@x.example,h2\n").unwrap();
        let ids = load_identities(&p).unwrap();
        assert_eq!(ids.home_id(Some("c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f"), None).as_deref(), Some("h1"));
        assert_eq!(ids.home_id(None, Some("BOB@x.example")).as_deref(), Some("h2"));
        assert_eq!(ids.home_id(Some("zz"), None).as_deref(), None);
    }

    #[test]
    fn a_local_id_given_twice_maps_to_its_last_row() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ids.csv");
        std::fs::write(
            &p,
            "local_user_id,home_user_id\n\
             a0000000-0000-4000-8000-000000000001,h1\n\
             guest#EXT#,h2\n\
             ,h-without-local\n\
             A0000000-0000-4000-8000-000000000001,h3\n\
             00000000-0000-0000-0000-000000000000,h4\n",
        )
        .unwrap();
        let ids = load_identities(&p).unwrap();
        assert_eq!(ids.home_id(Some("a0000000-0000-4000-8000-000000000001"), None).as_deref(), Some("h3"));
        assert_eq!(ids.home_id(Some("guest#EXT#"), None).as_deref(), Some("h2"));
        assert_eq!(ids.home_id(Some("00000000-0000-0000-0000-000000000000"), None).as_deref(), Some("h4"));
        assert_eq!(ids.home_id(Some("b0000000-0000-4000-8000-000000000001"), None).as_deref(), None);
        assert_eq!(ids.len(), 3);
    }

    /// What Windows PowerShell 5.1's `>` and `Out-File` write (UTF-16
    /// with a byte order mark), and UTF-16 without one.
    #[test]
    fn identities_and_groups_saved_as_utf16_read_as_their_text() {
        let dir = tempfile::tempdir().unwrap();
        let le = |text: &str| -> Vec<u8> {
            [0xFF, 0xFE].into_iter().chain(text.encode_utf16().flat_map(u16::to_le_bytes)).collect()
        };
        let ids = dir.path().join("ids.csv");
        std::fs::write(&ids, le("local_user_id,home_user_id\nC1D2E3F4-A5B6-4C7D-8E9F-0A1B2C3D4E5F,h1\n"))
            .unwrap();
        let ids = load_identities(&ids).unwrap();
        assert_eq!(ids.home_id(Some("c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f"), None).as_deref(), Some("h1"));
        let members = dir.path().join("members.json");
        let page = r##"{"@odata.context":"https://graph.microsoft.com/v1.0/$metadata#groups('bbbb0001-0000-4000-8000-000000000001')/transitiveMembers","value":[{"@odata.type":"#microsoft.graph.user","id":"u2"}]}"##;
        std::fs::write(&members, page.encode_utf16().flat_map(u16::to_be_bytes).collect::<Vec<u8>>())
            .unwrap();
        let g = load_groups(&[members]).unwrap();
        assert!(g.has_member("bbbb0001-0000-4000-8000-000000000001", "u2"));
    }

    #[test]
    fn identities_read_as_their_ids_normalized_in_any_spelling_after_a_byte_order_mark() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ids.csv");
        let csv = "\u{feff}local_user_id,home_user_id\n\
                   {C1D2E3F4-A5B6-4C7D-8E9F-0A1B2C3D4E5F}, AAAA0001-0000-4000-8000-00000000000A \n\
                   Guest#EXT#,{bbbb0001-0000-4000-8000-00000000000b}\n\
                   c0000000-0000-4000-8000-000000000001, Not-A-Guid \n";
        std::fs::write(&p, csv).unwrap();
        let ids = load_identities(&p).unwrap();
        assert_eq!(ids.len(), 3);
        for local in ["c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f", " {C1D2E3F4-A5B6-4C7D-8E9F-0A1B2C3D4E5F}"] {
            assert_eq!(
                ids.home_id(Some(local), None).as_deref(),
                Some("aaaa0001-0000-4000-8000-00000000000a"),
                "{local}"
            );
        }
        assert_eq!(
            ids.home_id(Some(" Guest#EXT# "), None).as_deref(),
            Some("bbbb0001-0000-4000-8000-00000000000b")
        );
        assert_eq!(
            ids.home_id(Some("C0000000-0000-4000-8000-000000000001"), None).as_deref(),
            Some("Not-A-Guid")
        );
        assert_eq!(ids.home_id(Some("guest#ext#"), None).as_deref(), None, "other ids keep their case");
    }
}
