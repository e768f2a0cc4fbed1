//! `xtenant propose`: the least-privilege policy that keeps every access
//! the logs show, explained.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::ValueHint;

use super::args::{DirectoryArgs, Files, InputArgs, OutputArgs};
use super::Global;
use crate::model::GroupBy;
use crate::pipeline::propose::{propose, Keep, ProposePlan};
use crate::render;

#[derive(Copy, Clone, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub(crate) enum Format {
    /// Our policy document, which every other command reads (`replay --proposed`, `policy check`).
    #[default]
    Combined,
    /// The Microsoft Graph requests that apply it, in order, as `$batch` bodies (PATCH the
    /// default, POST or PATCH each partner, DELETE the partners --current has and it drops).
    Graph,
    /// A Microsoft Graph PowerShell script making the same calls; stops at the first error,
    /// `-DryRun` prints them instead.
    Powershell,
    /// The rationale per partner: what is allowed and the evidence, what is left out, and the
    /// replay of the proposal against the same sign-ins.
    Markdown,
}

/// Write the least-privilege policy that keeps every access the logs show.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  xtenant propose samples/signins/ -o proposal.json
  xtenant propose samples/signins/ --format markdown -o proposal.md      (why each allowance)
  xtenant replay --proposed proposal.json samples/signins/              (nothing lost, nothing degraded)
  xtenant propose samples/signins/ --current samples/policies/current.json --format powershell -o apply.ps1
      (pwsh ./apply.ps1 -DryRun first; --format graph gives the same calls as Graph $batch bodies)
  xtenant propose --store history/ --since 180d --min-sign-ins 5 -o proposal.json
  xtenant propose activity.csv --tenant ID -o proposal.json     (an activity table, or `xtenant query`'s result)
  xtenant propose logs/ --keep 'partner:ID=year-end audit, January' --keep app:APP-ID -o proposal.json
  xtenant propose logs/ --identities guests.csv --groups groups.csv -o proposal.json
      (inbound: the partner users' home ids instead of all of them; outbound: the fewest of our groups)

Default: B2B collaboration and direct connect blocked both ways, no inbound trust. Each partner
with successful sign-ins is allowed the directions and access types it used, for the apps used
(resource ids) and the users: ours by object id outbound, all of theirs inbound. Inbound trust is
kept only where replay shows someone would otherwise lose access or be asked for MFA again.
With --current the proposal only narrows, and the markdown lists what it takes away.
Each rule and why: docs/propose.md.")]
pub(crate) struct Args {
    #[command(flatten)]
    input: InputArgs,
    /// The policy in force: the proof (replay) compares against it, so that trust the
    /// partner's users rely on today is kept.
    #[arg(value_hint = ValueHint::AnyPath, long, value_name = "POLICY")]
    current: Option<PathBuf>,
    /// Allow a partner only with at least this many successful sign-ins in the period.
    #[arg(long, value_name = "N", default_value_t = 1)]
    min_sign_ins: u64,
    /// Keep access the logs did not show (seasonal use): `partner:TENANT-ID` (its --current
    /// entry, else B2B collaboration both ways) or `app:APP-ID` (allowed wherever collaboration
    /// lists apps), optionally `=REASON` for the rationale. Repeatable.
    #[arg(long, value_name = "SPEC", value_parser = Keep::parse)]
    keep: Vec<Keep>,
    #[command(flatten)]
    directory: DirectoryArgs,
    /// What to write.
    #[arg(long, value_enum, default_value_t = Format::Combined)]
    format: Format,
    #[command(flatten)]
    output: OutputArgs,
}

impl Args {
    pub(crate) fn files(&self) -> Files<'_> {
        let files = Files::default().read(&self.current);
        self.output.files(self.directory.files(self.input.files(files)))
    }
}

pub(crate) fn run(args: Args, g: &Global) -> Result<ExitCode> {
    let plan = ProposePlan {
        activity: args.input.activity_plan(g, GroupBy::User)?,
        current: args.current.clone(),
        directory: args.directory.paths(),
        min_sign_ins: args.min_sign_ins,
        keep: args.keep.clone(),
    };
    let mut rejects = args.input.rejects_output(&plan.activity.source)?;
    let proposal = propose(&plan, &|l| g.note(l), rejects.as_mut().map(|r| r as _))?;
    if let Some(r) = rejects {
        r.commit()?;
    }
    g.note(&format!(
        "proposed: {} partner(s) allowed, {} seen but left out; replayed against the same sign-ins",
        proposal.partner_count, proposal.left_out_count
    ));
    let mut out = args.output.create()?;
    match args.format {
        Format::Combined => render::propose::write_combined(&mut out, proposal)?,
        Format::Graph => render::propose::write_graph(&mut out, proposal)?,
        Format::Powershell => render::propose::write_powershell(&mut out, proposal)?,
        Format::Markdown => render::propose::write_markdown(&mut out, proposal)?,
    }
    out.commit()?;
    Ok(ExitCode::SUCCESS)
}
