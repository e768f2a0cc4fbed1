"""Adds the cases the activity table's rules are about to generated sign-ins.

usage: augment.py la|diag IN OUT

IN is `xtenant generate --format la-json` (a JSON array of Log Analytics
rows) or `--format diagnostic-ndjson` (one diagnostic-settings record per
line). The same cases are added to either shape: the same sign-in in both
tables (its id in another casing and in braces), the same id a second
later (a different sign-in), intra-tenant and other-tenants sign-ins,
tenant-restriction refusals, policies kept whole (several controls, an
authentication strength, an applied `failure`, a report-only one), MFA
satisfied by claim in each of the three places a log says it, sign-ins
without Conditional Access details, names that tie in time, a user whose
newest sign-in has no principal name, upper-case ids, and names with
commas, quotes, line breaks and a leading `=`.
"""

import copy
import json
import sys
from datetime import datetime, timedelta

OURS = "3b8e5f2a-7c41-4d9e-a6b0-1f2c3d4e5f60"
STRANGER = "99999999-8888-4777-8666-555555555555"
OTHER = "77777777-6666-4555-8444-333333333333"


class Shape:
    """Reads and writes one logical field whatever the export's spelling."""

    LA = {
        "id": "Id", "time": "CreatedDateTime", "home": "HomeTenantId", "resource": "ResourceTenantId",
        "app_name": "AppDisplayName", "app": "AppId", "upn": "UserPrincipalName", "user": "UserId",
        "code": "ResultType", "status": "Status", "policies": "ConditionalAccessPolicies",
        "steps": "AuthenticationDetails", "requirement": "AuthenticationRequirement", "mfa": "MfaDetail",
        "home_name": "HomeTenantName",
    }
    DIAG = {
        "id": "id", "time": "createdDateTime", "home": "homeTenantId", "resource": "resourceTenantId",
        "app_name": "appDisplayName", "app": "appId", "upn": "userPrincipalName", "user": "userId",
        "code": None, "status": "status", "policies": "appliedConditionalAccessPolicies",
        "steps": "authenticationDetails", "requirement": "authenticationRequirement", "mfa": "mfaDetail",
        "home_name": "homeTenantName",
    }
    NESTED = {"status", "policies", "steps", "mfa"}

    def __init__(self, kind):
        self.kind = kind

    def body(self, r):
        return r if self.kind == "la" else r["properties"]

    def get(self, r, field):
        names = self.LA if self.kind == "la" else self.DIAG
        v = self.body(r).get(names[field])
        if field in self.NESTED and self.kind == "la" and isinstance(v, str) and v:
            return json.loads(v)
        return v

    def set(self, r, field, value):
        if field == "time":
            if self.kind == "la":
                r["TimeGenerated"] = value
            else:
                r["time"] = value
        if field == "code":
            status = self.get(r, "status") or {}
            status["errorCode"] = value
            self.set(r, "status", status)
            if self.kind == "la":
                r["ResultType"] = str(value)
            else:
                r["resultType"] = str(value)
            return
        names = self.LA if self.kind == "la" else self.DIAG
        if field in self.NESTED and self.kind == "la" and value is not None:
            value = json.dumps(value)
        self.body(r)[names[field]] = value

    def other_table(self, r):
        if self.kind == "la":
            r["Type"] = "AADNonInteractiveUserSignInLogs" if r["Type"] == "SigninLogs" else "SigninLogs"
            for c in ("Status", "ConditionalAccessPolicies", "MfaDetail", "DeviceDetail", "LocationDetails"):
                if not isinstance(r.get(c), str):
                    r[c] = json.dumps(r.get(c))
        else:
            r["category"] = "NonInteractiveUserSignInLogs" if r["category"] == "SignInLogs" else "SignInLogs"


def shift(text, seconds):
    head, _, frac = text.rstrip("Z").partition(".")
    t = datetime.fromisoformat(head + "." + (frac + "000000")[:6])
    return (t + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:23] + "Z"


def policy(pid, controls, result="success", strength=None):
    p = {"id": pid, "displayName": "p", "enforcedGrantControls": controls, "enforcedSessionControls": [],
         "result": result}
    if strength:
        p["authenticationStrength"] = {"authenticationStrengthId": strength, "displayName": "Phishing-resistant MFA"}
    return p


def augment(shape, records):
    cross = [r for r in records if shape.get(r, "home") != shape.get(r, "resource")]
    inbound = [r for r in cross if shape.get(r, "resource") == OURS]
    outbound = [r for r in cross if shape.get(r, "home") == OURS]
    added = []

    def clone(r):
        c = copy.deepcopy(r)
        added.append(c)
        return c

    # The same id a second later: another sign-in.
    for r in cross[7::97]:
        c = clone(r)
        shape.set(c, "time", shift(shape.get(r, "time"), 1))
    # Intra-tenant and other-tenants noise; the latter with a newer app name.
    for i, r in enumerate(cross[3::120]):
        c = clone(r)
        shape.set(c, "id", f"00000000-0000-4000-8000-{i:012d}")
        shape.set(c, "home", shape.get(c, "resource").upper())
        d = clone(r)
        shape.set(d, "id", f"00000000-0000-4000-9000-{i:012d}")
        shape.set(d, "home", STRANGER)
        shape.set(d, "resource", OTHER)
        shape.set(d, "time", shift(shape.get(r, "time"), 86400 * 30))
        shape.set(d, "app_name", "Renamed, \"by\" another tenant\n=SUM(1)")
    # Refusals: both cross-tenant codes and tenant restrictions, both ways.
    for code, rows in ((500212, inbound[::31]), (500213, outbound[::29]), (5000211, inbound[5::41]),
                       (500021, outbound[4::37]), (500022, inbound[9::53])):
        for r in rows:
            shape.set(r, "code", code)
    # Policies kept whole, and plain ones that did or did not apply.
    cases = [
        [policy("5A110000-0000-4000-8000-000000000001", ["Mfa", "RequireCompliantDevice"])],
        [policy("5a110000-0000-4000-8000-000000000002", ["RequireAuthenticationStrength"],
                strength="00000000-0000-0000-0000-000000000004")],
        [policy("5a110000-0000-4000-8000-000000000003", ["RequireApprovedApp", "Mfa"], result="failure")],
        [policy("5a110000-0000-4000-8000-000000000004", ["Mfa"], result="reportOnlySuccess"),
         policy("5a110000-0000-4000-8000-000000000005", ["RequireDomainJoinedDevice"])],
        [policy("not-a-guid", ["RequireCompliantDevice", "RequireDomainJoinedDevice"]),
         policy("5a110000-0000-4000-8000-000000000006", ["Block"])],
        [policy("5a110000-0000-4000-8000-000000000007", ["RequireAuthenticationStrength", "RequireCompliantDevice"])],
        [],
        None,
    ]
    for i, r in enumerate(inbound[2::11]):
        shape.set(r, "policies", cases[i % len(cases)])
        if i % 3 == 0:
            shape.set(r, "requirement", "multiFactorAuthentication")
    # MFA satisfied by claim, in each of the places a log says it.
    note = "MFA requirement satisfied by claim in the token"
    for i, r in enumerate(inbound[1::13]):
        if i % 3 == 0:
            status = shape.get(r, "status") or {}
            status["additionalDetails"] = note
            shape.set(r, "status", status)
        elif i % 3 == 1:
            steps = shape.get(r, "steps") or []
            steps.append({"authenticationStepResultDetail": note.upper() + "."})
            shape.set(r, "steps", steps)
        else:
            shape.set(r, "mfa", {"authMethod": "", "authDetail": note})
    # Names that tie in time (the greater wins), a newest sign-in without a
    # principal name, upper-case ids.
    for r in inbound[4::60]:
        c = clone(r)
        shape.set(c, "id", shape.get(c, "id")[:-4] + "beef")
        shape.set(c, "app_name", (shape.get(r, "app_name") or "") + " (tie)")
    for r in inbound[6::70]:
        c = clone(r)
        shape.set(c, "id", shape.get(c, "id")[:-4] + "cafe")
        shape.set(c, "time", shift(shape.get(r, "time"), 3600 * 24 * 40))
        shape.set(c, "upn", "")
    for r in outbound[::45]:
        shape.set(r, "user", shape.get(r, "user").upper())
        shape.set(r, "app", " " + shape.get(r, "app").upper())
    # Last, so that the copies are the same event as the original: the same
    # sign-in in both tables, its id spelled differently.
    for r in cross[::50]:
        c = clone(r)
        c_id = shape.get(c, "id")
        shape.set(c, "id", "{" + c_id.upper() + "}")
        shape.other_table(c)
    return records + added


def main():
    kind, src, dst = sys.argv[1:4]
    shape = Shape(kind)
    if kind == "la":
        records = json.load(open(src, encoding="utf-8"))
        json.dump(augment(shape, records), open(dst, "w", encoding="utf-8"))
    else:
        records = [json.loads(l) for l in open(src, encoding="utf-8") if l.strip()]
        with open(dst, "w", encoding="utf-8") as f:
            for r in augment(shape, records):
                f.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()
