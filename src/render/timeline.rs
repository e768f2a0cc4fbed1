//! `timeline` output: a block per change for people, a flat row per change
//! for machines.

use std::borrow::Cow;
use std::io::Write;

use anyhow::Result;
use serde_json::{json, Value};

use super::table::{opt, stream_csv, stream_ndjson, CsvStyle};
use super::{write_json_with_array, SCHEMA_VERSION};
use crate::analysis::timeline::{
    crowded_note, ChangeRow as Row, TimelineCounts as Counts, TimelineRun as Run,
};
use crate::model::rfc3339;
use crate::policy::change::Scope;

const COLUMNS: [&str; 21] = [
    "time",
    "actor",
    "activity",
    "change",
    "scope",
    "partner_tenant_id",
    "partner_tenant_name",
    "succeeded",
    "changes",
    "notes",
    "before_sign_ins",
    "before_users",
    "before_policy_blocks",
    "after_sign_ins",
    "after_users",
    "after_policy_blocks",
    "newly_blocked_user_count",
    "newly_blocked_users",
    "flagged",
    "policy_rebuilt",
    "policy_notes",
];

fn list(items: &[impl AsRef<str>], flat: bool) -> Value {
    let items = items.iter().map(AsRef::as_ref);
    if flat {
        Value::String(items.collect::<Vec<&str>>().join("; "))
    } else {
        Value::Array(items.map(|i| Value::String(i.to_string())).collect())
    }
}

fn scope(s: Scope) -> &'static str {
    match s {
        Scope::Default => "default",
        Scope::Partner(_) => "partner",
        Scope::UnknownPartner => "unknown partner",
    }
}

fn cells(r: &Row<'_>, flat: bool) -> Vec<Value> {
    let c = &r.change;
    let e = r.effect.as_ref();
    let n = |f: fn(&crate::analysis::timeline::Effect) -> u64| e.map_or(Value::Null, |e| json!(f(e)));
    vec![
        json!(rfc3339(&c.time)),
        json!(c.actor),
        json!(c.activity),
        json!(c.kind.as_str()),
        json!(scope(c.scope)),
        opt(&c.partner()),
        opt(&r.partner_name),
        json!(c.succeeded),
        list(&c.summary(), flat),
        list(&change_notes(r), flat),
        n(|e| e.before.sign_ins),
        n(|e| e.before.users),
        n(|e| e.before.policy_blocks),
        n(|e| e.after.sign_ins),
        n(|e| e.after.users),
        n(|e| e.after.policy_blocks),
        n(|e| e.newly_blocked_users.len() as u64),
        e.map_or(Value::Null, |e| list(&e.newly_blocked_users, flat)),
        e.map_or(Value::Null, |e| json!(e.flagged)),
        r.check.as_ref().map_or(Value::Null, |k| json!(k.reconstructed)),
        r.check.as_ref().map_or(Value::Null, |k| list(&k.notes, flat)),
    ]
}

/// A row a line, lists as arrays; written as each is made (an audit trail
/// of a pipeline that patches every partner daily holds some hundred
/// thousand changes: all cells made first took 1.2 GB there).
pub(crate) fn write_ndjson<'a>(out: &mut dyn Write, rows: impl Iterator<Item = Row<'a>>) -> Result<()> {
    stream_ndjson(&COLUMNS, rows.map(|r| cells(&r, false)), out)
}

/// A row a line, lists joined with `; `; written as each is made.
pub(crate) fn write_csv<'a>(
    out: &mut dyn Write,
    rows: impl Iterator<Item = Row<'a>>,
    style: CsvStyle,
) -> Result<()> {
    stream_csv(&COLUMNS, rows.map(|r| cells(&r, true)), out, style)
}

fn summary(counts: Counts, run: &Run) -> Value {
    json!({
        "changes": counts.changes,
        "flagged": counts.flagged,
        "audit_records_read": run.audit.records_read,
        "audit_invalid_records": run.audit.invalid_records,
        "audit_ignored": run.audit.ignored,
        "sign_ins_read": run.signins.as_ref().map(|s| s.records_read),
        "sign_ins_joined": run.signins.as_ref().map(|_| run.joined_sign_ins),
        "window_hours": run.window.num_hours(),
        "grace_hours": run.grace.num_hours(),
        "policy": run.policy,
    })
}

/// The JSON document: the summary, then the changes written as each is
/// made.
pub(crate) fn write_json_document<'a>(
    out: &mut dyn Write,
    rows: impl Iterator<Item = Row<'a>>,
    counts: Counts,
    run: &Run,
) -> Result<()> {
    let mut head = serde_json::Map::new();
    head.insert("schema_version".into(), json!(SCHEMA_VERSION));
    head.insert("summary".into(), summary(counts, run));
    write_json_with_array(out, head, "changes", &COLUMNS, rows.map(|r| cells(&r, false)))
}

/// The stderr summary.
pub(crate) fn summary_lines(counts: Counts, run: &Run) -> Vec<String> {
    let mut out = vec![format!(
        "read {} cross-tenant policy audit event(s) from {} file(s){}",
        run.audit.records_read,
        run.audit.files,
        if run.audit.invalid_records > 0 {
            format!(", skipped {} invalid", run.audit.invalid_records)
        } else {
            String::new()
        }
    )];
    for (reason, n) in &run.audit.ignored {
        out.push(format!("  not read: {n} {reason}"));
    }
    if let Some(s) = &run.signins {
        out.push(format!(
            "read {} sign-in(s); {} fell in a change's window",
            s.records_read, run.joined_sign_ins
        ));
    }
    let flagged = counts.flagged;
    if flagged > 0 {
        out.push(format!("{flagged} change(s) followed by new policy blocks"));
    }
    out
}

fn effect_lines(r: &Row<'_>, run: &Run) -> Vec<(bool, String)> {
    let Some(e) = &r.effect else { return vec![] };
    let mut out = vec![(
        false,
        format!(
            "sign-ins {}h before: {} ({} user(s), {} policy block(s)); after (+{}h grace): {} ({} user(s), {} policy block(s))",
            run.window.num_hours(),
            e.before.sign_ins,
            e.before.users,
            e.before.policy_blocks,
            run.grace.num_hours(),
            e.after.sign_ins,
            e.after.users,
            e.after.policy_blocks
        ),
    )];
    if !e.newly_blocked_users.is_empty() {
        let shown: Vec<&str> = e.newly_blocked_users.iter().take(5).map(String::as_str).collect();
        let more = e.newly_blocked_users.len().saturating_sub(5);
        out.push((
            e.flagged,
            format!(
                "{}newly blocked: {} user(s): {}{}",
                if e.flagged { "LIKELY CAUSED BLOCKS: " } else { "" },
                e.newly_blocked_users.len(),
                shown.join(", "),
                if more > 0 { format!(", +{more} more") } else { String::new() }
            ),
        ));
    }
    out
}

fn heading(r: &Row<'_>) -> String {
    let c = &r.change;
    let who = match (c.scope, &r.partner_name) {
        (Scope::Partner(p), Some(n)) => format!("{n} ({p})"),
        (Scope::Partner(p), None) => p.to_string(),
        (s, _) => scope(s).to_string(),
    };
    format!(
        "{}  {}  {}  by {}{}",
        rfc3339(&c.time),
        c.kind.as_str(),
        who,
        c.actor,
        if c.succeeded { "" } else { "  (FAILED: no change made)" }
    )
}

fn check_line(r: &Row<'_>) -> Option<String> {
    let k = r.check.as_ref()?;
    Some(if k.reconstructed {
        "policy before this change: rebuilt from the audit values".into()
    } else {
        "policy before this change: not fully known (see notes)".into()
    })
}

/// The blocks for people, written as each row is read (a long audit
/// trail's text is not held).
pub(crate) fn write_text<'a>(
    out: &mut dyn Write,
    rows: impl Iterator<Item = Row<'a>>,
    run: &Run,
    colored: bool,
) -> Result<()> {
    use super::escape::visible;
    let paint = |code: &str, t: &str| super::style::paint(colored, code, t);
    let mut any = false;
    for r in rows {
        any = true;
        let mut block = paint("1", &heading(&r));
        block.push('\n');
        for line in r.change.summary() {
            block.push_str(&format!("  {}\n", visible(&line)));
        }
        for (alarm, line) in effect_lines(&r, run) {
            block.push_str(&format!(
                "  {}\n",
                if alarm { paint("31", &line) } else { visible(&line).into_owned() }
            ));
        }
        if let Some(l) = check_line(&r) {
            block.push_str(&format!("  {}\n", visible(&l)));
        }
        for n in notes(&r) {
            block.push_str(&format!("  {}\n", paint("33", &format!("note: {n}"))));
        }
        block.push('\n');
        out.write_all(block.as_bytes())?;
    }
    if !any {
        out.write_all(b"no cross-tenant access policy changes in the audit logs\n")?;
    }
    Ok(())
}

/// The change's notes, and whether it was joined.
fn change_notes<'a>(r: &'a Row<'_>) -> Vec<Cow<'a, str>> {
    let crowded = r.crowded.then(|| Cow::Owned(crowded_note()));
    r.change.notes.iter().map(|n| Cow::Borrowed(n.as_str())).chain(crowded).collect()
}

/// The change's notes, then its check's.
fn notes<'a>(r: &'a Row<'_>) -> impl Iterator<Item = Cow<'a, str>> {
    let check = r.check.iter().flat_map(|k| k.notes.iter().map(|n| Cow::Borrowed(&**n)));
    change_notes(r).into_iter().chain(check)
}

use super::escape::markdown as md;

/// The Markdown section, written as each row is read.
pub(crate) fn write_markdown<'a>(
    out: &mut dyn Write,
    rows: impl Iterator<Item = Row<'a>>,
    run: &Run,
) -> Result<()> {
    out.write_all(b"## Cross-tenant access policy changes\n\n")?;
    let mut any = false;
    for r in rows {
        any = true;
        let mut block = format!("### {}\n\n", md(&heading(&r)));
        for line in r.change.summary() {
            block.push_str(&format!("- {}\n", super::escape::code_span(&line)));
        }
        for (alarm, line) in effect_lines(&r, run) {
            let mark = if alarm { "**" } else { "" };
            block.push_str(&format!("- {mark}{}{mark}\n", md(&line)));
        }
        if let Some(l) = check_line(&r) {
            block.push_str(&format!("- {}\n", md(&l)));
        }
        for n in notes(&r) {
            block.push_str(&format!("- note: {}\n", md(&n)));
        }
        block.push('\n');
        out.write_all(block.as_bytes())?;
    }
    if !any {
        out.write_all(b"No changes in the audit logs.\n")?;
    }
    Ok(())
}
