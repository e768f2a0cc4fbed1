#!/usr/bin/env bash
# Installs what tests/engines/run.sh runs the queries with, under CACHE_DIR
# (kept between CI runs): a Python venv with duckdb-kql and PySpark, and
# node_modules with Microsoft's Kusto language service. Debian packages
# (Java 17 for Spark, Node.js, python3-venv) are added when missing (needs
# root or sudo). Versions are pinned so that a run today and a run next
# month test the same engines.
#
# usage: tests/engines/setup.sh CACHE_DIR
set -euo pipefail
CACHE="$1"
mkdir -p "$CACHE"

missing=()
command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
python3 -c 'import ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
fi

PY_PACKAGES=("duckdb-kql[duckdb]==1.1.2" "duckdb==2.0.1" "pyspark==4.3.0")
if ! "$CACHE/venv/bin/python" -c 'import duckdb_kql, duckdb, pyspark' >/dev/null 2>&1; then
  echo "installing ${PY_PACKAGES[*]} into $CACHE/venv"
  rm -rf "$CACHE/venv"
  python3 -m venv "$CACHE/venv"
  "$CACHE/venv/bin/pip" install -q --disable-pip-version-check "${PY_PACKAGES[@]}"
fi

KUSTO="@kusto/language-service-next@12.4.1"
if [ ! -f "$CACHE/node/node_modules/@kusto/language-service-next/package.json" ]; then
  echo "installing $KUSTO into $CACHE/node"
  mkdir -p "$CACHE/node"
  (cd "$CACHE/node" && { [ -f package.json ] || echo '{"private": true}' > package.json; } \
    && npm install --no-audit --no-fund --silent "$KUSTO")
fi
