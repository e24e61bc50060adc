#!/usr/bin/env bash
# Installs the pinned npm tools the OpenAPI test uses (tests/test_openapi.sh): @redocly/cli (the
# linter) and ajv + ajv-formats (the JSON Schema validator tests/openapi_check.mjs drives), into
# build/npm (git-ignored; override with PRIMED_NPM_DIR). Idempotent: when the pinned set is
# there it prints nothing and returns at once. Needs node and npm (the machine's) and the npm
# registry; prints the directory on stdout.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir=${PRIMED_NPM_DIR:-$root/build/npm}
# One line per package, exact versions: the stamp is this list, so a change reinstalls.
pins='@redocly/cli@2.77.0
ajv@8.17.1
ajv-formats@3.0.1'

if [ "$(cat "$dir/.pins" 2>/dev/null)" = "$pins" ] && [ -x "$dir/node_modules/.bin/redocly" ]; then
  echo "$dir"
  exit 0
fi
command -v npm >/dev/null || { echo "npm-tools: npm is missing (install nodejs and npm)" >&2; exit 1; }
mkdir -p "$dir"
echo '{"name":"primed-test-tools","private":true}' >"$dir/package.json"
echo "npm-tools: installing $(echo $pins) into $dir" >&2
# shellcheck disable=SC2086
npm install --prefix "$dir" --save-exact --no-audit --no-fund --loglevel=error $pins >&2
printf '%s' "$pins" >"$dir/.pins"
echo "$dir"
