//! Loading a policy from what admins actually have: a combined
//! policy-as-code document, the Graph responses of `/default` and
//! `/partners` (one page or several) in a directory, or the folder
//! EntraExporter writes (`Policies/CrossTenantAccessPolicy/{Default,Partners}`).
//!
//! Every JSON document is classified by its content, never its name, so
//! any of these layouts (and mixes of them) load the same way.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context as _, Result};
use serde::de::DeserializeOwned;
use serde_json::Value;

type Map = serde_json::Map<String, Value>;

use super::model::{is_ignorable_key, DefaultConfig, PartnerConfig, Policy, Section, Settings};
use crate::model::Guid;

/// Problems that make a policy unusable for evaluation but that `policy
/// check` reports alongside the rest.
pub type LoadErrors = Vec<String>;

/// Loads `path` (a file, a directory, or `-` for stdin).
///
/// Each file is read as a stream, never whole: a proposal naming a million
/// users is a 128 MB file, and its text held beside what it parses into
/// was the largest part of loading it.
pub fn load(path: &Path) -> Result<(Policy, LoadErrors)> {
    let mut b = Builder {
        policy: Policy { source: path.display().to_string(), ..Policy::default() },
        errors: vec![],
    };
    if path.as_os_str() == "-" {
        let stdin = crate::files::as_utf8(Box::new(std::io::BufReader::new(std::io::stdin())))
            .context("<stdin>: cannot read")?;
        b.file("<stdin>", stdin)?;
    } else if path.is_dir() {
        let found: Vec<PathBuf> = crate::files::files_under(path)?
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("json")))
            .collect();
        if found.is_empty() {
            bail!("{}: no .json files in the directory", path.display());
        }
        for f in found {
            b.file(&f.display().to_string(), crate::files::open_as_utf8(&f)?)?;
        }
    } else {
        b.file(&path.display().to_string(), crate::files::open_as_utf8(path)?)?;
    }
    Ok((b.policy, b.errors))
}

/// Skips the byte order marks Windows tools put before a document (any
/// number of them, as trimming the text did).
fn skip_byte_order_marks(r: &mut impl std::io::BufRead) -> std::io::Result<()> {
    const BOM: &[u8] = "\u{feff}".as_bytes();
    while r.fill_buf()?.starts_with(BOM) {
        r.consume(BOM.len());
    }
    Ok(())
}

/// A document as read, in Graph's spelling ([`graph_spelling`]), its
/// partner lists made partner configurations element by element as they
/// are read: a proposal naming a million users is some 500 MB as one JSON
/// value, and a partner at a time it is the largest partner's.
enum Read {
    /// A top-level array (the partners of a Graph response): each element
    /// made a partner configuration.
    Array(Vec<Partner>),
    /// A top-level object. A `partners` or `value` array read as it came is
    /// `null` here (the key keeps its place) and its partners are in
    /// [`Lists`].
    Object(Map, Lists),
    /// A number, string, boolean or null.
    Other,
}

/// A partner configuration made from one element of a list, with where it
/// is (for warnings), or why it could not be: kept until the document's
/// turn comes, so that errors come in the order reading the whole document
/// first gave.
type Partner = Result<(PartnerConfig, String)>;

/// The `partners` and `value` arrays of a top-level object, as partners.
#[derive(Default)]
struct Lists {
    partners: Option<Vec<Partner>>,
    value: Option<Vec<Partner>>,
}

/// Reads document `name` from `text`, streaming its partner lists ([`Read`]).
#[cfg(test)]
fn read(name: &str, text: &str) -> serde_json::Result<Read> {
    read_from(name, serde_json::Deserializer::from_str(text))
}

/// Reads document `name` from a JSON stream ([`Read`]).
fn read_from<'de, R: serde_json::de::Read<'de>>(
    name: &str,
    mut de: serde_json::Deserializer<R>,
) -> serde_json::Result<Read> {
    let doc = serde::de::DeserializeSeed::deserialize(DocSeed { name }, &mut de)?;
    de.end()?;
    Ok(doc)
}

/// A JSON error in document `name`, with the hint the usual cause needs.
fn invalid_json(name: &str, e: serde_json::Error) -> anyhow::Error {
    if e.is_io() {
        return anyhow::anyhow!("{name}: cannot read: {e}");
    }
    let hint = if e.to_string().contains("trailing comma") {
        " (documentation examples carry trailing commas that Graph itself never sends)"
    } else {
        ""
    };
    anyhow::anyhow!("{name}: line {} column {}: invalid JSON: {e}{hint}", e.line(), e.column())
}

/// One element of a partner list, `at` naming it in errors.
fn partner(v: Value, at: &str) -> Partner {
    if !v.get("tenantId").is_some_and(|t| t.is_string()) {
        bail!("{at}: a partner configuration needs a `tenantId`");
    }
    Ok((partner_config(v, at)?, at.to_string()))
}

/// Reads the whole document ([`Read`]).
struct DocSeed<'a> {
    name: &'a str,
}

impl<'de> serde::de::DeserializeSeed<'de> for DocSeed<'_> {
    type Value = Read;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> std::result::Result<Read, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for DocSeed<'_> {
    type Value = Read;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON document")
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> std::result::Result<Read, A::Error> {
        let name = self.name;
        partners_as_read(seq, |i| format!("{name}: [{i}]")).map(Read::Array)
    }
    /// As [`graph_spelling`] spells a top-level object, with its partner
    /// lists read as they come. In the same two steps: a key repeated
    /// letter for letter keeps its first place and its last value (as a
    /// JSON value's map does), then keys are respelled in that order.
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> std::result::Result<Read, A::Error> {
        let mut entries = Entries::default();
        while let Some(k) = map.next_key::<String>()? {
            let key = graph_key(&k);
            let value = if key == "partners" || key == "value" {
                let name = self.name;
                map.next_value_seed(ListSeed { at: |i| format!("{name}: {key}[{i}]") })?
            } else {
                List::Other(map.next_value_seed(Spelled::under(&k))?)
            };
            entries.insert(k, value);
        }
        let mut out = Map::new();
        let mut lists = Lists::default();
        let mut extra = Map::new();
        for (k, value) in entries.list {
            if k == "AdditionalProperties" {
                if let List::Other(Value::Object(inner)) = value {
                    extra = inner;
                }
                continue;
            }
            let key = graph_key(&k);
            let (value, partners) = match value {
                List::Partners(partners) => (Value::Null, Some(partners)),
                List::Other(v) => (v, None),
            };
            match key.as_str() {
                "partners" => lists.partners = partners,
                "value" => lists.value = partners,
                _ => {}
            }
            out.insert(key, value);
        }
        for (k, v) in extra {
            out.entry(graph_key(&k)).or_insert(v);
        }
        Ok(Read::Object(out, lists))
    }
    fn visit_bool<E>(self, _: bool) -> std::result::Result<Read, E> {
        Ok(Read::Other)
    }
    fn visit_i64<E>(self, _: i64) -> std::result::Result<Read, E> {
        Ok(Read::Other)
    }
    fn visit_u64<E>(self, _: u64) -> std::result::Result<Read, E> {
        Ok(Read::Other)
    }
    fn visit_f64<E>(self, _: f64) -> std::result::Result<Read, E> {
        Ok(Read::Other)
    }
    fn visit_str<E>(self, _: &str) -> std::result::Result<Read, E> {
        Ok(Read::Other)
    }
    fn visit_unit<E>(self) -> std::result::Result<Read, E> {
        Ok(Read::Other)
    }
}

/// The elements of a list already read whole, made partners one at a time
/// as they are taken (`at`: an element's name).
fn listed(items: Vec<Value>, at: impl Fn(usize) -> String) -> impl Iterator<Item = Partner> {
    items.into_iter().enumerate().map(move |(i, v)| partner(v, &at(i)))
}

/// Each element of `seq` made a partner as it is read (`at`: its name).
fn partners_as_read<'de, A: serde::de::SeqAccess<'de>>(
    mut seq: A,
    at: impl Fn(usize) -> String,
) -> std::result::Result<Vec<Partner>, A::Error> {
    let mut partners = Vec::new();
    while let Some(v) = seq.next_element_seed(Spelled::GRAPH)? {
        partners.push(partner(v, &at(partners.len())));
    }
    Ok(partners)
}

/// A top-level `partners` or `value`: partners when it is an array, else
/// the value as it is.
enum List {
    Partners(Vec<Partner>),
    Other(Value),
}

struct ListSeed<F> {
    at: F,
}

impl<'de, F: Fn(usize) -> String> serde::de::DeserializeSeed<'de> for ListSeed<F> {
    type Value = List;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> std::result::Result<List, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, F: Fn(usize) -> String> serde::de::Visitor<'de> for ListSeed<F> {
    type Value = List;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> std::result::Result<List, A::Error> {
        partners_as_read(seq, self.at).map(List::Partners)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> std::result::Result<List, A::Error> {
        serde::de::Visitor::visit_map(Spelled::GRAPH, map).map(List::Other)
    }
    fn visit_bool<E>(self, v: bool) -> std::result::Result<List, E> {
        Ok(List::Other(Value::from(v)))
    }
    fn visit_i64<E>(self, v: i64) -> std::result::Result<List, E> {
        Ok(List::Other(Value::from(v)))
    }
    fn visit_u64<E>(self, v: u64) -> std::result::Result<List, E> {
        Ok(List::Other(Value::from(v)))
    }
    fn visit_f64<E>(self, v: f64) -> std::result::Result<List, E> {
        Ok(List::Other(Value::from(v)))
    }
    fn visit_str<E>(self, v: &str) -> std::result::Result<List, E> {
        Ok(List::Other(Value::from(v)))
    }
    fn visit_unit<E>(self) -> std::result::Result<List, E> {
        Ok(List::Other(Value::Null))
    }
}

/// Every key the policy documents use, in Graph's spelling.
const KEYS: &[&str] = &[
    "default",
    "partners",
    "value",
    "allowedCloudEndpoints",
    "tenantId",
    "isServiceDefault",
    "isServiceProvider",
    "isInMultiTenantOrganization",
    "b2bCollaborationInbound",
    "b2bCollaborationOutbound",
    "b2bDirectConnectInbound",
    "b2bDirectConnectOutbound",
    "inboundTrust",
    "isMfaAccepted",
    "isCompliantDeviceAccepted",
    "isHybridAzureADJoinedDeviceAccepted",
    "automaticUserConsentSettings",
    "inboundAllowed",
    "outboundAllowed",
    "tenantRestrictions",
    "devices",
    "invitationRedemptionIdentityProviderConfiguration",
    "usersAndGroups",
    "applications",
    "accessType",
    "targets",
    "target",
    "targetType",
    "displayName",
    "id",
];

/// `k` in Graph's spelling when it is a key the policy documents use
/// (matched ignoring case), else as it is.
pub(crate) fn graph_key(k: &str) -> String {
    into_graph_key(k.to_string())
}

/// [`graph_key`] of a key already owned.
fn into_graph_key(k: String) -> String {
    match KEYS.iter().find(|c| c.eq_ignore_ascii_case(&k)) {
        Some(c) if **c != k => c.to_string(),
        _ => k,
    }
}

/// The Graph PowerShell SDK's `ConvertTo-Json` writes PascalCase keys
/// (`B2BCollaborationInbound`, `IsHybridAzureAdJoinedDeviceAccepted`) and
/// keeps what its model does not know in `AdditionalProperties`. Known keys
/// are matched ignoring case and respelled as Graph spelled them; the
/// contents of `AdditionalProperties` join their parent object.
pub(crate) fn graph_spelling(v: Value) -> Value {
    match v {
        Value::Array(a) => Value::Array(a.into_iter().map(graph_spelling).collect()),
        Value::Object(m) => Value::Object(respelled(m.into_iter().map(|(k, v)| {
            let v = match v {
                Value::Object(inner) if k == "AdditionalProperties" => {
                    Value::Object(inner.into_iter().map(|(k, v)| (k, graph_spelling(v))).collect())
                }
                v => graph_spelling(v),
            };
            (k, v)
        }))),
        other => other,
    }
}

/// An object's entries, their values already in Graph's spelling (and an
/// `AdditionalProperties` object's keys as they were), in Graph's
/// spelling: keys respelled in order, a key respelled onto an earlier one
/// taking its place with the later value, then `AdditionalProperties`'
/// entries added where their key is not taken.
fn respelled(entries: impl IntoIterator<Item = (String, Value)>) -> Map {
    let entries = entries.into_iter();
    let mut out = Map::with_capacity(entries.size_hint().0);
    let mut extra = Vec::new();
    for (k, v) in entries {
        if k == "AdditionalProperties" {
            if let Value::Object(inner) = v {
                extra.extend(inner);
            }
            continue;
        }
        out.insert(into_graph_key(k), v);
    }
    for (k, v) in extra {
        out.entry(into_graph_key(k)).or_insert(v);
    }
    out
}

/// Reads a JSON value into what [`graph_spelling`] makes of it, without
/// the value as written beside it: a partner naming a million users is
/// some 100 MB as a JSON value, and was twice that while it was respelled.
#[derive(Clone, Copy)]
struct Spelled {
    /// False for the value of an `AdditionalProperties` key, whose keys
    /// its parent respells as they join it.
    respell: bool,
}

impl Spelled {
    const GRAPH: Spelled = Spelled { respell: true };

    /// How to read the value of key `k` of an object read with `self`.
    fn under(k: &str) -> Spelled {
        Spelled { respell: k != "AdditionalProperties" }
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for Spelled {
    type Value = Value;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> std::result::Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Spelled {
    type Value = Value;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any valid JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> std::result::Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> std::result::Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> std::result::Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> std::result::Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_str<E>(self, v: &str) -> std::result::Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> std::result::Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> std::result::Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> std::result::Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> std::result::Result<Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(v) = seq.next_element_seed(Spelled::GRAPH)? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }
    /// A key repeated letter for letter keeps its first place and its last
    /// value, as a JSON value's map does; then [`respelled`].
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> std::result::Result<Value, A::Error> {
        let mut entries = Entries::default();
        while let Some(k) = map.next_key::<String>()? {
            let read = if self.respell { Spelled::under(&k) } else { Spelled::GRAPH };
            let v = map.next_value_seed(read)?;
            entries.insert(k, v);
        }
        Ok(Value::Object(if self.respell {
            respelled(entries.list)
        } else {
            entries.list.into_iter().collect()
        }))
    }
}

/// An object's entries as read, a key repeated letter for letter keeping
/// its first place and its last value. Most objects have a few keys, found
/// by looking; past [`Entries::LOOKED`] a table finds them, so that no
/// object, however many keys it has, costs their square.
struct Entries<V> {
    list: Vec<(String, V)>,
    places: HashMap<String, usize>,
}

impl<V> Default for Entries<V> {
    fn default() -> Self {
        Entries { list: Vec::new(), places: HashMap::new() }
    }
}

impl<V> Entries<V> {
    const LOOKED: usize = 16;

    fn insert(&mut self, k: String, v: V) {
        let found = if self.list.len() <= Self::LOOKED {
            self.list.iter().position(|(seen, _)| *seen == k)
        } else {
            if self.places.is_empty() {
                self.places = self.list.iter().enumerate().map(|(i, (k, _))| (k.clone(), i)).collect();
            }
            self.places.get(&k).copied()
        };
        match found {
            Some(i) => self.list[i].1 = v,
            None => {
                if !self.places.is_empty() {
                    self.places.insert(k.clone(), self.list.len());
                }
                self.list.push((k, v));
            }
        }
    }
}

/// Loads and refuses a policy with structural errors (for every command
/// but `policy check`, which reports them).
pub fn load_valid(path: &Path) -> Result<Policy> {
    let (p, errors) = load(path)?;
    if !errors.is_empty() {
        bail!(
            "{}: the policy has errors ({}); `xtenant policy check {}` lists them",
            path.display(),
            errors.join("; "),
            path.display()
        );
    }
    Ok(p)
}

struct Builder {
    policy: Policy,
    errors: LoadErrors,
}

pub(crate) fn parse<T: DeserializeOwned>(v: Value, at: &str) -> Result<T> {
    serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { at.to_string() } else { format!("{at}.{path}") };
        anyhow::anyhow!("{path}: {}", e.into_inner())
    })
}

fn has_section_keys(m: &serde_json::Map<String, Value>) -> bool {
    Section::ALL.iter().any(|s| m.contains_key(s.name())) || m.contains_key("inboundTrust")
}

impl Builder {
    /// Reads document `name` from `r` and adds what it holds.
    fn file(&mut self, name: &str, mut r: impl std::io::BufRead) -> Result<()> {
        skip_byte_order_marks(&mut r).with_context(|| format!("{name}: cannot read"))?;
        // serde_json reads a byte at a time; std reads a byte from a
        // `BufReader`'s buffer without a call through the reader (which
        // `r`, a trait object, would cost a byte: 0.7 s on a 128 MB policy).
        let r = std::io::BufReader::with_capacity(1 << 16, r);
        let doc =
            read_from(name, serde_json::Deserializer::from_reader(r)).map_err(|e| invalid_json(name, e))?;
        self.document(name, doc)
    }

    fn document(&mut self, name: &str, doc: Read) -> Result<()> {
        match doc {
            Read::Array(partners) => self.partners(partners),
            Read::Object(mut m, mut lists) => {
                if let Some(ep) = m.remove("allowedCloudEndpoints") {
                    let ep: Vec<String> = parse(ep, &format!("{name}: allowedCloudEndpoints"))?;
                    self.policy.allowed_cloud_endpoints.extend(ep);
                }
                let combined = m.contains_key("default") || m.contains_key("partners");
                if combined {
                    if let Some(d) = m.remove("default").filter(|d| !d.is_null()) {
                        self.default(d, &format!("{name}: default"))?;
                    }
                    if let Some(p) = m.remove("partners") {
                        if let Some(partners) = lists.partners.take() {
                            self.partners(partners)?;
                        } else {
                            let p = match p {
                                Value::Object(mut o) if o.contains_key("value") => {
                                    o.remove("value").unwrap_or_default()
                                }
                                other => other,
                            };
                            match p {
                                Value::Array(items) => {
                                    self.partners(listed(items, |i| format!("{name}: partners[{i}]")))?
                                }
                                Value::Null => {}
                                _ => bail!("{name}: partners: expected a list of partner configurations"),
                            }
                        }
                    }
                    for k in m.keys().filter(|k| !is_ignorable_key(k)) {
                        self.policy.warnings.push(format!("{name}: field `{k}` is not known; ignored"));
                    }
                    return Ok(());
                }
                let value = m.remove("value");
                if let Some(partners) = lists.value.take() {
                    return self.partners(partners);
                }
                if let Some(Value::Array(items)) = value {
                    return self.partners(listed(items, |i| format!("{name}: value[{i}]")));
                }
                if m.contains_key("tenantId") {
                    return self.partner(partner(Value::Object(m), name));
                }
                if m.contains_key("isServiceDefault") || has_section_keys(&m) {
                    return self.default(Value::Object(m), name);
                }
                if m.contains_key("displayName") || m.is_empty() {
                    // The policy root without $expand: nothing to evaluate.
                    return Ok(());
                }
                let keys: Vec<&String> = m.keys().take(5).collect();
                bail!("{name}: not a cross-tenant access policy document (it has keys {keys:?}); expected the Graph response of /policies/crossTenantAccessPolicy/default or /partners, or {{\"default\": ..., \"partners\": [...]}}")
            }
            Read::Other => {
                bail!("{name}: not a cross-tenant access policy document: expected a JSON object or array")
            }
        }
    }

    fn default(&mut self, v: Value, at: &str) -> Result<()> {
        let d = default_config(v, at)?;
        for k in d.extra.keys().filter(|k| !is_ignorable_key(k)) {
            self.policy
                .warnings
                .push(format!("{at}: section `{k}` is not known to this version; kept and ignored"));
        }
        if self.policy.default.is_some() {
            self.errors.push(format!("{at}: a second default configuration"));
        }
        self.policy.default = Some(Arc::new(d));
        Ok(())
    }

    /// Adds partners in order, stopping at the first that could not be made.
    fn partners(&mut self, partners: impl IntoIterator<Item = Partner>) -> Result<()> {
        partners.into_iter().try_for_each(|p| self.partner(p))
    }

    /// Adds a partner made by [`partner`] (its error, if it could not be).
    fn partner(&mut self, p: Partner) -> Result<()> {
        let (p, at) = p?;
        for k in p.extra.keys().filter(|k| !is_ignorable_key(k)) {
            self.policy
                .warnings
                .push(format!("{at}: section `{k}` is not known to this version; kept and ignored"));
        }
        if self.policy.partners.contains_key(&p.tenant_id) {
            self.errors.push(format!("{at}: partner {} is configured twice", p.tenant_id));
            return Ok(());
        }
        self.policy.partners.insert(p.tenant_id, Arc::new(p));
        Ok(())
    }
}

/// A policy in our combined format `{"allowedCloudEndpoints", "default",
/// "partners"}` (stable key order, partners sorted by tenant), to serialize
/// straight to a writer: a proposal can name hundreds of thousands of
/// users, and a JSON `Value` of them costs some 500 bytes each.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Combined<'a> {
    allowed_cloud_endpoints: &'a [String],
    default: std::borrow::Cow<'a, DefaultConfig>,
    partners: Vec<&'a PartnerConfig>,
}

impl<'a> Combined<'a> {
    pub fn of(p: &'a Policy) -> Self {
        Combined {
            allowed_cloud_endpoints: &p.allowed_cloud_endpoints,
            default: p.default.as_deref().map_or_else(
                || std::borrow::Cow::Owned(super::model::service_default()),
                std::borrow::Cow::Borrowed,
            ),
            partners: p.partners.values().map(|p| &**p).collect(),
        }
    }
}

/// Removes `key` and parses it; `null` and absent are `None`.
fn take<T: DeserializeOwned>(m: &mut Map, key: &str, at: &str) -> Result<Option<T>> {
    match m.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => parse(v, &format!("{at}.{key}")).map(Some),
    }
}

fn object(v: Value, at: &str) -> Result<Map> {
    match v {
        Value::Object(m) => Ok(m),
        other => bail!("{at}: expected an object, found {}", kind(&other)),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn settings(m: &mut Map, at: &str) -> Result<Settings> {
    Ok(Settings {
        b2b_collaboration_inbound: take(m, "b2bCollaborationInbound", at)?,
        b2b_collaboration_outbound: take(m, "b2bCollaborationOutbound", at)?,
        b2b_direct_connect_inbound: take(m, "b2bDirectConnectInbound", at)?,
        b2b_direct_connect_outbound: take(m, "b2bDirectConnectOutbound", at)?,
        inbound_trust: take(m, "inboundTrust", at)?,
        automatic_user_consent_settings: take(m, "automaticUserConsentSettings", at)?,
        tenant_restrictions: take(m, "tenantRestrictions", at)?,
    })
}

fn default_config(v: Value, at: &str) -> Result<DefaultConfig> {
    let mut m = object(v, at)?;
    Ok(DefaultConfig {
        is_service_default: take(&mut m, "isServiceDefault", at)?,
        settings: settings(&mut m, at)?,
        invitation_redemption_identity_provider_configuration: take(
            &mut m,
            "invitationRedemptionIdentityProviderConfiguration",
            at,
        )?,
        extra: m.into_iter().collect(),
    })
}

fn partner_config(v: Value, at: &str) -> Result<PartnerConfig> {
    let mut m = object(v, at)?;
    let tenant_id: Guid = take(&mut m, "tenantId", at)?
        .ok_or_else(|| anyhow::anyhow!("{at}: a partner configuration needs a `tenantId`"))?;
    Ok(PartnerConfig {
        tenant_id,
        is_service_provider: take(&mut m, "isServiceProvider", at)?,
        is_in_multi_tenant_organization: take(&mut m, "isInMultiTenantOrganization", at)?,
        settings: settings(&mut m, at)?,
        cloud: take(&mut m, "x-xtenant-cloud", at)?,
        extra: m.into_iter().collect(),
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// What loading did before partner lists were read as they came: the
    /// whole document as one JSON value, then its lists (the oracle).
    fn read_whole(name: &str, text: &str) -> serde_json::Result<Read> {
        let v: Value = serde_json::from_str(text)?;
        Ok(match spelling_as_it_was(v) {
            Value::Array(items) => Read::Array(
                items.into_iter().enumerate().map(|(i, v)| partner(v, &format!("{name}: [{i}]"))).collect(),
            ),
            Value::Object(m) => Read::Object(m, Lists::default()),
            _ => Read::Other,
        })
    }

    /// [`graph_spelling`] as it was written before values were read into
    /// their spelling (the oracle).
    fn spelling_as_it_was(v: Value) -> Value {
        match v {
            Value::Array(a) => Value::Array(a.into_iter().map(spelling_as_it_was).collect()),
            Value::Object(m) => {
                let mut out = Map::new();
                let mut extra = Vec::new();
                for (k, v) in m {
                    if k == "AdditionalProperties" {
                        if let Value::Object(inner) = v {
                            extra.extend(inner);
                        }
                        continue;
                    }
                    let key = KEYS.iter().find(|c| c.eq_ignore_ascii_case(&k)).map_or(k, |c| c.to_string());
                    out.insert(key, spelling_as_it_was(v));
                }
                for (k, v) in extra {
                    let key = KEYS.iter().find(|c| c.eq_ignore_ascii_case(&k)).map_or(k, |c| c.to_string());
                    out.entry(key).or_insert_with(|| spelling_as_it_was(v));
                }
                Value::Object(out)
            }
            other => other,
        }
    }

    /// The policy, errors and warnings of `text` read with `read`, or the
    /// error's words.
    fn loaded(text: &str, read: fn(&str, &str) -> serde_json::Result<Read>) -> String {
        let mut b = Builder { policy: Policy::default(), errors: vec![] };
        match read("doc.json", text) {
            Err(e) => format!("invalid JSON at {}:{}: {e}", e.line(), e.column()),
            Ok(doc) => match b.document("doc.json", doc) {
                Err(e) => format!("error: {e:#}"),
                Ok(()) => format!("{:?}\n{:?}", b.policy, b.errors),
            },
        }
    }

    fn assert_same(text: &str) {
        assert_eq!(loaded(text, read), loaded(text, read_whole), "{text}");
    }

    #[test]
    fn every_fixture_policy_reads_as_the_whole_document_did() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = crate::files::files_under(&root.join("tests/fixtures/policies")).unwrap();
        files.extend(crate::files::files_under(&root.join("samples/policies")).unwrap());
        let json: Vec<_> = files.into_iter().filter(|f| f.extension().is_some_and(|e| e == "json")).collect();
        assert!(json.len() >= 10, "{json:?}");
        for f in json {
            assert_same(&std::fs::read_to_string(&f).unwrap());
        }
    }

    const PARTNER: &str = r#"{"tenantId": "9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d", "b2bCollaborationInbound": {"usersAndGroups": {"accessType": "allowed", "targets": [{"target": "AllUsers", "targetType": "user"}]}}}"#;

    /// Pieces of policy documents, right and wrong, in the shapes and
    /// spellings admins have.
    fn element() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(PARTNER.to_string()),
            Just(PARTNER.replace("9a8b", "0b0b")),
            Just(
                PARTNER
                    .replace("tenantId", "TenantId")
                    .replace("b2bCollaborationInbound", "B2BCollaborationInbound")
            ),
            Just(
                r#"{"AdditionalProperties": {"tenantId": "1b1b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d"}}"#
                    .to_string()
            ),
            Just(r#"{"displayName": "no tenant"}"#.to_string()),
            Just(r#"{"tenantId": 7}"#.to_string()),
            Just(PARTNER.replace(r#""allowed""#, r#""sometimes""#)),
            Just(r#"{"tenantId": "2c2c7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d", "newSection": {}}"#.to_string()),
            Just("3".to_string()),
        ]
    }

    fn list() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => proptest::collection::vec(element(), 0..4).prop_map(|e| format!("[{}]", e.join(", "))),
            1 => proptest::collection::vec(element(), 0..3).prop_map(|e| format!(r#"{{"value": [{}]}}"#, e.join(", "))),
            1 => Just("null".to_string()),
            1 => Just(r#""none""#.to_string()),
        ]
    }

    fn entry() -> impl Strategy<Value = String> {
        prop_oneof![
            3 => list().prop_map(|l| format!(r#""partners": {l}"#)),
            1 => list().prop_map(|l| format!(r#""Partners": {l}"#)),
            3 => list().prop_map(|l| format!(r#""value": {l}"#)),
            2 => Just(r#""default": {"isServiceDefault": false, "b2bCollaborationOutbound": {"applications": {"accessType": "blocked", "targets": [{"target": "AllApplications", "targetType": "application"}]}}}"#.to_string()),
            1 => Just(r#""default": null"#.to_string()),
            1 => Just(r#""allowedCloudEndpoints": ["microsoftonline.us"]"#.to_string()),
            1 => Just(r#""allowedCloudEndpoints": 5"#.to_string()),
            1 => Just(r#""tenantId": "3d3d7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d""#.to_string()),
            1 => Just(r#""isServiceDefault": true"#.to_string()),
            1 => Just(r#""displayName": "root""#.to_string()),
            1 => Just(r#""somethingNew": [1, 2]"#.to_string()),
            1 => list().prop_map(|l| format!(r#""AdditionalProperties": {{"partners": {l}, "extra": 1}}"#)),
        ]
    }

    fn document() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => proptest::collection::vec(entry(), 0..6).prop_map(|e| format!("{{{}}}", e.join(", "))),
            2 => list(),
            1 => Just("42".to_string()),
            1 => proptest::collection::vec(entry(), 1..4).prop_map(|e| format!("{{{},}}", e.join(", "))),
        ]
    }

    /// JSON texts whose objects repeat keys letter for letter and in other
    /// spellings, nest `AdditionalProperties` (in each other too), and
    /// have more keys than are found by looking.
    fn json_text() -> impl Strategy<Value = String> {
        let key = prop_oneof![
            3 => proptest::sample::select(vec![
                "AdditionalProperties", "additionalProperties", "targets", "Targets", "TARGETS",
                "tenantId", "TenantId", "target", "targetType", "TargetType", "x",
            ])
            .prop_map(String::from),
            2 => "[a-c][0-9]",
        ];
        let leaf =
            proptest::sample::select(vec!["1", "-7", "2.5", "\"s\"", "null", "true"]).prop_map(String::from);
        leaf.prop_recursive(4, 200, 40, move |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(","))),
                proptest::collection::vec((key.clone(), inner), 0..40).prop_map(|kv| {
                    let kv: Vec<String> = kv.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
                    format!("{{{}}}", kv.join(","))
                }),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]
        /// A value read into its spelling, from text or from a stream, and
        /// a value respelled once read are what respelling the value read
        /// whole gave.
        #[test]
        fn a_value_read_into_its_spelling_is_the_value_read_whole_then_respelled(text in json_text()) {
            use serde::de::DeserializeSeed;
            let whole = spelling_as_it_was(serde_json::from_str(&text).unwrap()).to_string();
            let from_text = Spelled::GRAPH.deserialize(&mut serde_json::Deserializer::from_str(&text)).unwrap();
            let from_stream =
                Spelled::GRAPH.deserialize(&mut serde_json::Deserializer::from_reader(text.as_bytes())).unwrap();
            prop_assert_eq!(&from_text.to_string(), &whole, "{}", text);
            prop_assert_eq!(&from_stream.to_string(), &whole, "{}", text);
            prop_assert_eq!(&graph_spelling(serde_json::from_str(&text).unwrap()).to_string(), &whole, "{}", text);
        }

        /// Reading partner lists as they come gives the policy, warnings,
        /// errors and error words reading the whole document first gave:
        /// keys in any order and spelling, repeated keys (the last wins),
        /// lists of partners right and wrong, lists that are not lists.
        #[test]
        fn a_document_reads_as_the_whole_document_did(text in document()) {
            prop_assert_eq!(loaded(&text, read), loaded(&text, read_whole), "{}", text);
        }
    }
}
