#!/usr/bin/env python3
"""Peak memory of `xtenant activity` with many distinct activity groups.

Writes N minimal Graph beta sign-ins, each a cross-tenant sign-in of a
different guest (so N distinct groups at --by user), and reports the peak
RSS of `xtenant activity --by user --format csv` on them.

    benches/many_groups.py [--groups 1000000] [--partners 300] [--by user|app|tenant]
                           [--dir $TMPDIR] [--replay] [--documents] [--named] [--distinct-apps]
                           [--history] [--runs 1] [--users N] [--roaming]
                           [--peers benches/.venv/bin/python] [--peer-tools duckdb,polars]

--replay also times `xtenant replay --format csv` of the same groups against
samples/policies/proposed.json (every row evaluated, sorted and written),
and the SIEM feeds of the same replay: `--format ecs` and `--format cef`
(every group a finding: the proposal blocks these partners).

--runs N times `activity` and `replay` N times each, alternately (activity,
replay, activity, ...), and prints the medians and replay's median over
activity's: on a shared VM one run of each was 1.05x to 1.28x for the same
build within minutes, more than the gap being measured.

--users N shares the sign-ins among N guests: `--users 1` is one guest
with every sign-in (an automation account busy for months), whose
duplicate filter cannot be shared out by user; with --distinct-apps, one
guest with as many apps of his own (forged). With one partner, --tenant
names ours.

--roaming takes each sign-in's partner by sign-in rather than by guest:
with --users 1, one guest from as many partner tenants as --partners
(forged: a guest has one home tenant), whose rows at --by tenant are
as many as the partners and all his.

--distinct-apps gives every sign-in an app of its own (id and name): a
forged export, as Entra's logs name hundreds to thousands of apps; what the
run holds for each app must then go to disk like the users.

--documents also times the commands that write one document of all the
groups: `activity --format json` and `--format table`, `replay --format json`
and, with --all, `--format table` and `markdown`, `replay --format json`
against a current policy that every sign-in contradicts (samples' proposed
policy blocks these partners: a calibration mismatch a row, each listed),
and `report` (with the proposed policy, so that its impact section replays
every group too), and `propose` (which reads every group twice: by
partner, then for its proof).

--named also times `propose --identities` with every guest mapped to a home
id, so that its proposal names each partner's users one by one (groups /
partners users a partner's inbound section), then `replay` of the same
sign-ins against that proposal: the policy shape whose evaluation must not
cost rows times targets; and what else such a proposal goes through: its
Graph batches and PowerShell script, `propose --current` with it, `policy
check` and `policy show --format json` of it.

--history also times what keeps and reads history: `store add` of the
sign-ins into a fresh store (as generated: days interleaved; and newest
first, as Entra writes an export), `report --store`, and `timeline` and
`report --audit` with a change to the default each day (every sign-in then
falls near a change: the users near each are counted).

At --by app and --by tenant the million users make a handful of groups,
each counting its distinct users.

Needs target/release/xtenant (`cargo build --release`), or the binary named
by XTENANT_BIN.
"""
import argparse, copy, json, os, re, shutil, statistics, sys, tempfile, uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare  # noqa: E402  (its peers' queries and its isolated runner)

ROOT, XT, OURS = compare.ROOT, compare.BIN, compare.OURS


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--groups", type=int, default=1_000_000)
    ap.add_argument("--by", default="user", choices=["user", "app", "tenant"])
    ap.add_argument("--dir", default=tempfile.gettempdir())
    ap.add_argument("--peers", metavar="PYTHON",
                    help="also run DuckDB and polars (compare.py's queries) with this Python, "
                         "e.g. benches/.venv/bin/python after benches/compare.sh has made it")
    ap.add_argument("--replay", action="store_true",
                    help="also time replay against samples/policies/proposed.json")
    ap.add_argument("--documents", action="store_true",
                    help="also time activity and replay --format json, and report")
    ap.add_argument("--partners", type=int, default=300,
                    help="partner tenants the guests come from (fewer: more users a partner)")
    ap.add_argument("--named", action="store_true",
                    help="also time propose --identities (naming every user) and replay against its proposal")
    ap.add_argument("--runs", type=int, default=1,
                    help="time activity and replay this many times each, alternately, and print medians")
    ap.add_argument("--distinct-apps", action="store_true",
                    help="every sign-in names an app of its own (forged: Entra's logs name thousands)")
    ap.add_argument("--history", action="store_true",
                    help="also time store add, report --store, and timeline with a default change a day")
    ap.add_argument("--peer-tools", default="duckdb,polars",
                    help="which peers to run (polars needs some 1.5 GB a million groups)")
    ap.add_argument("--users", type=int, default=0,
                    help="share the sign-ins among this many guests (1: one guest with every sign-in, "
                         "whose duplicate filter must go to disk; default: a guest a sign-in)")
    ap.add_argument("--roaming", action="store_true",
                    help="each sign-in's partner taken by sign-in, not by guest (with --users 1: one guest "
                         "from every partner, forged)")
    a = ap.parse_args()
    users = a.users if a.users > 0 else a.groups
    suffix = ("" if a.partners == 300 else f"-p{a.partners}") + ("-apps" if a.distinct_apps else "") \
        + (f"-u{users}" if users != a.groups else "") + ("-roaming" if a.roaming else "")
    path = os.path.join(a.dir, f"xtenant-groups-{a.groups}{suffix}.ndjson")
    if not os.path.exists(path):
        partners = [str(uuid.UUID(int=0x1000 + i)) for i in range(a.partners)]
        with open(path, "w") as f:
            for i in range(a.groups):
                rec = {
                    "id": str(uuid.UUID(int=i + 1)),
                    "createdDateTime": f"2026-11-{1 + i % 28:02d}T{i % 24:02d}:00:00Z",
                    "userId": str(uuid.UUID(int=(1 << 64) + i % users)),
                    "userPrincipalName": f"guest{i % users}@partner{i % users % a.partners}.example",
                    "userType": "guest",
                    "homeTenantId": partners[(i if a.roaming else i % users) % a.partners],
                    "resourceTenantId": OURS,
                    "crossTenantAccessType": "b2bCollaboration",
                    "appId": str(uuid.UUID(int=(3 << 64) + i)) if a.distinct_apps
                    else "00000003-0000-0ff1-ce00-000000000000",
                    "appDisplayName": f"App {i}" if a.distinct_apps else "Office 365 SharePoint Online",
                    "resourceId": "00000003-0000-0ff1-ce00-000000000000",
                    "status": {"errorCode": 0},
                }
                f.write(json.dumps(rec) + "\n")
    size = os.path.getsize(path) / 1e6
    out = os.path.join(a.dir, "xtenant-groups-result.csv")
    policy = os.path.join(ROOT, "samples", "policies", "proposed.json")
    # Sign-ins of one partner could be either tenant's: say which is ours.
    ours = ["--tenant", OURS] if min(users, a.partners) == 1 else []
    commands = {"activity": [XT, "-q", "activity", "--by", a.by, "--format", "csv", "-o", out, path] + ours}
    if a.replay:
        commands["replay"] = [XT, "-q", "replay", "--by", a.by, "--format", "csv", "--proposed", policy,
                              "-o", out, path] + ours
    # Alternately, so that both see the machine's same moods.
    times = {name: [] for name in commands}
    rows = {}
    for _ in range(max(a.runs, 1)):
        for name, cmd in commands.items():
            times[name].append(compare.run_isolated(cmd, fresh=(out,)))
            rows[name] = sum(1 for _ in open(out)) - 1
    medians = {name: compare.Run(statistics.median(r.wall for r in runs), max(r.rss for r in runs),
                                 statistics.median(r.cpu for r in runs)) for name, runs in times.items()}
    of = f"medians of {a.runs}, " if a.runs > 1 else ""
    wall, rss, cpu = medians["activity"]
    print(f"{a.groups} sign-ins ({size:.0f} MB), --by {a.by}: {rows['activity']} activity groups, "
          f"{of}{wall:.2f} s (CPU {cpu:.2f} s), peak RSS {rss:.0f} MB")
    if a.replay:
        wall, rss, cpu = medians["replay"]
        ratio = wall / medians["activity"].wall
        print(f"  xtenant replay --by {a.by}: {rows['replay']} rows, {of}{wall:.2f} s (CPU {cpu:.2f} s), "
              f"peak RSS {rss:.0f} MB; {ratio:.2f}x activity's time")
        if a.runs > 1:
            pairs = ", ".join(f"{r.wall:.2f}/{act.wall:.2f}" for r, act in zip(times["replay"], times["activity"]))
            print(f"    each run, replay/activity: {pairs}")
        for siem in ("ecs", "cef"):
            wall, rss, cpu = compare.run_isolated([XT, "-q", "replay", "--by", a.by, "--format", siem,
                                              "--proposed", policy, "-o", out, path] + ours, fresh=(out,))
            size = os.path.getsize(out) / 1e6
            print(f"  xtenant replay --by {a.by} --format {siem}: {size:.0f} MB, {wall:.2f} s (CPU {cpu:.2f} s), "
                  f"peak RSS {rss:.0f} MB")
    if a.documents:
        current = os.path.join(ROOT, "samples", "policies", "current.json")
        doc = os.path.join(a.dir, "xtenant-groups-result.doc")
        for name, args in [
            ("activity --format json", ["activity", "--by", a.by, "--format", "json"]),
            ("activity --format table", ["activity", "--by", a.by, "--format", "table"]),
            ("replay --format json", ["replay", "--by", a.by, "--format", "json", "--proposed", policy]),
            ("replay --format table --all",
             ["replay", "--by", a.by, "--format", "table", "--all", "--proposed", policy]),
            ("replay --format markdown --all",
             ["replay", "--by", a.by, "--format", "markdown", "--all", "--proposed", policy]),
            ("replay --format json, every row a calibration mismatch",
             ["replay", "--by", a.by, "--format", "json", "--current", policy, "--proposed", current]),
            ("report (Markdown, with --proposed)", ["report", "--format", "markdown", "--proposed", policy]),
            ("report (HTML)", ["report", "--format", "html"]),
            ("propose", ["propose"]),
        ]:
            wall, rss, cpu = compare.run_isolated([XT, "-q"] + args + ["-o", doc, path] + ours, fresh=(doc,))
            print(f"  xtenant {name}: {wall:.2f} s (CPU {cpu:.2f} s), peak RSS {rss:.0f} MB")
    if a.named:
        identities = os.path.join(a.dir, f"xtenant-groups-{a.groups}-identities.csv")
        with open(identities, "w") as f:
            f.write("local_user_id,home_user_id\n")
            for i in range(a.groups):
                f.write(f"{uuid.UUID(int=(1 << 64) + i)},{uuid.UUID(int=(2 << 64) + i)}\n")
        proposal = os.path.join(a.dir, "xtenant-groups-proposal.json")
        wall, rss, cpu = compare.run_isolated(
            [XT, "-q", "propose", "--identities", identities, "-o", proposal, path], fresh=(proposal,))
        print(f"  xtenant propose --identities ({a.groups // a.partners} users named a partner): "
              f"{wall:.2f} s (CPU {cpu:.2f} s), peak RSS {rss:.0f} MB")
        wall, rss, cpu = compare.run_isolated([XT, "-q", "replay", "--by", a.by, "--format", "csv", "--identities",
                                          identities, "--proposed", proposal, "-o", out, path], fresh=(out,))
        rows = sum(1 for _ in open(out)) - 1
        print(f"  xtenant replay against that proposal: {rows} rows, {wall:.2f} s (CPU {cpu:.2f} s), peak RSS {rss:.0f} MB")
        # What else such a proposal goes through: applied (Graph batches, the
        # PowerShell script), read back (check, show), and as the current
        # policy of the next proposal.
        for name, args in [
            ("propose --format graph", ["propose", "--identities", identities, "--format", "graph", path]),
            ("propose --format powershell", ["propose", "--identities", identities, "--format", "powershell", path]),
            ("propose --current <that proposal>",
             ["propose", "--identities", identities, "--current", proposal, path]),
            ("policy check <that proposal>", ["policy", "check", proposal]),
            ("policy show --format json <that proposal>", ["policy", "show", "--format", "json", proposal]),
        ]:
            # Written to stdout, which is thrown away.
            wall, rss, cpu = compare.run_isolated([XT, "-q"] + args)
            print(f"  xtenant {name}: {wall:.2f} s (CPU {cpu:.2f} s), peak RSS {rss:.0f} MB")
    if a.history:
        history(a, path)
    if a.peers:
        # compare.py's user-grain queries, with the Python that has DuckDB and polars.
        peers = [("duckdb", "DuckDB read_json (named) + GROUP BY", compare.DUCKDB, ["named"]),
                 ("polars", "polars scan_ndjson + group_by", compare.POLARS, [])]
        for tool, name, query, extra in peers:
            if tool not in a.peer_tools.split(","):
                continue
            wall, rss, cpu = compare.run_isolated([a.peers, "-c", query, path, out] + extra, fresh=(out,))
            print(f"  {name}, user grain: {wall:.2f} s (CPU {cpu:.2f} s), peak RSS {rss:.0f} MB")


def history(a, path):
    """store add (days interleaved, then newest first), report --store, and
    timeline and report --audit with a change to the default each day."""
    newest_first = path.replace(".ndjson", "-newest-first.ndjson")
    if not os.path.exists(newest_first):
        when = re.compile(rb'"createdDateTime": "([^"]+)"')
        with open(path, "rb") as f:
            lines = f.readlines()
        lines.sort(key=lambda l: when.search(l).group(1), reverse=True)
        with open(newest_first, "wb") as f:
            f.writelines(lines)
        del lines
    store = os.path.join(a.dir, "xtenant-groups-store")
    for name, source in [("days interleaved", path), ("newest first", newest_first)]:
        shutil.rmtree(store, ignore_errors=True)
        wall, rss, cpu = compare.run_isolated([XT, "-q", "store", "add", "--store", store, source])
        print(f"  xtenant store add ({name}): {wall:.2f} s (CPU {cpu:.2f} s), peak RSS {rss:.0f} MB")
    doc = os.path.join(a.dir, "xtenant-groups-result.doc")
    wall, rss, cpu = compare.run_isolated([XT, "-q", "report", "--store", store, "--format", "markdown", "-o", doc],
                                          fresh=(doc,))
    print(f"  xtenant report --store: {wall:.2f} s (CPU {cpu:.2f} s), peak RSS {rss:.0f} MB")
    # A change to the default at noon of each of the 28 days, from the
    # samples' audit record of a partner update.
    with open(os.path.join(ROOT, "samples", "audit", "directoryAudits.json")) as f:
        template = json.load(f)["value"][1]
    events = []
    for day in range(1, 29):
        e = copy.deepcopy(template)
        e["id"] = f"Directory_default_{day}"
        e["correlationId"] = str(uuid.UUID(int=day))
        e["activityDisplayName"] = "Update the company default cross-tenant access setting"
        e["activityDateTime"] = f"2026-11-{day:02d}T12:00:00.000Z"
        e["targetResources"][0]["modifiedProperties"] = [{
            "displayName": "b2bCollaborationInbound", "oldValue": "{}",
            "newValue": "{\"usersAndGroups\":{\"accessType\":\"blocked\"}}"}]
        events.append(e)
    audit = os.path.join(a.dir, "xtenant-groups-audit.json")
    with open(audit, "w") as f:
        json.dump({"value": events}, f)
    for name, args in [
        ("timeline --format json, a default change a day",
         ["timeline", audit, "--signins", path, "--format", "json"]),
        ("report --audit, a default change a day", ["report", "--format", "markdown", "--audit", audit, path]),
    ]:
        wall, rss, cpu = compare.run_isolated([XT, "-q"] + args + ["-o", doc], fresh=(doc,))
        print(f"  xtenant {name}: {wall:.2f} s (CPU {cpu:.2f} s), peak RSS {rss:.0f} MB")


if __name__ == "__main__":
    sys.exit(main())
