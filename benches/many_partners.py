#!/usr/bin/env python3
"""Time and peak memory of the policy commands with many partners and a
default that names many users.

    benches/many_partners.py [--partners 5000] [--sign-ins 200000] [--users 20000]
                             [--configured 3000] [--changes 300] [--dir $TMPDIR]

Writes (once, then reuses):
- sign-ins from --partners partner tenants (`xtenant generate`);
- `proposed`: a default whose outbound sections name --users of our users
  (who may collaborate outside at all; Entra takes named users in the
  default's outbound sections only), no partners;
- `current`: the same default, and --configured partners that set only
  their inbound trust, so that every section they have is inherited;
- an audit log of --changes partner additions spread over the window.

Then runs `activity`, `replay --proposed`, `replay --current --proposed
--audit`, `propose --current`, `policy show`, `policy check` and `policy
diff`, and prints wall time, CPU and peak RSS for each. No other tool
evaluates cross-tenant access policies, so there are no peers here: the
claim measured is that memory follows the policy's size, not partners
times the users the default names (each partner's copy ran out of 24 GB
before the fifteenth session) nor audit changes times the policy.

Needs target/release/xtenant (`cargo build --release`), or the binary named
by XTENANT_BIN.
"""
import argparse, datetime, json, os, random, sys, tempfile, uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare  # noqa: E402  (its isolated runner)

XT = compare.BIN
SECTIONS = ["b2bCollaborationInbound", "b2bCollaborationOutbound",
            "b2bDirectConnectInbound", "b2bDirectConnectOutbound"]


def ids(rng, n):
    return [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(n)]


def default(users):
    named = {"accessType": "allowed", "targets": [{"target": u, "targetType": "user"} for u in users]}
    everyone = {"accessType": "allowed", "targets": [{"target": "AllUsers", "targetType": "user"}]}
    apps = {"accessType": "allowed", "targets": [{"target": "AllApplications", "targetType": "application"}]}
    return {s: {"usersAndGroups": named if "Outbound" in s else everyone,
                "applications": apps} for s in SECTIONS}


def audit_record(i, when, tenant):
    """A directory audit record of a partner added, as Graph returns it."""
    return {
        "id": f"Directory_bench_{i}", "category": "CrossTenantAccessSettings",
        "correlationId": str(uuid.UUID(int=i, version=4)), "result": "success", "resultReason": "",
        "activityDisplayName": "Add a partner to cross-tenant access setting",
        "activityDateTime": when.strftime("%Y-%m-%dT%H:%M:%S.000Z"), "loggedByService": "Core Directory",
        "operationType": "Add",
        "initiatedBy": {"user": {"id": str(uuid.UUID(int=1, version=4)), "userPrincipalName": "admin@contoso.com"}},
        "targetResources": [{"id": None, "displayName": "CrossTenantAccessPolicy", "type": "Policy",
                             "modifiedProperties": [{"displayName": "tenantId", "oldValue": None,
                                                     "newValue": json.dumps(tenant)}]}],
        "additionalDetails": [],
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--partners", type=int, default=5000)
    ap.add_argument("--sign-ins", type=int, default=200_000)
    ap.add_argument("--users", type=int, default=20_000)
    ap.add_argument("--configured", type=int, default=3000)
    ap.add_argument("--changes", type=int, default=300)
    ap.add_argument("--dir", default=tempfile.gettempdir())
    a = ap.parse_args()
    tag = f"{a.partners}-{a.sign_ins}-{a.users}-{a.configured}-{a.changes}"
    path = lambda what: os.path.join(a.dir, f"xtenant-partners-{tag}-{what}")
    logs, proposed, current, audit = path("signins.ndjson"), path("proposed.json"), path("current.json"), path("audit.json")
    if not os.path.exists(logs):
        compare.subprocess.run([XT, "generate", "--partners", str(a.partners), "--count", str(a.sign_ins),
                                "--seed", "7", "-o", logs], check=True)
    if not os.path.exists(audit):
        rng = random.Random(3)
        users = ids(rng, a.users)
        configured = ids(rng, a.configured)
        json.dump({"default": default(users), "partners": []}, open(proposed, "w"))
        json.dump({"default": default(users),
                   "partners": [{"tenantId": t, "inboundTrust": {"isMfaAccepted": True}} for t in configured]},
                  open(current, "w"))
        # generate's window starts 2026-11-06; one addition an hour from then.
        start = datetime.datetime(2026, 11, 6, 1)
        changes = [audit_record(i, start + datetime.timedelta(hours=i), t)
                   for i, t in enumerate(configured[: a.changes])]
        json.dump({"value": changes}, open(audit, "w"))
    out = os.path.join(a.dir, "xtenant-partners-out")
    runs = [
        ("activity", ["activity", "-q", logs, "--format", "csv", "-o", out]),
        ("replay --proposed", ["replay", "-q", "--proposed", proposed, logs, "--format", "csv", "-o", out]),
        (f"replay --current --proposed --audit ({a.changes} changes)",
         ["replay", "-q", "--current", current, "--proposed", proposed, "--audit", audit, logs,
          "--format", "csv", "-o", out]),
        ("propose --current", ["propose", "-q", "--current", current, logs, "-o", out]),
        ("policy show", ["policy", "show", current, "-o", out]),
        ("policy check", ["policy", "check", current]),
        ("policy diff", ["policy", "diff", proposed, current, "-o", out]),
    ]
    print(f"\n{a.sign_ins} sign-ins from {a.partners} partners ({os.path.getsize(logs) / 1e6:.0f} MB); "
          f"a default naming {a.users} users; {a.configured} configured partners; {a.changes} audit changes\n")
    print("| command | wall (s) | CPU (s) | peak RSS (MB) |")
    print("|---|---:|---:|---:|")
    for name, args in runs:
        r = compare.run_isolated([XT] + args, fresh=(out,))
        print(f"| {name} | {r.wall:.2f} | {r.cpu:.2f} | {r.rss:.0f} |")


if __name__ == "__main__":
    main()
