#!/usr/bin/env bash
# Compares xtenant with DuckDB, polars and jq on the same generated file.
#   benches/compare.sh [--size-mb 2000] [--runs 3] [--partners 300] [--skip jq]
#                      [--sections ndjson,own,csv,gzip,scaling | all]
# Builds the release binary (a few minutes the first time) and installs the
# Python packages duckdb and polars into benches/.venv when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v jq >/dev/null || { echo "jq is needed (apt-get install jq)" >&2; exit 2; }
command -v gzip >/dev/null || { echo "gzip is needed" >&2; exit 2; }
cargo build --release --quiet
if [ ! -x benches/.venv/bin/python ]; then
  python3 -m venv benches/.venv \
    || { echo "python3 with venv is needed (apt-get install python3-venv)" >&2; exit 2; }
fi
benches/.venv/bin/python -c 'import duckdb, polars' 2>/dev/null \
  || benches/.venv/bin/pip install --quiet duckdb polars
exec benches/.venv/bin/python benches/compare.py "$@"
