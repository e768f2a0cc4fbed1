//! `xtenant store`: keep cross-tenant sign-ins and policy audit events
//! beyond the 30 days Entra keeps them.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use serde_json::json;

use super::{Global, ReadArgs};
use crate::ingest::{AuditEvents, SignIns};
use crate::report::Output;
use crate::store::{Store, Writer};

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Append exports to a store (created if missing), keeping one copy of each sign-in.
    #[command(after_help = "\
Examples:
  xtenant store add --store history/ samples/signins/ --audit samples/audit/
  xtenant store add --store /var/lib/xtenant exports/$(date +%F)/      (daily, from cron)

Only cross-tenant sign-ins are kept. Overlapping exports are fine: a sign-in id
already in the store for its day is skipped. A run killed at any point leaves
the store as it was; two runs at once: the second stops with a message.")]
    Add(AddArgs),
    /// Days covered, rows and size of a store.
    Info(InfoArgs),
}

#[derive(clap::Args, Debug)]
pub struct AddArgs {
    /// The store directory.
    #[arg(long, value_name = "DIR")]
    pub store: PathBuf,
    /// Sign-in exports (any format `activity` reads).
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Audit exports (any format `timeline` reads); repeat for more paths.
    #[arg(long, value_name = "AUDIT_PATH")]
    pub audit: Vec<PathBuf>,
    #[command(flatten)]
    pub read: ReadArgs,
}

#[derive(clap::Args, Debug)]
pub struct InfoArgs {
    /// The store directory.
    #[arg(long, value_name = "DIR")]
    pub store: PathBuf,
    /// `json` for scripts.
    #[arg(long, value_enum, default_value_t = InfoFormat::Table)]
    pub format: InfoFormat,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum InfoFormat {
    Table,
    Json,
}

pub fn run(c: Command, g: &Global) -> Result<ExitCode> {
    match c {
        Command::Add(a) => add(a, g),
        Command::Info(a) => info(a),
    }
}

fn add(a: AddArgs, g: &Global) -> Result<ExitCode> {
    if a.paths.is_empty() && a.audit.is_empty() {
        anyhow::bail!("nothing to add: give sign-in exports as PATH and/or audit exports with --audit");
    }
    let mut store = Store::open_or_create(&a.store)?;
    let mut w = Writer::begin(&mut store)?;
    let mut rejects = a.read.rejects_output()?;
    let mut failed: Option<anyhow::Error> = None;
    if !a.paths.is_empty() {
        a.read.read(SignIns, &a.paths, g, rejects.as_mut(), |s| {
            if failed.is_none() {
                failed = w.add_signin(s).err();
            }
        })?;
    }
    if !a.audit.is_empty() {
        a.read.read(AuditEvents, &a.audit, g, rejects.as_mut(), |e| {
            if failed.is_none() {
                failed = w.add_audit(e).err();
            }
        })?;
    }
    if let Some(e) = failed {
        return Err(e);
    }
    let added = w.commit()?;
    if let Some(r) = rejects {
        r.commit()?;
    }
    g.note(&format!(
        "{}: added {} cross-tenant sign-in(s) ({} already stored, {} not cross-tenant) and {} audit event(s) ({} already stored) in {} file(s)",
        a.store.display(),
        added.sign_ins_added,
        added.sign_ins_already_stored,
        added.sign_ins_not_cross_tenant,
        added.audit_added,
        added.audit_already_stored,
        added.files_written
    ));
    if added.orphans_removed > 0 {
        g.note(&format!("removed {} file(s) an interrupted run left behind", added.orphans_removed));
    }
    Ok(ExitCode::SUCCESS)
}

fn info(a: InfoArgs) -> Result<ExitCode> {
    let store = Store::open(&a.store)?;
    let i = store.info();
    let mut out = Output::create(None)?;
    match a.format {
        InfoFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &json!({"store": a.store, "info": i}))?;
            std::io::Write::write_all(&mut out, b"\n")?;
        }
        InfoFormat::Table => {
            let span = match (i.first_day, i.last_day) {
                (Some(f), Some(l)) => format!("{f} to {l} ({} day(s) with sign-ins)", i.days.len()),
                _ => "no sign-ins yet".into(),
            };
            let text = format!(
                "store:     {}\nschema:    version {}\ncovers:    {span}\nsign-ins:  {}\naudit:     {} event(s)\nfiles:     {} ({:.1} MB)\n",
                a.store.display(),
                i.schema_version,
                i.sign_in_rows,
                i.audit_rows,
                i.files,
                i.bytes as f64 / 1e6
            );
            std::io::Write::write_all(&mut out, text.as_bytes())?;
        }
    }
    out.commit()?;
    Ok(ExitCode::SUCCESS)
}
