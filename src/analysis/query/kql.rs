//! The activity table in KQL, over `SigninLogs` and
//! `AADNonInteractiveUserSignInLogs` as the Azure Monitor table reference
//! defines them.
//!
//! The two tables differ in type: `Status`, `ConditionalAccessPolicies`
//! and `MfaDetail` are `dynamic` in `SigninLogs` and JSON text in the
//! non-interactive table, so each side is normalised to one shape before
//! the `union` (a plain union would split same-named columns of different
//! types). Columns the reference does not list but workspaces may carry
//! (`HomeTenantName`, `AppOwnerTenantId`, `ResourceOwnerTenantId`) are read
//! with `column_ifexists`. Only operators and functions that Log Analytics,
//! Azure Data Explorer and duckdb-kql (which runs it in our tests) all
//! have are used: `mv-expand` rather than `mv-apply`, `make_set` rather
//! than `make_set_if`, joins rather than `lookup`.

use super::{header, literal_time, QuerySpec};
use crate::model::codes::{INBOUND_POLICY_BLOCK, OUTBOUND_POLICY_BLOCK, POLICY_BLOCK_CODES};
use crate::model::GroupBy;

const SIGNINS: &str = include_str!("signins.kql");

/// The documented table names.
const TABLES: [&str; 2] = ["SigninLogs", "AADNonInteractiveUserSignInLogs"];

/// Sign-ins are read from one day either side of the window by
/// `TimeGenerated` (the column the workspace is partitioned by, so the
/// engine skips the rest) and then kept by their own time, as `activity` does.
const SLACK: &str = "1d";

/// The counters summed per group: (column, expression over one sign-in).
fn counters() -> Vec<(&'static str, String)> {
    let codes: Vec<String> = POLICY_BLOCK_CODES.iter().map(u32::to_string).collect();
    vec![
        ("sign_ins", "count()".into()),
        ("successes", "countif(Code == 0)".into()),
        ("failures", "countif(Code != 0)".into()),
        ("policy_blocks", format!("countif(Code in ({}))", codes.join(", "))),
        ("HomeOutboundBlocks", format!("countif(Code == {OUTBOUND_POLICY_BLOCK})")),
        ("ResourceInboundBlocks", format!("countif(Code == {INBOUND_POLICY_BLOCK})")),
        ("mfa_required", "countif(MfaRequired)".into()),
        ("mfa_by_claim", "countif(ByClaim == 1)".into()),
        ("compliant_device_required", "countif(PlainCompliant == 1)".into()),
        ("hybrid_join_required", "countif(PlainHybrid == 1)".into()),
        ("ca_details_missing", "countif(CaDetails == 0)".into()),
    ]
}

/// The aggregates of the finest grain (one row per partner, app, resource
/// and user), from sign-ins.
fn user_grain_aggregates() -> String {
    let mut a: Vec<String> = counters().into_iter().map(|(c, e)| format!("{c} = {e}")).collect();
    a.extend(["First = min(Time)".into(), "Last = max(Time)".into(), "Clauses = make_set(Clauses)".into()]);
    a.join(", ")
}

/// The same aggregates rolled up from finer groups.
fn rollup_aggregates() -> String {
    let mut a: Vec<String> = counters().into_iter().map(|(c, _)| format!("{c} = sum({c})")).collect();
    a.extend(["First = min(First)".into(), "Last = max(Last)".into(), "Clauses = make_set(Clauses)".into()]);
    a.join(", ")
}

/// The newest value per key over the sign-ins, ties to the greater text:
/// the time is written before the value in a fixed width, so the greatest
/// string is the newest spelling.
fn newest(name: &str, key: &str, value: &str, filter: &str) -> String {
    format!(
        "let {name} = SignIns | where {filter}\n    | summarize Newest = max(strcat(format_datetime(Time, \"{STAMP}\"), {value})) by {key}\n    | project {key}, {value} = substring(Newest, {width});\n",
        width = STAMP.len()
    )
}

/// Fixed-width time text (microseconds: the finest every engine keeps).
const STAMP: &str = "yyyy-MM-dd HH:mm:ss.ffffff";

pub(crate) fn query(spec: &QuerySpec) -> Result<String, String> {
    let (interactive, noninteractive) = match spec.sources.as_slice() {
        [] => (TABLES[0].to_string(), TABLES[1].to_string()),
        [a, b] => (a.clone(), b.clone()),
        other => {
            return Err(format!(
                "--engine kql reads two tables: give --source twice, the interactive table then the non-interactive one (got {})",
                other.len()
            ))
        }
    };
    let w = &spec.window;
    let mut prefilter = String::new();
    let mut window = String::new();
    if let Some(s) = w.since {
        let s = literal_time(&s);
        prefilter.push_str(&format!("\n    | where TimeGenerated >= datetime({s}) - {SLACK}"));
        window.push_str(&format!(" and Time >= datetime({s})"));
    }
    if let Some(u) = w.until {
        let u = literal_time(&u);
        prefilter.push_str(&format!("\n    | where TimeGenerated < datetime({u}) + {SLACK}"));
        window.push_str(&format!(" and Time < datetime({u})"));
    }
    let signins = SIGNINS
        .replace("{interactive}", &interactive)
        .replace("{noninteractive}", &noninteractive)
        .replace("{prefilter}", &prefilter)
        .replace("{window}", &window)
        .replace("{tenant}", &spec.tenant.to_string());
    let run = [
        "Log Analytics / Sentinel: paste into Logs (time range: Set in query, or wide enough for the",
        "window), run, then Export > CSV (all columns); or `az monitor log-analytics query -w ID",
        "--analytics-query @this-file -o json`. Azure Data Explorer: run over the same tables.",
        "Results past 500,000 rows or 64 MB are cut by Log Analytics: split with --since/--until.",
    ];
    let mut q = header(spec, "//", &run);
    q.push_str(&signins);
    Ok(q + &tail(spec.by))
}

/// Name tables, the grouping at the asked grain and the output columns.
fn tail(by: GroupBy) -> String {
    let mut q = String::new();
    q.push_str(&newest("AppNames", "App", "AppName", "isnotempty(App) and isnotempty(AppName)"));
    q.push_str(&newest("ResNames", "Res", "ResName", "isnotempty(Res) and isnotempty(ResName)"));
    q.push_str(&newest("TenantNames", "Home", "HomeName", "isnotempty(HomeName)"));
    q.push_str(
        "// An app or resource id has one owner, whichever side of a sign-in it is on.\n\
         let Owners = union (SignIns | where isnotempty(App) and isnotempty(AppOwner) | project Owned = App, Time, Owner = AppOwner),\n    \
         (SignIns | where isnotempty(Res) and isnotempty(ResOwner) | project Owned = Res, Time, Owner = ResOwner)\n    \
         | summarize Newest = max(strcat(format_datetime(Time, \"STAMP\"), Owner)) by Owned\n    \
         | project Owned, Owner = substring(Newest, WIDTH);\n"
            .replace("STAMP", STAMP)
            .replace("WIDTH", &STAMP.len().to_string())
            .as_str(),
    );
    if by == GroupBy::User {
        // (principal name, user type) of the newest sign-in, ties to the
        // greater name, then to the later type in xtenant's order
        // (member, guest, unknown).
        q.push_str(
            "let Users = SignIns | where isnotempty(User)\n    \
             | summarize Newest = max(strcat(format_datetime(Time, \"STAMP\"), Upn, \"\\n\", case(UserKind == \"member\", \"0\", UserKind == \"guest\", \"1\", \"2\"))) by User\n    \
             | extend Tail = substring(Newest, WIDTH)\n    \
             | project User, Upn = substring(Tail, 0, strlen(Tail) - 2), UserKind = case(Tail endswith \"0\", \"member\", Tail endswith \"1\", \"guest\", \"unknown\");\n"
                .replace("STAMP", STAMP)
                .replace("WIDTH", &STAMP.len().to_string())
                .as_str(),
        );
    }
    q.push_str("SignIns\n| where isnotempty(Direction)\n");
    q.push_str(&format!(
        "| summarize {} by Direction, Access, Partner, App, Res, User\n",
        user_grain_aggregates()
    ));
    match by {
        GroupBy::User => {}
        GroupBy::App => q.push_str(&format!(
            "| summarize {}, DistinctUsers = countif(isnotempty(User)) by Direction, Access, Partner, App, Res\n",
            rollup_aggregates()
        )),
        GroupBy::Tenant => {
            q.push_str(&format!(
                "| summarize {}, Apps = make_set(App) by Direction, Access, Partner, User\n",
                rollup_aggregates()
            ));
            q.push_str(&format!(
                "| summarize {}, DistinctUsers = countif(isnotempty(User)), Apps = make_set(Apps) by Direction, Access, Partner\n",
                rollup_aggregates()
            ));
        }
    }
    q.push_str("| join kind=leftouter (TenantNames | project NamedTenant = Home, HomeName) on $left.Partner == $right.NamedTenant\n");
    if by != GroupBy::Tenant {
        q.push_str("| join kind=leftouter (AppNames | project NamedApp = App, AppName) on $left.App == $right.NamedApp\n");
        q.push_str("| join kind=leftouter (ResNames | project NamedRes = Res, ResName) on $left.Res == $right.NamedRes\n");
        q.push_str("| join kind=leftouter (Owners | project OwnedApp = Owned, AppOwner = Owner) on $left.App == $right.OwnedApp\n");
        q.push_str("| join kind=leftouter (Owners | project OwnedRes = Owned, ResOwner = Owner) on $left.Res == $right.OwnedRes\n");
    }
    if by == GroupBy::User {
        q.push_str("| join kind=leftouter (Users | project NamedUser = User, Upn, UserKind) on $left.User == $right.NamedUser\n");
    }
    let columns: Vec<String> = crate::model::activity::columns(by).iter().map(|c| output_column(c)).collect();
    q.push_str(&format!("| project {}\n", columns.join(",\n    ")));
    q.push_str("| order by direction asc, partner_tenant_id asc, access_type asc");
    if by != GroupBy::Tenant {
        q.push_str(", app_id asc, resource_id asc");
    }
    if by == GroupBy::User {
        q.push_str(", user_id asc");
    }
    q.push('\n');
    q
}

/// One output column from the grouped names above.
fn output_column(c: &str) -> String {
    let e = match c {
        "direction" => "Direction",
        "access_type" => "Access",
        "partner_tenant_id" => "Partner",
        "partner_tenant_name" => "HomeName",
        "app_id" => "App",
        "app_name" => "AppName",
        "resource_id" => "Res",
        "resource_name" => "ResName",
        "user_id" => "User",
        "user_principal_name" => "Upn",
        "user_type" => "UserKind",
        "distinct_apps" => "array_length(Apps) - iff(set_has_element(Apps, \"\"), 1, 0)",
        "distinct_users" => "DistinctUsers",
        "first_seen" => "bin(First, 1s)",
        "last_seen" => "bin(Last, 1s)",
        "blocked_by_us" => "iff(Direction == \"outbound\", HomeOutboundBlocks, ResourceInboundBlocks)",
        "blocked_by_partner" => "iff(Direction == \"outbound\", ResourceInboundBlocks, HomeOutboundBlocks)",
        "app_owner_tenant_id" => "AppOwner",
        "resource_owner_tenant_id" => "ResOwner",
        "grant_clauses" => "trim_start(@\";+\", strcat_array(array_sort_asc(Clauses), \";\"))",
        counter => return counter.to_string(),
    };
    format!("{c} = {e}")
}
