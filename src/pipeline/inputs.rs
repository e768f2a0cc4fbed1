//! What evaluation may need besides the sign-ins: the policies, and what
//! the directory and Conditional Access know (group memberships, guests'
//! home ids, grant operators, which apps the keyword targets stand for).

use std::path::PathBuf;

use anyhow::Result;

use super::Notes;
use crate::policy::apps::AppCatalog;
use crate::policy::conditional_access::CaPolicies;
use crate::policy::directory::{load_groups, load_identities, Groups, Identities};
use crate::policy::load::load_valid;
use crate::policy::Policy;

/// Paths of the directory inputs (`--groups`, `--identities`,
/// `--ca-policies`, `--app-table`).
#[derive(Clone, Debug, Default)]
pub(crate) struct DirectoryPaths {
    pub(crate) groups: Vec<PathBuf>,
    pub(crate) identities: Option<PathBuf>,
    pub(crate) ca_policies: Vec<PathBuf>,
    pub(crate) app_table: Option<PathBuf>,
}

/// The directory inputs, loaded.
pub(crate) struct Directory {
    pub(crate) groups: Option<Groups>,
    pub(crate) identities: Option<Identities>,
    pub(crate) ca: CaPolicies,
    pub(crate) apps: AppCatalog,
}

impl Directory {
    pub(crate) fn load(paths: &DirectoryPaths) -> Result<Directory> {
        Ok(Directory {
            groups: if paths.groups.is_empty() { None } else { Some(load_groups(&paths.groups)?) },
            identities: paths.identities.as_deref().map(load_identities).transpose()?,
            ca: if paths.ca_policies.is_empty() {
                CaPolicies::default()
            } else {
                CaPolicies::load(&paths.ca_policies)?
            },
            apps: match &paths.app_table {
                Some(p) => AppCatalog::with_user_table(p)?,
                None => AppCatalog::built_in().clone(),
            },
        })
    }
}

/// Loads a policy that must be valid, noting what loading noticed.
pub(crate) fn policy(path: &std::path::Path, notes: Notes<'_>) -> Result<Policy> {
    let p = load_valid(path)?;
    for w in &p.warnings {
        notes(&format!("warning: {w}"));
    }
    Ok(p)
}
