#!/usr/bin/env python3
"""Time and peak memory of the commands that read an audit trail, with a
trail of many policy changes.

    benches/audit_trail.py [--changes 100000] [--spacing 20] [--partners 1]
                           [--signins samples/signins] [--dir $TMPDIR]

Writes (once, then reuses) a Graph `directoryAudits` page of --changes
"Update a partner cross-tenant access setting" records, --spacing seconds
apart from 2026-11-01, each turning the MFA trust of a partner on or off
(a policy-as-code pipeline that patches its partners on every run writes
one such record a partner a run). With --partners 1, the partner is the
samples' 1eae0b55-..., and the policy in force at the end is
samples/policies/current.json; with more, the changes go to each partner
in turn (one run of the pipeline patches every partner), and the policy is
the samples' with that many partners added (written beside the trail).
Then runs, against that policy:

- `timeline --policy --signins` in JSON and CSV (every change listed, its
  policy rebuilt, the sign-ins near it counted);
- `replay --audit --current --proposed` (each group calibrated per epoch);
- `report --audit`;

and prints wall time, CPU and peak RSS for each. No other tool rebuilds a
cross-tenant access policy from its audit trail, so there are no peers:
the claim measured is memory against the number of changes (an audit
history holds at most 65,535 epochs; the changes themselves are all held).

Needs target/release/xtenant (`cargo build --release`), or the binary named
by XTENANT_BIN.
"""
import argparse, datetime, json, os, sys, tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare  # noqa: E402  (its isolated runner)

XT, ROOT = compare.BIN, compare.ROOT
PARTNER = "1eae0b55-c075-489c-b548-7f9c6b206565"


def trust(mfa):
    return json.dumps(json.dumps({"isMfaAccepted": mfa, "isCompliantDeviceAccepted": False,
                                  "isHybridAzureADJoinedDeviceAccepted": False}, separators=(",", ":")))


def partner_ids(partners):
    if partners == 1:
        return [PARTNER]
    return [f"{k:08x}-0000-4000-8000-{k:012x}" for k in range(1, partners + 1)]


def write_policy(path, partners, changes):
    """The samples' current policy with `partners` partners added, each
    trusting MFA as the trail's last change to it left it."""
    with open(os.path.join(ROOT, "samples", "policies", "current.json")) as f:
        policy = json.load(f)
    ids = partner_ids(partners)
    for k, tenant in enumerate(ids):
        last = max((i for i in range(k, changes, partners)), default=None)
        mfa = last is not None and (last // partners) % 2 == 0
        policy["partners"].append({"tenantId": tenant, "inboundTrust": {
            "isMfaAccepted": mfa, "isCompliantDeviceAccepted": False,
            "isHybridAzureADJoinedDeviceAccepted": False}})
    with open(path, "w") as f:
        json.dump(policy, f)


def write_trail(path, changes, spacing, partners=1):
    start = datetime.datetime(2026, 11, 1)
    ids = partner_ids(partners)
    records = []
    for i in range(changes):
        run, k = divmod(i, partners)
        on = run % 2 == 0
        records.append({
            "id": f"Directory_bench_{i}",
            "category": "CrossTenantAccessSettings",
            "correlationId": f"00000000-0000-4000-8000-{i:012x}",
            "result": "success",
            "activityDisplayName": "Update a partner cross-tenant access setting",
            "activityDateTime": (start + datetime.timedelta(seconds=spacing * i)).strftime("%Y-%m-%dT%H:%M:%S.123Z"),
            "loggedByService": "Core Directory",
            "operationType": "Update",
            "initiatedBy": {"user": {"id": "7d3c1f40-2b9a-4c8e-9f11-5e6a7b8c9d01",
                                     "userPrincipalName": "pipeline@contoso.com"}, "app": None},
            "targetResources": [{
                "id": None,
                "displayName": "CrossTenantAccessPolicy for 3b8e5f2a-7c41-4d9e-a6b0-1f2c3d4e5f60",
                "type": "Policy",
                "modifiedProperties": [
                    {"displayName": "tenantId", "oldValue": None, "newValue": json.dumps(ids[k])},
                    {"displayName": "inboundTrust", "oldValue": trust(not on), "newValue": trust(on)},
                ],
            }],
            "additionalDetails": [],
        })
    with open(path, "w") as f:
        json.dump({"value": records}, f)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--changes", type=int, default=100_000)
    ap.add_argument("--spacing", type=int, default=20, help="seconds between changes")
    ap.add_argument("--partners", type=int, default=1, help="partners the changes go to in turn")
    ap.add_argument("--signins", default=os.path.join(ROOT, "samples", "signins"))
    ap.add_argument("--dir", default=tempfile.gettempdir())
    a = ap.parse_args()
    a.partners = max(a.partners, 1)
    many = "" if a.partners == 1 else f"-{a.partners}p"
    trail = os.path.join(a.dir, f"xtenant-audit-trail-{a.changes}-{a.spacing}s{many}.json")
    if not os.path.exists(trail):
        write_trail(trail, a.changes, a.spacing, a.partners)
    current = os.path.join(ROOT, "samples", "policies", "current.json")
    if a.partners > 1:
        current = os.path.join(a.dir, f"xtenant-audit-trail-policy-{a.changes}-{a.partners}p.json")
        if not os.path.exists(current):
            write_policy(current, a.partners, a.changes)
    proposed = os.path.join(ROOT, "samples", "policies", "proposed.json")
    out = os.path.join(a.dir, "xtenant-audit-trail-result")
    runs = [
        ("timeline --format json", ["timeline", "--policy", current, "--signins", a.signins,
                                    "--format", "json", trail]),
        ("timeline --format csv", ["timeline", "--policy", current, "--signins", a.signins,
                                   "--format", "csv", trail]),
        ("replay --audit --current --proposed", ["replay", "--audit", trail, "--current", current,
                                                 "--proposed", proposed, "--format", "json", a.signins]),
        ("report --audit", ["report", "--audit", trail, a.signins]),
    ]
    size = os.path.getsize(trail) / 1e6
    print(f"{a.changes} changes {a.spacing} s apart to {a.partners} partner(s) ({size:.0f} MB of audit records), "
          f"sign-ins from {a.signins}")
    for label, args in runs:
        r = compare.run_isolated([XT, "-q"] + args + ["-o", out], fresh=(out,))
        print(f"  xtenant {label}: {r.wall:.2f} s (CPU {r.cpu:.2f} s), peak RSS {r.rss:.0f} MB")


if __name__ == "__main__":
    main()
