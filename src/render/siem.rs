//! SIEM sinks for `replay` findings: a stable id and a severity per
//! finding, Elastic Common Schema NDJSON, and ArcSight CEF lines.
//!
//! Times are the group's last sign-in (when the access at risk was last
//! used), never the time of the run, so the same input always gives the
//! same output and a SIEM can deduplicate on `finding_id`.

use std::borrow::Cow;
use std::io::Write;

use anyhow::Result;
use chrono::{DateTime, Utc};

use super::table::TypedCell;
use crate::analysis::replay::{Impact, ReplayRow};
use crate::model::Guid;

/// Findings worth sending: everything but unchanged.
fn is_finding(r: &ReplayRow) -> bool {
    r.impact != Impact::Unchanged
}

/// ECS 8.x documents, one per finding. ECS fields where ECS has them,
/// the rest under `xtenant.*` (custom fields, as ECS asks).
pub(crate) fn write_ecs(
    rows: impl IntoIterator<Item = ReplayRow>,
    tenant: Option<Guid>,
    w: &mut dyn Write,
) -> Result<()> {
    super::table::write_each_line(rows, ecs_line(tenant), w)
}

/// A row's ECS document as [`write_ecs`] writes it: nothing unless it is
/// a finding.
pub(crate) fn ecs_line(tenant: Option<Guid>) -> impl Fn(&ReplayRow, &mut Vec<u8>) + Sync {
    findings_as(tenant, ecs_document)
}

/// Writes a finding with `write`, and nothing for another row.
fn findings_as(
    tenant: Option<Guid>,
    write: fn(&ReplayRow, Option<Guid>, &mut Vec<u8>),
) -> impl Fn(&ReplayRow, &mut Vec<u8>) + Sync {
    move |r, w| {
        if is_finding(r) {
            write(r, tenant, w);
        }
    }
}

/// A finding's ECS document, written straight into bytes: the document
/// [`reference::ecs_document`] builds as a JSON value, nulls stripped, and
/// serde_json writes (a property test compares them, hostile text
/// included). Building the value made some forty strings and maps a row,
/// and stripping its nulls rebuilt every map: at a million findings, three
/// times the time of writing the same rows as CSV.
fn ecs_document(r: &ReplayRow, tenant: Option<Guid>, w: &mut Vec<u8>) {
    let a = &r.activity;
    let c = &a.counters;
    let time = |t: Option<DateTime<Utc>>| t.map_or(TypedCell::Null, TypedCell::Time);
    let mut d = JsonDocument::new(w);
    d.cell("@timestamp", time(c.last_seen));
    d.open("ecs");
    d.plain("version", &["8.11.0"]);
    d.close();
    d.open("event");
    d.plain("kind", &["alert"]);
    d.literal("category", r#"["iam"]"#);
    d.literal("type", r#"["info"]"#);
    d.plain("action", &["cross-tenant-access-", r.impact.as_str()]);
    d.cell("id", TypedCell::Hash(r.finding_hash()));
    d.plain("dataset", &["xtenant.replay"]);
    d.plain("provider", &["xtenant"]);
    d.cell("severity", TypedCell::Number(r.impact.severity().into()));
    d.cell("reason", text(Some(&r.reason)));
    d.cell("start", time(c.first_seen));
    d.cell("end", time(c.last_seen));
    d.close();
    let partner = a.partner_tenant_id.hyphenated();
    d.plain(
        "message",
        &[
            r.impact.as_str(),
            " ",
            a.direction.as_str(),
            " ",
            a.access_type.as_str(),
            " access of partner ",
            partner.as_str(),
            ": ",
            r.current.as_str(),
            " -> ",
            r.proposed.as_str(),
        ],
    );
    d.open("observer");
    d.plain("vendor", &["xtenant"]);
    d.plain("product", &["xtenant"]);
    d.plain("type", &["policy-replay"]);
    d.plain("version", &[env!("CARGO_PKG_VERSION")]);
    d.close();
    d.open("organization");
    d.cell("id", tenant.map_or(TypedCell::Null, TypedCell::Guid));
    d.close();
    d.open("user");
    d.cell("id", text(a.user_id.as_deref()));
    d.cell("name", text(a.user_principal_name.as_deref()));
    d.close();
    d.open("xtenant");
    d.cell("schema_version", TypedCell::Number(super::SCHEMA_VERSION.into()));
    d.plain("impact", &[r.impact.as_str()]);
    d.plain("severity_label", &[r.impact.severity_label()]);
    d.plain("direction", &[a.direction.as_str()]);
    d.plain("access_type", &[a.access_type.as_str()]);
    d.open("partner");
    d.cell("tenant_id", TypedCell::Guid(a.partner_tenant_id));
    d.cell("name", text(a.partner_tenant_name.as_deref()));
    d.close();
    for (key, id, name) in [("app", &a.app_id, &a.app_name), ("resource", &a.resource_id, &a.resource_name)] {
        d.open(key);
        d.cell("id", text(id.as_deref()));
        d.cell("name", text(name.as_deref()));
        d.close();
    }
    d.plain("current", &[r.current.as_str()]);
    d.plain("proposed", &[r.proposed.as_str()]);
    d.cell("current_reason", text(Some(&r.current_reason)));
    d.cell("calibration", text(r.calibration.as_deref()));
    d.cell("sign_ins", TypedCell::Number(c.sign_ins));
    d.cell("distinct_users", a.distinct_users.map_or(TypedCell::Null, TypedCell::Number));
    d.close();
    d.finish();
}

/// Optional text as a cell.
fn text(s: Option<&str>) -> TypedCell<'_> {
    s.map_or(TypedCell::Null, |s| TypedCell::Text(Cow::Borrowed(s)))
}

/// A JSON object written as its members come, in the order given, with
/// what ECS consumers treat as absent left out: a null member, and an
/// object nothing was written into (an object is taken back when it
/// closes empty). Keys are ours and need no escaping.
struct JsonDocument<'b> {
    buf: &'b mut Vec<u8>,
    /// The objects open, outermost first.
    open: Vec<Open>,
    /// The last time written, for the next ([`super::table::LastTime`]).
    times: super::table::LastTime,
}

/// An object of a [`JsonDocument`] being written.
struct Open {
    /// Where its member began (its comma, else its key): taken back to
    /// here if it closes empty.
    start: usize,
    /// Whether a member was written into it.
    written: bool,
    /// Whether its parent had a member before it: what the parent is again
    /// if it is taken back.
    parent_written: bool,
}

impl<'b> JsonDocument<'b> {
    /// Opens the document after what `buf` holds (the lines before it).
    fn new(buf: &'b mut Vec<u8>) -> JsonDocument<'b> {
        let start = buf.len();
        buf.push(b'{');
        JsonDocument {
            buf,
            open: vec![Open { start, written: false, parent_written: false }],
            times: super::table::LastTime::default(),
        }
    }

    /// Starts a member: the comma before it, its key and the colon.
    fn key(&mut self, key: &str) -> &mut Vec<u8> {
        debug_assert!(key.bytes().all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\'));
        if let Some(o) = self.open.last_mut() {
            if std::mem::replace(&mut o.written, true) {
                self.buf.push(b',');
            }
        }
        self.buf.push(b'"');
        self.buf.extend_from_slice(key.as_bytes());
        self.buf.extend_from_slice(b"\":");
        self.buf
    }

    /// A member whose value is `cell`; none when it is null.
    fn cell(&mut self, key: &str, cell: TypedCell<'_>) {
        if !matches!(cell, TypedCell::Null) {
            self.key(key);
            super::table::push_json_cell(self.buf, cell, &mut self.times);
        }
    }

    /// A string member of our own words, which need no escaping: `parts`
    /// joined.
    fn plain(&mut self, key: &str, parts: &[&str]) {
        let buf = self.key(key);
        buf.push(b'"');
        for part in parts {
            debug_assert!(part.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\'));
            buf.extend_from_slice(part.as_bytes());
        }
        buf.push(b'"');
    }

    /// A member whose value is JSON text of ours.
    fn literal(&mut self, key: &str, json: &str) {
        self.key(key).extend_from_slice(json.as_bytes());
    }

    /// Opens an object member; [`JsonDocument::close`] ends it.
    fn open(&mut self, key: &str) {
        let start = self.buf.len();
        let parent_written = self.open.last().is_some_and(|o| o.written);
        self.key(key).push(b'{');
        self.open.push(Open { start, written: false, parent_written });
    }

    /// Ends the object opened last; an empty one is taken back, with the
    /// comma before it.
    fn close(&mut self) {
        let Some(o) = self.open.pop() else { return };
        if o.written {
            self.buf.push(b'}');
            return;
        }
        self.buf.truncate(o.start);
        if let Some(parent) = self.open.last_mut() {
            parent.written = o.parent_written;
        }
    }

    /// Closes the document and ends its line.
    fn finish(mut self) {
        while self.open.len() > 1 {
            self.close();
        }
        self.buf.extend_from_slice(b"}\n");
    }
}

/// CEF header fields escape `\` and `|`; newlines cannot appear in a
/// header, so they become spaces; other hidden characters (NUL, ESC, bidi
/// overrides) are written as `\u{..}` text, escaped in turn.
fn push_cef_header(out: &mut Vec<u8>, s: &str) {
    push_cef_escaped(out, s, |c| match c {
        '\\' => Some("\\\\"),
        '|' => Some("\\|"),
        '\r' | '\n' => Some(" "),
        _ => None,
    })
}

/// CEF extension values escape `\` and `=`, and write newlines as `\n`
/// and `\r`; other hidden characters as `\u{..}` text, escaped in turn.
fn push_cef_value(out: &mut Vec<u8>, s: &str) {
    push_cef_escaped(out, s, |c| match c {
        '\\' => Some("\\\\"),
        '=' => Some("\\="),
        '\n' => Some("\\n"),
        '\r' => Some("\\r"),
        _ => None,
    })
}

/// `s` with each character `special` names written as it says and every
/// other hidden one as `\\u{..}`. Text of printable ASCII without the
/// specials (ids, most names) is copied as it is.
fn push_cef_escaped(out: &mut Vec<u8>, s: &str, special: impl Fn(char) -> Option<&'static str>) {
    if s.bytes().all(|b| (0x20..0x7f).contains(&b) && special(char::from(b)).is_none()) {
        out.extend_from_slice(s.as_bytes());
        return;
    }
    let mut utf8 = [0u8; 4];
    for c in s.chars() {
        match special(c) {
            Some(escaped) => out.extend_from_slice(escaped.as_bytes()),
            None if super::escape::hidden(c) => {
                // Into a Vec: writing cannot fail.
                let _ = write!(out, "\\\\u{{{:x}}}", c as u32);
            }
            None => out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes()),
        }
    }
}

/// One CEF:0 line per finding (ArcSight Common Event Format 25), for
/// syslog collectors and Sentinel's CEF connector.
pub(crate) fn write_cef(
    rows: impl IntoIterator<Item = ReplayRow>,
    tenant: Option<Guid>,
    w: &mut dyn Write,
) -> Result<()> {
    super::table::write_each_line(rows, cef_line(tenant), w)
}

/// A row's CEF line as [`write_cef`] writes it: nothing unless it is a
/// finding.
pub(crate) fn cef_line(tenant: Option<Guid>) -> impl Fn(&ReplayRow, &mut Vec<u8>) + Sync {
    findings_as(tenant, cef_event)
}

/// A finding's CEF line, written straight into bytes: the line
/// [`reference::cef_event`] formats from a string per field (a property
/// test compares them, hostile text included).
fn cef_event(r: &ReplayRow, tenant: Option<Guid>, w: &mut Vec<u8>) {
    let a = &r.activity;
    let c = &a.counters;
    let partner_id = a.partner_tenant_id.hyphenated();
    let partner = a.partner_tenant_name.as_deref().unwrap_or(partner_id.as_str());
    let impact = r.impact.as_str();
    w.extend_from_slice(b"CEF:0|xtenant|xtenant|");
    let header: [&[&str]; 3] = [
        &[env!("CARGO_PKG_VERSION")],
        &["xtenant-replay-", impact],
        &["Cross-tenant access ", impact, " under the proposed policy: ", partner],
    ];
    for field in header {
        for part in field {
            push_cef_header(w, part);
        }
        w.push(b'|');
    }
    w.extend_from_slice(itoa::Buffer::new().format(r.impact.severity()).as_bytes());
    w.push(b'|');
    let mut ext = Extension { w, first: true };
    let id = super::table::hex16(r.finding_hash());
    ext.field("externalId", &[std::str::from_utf8(&id).unwrap_or_default()]);
    let mut millis = itoa::Buffer::new();
    if let Some(t) = c.last_seen {
        let t = millis.format(t.timestamp_millis());
        ext.field("rt", &[t]);
        ext.field("end", &[t]);
    }
    if let Some(t) = c.first_seen {
        ext.field("start", &[millis.format(t.timestamp_millis())]);
    }
    ext.field("act", &[impact]);
    ext.field("cnt", &[itoa::Buffer::new().format(c.sign_ins)]);
    if let Some(u) = &a.user_principal_name {
        ext.field("suser", &[u]);
    }
    if let Some(u) = &a.user_id {
        ext.field("suid", &[u]);
    }
    // CEF's `app` is the application-layer protocol (HTTPS, SSH), not
    // an application's name: the app is the service the event targets.
    if let Some(app) = a.app_name.as_ref().or(a.app_id.as_ref()) {
        ext.field("destinationServiceName", &[app]);
    }
    if let Some(id) = &a.app_id {
        ext.field("flexString1Label", &["appId"]);
        ext.field("flexString1", &[id]);
    }
    let tenant = tenant.map(|t| t.hyphenated());
    if let Some(t) = &tenant {
        ext.field("deviceExternalId", &[t.as_str()]);
    }
    let partner_name = a.partner_tenant_name.as_deref();
    let resource = a.resource_name.as_deref().or(a.resource_id.as_deref());
    let custom: [(&str, Option<&[&str]>); 6] = [
        ("partnerTenantId", Some(&[partner_id.as_str()])),
        ("direction", Some(&[a.direction.as_str()])),
        ("accessType", Some(&[a.access_type.as_str()])),
        ("verdicts", Some(&[r.current.as_str(), " -> ", r.proposed.as_str()])),
        ("partnerName", partner_name.as_ref().map(std::slice::from_ref)),
        ("resource", resource.as_ref().map(std::slice::from_ref)),
    ];
    for ((label, value), (label_key, value_key)) in custom.into_iter().zip(CS) {
        if let Some(value) = value {
            ext.field(label_key, &[label]);
            ext.field(value_key, value);
        }
    }
    ext.field("reason", &[&r.reason]);
    w.push(b'\n');
}

/// A CEF extension being written: `key=value` pairs apart by spaces.
struct Extension<'b> {
    w: &'b mut Vec<u8>,
    first: bool,
}

impl Extension<'_> {
    /// A pair whose value is `parts` joined, escaped.
    fn field(&mut self, key: &str, parts: &[&str]) {
        if !std::mem::take(&mut self.first) {
            self.w.push(b' ');
        }
        self.w.extend_from_slice(key.as_bytes());
        self.w.push(b'=');
        for part in parts {
            push_cef_value(self.w, part);
        }
    }
}

/// CEF's custom string fields: (label key, value key).
const CS: [(&str, &str); 6] = [
    ("cs1Label", "cs1"),
    ("cs2Label", "cs2"),
    ("cs3Label", "cs3"),
    ("cs4Label", "cs4"),
    ("cs5Label", "cs5"),
    ("cs6Label", "cs6"),
];

/// The SIEM lines as they were first written, from a JSON value and a
/// string per field: what [`ecs_document`] and [`cef_event`] must write.
#[cfg(test)]
mod reference {
    use serde_json::{json, Value};

    use crate::analysis::replay::ReplayRow;
    use crate::model::{rfc3339, Guid};

    pub(super) fn ecs_document(r: &ReplayRow, tenant: Option<Guid>) -> Vec<u8> {
        let a = &r.activity;
        let doc = json!({
            "@timestamp": a.counters.last_seen.as_ref().map(rfc3339),
            "ecs": {"version": "8.11.0"},
            "event": {
                "kind": "alert",
                "category": ["iam"],
                "type": ["info"],
                "action": format!("cross-tenant-access-{}", r.impact.as_str()),
                "id": r.finding_id(),
                "dataset": "xtenant.replay",
                "provider": "xtenant",
                "severity": r.impact.severity(),
                "reason": r.reason,
                "start": a.counters.first_seen.as_ref().map(rfc3339),
                "end": a.counters.last_seen.as_ref().map(rfc3339),
            },
            "message": format!(
                "{} {} {} access of partner {}: {} -> {}",
                r.impact.as_str(), a.direction.as_str(), a.access_type.as_str(),
                a.partner_tenant_id, r.current.as_str(), r.proposed.as_str()
            ),
            "observer": {"vendor": "xtenant", "product": "xtenant", "type": "policy-replay",
                         "version": env!("CARGO_PKG_VERSION")},
            "organization": {"id": tenant.map(|t| t.to_string())},
            "user": {"id": a.user_id.as_deref(), "name": a.user_principal_name.as_deref()},
            "xtenant": {
                "schema_version": super::super::SCHEMA_VERSION,
                "impact": r.impact.as_str(),
                "severity_label": r.impact.severity_label(),
                "direction": a.direction.as_str(),
                "access_type": a.access_type.as_str(),
                "partner": {"tenant_id": a.partner_tenant_id.to_string(), "name": a.partner_tenant_name.as_deref()},
                "app": {"id": a.app_id.as_deref(), "name": a.app_name.as_deref()},
                "resource": {"id": a.resource_id.as_deref(), "name": a.resource_name.as_deref()},
                "current": r.current.as_str(),
                "proposed": r.proposed.as_str(),
                "current_reason": r.current_reason,
                "calibration": r.calibration,
                "sign_ins": a.counters.sign_ins,
                "distinct_users": a.distinct_users,
            },
        });
        let mut out = serde_json::to_vec(&strip_nulls(doc)).unwrap();
        out.push(b'\n');
        out
    }

    /// ECS consumers treat absent and null alike; absent keeps documents small.
    fn strip_nulls(v: Value) -> Value {
        match v {
            Value::Object(m) => {
                let m: serde_json::Map<String, Value> = m
                    .into_iter()
                    .filter(|(_, v)| !v.is_null())
                    .map(|(k, v)| (k, strip_nulls(v)))
                    .filter(|(_, v)| !matches!(v, Value::Object(o) if o.is_empty()))
                    .collect();
                Value::Object(m)
            }
            other => other,
        }
    }

    fn cef_header(s: &str) -> String {
        let mut out = String::with_capacity(s.len());
        for c in s.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '|' => out.push_str("\\|"),
                '\r' | '\n' => out.push(' '),
                c if crate::render::escape::hidden(c) => out.push_str(&format!("\\\\u{{{:x}}}", c as u32)),
                c => out.push(c),
            }
        }
        out
    }

    fn cef_value(s: &str) -> String {
        let mut out = String::with_capacity(s.len());
        for c in s.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '=' => out.push_str("\\="),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                c if crate::render::escape::hidden(c) => out.push_str(&format!("\\\\u{{{:x}}}", c as u32)),
                c => out.push(c),
            }
        }
        out
    }

    pub(super) fn cef_event(r: &ReplayRow, tenant: Option<Guid>) -> Vec<u8> {
        let a = &r.activity;
        let partner =
            a.partner_tenant_name.as_deref().map_or_else(|| a.partner_tenant_id.to_string(), str::to_string);
        let name = format!("Cross-tenant access {} under the proposed policy: {partner}", r.impact.as_str());
        let mut ext: Vec<(&str, String)> = vec![("externalId", r.finding_id())];
        if let Some(t) = a.counters.last_seen {
            ext.push(("rt", t.timestamp_millis().to_string()));
            ext.push(("end", t.timestamp_millis().to_string()));
        }
        if let Some(t) = a.counters.first_seen {
            ext.push(("start", t.timestamp_millis().to_string()));
        }
        ext.push(("act", r.impact.as_str().to_string()));
        ext.push(("cnt", a.counters.sign_ins.to_string()));
        if let Some(u) = &a.user_principal_name {
            ext.push(("suser", u.to_string()));
        }
        if let Some(u) = &a.user_id {
            ext.push(("suid", u.to_string()));
        }
        if let Some(app) = a.app_name.as_ref().or(a.app_id.as_ref()) {
            ext.push(("destinationServiceName", app.to_string()));
        }
        if let Some(id) = &a.app_id {
            ext.push(("flexString1Label", "appId".to_string()));
            ext.push(("flexString1", id.to_string()));
        }
        if let Some(t) = tenant {
            ext.push(("deviceExternalId", t.to_string()));
        }
        for (i, (label, value)) in [
            ("partnerTenantId", Some(a.partner_tenant_id.to_string())),
            ("direction", Some(a.direction.as_str().to_string())),
            ("accessType", Some(a.access_type.as_str().to_string())),
            ("verdicts", Some(format!("{} -> {}", r.current.as_str(), r.proposed.as_str()))),
            ("partnerName", a.partner_tenant_name.as_deref().map(str::to_string)),
            ("resource", a.resource_name.as_deref().or(a.resource_id.as_deref()).map(str::to_string)),
        ]
        .into_iter()
        .enumerate()
        {
            if let Some(v) = value {
                ext.push((super::CS[i].0, label.to_string()));
                ext.push((super::CS[i].1, v));
            }
        }
        ext.push(("reason", r.reason.clone()));
        let extension: Vec<String> = ext.iter().map(|(k, v)| format!("{k}={}", cef_value(v))).collect();
        format!(
            "CEF:0|xtenant|xtenant|{}|{}|{}|{}|{}\n",
            cef_header(env!("CARGO_PKG_VERSION")),
            cef_header(&format!("xtenant-replay-{}", r.impact.as_str())),
            cef_header(&name),
            r.impact.severity(),
            extension.join(" ")
        )
        .into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::model::{AccessType, Direction};

    fn escaped(push: fn(&mut Vec<u8>, &str), s: &str) -> String {
        let mut out = Vec::new();
        push(&mut out, s);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn cef_escaping_follows_the_spec() {
        assert_eq!(escaped(push_cef_header, r"a|b\c"), r"a\|b\\c");
        assert_eq!(escaped(push_cef_header, "two\nlines"), "two lines");
        assert_eq!(escaped(push_cef_value, r"x=1\y"), r"x\=1\\y");
        assert_eq!(escaped(push_cef_value, "a\r\nb|c"), r"a\r\nb|c");
        assert_eq!(escaped(push_cef_value, "esc\u{1b}[31m \u{202e}"), r"esc\\u{1b}[31m \\u{202e}");
    }

    #[test]
    fn severities_order_impacts() {
        let order = [Impact::Lost, Impact::Degraded, Impact::Unknown, Impact::Gained, Impact::Unchanged];
        assert!(order.windows(2).all(|w| w[0].severity() > w[1].severity()));
    }

    /// Text another tenant could write: CEF's and JSON's specials, control,
    /// bidi and wide characters; or none.
    fn hostile() -> impl Strategy<Value = Option<String>> {
        proptest::option::of("[a-z =|\\\\\"\r\n\t\u{0}\u{1b}\u{7f}\u{85}\u{202e}\u{2028}é中]{0,10}")
    }

    fn time() -> impl Strategy<Value = Option<DateTime<Utc>>> {
        proptest::option::of((0i64..4_000_000_000, prop_oneof![Just(0u32), 0u32..1_000_000_000]))
            .prop_map(|t| t.and_then(|(secs, nanos)| DateTime::from_timestamp(secs, nanos)))
    }

    proptest! {
        /// The ECS documents and CEF lines written straight into bytes are
        /// those built from a JSON value and a string per field, for rows of
        /// hostile names and reasons, every impact, verdict and access type,
        /// and without times, users, apps or our tenant.
        #[test]
        fn siem_lines_written_straight_are_the_lines_built_from_values(
            names in proptest::collection::vec(hostile(), 7),
            reason in "[a-z =|\\\\\"\r\n\u{1b}é]{0,12}",
            current_reason in "[a-z =|\\\\\"\r\n\u{1b}é]{0,12}",
            calibration in hostile(),
            (impact, current, proposed) in (0..Impact::ALL.len(), 0..4usize, 0..4usize),
            (first_seen, last_seen) in (time(), time()),
            (sign_ins, distinct_users) in (any::<u64>(), proptest::option::of(any::<u64>())),
            (partner, tenant) in (any::<u128>(), proptest::option::of(any::<u128>())),
            (outbound, access) in (any::<bool>(), 0..AccessType::ALL.len()),
        ) {
            use crate::policy::evaluate::Verdict;
            const VERDICTS: [Verdict; 4] = [Verdict::Allowed, Verdict::Blocked, Verdict::Unknown, Verdict::NotGoverned];
            let mut a = crate::analysis::runs::codec::tests::sample_row();
            let name = |i: usize| names[i].as_deref().map(Into::into);
            a.partner_tenant_name = name(0);
            a.app_id = name(1);
            a.app_name = name(2);
            a.resource_id = name(3);
            a.resource_name = name(4);
            a.user_id = name(5);
            a.user_principal_name = name(6);
            a.partner_tenant_id = Guid(partner);
            a.direction = if outbound { Direction::Outbound } else { Direction::Inbound };
            a.access_type = AccessType::ALL[access];
            a.counters.first_seen = first_seen;
            a.counters.last_seen = last_seen;
            a.counters.sign_ins = sign_ins;
            a.distinct_users = distinct_users;
            let r = ReplayRow {
                activity: a,
                current: VERDICTS[current],
                current_reason,
                proposed: VERDICTS[proposed],
                impact: Impact::ALL[impact],
                reason,
                calibration,
            };
            let tenant = tenant.map(Guid);
            // Written after a line already in the buffer, as on the pool.
            let before = b"the line before\n".to_vec();
            let (mut ecs, mut cef) = (before.clone(), before.clone());
            ecs_document(&r, tenant, &mut ecs);
            cef_event(&r, tenant, &mut cef);
            let (expected_ecs, expected_cef) =
                ([&before[..], &reference::ecs_document(&r, tenant)].concat(), [&before[..], &reference::cef_event(&r, tenant)].concat());
            prop_assert_eq!(String::from_utf8(ecs).unwrap(), String::from_utf8(expected_ecs).unwrap());
            prop_assert_eq!(String::from_utf8(cef).unwrap(), String::from_utf8(expected_cef).unwrap());
        }
    }
}
