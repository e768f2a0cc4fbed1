//! `xtenant generate`: realistic synthetic sign-ins in any export format.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::ValueHint;

use super::args::{Files, OutputArgs};
use super::Global;
use crate::pipeline::generate::{directory_files, generate, GeneratePlan};
use crate::render::Output;
use crate::synth::audit::AuditFormat;
use crate::synth::SynthFormat;

/// Write synthetic sign-ins (seeded, realistic sizes) in an export format.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  xtenant generate --count 300 --format portal-csv -o InteractiveSignIns_sample.csv
  xtenant generate --count 500000 --format graph-ndjson --partners 300 | gzip > big.ndjson.gz
  xtenant generate --audit graph -o directoryAudits.json        (the scenario's policy changes)")]
pub(crate) struct Args {
    /// How many sign-ins.
    #[arg(long, default_value_t = 1000)]
    count: u64,
    /// The export format to write.
    #[arg(long, value_enum, default_value_t = SynthFormat::GraphNdjson)]
    format: SynthFormat,
    /// The same seed gives the same sign-ins in every format.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// How many partner tenants.
    #[arg(long, default_value_t = 6)]
    partners: usize,
    #[command(flatten)]
    output: OutputArgs,
    /// Write the scenario's audit trail (its cross-tenant policy changes) in
    /// this format instead of sign-ins.
    #[arg(long, value_enum, value_name = "FORMAT")]
    audit: Option<AuditFormat>,
    /// Also write the scenario's guests (local id, UPN, home id) as `replay --identities` reads them.
    #[arg(value_hint = ValueHint::FilePath, long, value_name = "FILE")]
    identities_out: Option<PathBuf>,
    /// Also write the scenario's partner project group as `replay --groups` reads it.
    #[arg(value_hint = ValueHint::FilePath, long, value_name = "FILE")]
    groups_out: Option<PathBuf>,
}

impl Args {
    pub(crate) fn files(&self) -> Files<'_> {
        self.output.files(Files::default()).write(&self.identities_out).write(&self.groups_out)
    }
}

pub(crate) fn run(args: Args, _g: &Global) -> Result<ExitCode> {
    let plan = GeneratePlan {
        count: args.count,
        format: args.format,
        seed: args.seed,
        partners: args.partners,
        audit: args.audit,
    };
    let mut out = args.output.create()?;
    let (identities, groups) = directory_files(&plan);
    for (path, text) in [(&args.identities_out, identities), (&args.groups_out, groups)] {
        if let Some(p) = path {
            let mut f = Output::create(Some(p))?;
            std::io::Write::write_all(&mut f, text.as_bytes())?;
            f.commit()?;
        }
    }
    generate(&plan, &mut out)?;
    out.commit()?;
    Ok(ExitCode::SUCCESS)
}
