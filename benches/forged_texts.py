#!/usr/bin/env python3
"""Time and peak memory of every command on a forged export whose texts are
as long as a sign-in may bring them (4,096 bytes each: longer ones are
rejects, docs/formats.md).

    benches/forged_texts.py [--sign-ins 60000] [--text-bytes 4080] [--apps 200] [--users N]
                            [--dir $TMPDIR]

Writes (once, then reuses) --sign-ins cross-tenant sign-ins, each its own
guest of one of three partners, whose user id and principal name are some
--text-bytes long, in one of --apps apps whose ids and names are as long
(60,000 of them: 1 GB of NDJSON). --users shares the sign-ins among that
many guests instead (`--apps 60000 --users 60`: sixty guests with a thousand
apps of their own each, every app id and name 4 KB, the shape that held 567 MB
before the thirty-fourth session). Entra writes GUIDs and names of a few
dozen characters: the memory budget (`--groups-in-memory`) counts groups
sized for those, and this is the input that counting alone gets wrong (700
MB to 1.5 GB before the budgets weighed bytes). Then runs `activity`,
`replay`, `report`, `propose` and `timeline` in their formats and prints wall
time, CPU and peak RSS for each; the claim measured is every peak under 200
MB. No peer reads such a file differently from any other, so there are none
here.

Needs target/release/xtenant (`cargo build --release`), or the binary named
by XTENANT_BIN.
"""
import argparse, json, os, sys, tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare  # noqa: E402  (its isolated runner)

ROOT, XT, OURS = compare.ROOT, compare.BIN, compare.OURS
PROPOSED = os.path.join(ROOT, "samples", "policies", "proposed.json")
CURRENT = os.path.join(ROOT, "samples", "policies", "current.json")


def sign_in(n, text, apps, users):
    """Sign-in `n`, as Graph returns one, with texts `text` bytes long."""
    long = lambda head, fill: (head + fill * text)[:text]
    user = n % users if users else n
    return {
        "id": f"00000000-0000-0000-0000-{n:012d}",
        "createdDateTime": f"2026-11-{1 + n % 28:02d}T{n % 24:02d}:00:00Z",
        "userId": long(f"{user}-", "u"),
        "userPrincipalName": long(f"g{user}@", "p"),
        "userType": "guest",
        "homeTenantId": f"00000000-0000-0000-0000-00000000100{n % 3}",
        "resourceTenantId": OURS,
        "crossTenantAccessType": "b2bCollaboration",
        "appId": long(f"{n % apps}-", "a"),
        "appDisplayName": long(f"App {n % apps} ", "n"),
        "resourceId": "00000003-0000-0ff1-ce00-000000000000",
        "status": {"errorCode": 0},
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sign-ins", type=int, default=60_000)
    ap.add_argument("--text-bytes", type=int, default=4080)
    ap.add_argument("--apps", type=int, default=200)
    ap.add_argument("--users", type=int, default=0,
                    help="guests the sign-ins are shared among (default: each its own)")
    ap.add_argument("--dir", default=tempfile.gettempdir())
    a = ap.parse_args()
    users = f"-u{a.users}" if a.users else ""
    logs = os.path.join(a.dir, f"xtenant-forged-{a.sign_ins}-{a.text_bytes}-{a.apps}{users}.ndjson")
    if not os.path.exists(logs):
        with open(logs + ".part", "w") as f:
            for n in range(a.sign_ins):
                f.write(json.dumps(sign_in(n, a.text_bytes, a.apps, a.users)) + "\n")
        os.rename(logs + ".part", logs)
    out = os.path.join(a.dir, "xtenant-forged-out")
    runs = [(f"activity --format {f}", ["activity", "--format", f]) for f in ["csv", "json", "table"]]
    runs += [("activity --by tenant", ["activity", "--by", "tenant", "--format", "csv"])]
    runs += [(f"replay --format {f}", ["replay", "--proposed", PROPOSED, "--format", f])
             for f in ["csv", "json", "table", "cef"]]
    runs += [
        ("replay --current --format ndjson",
         ["replay", "--current", CURRENT, "--proposed", PROPOSED, "--format", "ndjson"]),
        ("report --proposed", ["report", "--proposed", PROPOSED]),
        ("propose", ["propose"]),
        ("propose --current", ["propose", "--current", CURRENT]),
        ("timeline", ["timeline"]),
    ]
    print(f"\n{a.sign_ins} forged sign-ins, texts of {a.text_bytes} bytes, {a.apps} apps{', ' + str(a.users) + ' guests' if a.users else ''} "
          f"({os.path.getsize(logs) / 1e6:.0f} MB)\n")
    print("| command | wall (s) | CPU (s) | peak RSS (MB) |")
    print("|---|---:|---:|---:|")
    for name, args in runs:
        r = compare.run_isolated([XT] + args + ["-q", logs, "-o", out], fresh=(out,))
        print(f"| {name} | {r.wall:.2f} | {r.cpu:.2f} | {r.rss:.0f} |")


if __name__ == "__main__":
    main()
