#!/usr/bin/env bash
# Renders `xtenant report` on the samples in headless Chromium, takes a
# screenshot, and fails on any console message (the page has no script, so
# any message means broken markup, a blocked resource or an error) or on a
# page that references anything outside itself.
#
#   tests/browser/report.sh [OUT_DIR]        (default: target/browser)
#
# Installs Debian's chromium when it is missing (needs root or sudo).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-target/browser}
mkdir -p "$out"

if ! command -v chromium >/dev/null 2>&1; then
  echo "installing chromium (Debian package)..." >&2
  sudo_cmd=""
  [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq chromium >/dev/null
fi

cargo build -q
X=target/debug/xtenant
html="$PWD/$out/report.html"
$X -q report samples/signins/ --current samples/policies/current.json \
  --proposed samples/policies/proposed.json --audit samples/audit/ \
  --groups samples/directory/groups.csv --identities samples/directory/identities.csv -o "$html"

# Self-contained: no scripts, and nothing fetched from elsewhere.
if grep -Eqi '<script|<link|src="|url\(|@import|https?://' "$html"; then
  echo "FAIL: the report references something outside itself" >&2
  grep -Eoi '<script[^>]*>|<link[^>]*>|src="[^"]*"|url\([^)]*\)|@import[^;]*|https?://[^" <]*' "$html" | head >&2
  exit 1
fi

log="$out/chromium.log"
timeout 120 chromium --headless --no-sandbox --disable-gpu --hide-scrollbars \
  --enable-logging=stderr --v=0 --window-size=1100,4300 \
  --screenshot="$PWD/$out/report.png" "file://$html" >"$log" 2>&1 || {
  echo "FAIL: chromium did not render the report" >&2
  tail -20 "$log" >&2
  exit 1
}
if grep -q ':CONSOLE' "$log"; then
  echo "FAIL: console messages while rendering the report:" >&2
  grep ':CONSOLE' "$log" >&2
  exit 1
fi
test -s "$out/report.png" || { echo "FAIL: no screenshot" >&2; exit 1; }
echo "ok: $out/report.png ($(wc -c <"$out/report.png") bytes), no console messages"
