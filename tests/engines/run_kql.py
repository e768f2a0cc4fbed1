"""Runs a KQL query with duckdb-kql over Log Analytics sign-in rows.

usage: run_kql.py ROWS.json QUERY.kql OUT.csv [--without-extra-columns]

ROWS.json is a JSON array of Log Analytics rows (`xtenant generate --format
la-json`), both tables mixed and told apart by `Type`. They are loaded into
DuckDB as the two tables the Azure Monitor reference defines, with its column
types: in `SigninLogs` the nested columns Status, ConditionalAccessPolicies,
DeviceDetail, LocationDetails and MfaDetail are dynamic (DuckDB JSON); in
`AADNonInteractiveUserSignInLogs` they are strings holding JSON. The query
runs unchanged except for one function duckdb-kql lacks, `column_ifexists`,
which is resolved here against the loaded table the way Kusto resolves it.
"""

import csv
import json
import os
import re
import sys
import tempfile

import duckdb_kql

HERE = os.path.dirname(os.path.abspath(__file__))
DUCKDB_TYPES = {"string": "VARCHAR", "dynamic": "JSON", "datetime": "TIMESTAMP", "bool": "BOOLEAN",
                "long": "BIGINT", "real": "DOUBLE"}
# Columns workspaces carry that the reference does not list; the query reads
# them with column_ifexists.
EXTRA = [("HomeTenantName", "string"), ("AppOwnerTenantId", "string"), ("ResourceOwnerTenantId", "string")]


def load(con, rows, extra):
    """Creates both tables; each row's values cast from text to the documented type."""
    schema = json.load(open(os.path.join(HERE, "signin-tables.json"), encoding="utf-8"))["tables"]
    columns = set()
    with tempfile.TemporaryDirectory() as tmp:
        for table, documented in schema.items():
            types = [(c, DUCKDB_TYPES[t]) for c, t in documented + (EXTRA if extra else [])]
            columns.update(c for c, _ in types)
            path = os.path.join(tmp, table + ".ndjson")
            with open(path, "w", encoding="utf-8") as f:
                for r in rows:
                    if r.get("Type") != table:
                        continue
                    record = {}
                    for c, _ in types:
                        v = r.get(c)
                        if v is None or v == "":
                            continue
                        record[c] = v if isinstance(v, str) else json.dumps(v)
                    f.write(json.dumps(record) + "\n")
            text = ", ".join(f"'{c}': 'VARCHAR'" for c, _ in types)
            cast = ", ".join(
                f'CAST(CAST("{c}" AS TIMESTAMPTZ) AS TIMESTAMP) AS "{c}"' if t == "TIMESTAMP" else f'CAST("{c}" AS {t}) AS "{c}"'
                for c, t in types
            )
            con.sql(
                f'CREATE TABLE "{table}" AS SELECT {cast} FROM read_json(\'{path}\', '
                f"format = 'newline_delimited', columns = {{{text}}})"
            )
    return columns


def resolve_column_ifexists(query, columns):
    """`column_ifexists("Name", default)`: the column when the table has it."""

    def one(m):
        name, default = m.group(1), m.group(2)
        return name if name in columns else default

    return re.sub(r'column_ifexists\("([A-Za-z_]+)",\s*("[^"]*")\)', one, query)


def main():
    rows_path, query_path, out_path = sys.argv[1:4]
    extra = "--without-extra-columns" not in sys.argv
    rows = json.load(open(rows_path, encoding="utf-8"))
    con = duckdb_kql.connect()
    columns = load(con, rows, extra)
    query = resolve_column_ifexists(open(query_path, encoding="utf-8").read(), columns)
    result = duckdb_kql.query(con, query)
    names = [d[0] for d in result.description]
    with open(out_path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(names)
        for row in result.fetchall():
            w.writerow(["" if v is None else v.strftime("%Y-%m-%dT%H:%M:%SZ") if hasattr(v, "strftime") else v for v in row])


if __name__ == "__main__":
    main()
