#!/usr/bin/env python3
"""Side-by-side comparison: xtenant vs DuckDB, polars and jq on the same
Graph beta NDJSON file, doing the same grouping (cross-tenant sign-ins by
home tenant, resource tenant, access type, app, resource and user, with
counts, successes, failures, first and last seen).

Prints a Markdown table: median wall time over --runs, throughput, peak
RSS, and each tool's time relative to xtenant. Run it through
benches/compare.sh, which builds the release binary and installs DuckDB and
polars (from PyPI) in benches/.venv when missing.
"""
import argparse, json, os, resource, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
XT = os.path.join(ROOT, "target", "release", "xtenant")

# The same query over two readers: the columns named (what a tuned user
# writes) and the schema detected (what a user types first).
DUCKDB = r"""
import duckdb, sys
con = duckdb.connect()
con.execute("SET threads TO 2")
source = {
    "named": "read_json(?, format='newline_delimited', columns={"
             "'createdDateTime': 'VARCHAR', 'userId': 'VARCHAR', 'appId': 'VARCHAR', 'resourceId': 'VARCHAR', "
             "'homeTenantId': 'VARCHAR', 'resourceTenantId': 'VARCHAR', 'crossTenantAccessType': 'VARCHAR', "
             "'status': 'STRUCT(errorCode BIGINT)'})",
    "auto": "read_json_auto(?)",
}[sys.argv[3]]
con.execute(
    "COPY (SELECT homeTenantId, resourceTenantId, crossTenantAccessType, appId, resourceId, userId, "
    "count(*) AS sign_ins, "
    "sum(CASE WHEN status.errorCode = 0 THEN 1 ELSE 0 END) AS successes, "
    "sum(CASE WHEN status.errorCode <> 0 THEN 1 ELSE 0 END) AS failures, "
    "min(createdDateTime) AS first_seen, max(createdDateTime) AS last_seen "
    f"FROM {source} WHERE homeTenantId <> resourceTenantId GROUP BY ALL ORDER BY ALL) "
    f"TO '{sys.argv[2]}' (FORMAT csv)",
    [sys.argv[1]],
)
"""

POLARS = r"""
import polars as pl, sys
schema = {"createdDateTime": pl.String, "userId": pl.String, "appId": pl.String, "resourceId": pl.String,
          "homeTenantId": pl.String, "resourceTenantId": pl.String, "crossTenantAccessType": pl.String,
          "status": pl.Struct({"errorCode": pl.Int64})}
df = (pl.scan_ndjson(sys.argv[1], schema=schema)
      .filter(pl.col("homeTenantId") != pl.col("resourceTenantId"))
      .with_columns(pl.col("status").struct.field("errorCode").alias("code"))
      .group_by(["homeTenantId", "resourceTenantId", "crossTenantAccessType", "appId", "resourceId", "userId"])
      .agg(pl.len().alias("sign_ins"), (pl.col("code") == 0).sum().alias("successes"),
           (pl.col("code") != 0).sum().alias("failures"),
           pl.col("createdDateTime").min().alias("first_seen"), pl.col("createdDateTime").max().alias("last_seen"))
      .sort(["homeTenantId", "resourceTenantId", "crossTenantAccessType", "appId", "resourceId", "userId"])
      .collect())
df.write_csv(sys.argv[2])
"""

JQ = r"""reduce (inputs | select(.homeTenantId != .resourceTenantId)) as $r ({};
  ([$r.homeTenantId, $r.resourceTenantId, $r.crossTenantAccessType, $r.appId, $r.resourceId, $r.userId] | join("|")) as $k
  | .[$k].n += 1
  | .[$k].ok += (if $r.status.errorCode == 0 then 1 else 0 end)
  | .[$k].first = ([.[$k].first // $r.createdDateTime, $r.createdDateTime] | min)
  | .[$k].last = ([.[$k].last // $r.createdDateTime, $r.createdDateTime] | max))
| length"""


def measure(cmd):
    """Wall seconds and peak RSS (MiB) of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t = time.perf_counter()
    p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - t
    if p.returncode != 0:
        sys.exit(f"{cmd[0]} failed: {p.stderr.decode()[-2000:]}")
    # ru_maxrss of children is the max over all children so far: run each
    # measurement in its own wrapper to read it cleanly.
    return wall, before


def run_isolated(cmd):
    wrapper = [sys.executable, "-c",
               "import resource,subprocess,sys,time,json;t=time.perf_counter();"
               "p=subprocess.run(sys.argv[1:],stdout=subprocess.DEVNULL,stderr=subprocess.PIPE);"
               "w=time.perf_counter()-t;"
               "sys.stderr.write(p.stderr.decode()[-2000:]) if p.returncode else None;"
               "print(json.dumps([p.returncode,w,resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss/1024]))"] + cmd
    out = subprocess.run(wrapper, capture_output=True, text=True)
    rc, wall, rss = json.loads(out.stdout.strip().splitlines()[-1])
    if rc != 0:
        sys.exit(f"{cmd} failed:\n{out.stderr}")
    return wall, rss


def median_run(cmd, runs):
    results = [run_isolated(cmd) for _ in range(runs)]
    return statistics.median(r[0] for r in results), max(r[1] for r in results)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mb", type=int, default=500)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--partners", type=int, default=300)
    ap.add_argument("--jq-slice-mb", type=int, default=50)
    ap.add_argument("--dir", default=tempfile.gettempdir())
    ap.add_argument("--skip", default="", help="comma list of tools to skip: duckdb,polars,jq")
    a = ap.parse_args()
    skip = set(filter(None, a.skip.split(",")))
    data = os.path.join(a.dir, f"xtenant-bench-{a.size_mb}mb.ndjson")
    if not os.path.exists(data):
        count = a.size_mb * 1_000_000 // 5100
        subprocess.run([XT, "generate", "--count", str(count), "--partners", str(a.partners),
                        "--format", "graph-ndjson", "-o", data], check=True)
    size = os.path.getsize(data) / 1e6
    # A realistic proposal: block by default, allow-list every partner seen for Office 365.
    partners = subprocess.run([XT, "activity", "-q", "--by", "tenant", "--format", "csv", data],
                              capture_output=True, text=True, check=True).stdout.splitlines()[1:]
    ids = sorted({l.split(",")[2] for l in partners})
    o365 = lambda: {"usersAndGroups": {"accessType": "allowed", "targets": [{"target": "AllUsers", "targetType": "user"}]},
                    "applications": {"accessType": "allowed", "targets": [{"target": "Office365", "targetType": "application"}]}}
    shut = {"usersAndGroups": {"accessType": "blocked", "targets": [{"target": "AllUsers", "targetType": "user"}]},
            "applications": {"accessType": "blocked", "targets": [{"target": "AllApplications", "targetType": "application"}]}}
    policy = {"default": {"b2bCollaborationInbound": shut, "b2bCollaborationOutbound": shut},
              "partners": [{"tenantId": t, "b2bCollaborationInbound": o365(), "b2bCollaborationOutbound": o365()} for t in ids]}
    policy_path = os.path.join(a.dir, "xtenant-bench-policy.json")
    json.dump(policy, open(policy_path, "w"))
    slice_path = os.path.join(a.dir, f"xtenant-bench-slice-{a.jq_slice_mb}mb.ndjson")
    with open(data, "rb") as src, open(slice_path, "wb") as dst:
        dst.writelines(l for _, l in zip(range(a.jq_slice_mb * 1_000_000 // 5100), src))

    # Every tool writes its result to a scratch file (never /dev/null: tools
    # that write atomically would replace the device with a regular file).
    out = os.path.join(a.dir, "xtenant-bench-result.csv")
    rows = []
    def add(name, cmd, mb):
        wall, rss = median_run(cmd, a.runs)
        rows.append((name, wall, mb / wall, rss))
        print(f"  {name}: {wall:.2f} s", file=sys.stderr)
    add("xtenant activity --by user --format csv", [XT, "activity", "-q", "--format", "csv", "-o", out, data], size)
    add(f"xtenant replay ({len(ids)} partners in the policy)",
        [XT, "replay", "-q", "--proposed", policy_path, "--format", "csv", "-o", out, data], size)
    if "duckdb" not in skip:
        add("DuckDB read_json, the 8 columns named, + GROUP BY", [sys.executable, "-c", DUCKDB, data, out, "named"], size)
        add("DuckDB read_json_auto (schema detected) + GROUP BY", [sys.executable, "-c", DUCKDB, data, out, "auto"], size)
    if "polars" not in skip:
        add("polars scan_ndjson + group_by", [sys.executable, "-c", POLARS, data, out], size)
    if "jq" not in skip:
        slice_mb = os.path.getsize(slice_path) / 1e6
        add(f"jq reduce (on a {slice_mb:.0f} MB slice)", ["jq", "-n", JQ, slice_path], slice_mb)

    os.remove(out)
    base = rows[0][2]
    print(f"\n{size:.0f} MB Graph beta NDJSON ({size * 1e6 / 5100 / 1e3:.0f}k sign-ins), {os.cpu_count()} cores, median of {a.runs} runs\n")
    print("| tool | wall (s) | throughput (MB/s) | peak RSS (MB) | xtenant throughput / tool's |")
    print("|---|---:|---:|---:|---:|")
    for name, wall, tput, rss in rows:
        print(f"| {name} | {wall:.2f} | {tput:.0f} | {rss:.0f} | {base / tput:.1f}x |")


if __name__ == "__main__":
    main()
