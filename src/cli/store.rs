//! `xtenant store`: keep cross-tenant sign-ins and policy audit events
//! beyond the 30 days Entra keeps them.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::ValueHint;
use serde_json::json;

use super::args::{Files, ReadArgs};
use super::Global;
use crate::pipeline::store::{add, info};
use crate::render::{self, Output};

#[derive(clap::Subcommand, Debug)]
pub(crate) enum Command {
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
pub(crate) struct AddArgs {
    /// The store directory.
    #[arg(value_hint = ValueHint::DirPath, long, value_name = "DIR", env = "XTENANT_STORE")]
    store: PathBuf,
    /// Sign-in exports (any format `activity` reads).
    #[arg(value_hint = ValueHint::AnyPath, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Audit exports (any format `timeline` reads); repeat for more paths.
    #[arg(value_hint = ValueHint::AnyPath, long, value_name = "AUDIT_PATH")]
    audit: Vec<PathBuf>,
    #[command(flatten)]
    read: ReadArgs,
}

#[derive(clap::Args, Debug)]
pub(crate) struct InfoArgs {
    /// The store directory.
    #[arg(value_hint = ValueHint::DirPath, long, value_name = "DIR", env = "XTENANT_STORE")]
    store: PathBuf,
    /// What to write: `json` for scripts.
    #[arg(long, value_enum, default_value_t = InfoFormat::Table)]
    format: InfoFormat,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum InfoFormat {
    /// A few lines for people.
    Table,
    /// One document for scripts.
    Json,
}

impl Command {
    pub(crate) fn files(&self) -> Files<'_> {
        match self {
            Command::Add(a) => a.read.files(Files::default().read(&a.paths).read(&a.audit)),
            Command::Info(_) => Files::default(),
        }
    }
}

pub(crate) fn run(c: Command, g: &Global) -> Result<ExitCode> {
    match c {
        Command::Add(a) => run_add(a, g),
        Command::Info(a) => run_info(a),
    }
}

fn run_add(a: AddArgs, g: &Global) -> Result<ExitCode> {
    let mut rejects = a.read.rejects_output()?;
    let added = add(&a.store, &a.paths, &a.audit, &a.read.options(g), rejects.as_mut().map(|r| r as _))?;
    if let Some(r) = rejects {
        r.commit()?;
    }
    g.note(&render::store::added_line(&a.store, &added));
    if added.orphans_removed > 0 {
        g.note(&format!("removed {} file(s) an interrupted run left behind", added.orphans_removed));
    }
    Ok(ExitCode::SUCCESS)
}

fn run_info(a: InfoArgs) -> Result<ExitCode> {
    let i = info(&a.store)?;
    let mut out = Output::create(None)?;
    match a.format {
        InfoFormat::Json => render::write_json(&mut out, &json!({"store": a.store, "info": i}))?,
        InfoFormat::Table => {
            std::io::Write::write_all(&mut out, render::store::info_text(&a.store, &i).as_bytes())?
        }
    }
    out.commit()?;
    Ok(ExitCode::SUCCESS)
}
