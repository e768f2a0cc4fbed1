#!/usr/bin/env bash
# Runs every command in every output format on the samples and writes each
# output (stdout, stderr and exit code) to a folder, so that two builds can
# be compared byte for byte: a restructuring must not change any of them.
#
#   tests/outputs.sh OUT_DIR [XTENANT_BINARY]
#   diff -r before/ after/
#
# Needs no network; takes a few seconds with a debug build.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: tests/outputs.sh OUT_DIR [XTENANT_BINARY]}
x=${2:-target/debug/xtenant}
x=$(realpath "$x")
mkdir -p "$out"
out=$(realpath "$out")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export NO_COLOR=1 COLUMNS=120

S=samples/signins
P=samples/policies
A=samples/audit
D=samples/directory

n=0
run() {
  # run NAME ARGS...: stdout, stderr and the exit code of one invocation.
  local name=$1
  shift
  n=$((n + 1))
  set +e
  "$x" "$@" >"$out/$name.out" 2>"$out/$name.err"
  echo $? >"$out/$name.code"
  set -e
}

for by in user app tenant; do
  for f in table json ndjson csv; do
    run "activity-$by-$f" activity --by "$by" --format "$f" "$S"
  done
done
run activity-since activity --since 2026-11-12 --until 2026-11-15 --format csv "$S"
run activity-tenant activity --tenant 3b8e5f2a-7c41-4d9e-a6b0-1f2c3d4e5f60 "$S"

for f in table json ndjson csv markdown ecs cef; do
  run "replay-$f" replay --proposed "$P/proposed.json" --current "$P/current.json" --format "$f" "$S"
done
run replay-all replay --all --proposed "$P/proposed.json" --current "$P/current.json" "$S"
run replay-logs replay --proposed "$P/proposed.json" --format csv "$S"
run replay-directory replay --proposed "$P/proposed.json" --current "$P/current.json" \
  --groups "$D/groups.csv" --identities "$D/identities.csv" --format csv "$S"
run replay-audit replay --proposed "$P/proposed.json" --current "$P/current.json" --audit "$A" --format csv "$S"
run replay-fail-on replay --proposed "$P/proposed.json" --current "$P/current.json" --fail-on lost "$S"
"$x" -q activity --format csv -o "$work/activity.csv" "$S"
run replay-table-input replay --proposed "$P/proposed.json" --current "$P/current.json" --format csv "$work/activity.csv"

for f in table json ndjson csv markdown; do
  run "timeline-$f" timeline "$A" --signins "$S" --policy "$P/current.json" --window 3d --format "$f"
done
run timeline-all timeline --all "$A"

run policy-default policy default
for f in table json; do
  run "policy-show-$f" policy show "$P/current.json" --format "$f"
  run "policy-check-$f" policy check "$P/proposed.json" --format "$f"
done
for f in table json markdown; do
  run "policy-diff-$f" policy diff "$P/current.json" "$P/proposed.json" --format "$f"
done

run report-md report "$S" --current "$P/current.json" --proposed "$P/proposed.json" --audit "$A" -o -
run generate-graph generate --count 20 --format graph-ndjson
run generate-portal generate --count 20 --format portal-csv
run generate-audit generate --audit graph

store="$work/store"
run store-add -q store add --store "$store" "$S" --audit "$A"
run store-info store info --store "$store" --format json
run store-activity activity --store "$store" --format csv
run store-replay replay --store "$store" --proposed "$P/proposed.json" --current "$P/current.json" --format csv
run store-timeline timeline --store "$store" --format csv

run error-missing activity does-not-exist.json
run error-usage replay --proposed
# Paths of temporary folders differ between runs: keep them out of the comparison.
sed -i "s|$work|WORK|g" "$out"/*
echo "wrote $n outputs to $out"
