//! What `store add` did and what a store holds, for people.

use std::path::Path;

use crate::store::{Added, Info};

pub(crate) fn added_line(store: &Path, added: &Added) -> String {
    format!(
        "{}: added {} cross-tenant sign-in(s) ({} already stored, {} not cross-tenant) and {} audit event(s) ({} already stored) in {} file(s)",
        store.display(),
        added.sign_ins_added,
        added.sign_ins_already_stored,
        added.sign_ins_not_cross_tenant,
        added.audit_added,
        added.audit_already_stored,
        added.files_written
    )
}

pub(crate) fn info_text(store: &Path, i: &Info) -> String {
    let span = match (i.first_day, i.last_day) {
        (Some(f), Some(l)) => format!("{f} to {l} ({} day(s) with sign-ins)", i.days.len()),
        _ => "no sign-ins yet".into(),
    };
    format!(
        "store:     {}\nschema:    version {}\ncovers:    {span}\nsign-ins:  {}\naudit:     {} event(s)\nfiles:     {} ({:.1} MB)\n",
        store.display(),
        i.schema_version,
        i.sign_in_rows,
        i.audit_rows,
        i.files,
        i.bytes as f64 / 1e6
    )
}
