//! `policy show`, `check` and `diff`: the policy engine's answers, for the
//! render layer to draw.

use std::path::Path;

use anyhow::Result;

use super::inputs::policy;
use super::Notes;
use crate::model::Guid;
use crate::policy::diff::{diff as policy_diff, Change};
use crate::policy::load::load;
use crate::policy::model::{service_default, Policy};
use crate::policy::resolve::{Effective, Resolver};
use crate::policy::validate::{check as validate, Problem};

/// Which settings to show: every scope, the default's, or one partner's.
pub(crate) enum Scope {
    All,
    Default,
    Partner(Guid),
}

/// The settings that apply to each scope after inheritance.
pub(crate) fn show(path: &Path, scope: Scope, notes: Notes<'_>) -> Result<(Policy, Vec<Effective>)> {
    let p = policy(path, notes)?;
    let scopes: Vec<Option<Guid>> = match scope {
        Scope::Default => vec![None],
        Scope::Partner(g) => vec![Some(g)],
        Scope::All => std::iter::once(None).chain(p.partners.keys().map(|k| Some(*k))).collect(),
    };
    let resolver = Resolver::new(&p);
    let effs = scopes.iter().map(|s| resolver.effective(*s)).collect();
    Ok((p, effs))
}

/// Structural errors, Microsoft's rules, warnings. Loads even an invalid
/// policy, so that every problem is reported.
pub(crate) fn check(path: &Path) -> Result<(Policy, Vec<Problem>)> {
    let (p, load_errors) = load(path)?;
    let problems = validate(&p, &load_errors);
    Ok((p, problems))
}

/// What changes per partner and setting, after inheritance.
pub(crate) fn diff(
    current: &Path,
    proposed: &Path,
    notes: Notes<'_>,
) -> Result<(Policy, Policy, Vec<Change>)> {
    let a = policy(current, notes)?;
    let b = policy(proposed, notes)?;
    let changes = policy_diff(&a, &b);
    Ok((a, b, changes))
}

/// Microsoft's service default as a policy.
pub(crate) fn service_default_policy() -> Policy {
    Policy { default: Some(std::sync::Arc::new(service_default())), ..Policy::default() }
}
