#!/usr/bin/env bash
# Rebuilds samples/signins and samples/directory from the seeded scenario.
# The policies in samples/policies are written by hand.
set -euo pipefail
cd "$(dirname "$0")"
X=${XTENANT:-../target/debug/xtenant}
rm -rf signins && mkdir -p signins/diagnostic/y=2026/m=11/d=19 directory
$X generate --count 150 --seed 1 --format graph-page -o signins/graph-beta-signins.json \
  --identities-out directory/identities.csv --groups-out directory/groups.csv
$X generate --count 100 --seed 2 --format diagnostic-ndjson -o signins/diagnostic/y=2026/m=11/d=19/PT1H.json
$X generate --count 80 --seed 3 --format portal-csv -o signins/InteractiveSignIns_2026-11-06_2026-11-20.csv
$X generate --count 70 --seed 4 --format la-csv | gzip -9n > signins/SigninLogs_export.csv.gz
rm -rf audit && mkdir -p audit
$X generate --audit graph -o audit/directoryAudits.json
