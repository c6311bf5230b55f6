#!/usr/bin/env bash
# `make test`: everything the tests need, then every check. Needs only the Rust toolchain (with
# rustfmt and clippy) and python3 with venv/pip on the machine.
#
#   1. .venv with the pinned moto, cfn-lint and SAM CLI (scripts/venv.sh; skipped when complete)
#   2. moto on a free port on 127.0.0.1, polled until it answers (30 s at most)
#   3. cargo fmt --check, cargo clippy -D warnings, cargo test --workspace against that moto
#   4. schemathesis against the CRM API: the debug cobro-local on a free port with a temporary
#      data directory, fuzzed from its /v1/openapi.json (no server errors, responses as documented)
#   5. template.yaml: cfn-lint (with the SAM transform and the serverless rules) and
#      `sam validate --lint`
#   6. infra/cdk: npm ci, tsc, its tests (the same resources as template.yaml) and `cdk synth`
#      without bundling (infra/cdk/check.sh); skipped with a message when node or npm is missing
#   7. moto and cobro-local stopped, whatever happened (an EXIT trap), and one summary line over
#      all tests
#
# Every step runs even when an earlier one failed, so one run shows every problem; the exit status
# is non-zero when any step failed.
#
# Knobs for working on this script itself, not for CI:
#   COBRO_TEST_SKIP_CARGO=1   skip fmt, clippy and cargo test: checks the venv, moto's start and
#                             stop, the template and the CDK app in well under a minute
#   COBRO_TEST_SKIP_LINT=1    skip fmt and clippy
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/venv.sh
venv=.venv

tmp=$(mktemp -d "${TMPDIR:-/tmp}/cobro-test.XXXXXX")
moto_pid=
stop_moto() {
  if [ -n "$moto_pid" ]; then
    kill "$moto_pid" 2>/dev/null || true
    wait "$moto_pid" 2>/dev/null || true
    moto_pid=
    echo "==> moto stopped"
  fi
}
local_pid=
stop_local() {
  if [ -n "$local_pid" ]; then
    kill "$local_pid" 2>/dev/null || true
    wait "$local_pid" 2>/dev/null || true
    local_pid=
    echo "==> cobro-local stopped"
  fi
}
cleanup() {
  stop_local
  stop_moto
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- moto -------------------------------------------------------------------------------------
# Polls moto until it answers; exits 2 as soon as the moto process is gone (e.g. the port was
# taken between choosing and binding it), 1 after 30 s.
wait_for_moto() {
  "$venv/bin/python" - "$1" "$2" <<'EOF'
import os, sys, time, urllib.request
port, pid = sys.argv[1], int(sys.argv[2])
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy
deadline = time.monotonic() + 30
while time.monotonic() < deadline:
    try:
        opener.open(f"http://127.0.0.1:{port}/moto-api/", timeout=2).read()
        sys.exit(0)
    except Exception:
        pass
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit(2)
    time.sleep(0.1)
sys.exit(1)
EOF
}

free_port() {
  "$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

started=
for attempt in 1 2 3; do
  port=$(free_port)
  "$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$tmp/moto.log" 2>&1 &
  moto_pid=$!
  rc=0
  wait_for_moto "$port" "$moto_pid" || rc=$?
  if [ "$rc" = 0 ]; then
    started=1
    break
  fi
  kill "$moto_pid" 2>/dev/null || true
  wait "$moto_pid" 2>/dev/null || true
  moto_pid=
  echo "moto did not answer on 127.0.0.1:$port (try $attempt of 3); its output:" >&2
  tail -n 20 "$tmp/moto.log" >&2
done
if [ -z "$started" ]; then
  echo "error: could not start moto" >&2
  exit 1
fi
echo "==> moto on http://127.0.0.1:$port (pid $moto_pid)"

export COBRO_MOTO_URL="http://127.0.0.1:$port" COBRO_REQUIRE_MOTO=1
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1
unset AWS_PROFILE AWS_DEFAULT_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL

# --- the checks ---------------------------------------------------------------------------------
failed=()
step() {
  local name=$1
  shift
  echo "==> $name"
  if ! "$@"; then
    failed+=("$name")
    echo "==> FAILED: $name"
  fi
}

cargo_test() {
  # The test output goes through as it comes; a copy is kept for the summary line below.
  cargo test --workspace 2>&1 | tee "$tmp/cargo-test.log"
  return "${PIPESTATUS[0]}"
}

if [ "${COBRO_TEST_SKIP_CARGO:-0}" = 1 ]; then
  echo "==> COBRO_TEST_SKIP_CARGO=1: skipping cargo fmt, clippy and test"
else
  if [ "${COBRO_TEST_SKIP_LINT:-0}" != 1 ]; then
    step "cargo fmt --check" cargo fmt --all -- --check
    step "cargo clippy" cargo clippy --workspace --all-targets -- -D warnings
  fi
  step "cargo test (contract suites on SQLite and on moto, end-to-end on the local stack)" cargo_test
fi
# --- schemathesis against the local stack -------------------------------------------------------
# The API key is the demo tenant's (every scope). Deterministic generation, so a run is
# reproducible (and keeps no example database); 25 examples an operation keeps the step well
# under a minute on 2 cores.
schemathesis_run() {
  # --workspace: the features `cargo test --workspace` resolved, so nothing is built again but
  # the binary (`-p cobro-local` alone would resolve fewer and rebuild much of the tree).
  cargo build --workspace --bin cobro-local || return 1
  local target bin api_port key=cobro-schemathesis-key
  target=$(cargo metadata --format-version 1 --no-deps |
    "$venv/bin/python" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
  bin="$target/debug/cobro-local"
  api_port=$(free_port)
  mkdir -p "$tmp/local-data"
  PORT=$api_port COBRO_DATA_DIR="$tmp/local-data" COBRO_DEMO_API_KEY=$key COBRO_TICK_SECONDS=0 \
    COBRO_WORKER_MILLIS=0 "$bin" >"$tmp/local.log" 2>&1 &
  local_pid=$!
  local rc=0
  "$venv/bin/schemathesis" run "http://127.0.0.1:$api_port/v1/openapi.json" \
    --wait-for-schema 30 \
    -H "Authorization: Bearer $key" \
    --checks not_a_server_error,response_schema_conformance \
    --max-examples 25 --generation-deterministic \
    --request-timeout 10 || rc=$?
  if [ "$rc" != 0 ]; then
    echo "cobro-local's log (last 40 lines):" >&2
    tail -n 40 "$tmp/local.log" >&2
  fi
  stop_local
  return "$rc"
}
if [ "${COBRO_TEST_SKIP_CARGO:-0}" != 1 ]; then
  step "schemathesis on the CRM API (local stack)" schemathesis_run
fi
step "cfn-lint template.yaml (SAM transform, serverless rules)" \
  "$venv/bin/cfn-lint" template.yaml -a cfn_lint_serverless.rules
# Offline: the translator and cfn-lint; only AWS_REGION is needed, no credentials.
step "sam validate --lint" env SAM_CLI_TELEMETRY=0 "$venv/bin/sam" validate --lint --template-file template.yaml
step "CDK app (infra/cdk: build, tests, cdk synth)" bash infra/cdk/check.sh

# --- the end ------------------------------------------------------------------------------------
stop_moto
if [ ${#failed[@]} -gt 0 ]; then
  echo "==> failed steps:"
  printf '      %s\n' "${failed[@]}"
else
  echo "==> all checks passed"
fi
# One closing line for the whole run: the sum over every test binary's "test result:" line.
if [ -f "$tmp/cargo-test.log" ]; then
  awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed/) p += $(i-1); if ($i ~ /^failed/) f += $(i-1); if ($i ~ /^ignored/) s += $(i-1) } }
       END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$tmp/cargo-test.log"
fi
[ ${#failed[@]} -eq 0 ]
