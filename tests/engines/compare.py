"""Compares an engine's activity table with `xtenant activity --format csv`.

usage: compare.py EXPECTED.csv ACTUAL.csv

Same columns in the same order, the same rows in the same order, and every
cell equal. Only spelling is forgiven: a time is compared as an instant
(engines write `2026-11-01T10:00:00Z`, `2026-11-01 10:00:00` or with
fractions), a count as a number, and a missing value as empty.
"""

import csv
import sys
from datetime import datetime, timezone

TIMES = {"first_seen", "last_seen"}


def instant(text):
    t = text.strip().replace(" [UTC]", "").replace(" ", "T")
    if t.endswith("Z"):
        t = t[:-1] + "+00:00"
    d = datetime.fromisoformat(t)
    if d.tzinfo is None:
        d = d.replace(tzinfo=timezone.utc)
    return d.astimezone(timezone.utc)


def cell(column, text):
    if text is None or text == "":
        return ""
    if column in TIMES:
        return instant(text)
    if text.lstrip("-").isdigit():
        return int(text)
    if text.endswith(".0") and text[:-2].isdigit():
        return int(text[:-2])
    return text


def read(path):
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    return header, [[cell(c, v) for c, v in zip(header, r)] for r in body]


def main():
    expected_path, actual_path = sys.argv[1:3]
    eh, expected = read(expected_path)
    ah, actual = read(actual_path)
    if eh != ah:
        sys.exit(f"columns differ:\n  xtenant: {eh}\n  engine:  {ah}")
    problems = []
    if len(expected) != len(actual):
        problems.append(f"{len(expected)} rows from xtenant, {len(actual)} from the engine")
    for i, (e, a) in enumerate(zip(expected, actual)):
        for c, x, y in zip(eh, e, a):
            if x != y:
                problems.append(f"row {i + 2}, column {c}: xtenant {x!r}, engine {y!r}")
        if len(problems) > 20:
            break
    if problems:
        sys.exit(f"{actual_path} differs from {expected_path}:\n  " + "\n  ".join(problems[:20]))
    print(f"{actual_path}: {len(actual)} rows, {len(ah)} columns, equal to xtenant activity")


if __name__ == "__main__":
    main()
