//! `generate`: realistic synthetic sign-ins or audit trails in any export
//! format, and the scenario's directory files.

use std::io::Write;

use anyhow::Result;

use crate::synth::audit::AuditFormat;
use crate::synth::{Scenario, SynthFormat, Writer};

/// What to generate.
pub(crate) struct GeneratePlan {
    pub(crate) count: u64,
    pub(crate) format: SynthFormat,
    pub(crate) seed: u64,
    pub(crate) partners: usize,
    /// The audit trail in this format instead of sign-ins.
    pub(crate) audit: Option<AuditFormat>,
}

/// The scenario's guests and partner group, as `--identities` and
/// `--groups` read them.
pub(crate) fn directory_files(plan: &GeneratePlan) -> (String, String) {
    let scenario = Scenario::new(plan.seed, plan.partners);
    (scenario.identities_csv(), scenario.groups_csv())
}

/// Writes the sign-ins (or the audit trail) to `out`.
pub(crate) fn generate(plan: &GeneratePlan, out: &mut dyn Write) -> Result<()> {
    let mut scenario = Scenario::new(plan.seed, plan.partners);
    if let Some(format) = plan.audit {
        return crate::synth::audit::write(&scenario, format, out);
    }
    let mut w = Writer::new(plan.format, out)?;
    for _ in 0..plan.count {
        w.write(&scenario.sign_in())?;
    }
    w.finish()
}
