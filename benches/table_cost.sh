#!/usr/bin/env bash
# What an activity table of N groups costs `replay`, `report` and `propose`
# (time and peak memory): the figures of the README's "When one machine is
# not enough". The table is what `xtenant query` brings back from a large
# tenant: one row per partner, app, resource and user (300 partners, every
# row a different user).
#
# usage: benches/table_cost.sh [ROWS] [XTENANT_BINARY]   (default 1000000, target/release/xtenant)
set -euo pipefail
ROWS="${1:-1000000}"
BIN="$(realpath "${2:-target/release/xtenant}")"
HERE="$(cd "$(dirname "$0")" && pwd)"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
TENANT=3b8e5f2a-7c41-4d9e-a6b0-1f2c3d4e5f60
python3 - "$ROWS" "$WORK/table.csv" <<'PY'
import csv, sys
n, path = int(sys.argv[1]), sys.argv[2]
cols = ("direction,access_type,partner_tenant_id,partner_tenant_name,app_id,app_name,resource_id,resource_name,"
        "user_id,user_principal_name,user_type,sign_ins,successes,failures,policy_blocks,first_seen,last_seen,"
        "blocked_by_us,blocked_by_partner,mfa_required,mfa_by_claim,compliant_device_required,hybrid_join_required,"
        "ca_details_missing,app_owner_tenant_id,resource_owner_tenant_id,grant_clauses").split(",")
apps = [("00000003-0000-0000-c000-000000000000", "Microsoft Graph"),
        ("00000003-0000-0ff1-ce00-000000000000", "Office 365 SharePoint Online"),
        ("1fec8e78-bce4-4aaf-ab1b-5451cc387264", "Microsoft Teams")]
with open(path, "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(cols)
    for i in range(n):
        p, a = i % 300, apps[i % 3]
        w.writerow(["inbound" if i % 2 else "outbound", "b2bCollaboration", "%08x-1111-4222-8333-%012x" % (p, p),
                    "Partner %d" % p, a[0], a[1], a[0], a[1], "%08x-aaaa-4bbb-8ccc-%012x" % (i, i),
                    "user%d@partner%d.example" % (i, p), "guest", 3, 2, 1, i % 2, "2026-10-01T10:00:00Z",
                    "2026-11-30T10:00:00Z", i % 2, 0, 1, 1, 0, 0, 0, "f8cdef31-a31e-4b4a-93e4-5f571e91255a",
                    "f8cdef31-a31e-4b4a-93e4-5f571e91255a", ""])
PY
# The same rows as a JSON array of row objects (`az monitor log-analytics query -o json`).
python3 - "$WORK/table.csv" "$WORK/table.json" <<'PY'
import csv, json, sys
with open(sys.argv[1]) as f, open(sys.argv[2], "w") as out:
    out.write("[")
    for i, row in enumerate(csv.DictReader(f)):
        out.write((",\n" if i else "") + json.dumps(row))
    out.write("]\n")
PY
echo "table: $ROWS rows, $(du -h "$WORK/table.csv" | cut -f1) as CSV, $(du -h "$WORK/table.json" | cut -f1) as a JSON array"
P="$HERE/../samples/policies"
/usr/bin/time -f "replay:  %e s, peak %M KB" "$BIN" replay -q --tenant $TENANT --current "$P/current.json" \
  --proposed "$P/proposed.json" --format csv -o "$WORK/replay.csv" "$WORK/table.csv"
/usr/bin/time -f "replay from the JSON array: %e s, peak %M KB" "$BIN" replay -q --tenant $TENANT \
  --current "$P/current.json" --proposed "$P/proposed.json" --format csv -o "$WORK/replay-json.csv" "$WORK/table.json"
cmp -s "$WORK/replay.csv" "$WORK/replay-json.csv" || echo "the JSON array replayed differently from the CSV"
/usr/bin/time -f "report:  %e s, peak %M KB" "$BIN" report -q --tenant $TENANT --current "$P/current.json" \
  --proposed "$P/proposed.json" -o "$WORK/report.html" "$WORK/table.csv"
/usr/bin/time -f "propose: %e s, peak %M KB" "$BIN" propose -q --tenant $TENANT -o "$WORK/proposal.json" "$WORK/table.csv"
/usr/bin/time -f "propose --format graph: %e s, peak %M KB" "$BIN" propose -q --tenant $TENANT --format graph \
  -o "$WORK/proposal.graph.json" "$WORK/table.csv"
