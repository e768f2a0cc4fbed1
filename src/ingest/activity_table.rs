//! Reading back an activity table that `xtenant activity --format csv` or
//! `--format ndjson` wrote, so that aggregates computed elsewhere (or
//! earlier) can be replayed.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use anyhow::{bail, Context as _, Result};
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::model::activity::{ActivityRow, Counters, GroupBy};
use crate::model::{AccessType, Clause, Direction, Guid, UserType};

/// Whether a file's first bytes look like an activity table.
pub fn looks_like_activity_table(path: &Path) -> bool {
    let Ok(f) = std::fs::File::open(path) else { return false };
    let mut first = String::new();
    if std::io::BufRead::read_line(&mut std::io::BufReader::new(f).take(1 << 20), &mut first).is_err() {
        return false;
    }
    let first = first.trim_start_matches('\u{feff}').trim();
    if first.starts_with("direction,access_type,partner_tenant_id") {
        return true;
    }
    serde_json::from_str::<serde_json::Map<String, Value>>(first).is_ok_and(|m| {
        ["direction", "partner_tenant_id", "sign_ins", "access_type"].iter().all(|k| m.contains_key(*k))
    })
}

fn field<'a>(m: &'a BTreeMap<String, String>, k: &str, at: &str) -> Result<&'a str> {
    m.get(k).map(String::as_str).ok_or_else(|| {
        anyhow::anyhow!(
            "{at}: column `{k}` is missing (write the table with `xtenant activity --format csv`)"
        )
    })
}

fn num(m: &BTreeMap<String, String>, k: &str, at: &str) -> Result<u64> {
    let v = field(m, k, at)?;
    v.parse().map_err(|_| anyhow::anyhow!("{at}: field `{k}`: `{v}` is not a count"))
}

fn opt(m: &BTreeMap<String, String>, k: &str) -> Option<String> {
    m.get(k).filter(|v| !v.is_empty()).cloned()
}

fn time(m: &BTreeMap<String, String>, k: &str, at: &str) -> Result<Option<DateTime<Utc>>> {
    match opt(m, k) {
        None => Ok(None),
        Some(v) => DateTime::parse_from_rfc3339(&v)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|_| anyhow::anyhow!("{at}: field `{k}`: `{v}` is not an RFC 3339 time")),
    }
}

fn tenant(m: &BTreeMap<String, String>, k: &str, at: &str) -> Result<Option<Guid>> {
    match opt(m, k) {
        None => Ok(None),
        Some(v) => Guid::parse(&v)
            .map(Some)
            .ok_or_else(|| anyhow::anyhow!("{at}: field `{k}`: `{v}` is not a tenant id (GUID)")),
    }
}

fn row(m: &BTreeMap<String, String>, at: &str) -> Result<ActivityRow> {
    let direction = match field(m, "direction", at)? {
        "inbound" => Direction::Inbound,
        "outbound" => Direction::Outbound,
        other => bail!("{at}: field `direction`: `{other}` is not inbound or outbound"),
    };
    let partner = field(m, "partner_tenant_id", at)?;
    let partner = Guid::parse(partner)
        .ok_or_else(|| anyhow::anyhow!("{at}: field `partner_tenant_id`: `{partner}` is not a GUID"))?;
    let counters = Counters {
        sign_ins: num(m, "sign_ins", at)?,
        successes: num(m, "successes", at)?,
        failures: num(m, "failures", at)?,
        policy_blocks: num(m, "policy_blocks", at)?,
        home_outbound_blocks: 0,
        resource_inbound_blocks: 0,
        mfa_required: num(m, "mfa_required", at)?,
        mfa_by_claim: num(m, "mfa_by_claim", at)?,
        compliant_device_required: num(m, "compliant_device_required", at)?,
        hybrid_join_required: num(m, "hybrid_join_required", at)?,
        ca_details_missing: num(m, "ca_details_missing", at)?,
        first_seen: time(m, "first_seen", at)?,
        last_seen: time(m, "last_seen", at)?,
        // Tables written before this column existed have no clauses to tell.
        grant_clauses: match opt(m, "grant_clauses") {
            Some(t) => {
                Clause::parse_list(&t).map_err(|e| anyhow::anyhow!("{at}: field `grant_clauses`: {e}"))?
            }
            None => Vec::new(),
        },
    };
    let (us, partner_blocks) = (num(m, "blocked_by_us", at)?, num(m, "blocked_by_partner", at)?);
    let mut counters = counters;
    // Back from the direction-relative columns to the codes they count.
    match direction {
        Direction::Outbound => {
            counters.home_outbound_blocks = us;
            counters.resource_inbound_blocks = partner_blocks;
        }
        Direction::Inbound => {
            counters.resource_inbound_blocks = us;
            counters.home_outbound_blocks = partner_blocks;
        }
    }
    Ok(ActivityRow {
        direction,
        access_type: AccessType::parse(field(m, "access_type", at)?),
        partner_tenant_id: partner,
        partner_tenant_name: opt(m, "partner_tenant_name").map(Into::into),
        app_id: opt(m, "app_id").map(Into::into),
        app_name: opt(m, "app_name").map(Into::into),
        app_owner_tenant_id: tenant(m, "app_owner_tenant_id", at)?,
        resource_id: opt(m, "resource_id").map(Into::into),
        resource_name: opt(m, "resource_name").map(Into::into),
        resource_owner_tenant_id: tenant(m, "resource_owner_tenant_id", at)?,
        user_id: opt(m, "user_id").map(Into::into),
        user_principal_name: opt(m, "user_principal_name").map(Into::into),
        user_type: opt(m, "user_type").map(|t| UserType::parse(&t)),
        counters,
        distinct_users: opt(m, "distinct_users").and_then(|v| v.parse().ok()),
        distinct_apps: opt(m, "distinct_apps").and_then(|v| v.parse().ok()),
        by_epoch: vec![],
    })
}

/// Reads one activity table; the grain is what its columns say.
pub fn read(path: &Path) -> Result<(GroupBy, Vec<ActivityRow>)> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let text = text.trim_start_matches('\u{feff}');
    let name = path.display().to_string();
    let mut maps: Vec<(String, BTreeMap<String, String>)> = Vec::new();
    if text.starts_with('{') {
        for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let at = format!("{name}: line {}", i + 1);
            let v: BTreeMap<String, Value> = serde_json::from_str(line).with_context(|| at.clone())?;
            let m = v
                .into_iter()
                .map(|(k, v)| {
                    (
                        k,
                        match v {
                            Value::Null => String::new(),
                            Value::String(s) => s,
                            other => other.to_string(),
                        },
                    )
                })
                .collect();
            maps.push((at, m));
        }
    } else {
        let mut r = csv::Reader::from_reader(text.as_bytes());
        let headers = r.headers()?.clone();
        for (i, rec) in r.records().enumerate() {
            let at = format!("{name}: line {}", i + 2);
            let rec = rec.with_context(|| at.clone())?;
            maps.push((
                at,
                headers.iter().zip(rec.iter()).map(|(h, v)| (h.to_string(), v.to_string())).collect(),
            ));
        }
    }
    let by = match maps.first() {
        Some((_, m)) if m.contains_key("user_id") => GroupBy::User,
        Some((_, m)) if m.contains_key("app_id") => GroupBy::App,
        Some(_) => GroupBy::Tenant,
        None => GroupBy::User,
    };
    let rows = maps.iter().map(|(at, m)| row(m, at)).collect::<Result<Vec<_>>>()?;
    Ok((by, rows))
}
