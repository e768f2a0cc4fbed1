//! The activity table in Spark SQL, over the diagnostic-settings records
//! Azure Monitor writes to storage (`insights-logs-signinlogs`,
//! `insights-logs-noninteractiveusersigninlogs`: one JSON record per line
//! with `time`, `category`, `tenantId`, `resultType` and `properties`).
//!
//! Runs on Databricks, Synapse, Fabric and plain Spark 3.5 or later. The
//! per-sign-in work uses Spark's built-in higher-order functions
//! (`filter`, `transform`, `exists`, `aggregate`) over the policy array,
//! so a sign-in is never exploded into rows and no user-defined function
//! runs per row. A source given as a path is read through a view with the
//! schema the query needs, so that fields a day's files lack are null
//! rather than an error, and Azure Monitor's `y=/m=/d=/h=/m=` folders are
//! not mistaken for partition columns (`m` is there twice).

use super::{header, literal_time, QuerySpec, Records};
use crate::model::codes::{INBOUND_POLICY_BLOCK, OUTBOUND_POLICY_BLOCK, POLICY_BLOCK_CODES};
use crate::model::GroupBy;

const DIAGNOSTIC: &str = include_str!("diagnostic.sql");
const STORE: &str = include_str!("store.sql");
const NAMES: &str = include_str!("names.sql");

/// The table or view read when no `--source` is given.
fn default_source(records: Records) -> &'static str {
    match records {
        Records::Diagnostic => "signin_logs",
        Records::Store => "xtenant_signins",
    }
}

/// What the query reads of a record; a view over files is declared with it.
pub(crate) const RECORD_SCHEMA: &str = "`time` STRING, category STRING, tenantId STRING, resultType STRING,
  properties STRUCT<
    id: STRING, createdDateTime: STRING, userId: STRING, userPrincipalName: STRING, userType: STRING,
    homeTenantId: STRING, homeTenantName: STRING, resourceTenantId: STRING, crossTenantAccessType: STRING,
    appId: STRING, appDisplayName: STRING, appOwnerTenantId: STRING,
    resourceId: STRING, resourceDisplayName: STRING, resourceOwnerTenantId: STRING,
    status: STRUCT<errorCode: STRING, additionalDetails: STRING>,
    appliedConditionalAccessPolicies: ARRAY<STRUCT<id: STRING, result: STRING, enforcedGrantControls: ARRAY<STRING>,
      authenticationStrength: STRUCT<authenticationStrengthId: STRING, id: STRING>>>,
    authenticationDetails: ARRAY<STRUCT<authenticationStepResultDetail: STRING>>,
    authenticationRequirement: STRING,
    mfaDetail: STRUCT<authDetail: STRING>>";

const GUID: &str = "^[ \\t\\r\\n]*([{][0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}[}]|[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12})[ \\t\\r\\n]*$";

/// A path rather than a table name: it has a scheme or a slash and is not
/// already a `format.\`path\`` reference.
fn is_path(source: &str) -> bool {
    !source.contains('`') && (source.contains('/') || source.contains('\\') || source.contains("://"))
}

/// The columns a union of several sources keeps.
fn union_columns(records: Records) -> &'static str {
    match records {
        Records::Diagnostic => "`time`, resultType, properties",
        Records::Store => "*",
    }
}

/// Expands `{name:arg}` in the template: the expressions SQL would need a
/// function for, written out where they are used.
fn expand(template: &str, name: &str, body: impl Fn(&str) -> String) -> String {
    let open = format!("{{{name}:");
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(i) = rest.find(&open) {
        out.push_str(&rest[..i]);
        let after = &rest[i + open.len()..];
        let end = after.find('}').unwrap_or(after.len());
        out.push_str(&body(&after[..end]));
        rest = after.get(end + 1..).unwrap_or("");
    }
    out.push_str(rest);
    out
}

/// The grant control a name stands for, as `Controls::of_name` reads it.
fn control_bit(n: &str) -> String {
    let nm = format!("lower(regexp_replace({n}, '[^A-Za-z0-9]', ''))");
    format!(
        "CASE WHEN {nm} IS NULL OR {nm} = '' OR {nm} = 'block' THEN 0 \
         WHEN {nm} LIKE '%authenticationstrength%' THEN 8 \
         WHEN {nm} LIKE '%compliantdevice%' THEN 2 \
         WHEN {nm} LIKE '%domainjoineddevice%' OR {nm} LIKE '%hybrid%' THEN 4 \
         WHEN {nm} = 'mfa' OR {nm} LIKE '%multifactor%' OR {nm} LIKE '%requiremfa%' THEN 1 ELSE 16 END"
    )
}

fn sql_string(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

pub(crate) fn query(spec: &QuerySpec) -> Result<String, String> {
    let sources: Vec<String> = if spec.sources.is_empty() {
        vec![default_source(spec.records).to_string()]
    } else {
        spec.sources.clone()
    };
    let mut views = String::new();
    let mut relations = Vec::new();
    for (i, s) in sources.iter().enumerate() {
        if is_path(s) {
            let view = format!("xtenant_records_{}", i + 1);
            views.push_str(&match spec.records {
                Records::Diagnostic => format!(
                    "CREATE OR REPLACE TEMPORARY VIEW {view} ({RECORD_SCHEMA})\nUSING json OPTIONS (path {}, recursiveFileLookup 'true');\n",
                    sql_string(s)
                ),
                // Files written before schema version 2 lack two columns.
                Records::Store => format!(
                    "CREATE OR REPLACE TEMPORARY VIEW {view}\nUSING parquet OPTIONS (path {}, mergeSchema 'true');\n",
                    sql_string(s)
                ),
            });
            relations.push(view);
        } else {
            relations.push(s.clone());
        }
    }
    let source = match relations.as_slice() {
        [one] => one.clone(),
        many => format!(
            "(\n    {}\n  ) AS sources",
            many.iter()
                .map(|r| format!("SELECT {} FROM {r}", union_columns(spec.records)))
                .collect::<Vec<_>>()
                .join("\n    UNION ALL\n    ")
        ),
    };
    let mut window = String::new();
    if let Some(s) = spec.window.since {
        window.push_str(&format!(" AND at >= TIMESTAMP '{}'", literal_time(&s)));
    }
    if let Some(u) = spec.window.until {
        window.push_str(&format!(" AND at < TIMESTAMP '{}'", literal_time(&u)));
    }
    let template = match spec.records {
        Records::Diagnostic => DIAGNOSTIC,
        Records::Store => STORE,
    };
    let mut body = format!("{template}{NAMES}")
        .replace("{source}", &source)
        .replace("{window}", &window)
        .replace("{tenant}", &spec.tenant.to_string())
        .replace("{guid}", GUID);
    body = expand(&body, "says", |e| {
        format!("lower({e}) LIKE '%mfa%' AND lower({e}) LIKE '%satisfied by claim%'")
    });
    body = expand(&body, "needed", |b| format!("({b} & 15) > 0 AND (bit_count({b}) > 1 OR ({b} & 8) > 0)"));
    body = expand(&body, "control_bit", control_bit);
    let run = [
        "Databricks / Synapse / Fabric / spark-sql: run as is (the statements in order); then",
        "df.write.csv(..., header=True) or the notebook's download, and give the file or folder to",
        "`xtenant replay`. With --source naming a table, it must have the diagnostic record's fields.",
    ];
    let mut q = header(spec, "--", &run);
    q.push_str("SET TIME ZONE 'UTC';\n");
    q.push_str(&views);
    q.push_str("WITH\n");
    q.push_str(&body);
    q.push_str(&tail(spec.by));
    Ok(q)
}

/// Grouping at the asked grain, names joined, the output columns in order.
fn tail(by: GroupBy) -> String {
    let mut keys = vec!["direction", "access", "partner"];
    if by != GroupBy::Tenant {
        keys.extend(["app", "res"]);
    }
    if by == GroupBy::User {
        keys.push("user_key");
    }
    let codes: Vec<String> = POLICY_BLOCK_CODES.iter().map(u32::to_string).collect();
    let mut aggregates = vec![
        "count(*) AS sign_ins".to_string(),
        "count_if(code = 0) AS successes".into(),
        "count_if(code <> 0) AS failures".into(),
        format!("count_if(code IN ({})) AS policy_blocks", codes.join(", ")),
        format!("count_if(code = {OUTBOUND_POLICY_BLOCK}) AS home_outbound_blocks"),
        format!("count_if(code = {INBOUND_POLICY_BLOCK}) AS resource_inbound_blocks"),
        "count_if(mfa_required) AS mfa_required".into(),
        "count_if(by_claim) AS mfa_by_claim".into(),
        "count_if(plain_compliant) AS compliant_device_required".into(),
        "count_if(plain_hybrid) AS hybrid_join_required".into(),
        "count_if(NOT ca_details) AS ca_details_missing".into(),
        "min(at) AS first_at".into(),
        "max(at) AS last_at".into(),
        "nullif(array_join(array_sort(array_distinct(flatten(collect_set(clauses)))), ';'), '') AS grant_clauses".into(),
    ];
    if by != GroupBy::User {
        aggregates.push("count(DISTINCT user_key) AS distinct_users".into());
    }
    if by == GroupBy::Tenant {
        aggregates.push("count(DISTINCT app) AS distinct_apps".into());
    }
    let mut q = format!(
        "grouped AS (\n  SELECT {},\n    {}\n  FROM sign_ins WHERE direction IS NOT NULL\n  GROUP BY {}\n)\n",
        keys.join(", "),
        aggregates.join(",\n    "),
        keys.join(", ")
    );
    let columns: Vec<String> = crate::model::activity::columns(by).iter().map(|c| output_column(c)).collect();
    q.push_str(&format!("SELECT\n  {}\nFROM grouped g\n", columns.join(",\n  ")));
    q.push_str("LEFT JOIN tenant_names t ON g.partner = t.named\n");
    if by != GroupBy::Tenant {
        q.push_str("LEFT JOIN app_names an ON g.app = an.named\n");
        q.push_str("LEFT JOIN res_names rn ON g.res = rn.named\n");
        q.push_str("LEFT JOIN owners ao ON g.app = ao.owned\n");
        q.push_str("LEFT JOIN owners ro ON g.res = ro.owned\n");
    }
    if by == GroupBy::User {
        q.push_str("LEFT JOIN users u ON g.user_key = u.named\n");
    }
    let mut order: Vec<String> = keys
        .iter()
        .map(|k| match *k {
            "access" => "g.access".to_string(),
            k => format!("g.{k}"),
        })
        .collect();
    // Direction, partner, access type, app, resource, user: the order `activity` writes.
    order.swap(1, 2);
    q.push_str(&format!("ORDER BY {}\n", order.join(", ")));
    q.push_str(";\n");
    q
}

/// One output column from the grouped names above.
fn output_column(c: &str) -> String {
    let e = match c {
        "direction" => "g.direction",
        "access_type" => "g.access",
        "partner_tenant_id" => "g.partner",
        "partner_tenant_name" => "t.home_name",
        "app_id" => "g.app",
        "app_name" => "an.app_name",
        "resource_id" => "g.res",
        "resource_name" => "rn.res_name",
        "user_id" => "g.user_key",
        "user_principal_name" => "nullif(u.newest.upn, '')",
        "user_type" => "CASE u.newest.rank WHEN 0 THEN 'member' WHEN 1 THEN 'guest' WHEN 2 THEN 'unknown' END",
        "first_seen" => "date_format(g.first_at, \"yyyy-MM-dd'T'HH:mm:ss'Z'\")",
        "last_seen" => "date_format(g.last_at, \"yyyy-MM-dd'T'HH:mm:ss'Z'\")",
        "blocked_by_us" => {
            "CASE WHEN g.direction = 'outbound' THEN g.home_outbound_blocks ELSE g.resource_inbound_blocks END"
        }
        "blocked_by_partner" => {
            "CASE WHEN g.direction = 'outbound' THEN g.resource_inbound_blocks ELSE g.home_outbound_blocks END"
        }
        "app_owner_tenant_id" => "ao.owner",
        "resource_owner_tenant_id" => "ro.owner",
        counter => return format!("g.{counter} AS {counter}"),
    };
    format!("{e} AS {c}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_macro_is_expanded_wherever_it_is_used() {
        let t = "a {twice:x} b {twice:y.z} c {other:q}";
        assert_eq!(expand(t, "twice", |e| format!("{e}{e}")), "a xx b y.zy.z c {other:q}");
        assert_eq!(expand("{twice:unclosed", "twice", |e| e.to_string()), "unclosed");
    }

    #[test]
    fn paths_get_a_view_and_names_are_read_as_they_are() {
        for p in ["abfss://c@a.dfs.core.windows.net/x", "/mnt/logs/", "C:\\logs", "s3://b/k"] {
            assert!(is_path(p), "{p}");
        }
        for n in ["signin_logs", "catalog.schema.signins", "json.`abfss://c@a/x`"] {
            assert!(!is_path(n), "{n}");
        }
    }

    #[test]
    fn control_names_are_classified_as_controls_of_name_does() {
        // The SQL mirrors Controls::of_name; keep the list of spellings the
        // same as that function's test.
        let sql = control_bit("n");
        for needle in [
            "'block'",
            "authenticationstrength",
            "compliantdevice",
            "domainjoineddevice",
            "hybrid",
            "'mfa'",
            "multifactor",
            "requiremfa",
        ] {
            assert!(sql.contains(needle), "{needle}");
        }
    }
}
