//! The Parquet columns of each table (docs/store.md): sign-ins one column
//! per canonical field, audit events as JSON in one column. Columns a later
//! schema version added are read as absent from older files.

use std::fs::File;
use std::path::Path;

use anyhow::{bail, Context, Result};
use chrono::DateTime;
use polars::prelude::*;

use crate::model::{
    AccessType, AuditEvent, CaStatus, Clause, Device, EventType, Evidence, Guid, SignIn, Text, Texts,
    UserType,
};

pub(super) fn id_hash(id: &str) -> u128 {
    xxhash_rust::xxh3::xxh3_128(id.as_bytes())
}

pub(super) fn read_parquet(path: &Path, columns: Option<Vec<String>>) -> Result<DataFrame> {
    let f = File::open(path)
        .with_context(|| format!("{}: listed in the manifest but cannot be read", path.display()))?;
    anyhow::Context::with_context(ParquetReader::new(f).with_columns(columns).finish(), || {
        format!("{}: unreadable Parquet", path.display())
    })
}

fn opt_str<'a>(v: impl Iterator<Item = Option<&'a str>>) -> Vec<Option<&'a str>> {
    v.collect()
}

/// The sign-in part file's columns (schema version 2, docs/store.md).
pub(super) fn signins_frame(rows: &[SignIn]) -> Result<DataFrame> {
    let s = |f: fn(&SignIn) -> Option<&str>| opt_str(rows.iter().map(f));
    let owned = |f: fn(&SignIn) -> Option<String>| rows.iter().map(f).collect::<Vec<_>>();
    let flag = |f: fn(&Evidence) -> bool| rows.iter().map(|r| f(&r.evidence)).collect::<Vec<bool>>();
    let time: Vec<i64> = rows.iter().map(|r| r.time.timestamp_millis()).collect();
    let time = Column::new("time".into(), time).cast(&DataType::Datetime(TimeUnit::Milliseconds, None))?;
    let columns = vec![
        Column::new("id".into(), rows.iter().map(SignIn::id).collect::<Vec<_>>()),
        time,
        Column::new("event_type".into(), rows.iter().map(|r| r.event_type.as_str()).collect::<Vec<_>>()),
        Column::new("user_id".into(), s(SignIn::user_id)),
        Column::new("user_principal_name".into(), s(SignIn::user_principal_name)),
        Column::new("user_type".into(), rows.iter().map(|r| r.user_type.as_str()).collect::<Vec<_>>()),
        Column::new("home_tenant_id".into(), owned(|r| r.home_tenant.map(|g| g.to_string()))),
        Column::new("home_tenant_name".into(), s(SignIn::home_tenant_name)),
        Column::new("resource_tenant_id".into(), owned(|r| r.resource_tenant.map(|g| g.to_string()))),
        Column::new("log_tenant_id".into(), owned(|r| r.log_tenant.map(|g| g.to_string()))),
        Column::new("access_type".into(), rows.iter().map(|r| r.access_type.as_str()).collect::<Vec<_>>()),
        Column::new("app_id".into(), s(SignIn::app_id)),
        Column::new("app_name".into(), s(SignIn::app_name)),
        Column::new("app_owner_tenant_id".into(), owned(|r| r.app_owner_tenant.map(|g| g.to_string()))),
        Column::new("resource_id".into(), s(SignIn::resource_id)),
        Column::new("resource_name".into(), s(SignIn::resource_name)),
        Column::new(
            "resource_owner_tenant_id".into(),
            owned(|r| r.resource_owner_tenant.map(|g| g.to_string())),
        ),
        Column::new("error_code".into(), rows.iter().map(|r| r.error_code).collect::<Vec<u32>>()),
        Column::new("ca_status".into(), rows.iter().map(|r| r.ca_status.as_str()).collect::<Vec<_>>()),
        Column::new("token_issuer_type".into(), s(SignIn::token_issuer_type)),
        Column::new("mfa_required".into(), flag(|e| e.mfa_required)),
        Column::new("mfa_by_claim".into(), flag(|e| e.mfa_by_claim)),
        Column::new("compliant_device_required".into(), flag(|e| e.compliant_device_required)),
        Column::new("hybrid_join_required".into(), flag(|e| e.hybrid_join_required)),
        Column::new("ca_details".into(), flag(|e| e.ca_details)),
        Column::new(
            "grant_clauses".into(),
            owned(|r| (!r.evidence.clauses.is_empty()).then(|| Clause::list_text(&r.evidence.clauses))),
        ),
        Column::new("device_compliant".into(), rows.iter().map(|r| r.device.compliant).collect::<Vec<_>>()),
        Column::new("device_managed".into(), rows.iter().map(|r| r.device.managed).collect::<Vec<_>>()),
        Column::new("device_trust_type".into(), s(|r| r.device.trust_type.as_deref())),
    ];
    Ok(DataFrame::new(rows.len(), columns)?)
}

pub(super) fn signins_from(df: &DataFrame) -> Result<Vec<SignIn>> {
    let text = |name: &str| -> Result<Vec<Option<&str>>> { Ok(df.column(name)?.str()?.iter().collect()) };
    let flags = |name: &str| -> Result<Vec<Option<bool>>> { Ok(df.column(name)?.bool()?.iter().collect()) };
    // Columns schema version 2 added: absent from version 1 part files.
    let newer = |name: &str| -> Result<Vec<Option<&str>>> {
        if df.get_column_names().iter().any(|c| c.as_str() == name) {
            text(name)
        } else {
            Ok(vec![None; df.height()])
        }
    };
    let (app_owner, res_owner, clauses) =
        (newer("app_owner_tenant_id")?, newer("resource_owner_tenant_id")?, newer("grant_clauses")?);
    let guid = |v: &Option<&str>| v.and_then(Guid::parse);
    let times: Vec<Option<i64>> = df.column("time")?.cast(&DataType::Int64)?.i64()?.iter().collect();
    let codes: Vec<Option<u32>> = df.column("error_code")?.u32()?.iter().collect();
    let (id, event_type, user_id, upn, user_type) = (
        text("id")?,
        text("event_type")?,
        text("user_id")?,
        text("user_principal_name")?,
        text("user_type")?,
    );
    let (home, home_name, resource, log) = (
        text("home_tenant_id")?,
        text("home_tenant_name")?,
        text("resource_tenant_id")?,
        text("log_tenant_id")?,
    );
    let (access, app_id, app_name, res_id, res_name) = (
        text("access_type")?,
        text("app_id")?,
        text("app_name")?,
        text("resource_id")?,
        text("resource_name")?,
    );
    let (ca, issuer, trust) = (text("ca_status")?, text("token_issuer_type")?, text("device_trust_type")?);
    let (mfa, claim, compliant_req, hybrid_req, details) = (
        flags("mfa_required")?,
        flags("mfa_by_claim")?,
        flags("compliant_device_required")?,
        flags("hybrid_join_required")?,
        flags("ca_details")?,
    );
    let (compliant, managed) = (flags("device_compliant")?, flags("device_managed")?);
    let mut out = Vec::with_capacity(df.height());
    for i in 0..df.height() {
        let Some(ms) = times[i] else { bail!("row {i}: no time") };
        let texts =
            [&id, &user_id, &upn, &home_name, &app_id, &app_name, &res_id, &res_name, &issuer].map(|c| c[i]);
        let capacity = texts.iter().flatten().map(|t| t.len()).sum();
        out.push(SignIn {
            texts: Texts::from_fn(capacity, |t, out| {
                out.push_str(texts[t as usize].unwrap_or_default());
                // The request id is always there, empty if the column is.
                t == Text::Id || texts[t as usize].is_some()
            }),
            time: DateTime::from_timestamp_millis(ms).context("time out of range")?,
            event_type: event_type[i].and_then(EventType::from_name).unwrap_or(EventType::Unknown),
            user_type: UserType::parse(user_type[i].unwrap_or("")),
            home_tenant: guid(&home[i]),
            resource_tenant: guid(&resource[i]),
            log_tenant: guid(&log[i]),
            access_type: AccessType::parse(access[i].unwrap_or("")),
            app_owner_tenant: guid(&app_owner[i]),
            resource_owner_tenant: guid(&res_owner[i]),
            error_code: codes[i].unwrap_or_default(),
            ca_status: CaStatus::parse(ca[i].unwrap_or("")),
            evidence: Evidence {
                mfa_required: mfa[i].unwrap_or_default(),
                mfa_by_claim: claim[i].unwrap_or_default(),
                compliant_device_required: compliant_req[i].unwrap_or_default(),
                hybrid_join_required: hybrid_req[i].unwrap_or_default(),
                ca_details: details[i].unwrap_or_default(),
                clauses: match clauses[i] {
                    Some(t) => {
                        Clause::parse_list(t).map_err(|e| anyhow::anyhow!("row {i}: grant_clauses: {e}"))?
                    }
                    None => Vec::new(),
                },
            },
            device: Device {
                compliant: compliant[i],
                managed: managed[i],
                trust_type: trust[i].map(str::to_string),
            },
        });
    }
    Ok(out)
}

/// Audit part files: id, time, activity, category and the canonical event
/// as JSON (its nested targets have no fixed columns).
pub(super) fn audit_frame(rows: &[AuditEvent]) -> Result<DataFrame> {
    let time: Vec<i64> = rows.iter().map(|r| r.time.timestamp_millis()).collect();
    let events: Vec<String> = rows.iter().map(serde_json::to_string).collect::<Result<_, _>>()?;
    let columns = vec![
        Column::new("id".into(), rows.iter().map(|r| r.id.as_str()).collect::<Vec<_>>()),
        Column::new("time".into(), time).cast(&DataType::Datetime(TimeUnit::Milliseconds, None))?,
        Column::new("activity".into(), rows.iter().map(|r| r.activity.as_str()).collect::<Vec<_>>()),
        Column::new("category".into(), opt_str(rows.iter().map(|r| r.category.as_deref()))),
        Column::new("event".into(), events),
    ];
    Ok(DataFrame::new(rows.len(), columns)?)
}
