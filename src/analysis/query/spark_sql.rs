//! The activity table in Spark SQL (placeholder).

use super::QuerySpec;

pub(crate) fn query(_spec: &QuerySpec) -> Result<String, String> {
    Err("not yet".into())
}
