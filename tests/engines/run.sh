#!/usr/bin/env bash
# The queries `xtenant query` writes, run on real engines and compared with
# `xtenant activity` on the same sign-ins, row for row and column for column:
#
# - KQL: parsed and semantically analysed by Microsoft's Kusto language
#   service against the documented table schemas (check_kql.js), then run by
#   duckdb-kql over the sign-ins loaded as SigninLogs and
#   AADNonInteractiveUserSignInLogs with their documented column types
#   (run_kql.py), with and without the columns the reference does not list.
# - Spark SQL: run by local PySpark over diagnostic-settings NDJSON files and
#   over an xtenant store's Parquet files (run_spark.py).
#
# For --by user, app and tenant, with and without a --since/--until window,
# on generated sign-ins with the cases of augment.py added.
#
# usage: tests/engines/run.sh XTENANT_BINARY CACHE_DIR
#   CACHE_DIR holds venv/ (duckdb-kql[duckdb], pyspark) and node/node_modules
#   (@kusto/language-service-next); .ci/run installs them.
set -euo pipefail
BIN=$(realpath "$1")
CACHE=$(realpath "$2")
HERE=$(cd "$(dirname "$0")" && pwd)
PY="$CACHE/venv/bin/python"
export NODE_PATH="$CACHE/node/node_modules"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
# The tenant of `xtenant generate`'s scenario (Contoso).
T=3b8e5f2a-7c41-4d9e-a6b0-1f2c3d4e5f60
WINDOW=(--since 2026-11-10 --until 2026-11-25)

"$BIN" generate -q --count 4000 --seed 16 --format la-json -o la.json
"$BIN" generate -q --count 4000 --seed 16 --format diagnostic-ndjson -o diag.ndjson
python3 "$HERE/augment.py" la la.json la-aug.json
python3 "$HERE/augment.py" diag diag.ndjson diag-aug.ndjson
python3 - <<'PY'
import json
rows = json.load(open("la-aug.json"))
for r in rows:
    for c in ("HomeTenantName", "AppOwnerTenantId", "ResourceOwnerTenantId"):
        r.pop(c, None)
json.dump(rows, open("la-documented.json", "w"))
PY
"$BIN" store add -q --store store --tenant "$T" diag-aug.ndjson

# Every grain, a window, the documented columns only, the store: the cases
# that exercise different parts of each query (each KQL run takes seconds of
# duckdb-kql translation, each Spark query seconds of planning, so not every
# combination).
KQL_CASES="user:all user:window user:documented app:all tenant:all tenant:window"
SPARK_CASES="user:all user:window app:all app:window tenant:all store:user store:tenant"

spark_jobs=()
for case in $SPARK_CASES; do
  by=${case%%:*}; w=${case#*:}
  if [ "$by" = store ]; then
    "$BIN" query -q --engine spark-sql --tenant "$T" --by "$w" --records store --source "$WORK/store/signins" -o "store-$w.sql"
    "$BIN" activity -q --store store --tenant "$T" --by "$w" --format csv -o "expected-store-$w.csv"
    spark_jobs+=("store-$w.sql" "spark-store-$w.csv")
    continue
  fi
  range=(); [ "$w" = window ] && range=("${WINDOW[@]}")
  "$BIN" query -q --engine spark-sql --tenant "$T" --by "$by" "${range[@]}" --source "$WORK/diag-aug.ndjson" -o "$by-$w.sql"
  "$BIN" activity -q diag-aug.ndjson --tenant "$T" --by "$by" "${range[@]}" --format csv -o "expected-spark-$by-$w.csv"
  spark_jobs+=("$by-$w.sql" "spark-$by-$w.csv")
done
# Spark in the background while duckdb-kql works: two engines, two cores.
"$PY" "$HERE/run_spark.py" "${spark_jobs[@]}" > spark.log 2>&1 &
spark=$!

for case in $KQL_CASES; do
  by=${case%%:*}; w=${case#*:}
  range=(); [ "$w" = window ] && range=("${WINDOW[@]}")
  rows=la-aug.json; extra=()
  if [ "$w" = documented ]; then rows=la-documented.json; extra=(--without-extra-columns); fi
  "$BIN" query -q --engine kql --tenant "$T" --by "$by" "${range[@]}" -o "$by-$w.kql"
  node "$HERE/check_kql.js" "$by-$w.kql"
  "$PY" "$HERE/run_kql.py" "$rows" "$by-$w.kql" "kql-$by-$w.csv" "${extra[@]}"
  "$BIN" activity -q "$rows" --tenant "$T" --by "$by" "${range[@]}" --format csv -o "expected-kql-$by-$w.csv"
  python3 "$HERE/compare.py" "expected-kql-$by-$w.csv" "kql-$by-$w.csv"
done

wait "$spark" || { cat spark.log; exit 1; }
for case in $SPARK_CASES; do
  by=${case%%:*}; w=${case#*:}
  if [ "$by" = store ]; then
    python3 "$HERE/compare.py" "expected-store-$w.csv" "spark-store-$w.csv"
  else
    python3 "$HERE/compare.py" "expected-spark-$by-$w.csv" "spark-$by-$w.csv"
  fi
done
# The results as they come back are replayed as they are: the same verdicts
# as replaying the logs themselves.
SAMPLES="$HERE/../../samples/policies"
replay=(replay -q --tenant "$T" --current "$SAMPLES/current.json" --proposed "$SAMPLES/proposed.json" --format csv)
"$BIN" "${replay[@]}" la-aug.json -o replay-logs-la.csv
"$BIN" "${replay[@]}" kql-user-all.csv -o replay-kql.csv
"$BIN" "${replay[@]}" diag-aug.ndjson -o replay-logs-diag.csv
"$BIN" "${replay[@]}" spark-user-all.csv.parts -o replay-spark.csv
cmp replay-logs-la.csv replay-kql.csv
cmp replay-logs-diag.csv replay-spark.csv
echo "engines: every query equals xtenant activity, and replay reads the results as the logs"
