#!/usr/bin/env python3
"""Side-by-side comparison: xtenant vs DuckDB, polars and jq on the same
Graph beta NDJSON file, doing the same grouping (cross-tenant sign-ins by
home tenant, resource tenant, access type, app, resource and user, with
counts, successes, failures, first and last seen).

Prints Markdown tables: median wall time over --runs, throughput, peak
RSS, and each tool's throughput relative to xtenant's. Sections (--sections):
ndjson (the main table), own (the same file with 9 in 10 sign-ins made
the tenant's own, as most of a real log's are), csv (the same grouping on Log Analytics and portal
CSV exports against DuckDB read_csv, and xtenant's replay of each against an allow-list of its
partners), gzip (the NDJSON gzipped, against
decompression alone), scaling (xtenant on growing prefixes of the file). Run it through
benches/compare.sh, which builds the release binary and installs DuckDB and
polars (from PyPI) in benches/.venv when missing.
"""
import argparse, collections, json, os, re, resource, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
XT = os.path.join(ROOT, "target", "release", "xtenant")
# The build the other benches (many_groups.py, many_partners.py,
# forged_texts.py) measure; XTENANT_BIN names another (an older commit's, say).
BIN = os.environ.get("XTENANT_BIN", XT)
# The tenant the benches' sign-ins are ours in (`xtenant generate`'s Contoso).
OURS = "3b8e5f2a-7c41-4d9e-a6b0-1f2c3d4e5f60"

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

# The same grouping over the two CSV exports, read as DuckDB reads any CSV
# (read_csv: parallel, types and dialect sniffed). Column names differ by
# export; the portal's app and resource id headers end in a space, which
# DuckDB trims.
DUCKDB_CSV = r"""
import duckdb, sys
con = duckdb.connect()
con.execute("SET threads TO 2")
c = {
    "la-csv": dict(home="HomeTenantId", res="ResourceTenantId", access="CrossTenantAccessType", app="AppId",
                   resource="ResourceIdentity", user="UserId", code="ResultType", time='"TimeGenerated [UTC]"'),
    "portal-csv": dict(home='"Home tenant ID"', res='"Resource tenant ID"', access='"Cross tenant access type"',
                       app='"Application ID"', resource='"Resource ID"', user='"User ID"',
                       code='"Sign-in error code"', time='"Date (UTC)"'),
}[sys.argv[3]]
con.execute(
    f"COPY (SELECT {c['home']}, {c['res']}, {c['access']}, {c['app']}, {c['resource']}, {c['user']}, "
    "count(*) AS sign_ins, "
    f"sum(CASE WHEN {c['code']} = 0 THEN 1 ELSE 0 END) AS successes, "
    f"sum(CASE WHEN {c['code']} <> 0 THEN 1 ELSE 0 END) AS failures, "
    f"min({c['time']}) AS first_seen, max({c['time']}) AS last_seen "
    f"FROM read_csv(?) WHERE {c['home']} <> {c['res']} GROUP BY ALL ORDER BY ALL) "
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


Run = collections.namedtuple("Run", "wall rss cpu")


def settle(paths):
    """Removes the outputs a run is about to write and waits for the disk to
    take what earlier runs wrote, so that no run pays for replacing the last
    one's output or for its writeback (at ten million groups a 3 GB CSV:
    the same build took 25.9 s writing a new file and 32.9 s writing over
    the last run's)."""
    for path in paths:
        if os.path.exists(path):
            os.remove(path)
    os.sync()


def run_isolated(cmd, fresh=()):
    """Runs `cmd` from a fresh Python: wall seconds, peak RSS (MB) and CPU
    seconds (user + system) of `cmd` and whatever it starts, as a Run.
    `fresh`: the files it writes, removed first ([`settle`])."""
    settle(fresh)
    wrapper = [sys.executable, "-c",
               "import resource,subprocess,sys,time,json;t=time.perf_counter();"
               "p=subprocess.run(sys.argv[1:],stdout=subprocess.DEVNULL,stderr=subprocess.PIPE);"
               "w=time.perf_counter()-t;"
               "sys.stderr.write(p.stderr.decode()[-2000:]) if p.returncode else None;"
               "u=resource.getrusage(resource.RUSAGE_CHILDREN);"
               "print(json.dumps([p.returncode,w,u.ru_maxrss/1024,u.ru_utime+u.ru_stime]))"] + cmd
    out = subprocess.run(wrapper, capture_output=True, text=True)
    rc, wall, rss, cpu = json.loads(out.stdout.strip().splitlines()[-1])
    if rc != 0:
        sys.exit(f"{cmd} failed:\n{out.stderr}")
    return Run(wall, rss, cpu)


def median_run(cmd, runs, fresh=()):
    """The median wall and CPU time of `runs` runs, and the largest peak RSS."""
    results = [run_isolated(cmd, fresh) for _ in range(runs)]
    return Run(statistics.median(r.wall for r in results), max(r.rss for r in results),
               statistics.median(r.cpu for r in results))


def generate(path, mb, fmt, partners, record_bytes):
    """Writes about `mb` MB of sign-ins in `fmt` once; later runs reuse it."""
    if not os.path.exists(path):
        count = mb * 1_000_000 // record_bytes
        subprocess.run([XT, "generate", "--count", str(count), "--partners", str(partners),
                        "--format", fmt, "-o", path], check=True)
    return os.path.getsize(path) / 1e6


def prefix(src, dst, mb):
    """The first `mb` MB of an NDJSON file, cut at a line end."""
    if not os.path.exists(dst):
        with open(src, "rb") as f, open(dst, "wb") as out:
            left = mb * 1_000_000
            for line in f:
                if left <= 0:
                    break
                out.write(line)
                left -= len(line)
    return os.path.getsize(dst) / 1e6


def table(title, rows):
    """Prints rows of (name, Run, MB) with throughput and the ratio to the first row.

    CPU is user + system time on all cores: a tool ahead in wall time while
    using more CPU is ahead by its parallelism, not by doing less work."""
    print(f"\n{title}\n")
    print("| tool | wall (s) | CPU (s) | throughput (MB/s) | peak RSS (MB) | xtenant throughput / tool's |")
    print("|---|---:|---:|---:|---:|---:|")
    base = rows[0][2] / rows[0][1].wall
    for name, run, mb in rows:
        print(f"| {name} | {run.wall:.2f} | {run.cpu:.2f} | {mb / run.wall:.0f} | {run.rss:.0f} "
              f"| {base / (mb / run.wall):.1f}x |")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mb", type=int, default=500, help="size of the NDJSON and CSV files")
    ap.add_argument("--runs", type=int, default=3, help="runs per measurement; the median is reported")
    ap.add_argument("--partners", type=int, default=300)
    ap.add_argument("--jq-slice-mb", type=int, default=50)
    ap.add_argument("--dir", default=tempfile.gettempdir(), help="where the generated files are kept")
    ap.add_argument("--skip", default="", help="comma list of tools to skip: duckdb,polars,jq")
    ap.add_argument("--sections", default="ndjson",
                    help="comma list of: ndjson (the main table), own (the same, 9 in 10 sign-ins the tenant's own), "
                         "csv (Log Analytics and portal CSV), "
                         "gzip (gzipped NDJSON), scaling (xtenant on growing prefixes); or all")
    ap.add_argument("--scaling", default="100,500,1000,2000", help="prefix sizes in MB for the scaling section")
    a = ap.parse_args()
    skip = set(filter(None, a.skip.split(",")))
    sections = {"ndjson", "own", "csv", "gzip", "scaling"} if a.sections == "all" else set(a.sections.split(","))
    data = os.path.join(a.dir, f"xtenant-bench-{a.size_mb}mb.ndjson")
    size = generate(data, a.size_mb, "graph-ndjson", a.partners, 5100)
    # Every tool writes its result to a scratch file (never /dev/null: tools
    # that write atomically would replace the device with a regular file).
    out = os.path.join(a.dir, "xtenant-bench-result.csv")
    print(f"{size:.0f} MB Graph beta NDJSON ({size * 1e6 / 5100 / 1e3:.0f}k sign-ins), {os.cpu_count()} cores, "
          f"median of {a.runs} runs", file=sys.stderr)

    def measure_all(cmds):
        rows = []
        for name, cmd, mb in cmds:
            run = median_run(cmd, a.runs, fresh=(out,))
            rows.append((name, run, mb))
            print(f"  {name}: {run.wall:.2f} s, CPU {run.cpu:.2f} s", file=sys.stderr)
        return rows

    def allow_list(source, name):
        """A realistic proposal for `source`'s partners: block by default,
        allow-list every partner seen for Office 365. Its path, and how many
        partners it names."""
        partners = subprocess.run([XT, "activity", "-q", "--by", "tenant", "--format", "csv", source],
                                  capture_output=True, text=True, check=True).stdout.splitlines()[1:]
        ids = sorted({l.split(",")[2] for l in partners})
        o365 = lambda: {"usersAndGroups": {"accessType": "allowed", "targets": [{"target": "AllUsers", "targetType": "user"}]},
                        "applications": {"accessType": "allowed", "targets": [{"target": "Office365", "targetType": "application"}]}}
        shut = {"usersAndGroups": {"accessType": "blocked", "targets": [{"target": "AllUsers", "targetType": "user"}]},
                "applications": {"accessType": "blocked", "targets": [{"target": "AllApplications", "targetType": "application"}]}}
        policy = {"default": {"b2bCollaborationInbound": shut, "b2bCollaborationOutbound": shut},
                  "partners": [{"tenantId": t, "b2bCollaborationInbound": o365(), "b2bCollaborationOutbound": o365()} for t in ids]}
        path = os.path.join(a.dir, name)
        json.dump(policy, open(path, "w"))
        return path, ids

    if "ndjson" in sections:
        policy_path, ids = allow_list(data, "xtenant-bench-policy.json")
        slice_path = os.path.join(a.dir, f"xtenant-bench-{a.size_mb}mb-slice-{a.jq_slice_mb}mb.ndjson")
        slice_mb = prefix(data, slice_path, a.jq_slice_mb)
        cmds = [("xtenant activity --by user --format csv", [XT, "activity", "-q", "--format", "csv", "-o", out, data], size),
                (f"xtenant replay ({len(ids)} partners in the policy)",
                 [XT, "replay", "-q", "--proposed", policy_path, "--format", "csv", "-o", out, data], size)]
        if "duckdb" not in skip:
            cmds += [("DuckDB read_json, the 8 columns named, + GROUP BY", [sys.executable, "-c", DUCKDB, data, out, "named"], size),
                     ("DuckDB read_json_auto (schema detected) + GROUP BY", [sys.executable, "-c", DUCKDB, data, out, "auto"], size)]
        if "polars" not in skip:
            cmds.append(("polars scan_ndjson + group_by", [sys.executable, "-c", POLARS, data, out], size))
        if "jq" not in skip:
            cmds.append((f"jq reduce (on a {slice_mb:.0f} MB slice)", ["jq", "-n", JQ, slice_path], slice_mb))
        table(f"{size:.0f} MB Graph beta NDJSON ({size * 1e6 / 5100 / 1e3:.0f}k sign-ins), {os.cpu_count()} cores, "
              f"median of {a.runs} runs", measure_all(cmds))

    if "own" in sections:
        # Most of a tenant's sign-ins are its own users in its own apps: the
        # same file with 9 in 10 sign-ins made the tenant's own (home tenant
        # set to the resource tenant), the others cross-tenant as before.
        own = os.path.join(a.dir, f"xtenant-bench-{a.size_mb}mb-own.ndjson")
        if not os.path.exists(own):
            home = re.compile(r'"homeTenantId":\s*"[^"]*"')
            resource = re.compile(r'"resourceTenantId":\s*"([^"]*)"')
            with open(data) as src, open(own + ".part", "w") as dst:
                for i, line in enumerate(src):
                    found = resource.search(line)
                    if i % 10 and found:
                        line = home.sub(f'"homeTenantId":"{found.group(1)}"', line, count=1)
                    dst.write(line)
            os.replace(own + ".part", own)
        cmds = [("xtenant activity --by user --format csv", [XT, "activity", "-q", "--format", "csv", "-o", out, own], size)]
        if "duckdb" not in skip:
            cmds.append(("DuckDB read_json, the 8 columns named, + GROUP BY", [sys.executable, "-c", DUCKDB, own, out, "named"], size))
        if "polars" not in skip:
            cmds.append(("polars scan_ndjson + group_by", [sys.executable, "-c", POLARS, own, out], size))
        table(f"{size:.0f} MB Graph beta NDJSON, 9 in 10 sign-ins the tenant's own", measure_all(cmds))

    if "csv" in sections:
        for fmt, record_bytes in [("la-csv", 4700), ("portal-csv", 770)]:
            path = os.path.join(a.dir, f"xtenant-bench-{a.size_mb}mb.{fmt}")
            mb = generate(path, a.size_mb, fmt, a.partners, record_bytes)
            policy_path, ids = allow_list(path, f"xtenant-bench-policy-{fmt}.json")
            cmds = [(f"xtenant activity ({fmt})", [XT, "activity", "-q", "--format", "csv", "-o", out, path], mb),
                    (f"xtenant replay ({fmt}, {len(ids)} partners in the policy)",
                     [XT, "replay", "-q", "--proposed", policy_path, "--format", "csv", "-o", out, path], mb)]
            if "duckdb" not in skip:
                cmds.append(("DuckDB read_csv + GROUP BY", [sys.executable, "-c", DUCKDB_CSV, path, out, fmt], mb))
            table(f"{mb:.0f} MB {fmt} ({mb * 1e6 / record_bytes / 1e3:.0f}k sign-ins)", measure_all(cmds))

    if "gzip" in sections:
        gz = data + ".gz"
        if not os.path.exists(gz):
            with open(gz, "wb") as f:
                subprocess.run(["gzip", "-6", "-c", data], stdout=f, check=True)
        gz_mb = os.path.getsize(gz) / 1e6
        scratch = os.path.join(a.dir, "xtenant-bench-inflated.ndjson")
        # Throughput is per MB of uncompressed data throughout.
        cmds = [("xtenant activity on the .gz", [XT, "activity", "-q", "--format", "csv", "-o", out, gz], size),
                ("xtenant activity on the plain file", [XT, "activity", "-q", "--format", "csv", "-o", out, data], size),
                ("decompression alone: gzip -dc", ["sh", "-c", f"gzip -dc '{gz}' > '{scratch}'"], size)]
        if "duckdb" not in skip:
            cmds.append(("DuckDB read_json (named) on the .gz", [sys.executable, "-c", DUCKDB, gz, out, "named"], size))
        table(f"{size:.0f} MB NDJSON gzipped to {gz_mb:.0f} MB (gzip -6); MB/s of uncompressed data", measure_all(cmds))
        os.remove(scratch)

    if "scaling" in sections:
        rows = []
        for mb in [int(x) for x in a.scaling.split(",")]:
            if mb > size:
                continue
            path = os.path.join(a.dir, f"xtenant-bench-{a.size_mb}mb-prefix-{mb}mb.ndjson")
            got = prefix(data, path, mb) if mb < a.size_mb else size
            src = path if mb < a.size_mb else data
            wall, rss, _ = median_run([XT, "activity", "-q", "--format", "csv", "-o", out, src], a.runs, fresh=(out,))
            rows.append((got, wall, rss))
            print(f"  {got:.0f} MB: {wall:.2f} s", file=sys.stderr)
        print("\nxtenant activity on growing prefixes of the same file\n")
        print("| input (MB) | wall (s) | throughput (MB/s) | peak RSS (MB) |")
        print("|---:|---:|---:|---:|")
        for mb, wall, rss in rows:
            print(f"| {mb:.0f} | {wall:.2f} | {mb / wall:.0f} | {rss:.0f} |")

    if os.path.exists(out):
        os.remove(out)


if __name__ == "__main__":
    main()
