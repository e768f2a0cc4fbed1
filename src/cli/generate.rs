//! `xtenant generate`: realistic synthetic sign-ins in any export format.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

use super::Global;
use crate::report::Output;
use crate::synth::audit::AuditFormat;
use crate::synth::{Scenario, SynthFormat, Writer};

/// Write synthetic sign-ins (seeded, realistic sizes) in an export format.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  xtenant generate --count 300 --format portal-csv -o InteractiveSignIns_sample.csv
  xtenant generate --count 500000 --format graph-ndjson --partners 300 | gzip > big.ndjson.gz
  xtenant generate --audit graph -o directoryAudits.json        (the scenario's policy changes)")]
pub struct Args {
    /// How many sign-ins.
    #[arg(long, default_value_t = 1000)]
    pub count: u64,
    #[arg(long, value_enum, default_value_t = SynthFormat::GraphNdjson)]
    pub format: SynthFormat,
    /// The same seed gives the same sign-ins in every format.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// How many partner tenants.
    #[arg(long, default_value_t = 6)]
    pub partners: usize,
    /// Write to FILE instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Write the scenario's audit trail (its cross-tenant policy changes) in
    /// this format instead of sign-ins.
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub audit: Option<AuditFormat>,
    /// Also write the scenario's guests (local id, UPN, home id) as `replay --identities` reads them.
    #[arg(long, value_name = "FILE")]
    pub identities_out: Option<PathBuf>,
    /// Also write the scenario's partner project group as `replay --groups` reads it.
    #[arg(long, value_name = "FILE")]
    pub groups_out: Option<PathBuf>,
}

pub fn run(args: Args, _g: &Global) -> Result<ExitCode> {
    let mut out = Output::create(args.output.as_deref())?;
    let mut scenario = Scenario::new(args.seed, args.partners);
    for (path, text) in
        [(&args.identities_out, scenario.identities_csv()), (&args.groups_out, scenario.groups_csv())]
    {
        if let Some(p) = path {
            let mut f = Output::create(Some(p))?;
            std::io::Write::write_all(&mut f, text.as_bytes())?;
            f.commit()?;
        }
    }
    if let Some(format) = args.audit {
        crate::synth::audit::write(&scenario, format, &mut out)?;
        out.commit()?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut w = Writer::new(args.format, &mut out)?;
    for _ in 0..args.count {
        w.write(&scenario.sign_in())?;
    }
    w.finish()?;
    out.commit()?;
    Ok(ExitCode::SUCCESS)
}
