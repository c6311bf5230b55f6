#!/usr/bin/env bash
# The CDK app's checks (infra/cdk), as `make test` runs them: npm ci from the committed lock file,
# tsc, the tests (node --test: the stack declares the same functions, table, queues, bus,
# schedule, alarms and permissions as template.yaml), and `cdk synth` with bundling skipped
# (COBRO_CDK_SKIP_BUNDLING=1: no Rust build, no cargo-lambda needed). Needs node >= 20 and npm;
# without them it says so and succeeds, so machines without node still run every other check.
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "==> SKIPPED: node and npm are not installed; the CDK app (infra/cdk) was not checked"
  exit 0
fi

start=$(date +%s)
# --prefer-offline: the npm cache is enough once warm; the first run downloads ~60 MB.
npm ci --no-audit --no-fund --prefer-offline --loglevel=error
npm run --silent build
npm test
COBRO_CDK_SKIP_BUNDLING=1 npx --no-install cdk synth --quiet >/dev/null
echo "    CDK app checked in $(($(date +%s) - start)) s ($(ls cdk.out/*.template.json | wc -l) stack templates synthesized)"
