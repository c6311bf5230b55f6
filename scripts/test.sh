#!/usr/bin/env bash
# `make test`: everything the tests need, then every test. Needs only the Rust toolchain and
# python3 on the machine. Creates .venv (moto, cfn-lint), starts moto on a free loopback port,
# checks formatting and clippy, runs the workspace's tests against it, lints template.yaml, and
# stops moto whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.venv
stamp="$venv/.installed-$(sha256sum scripts/requirements-test.txt | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "==> Python tools into $venv (moto, cfn-lint)"
  start=$(date +%s)
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --upgrade pip
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r scripts/requirements-test.txt
  touch "$stamp"
  echo "    installed in $(( $(date +%s) - start )) s"
fi
[ "${COBRO_TEST_ONLY_VENV:-0}" = 1 ] && exit 0

port=$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
echo "==> moto on 127.0.0.1:$port"
"$venv/bin/moto_server" -H 127.0.0.1 -p "$port" > "${TMPDIR:-/tmp}/cobro-moto-$port.log" 2>&1 &
moto_pid=$!
cleanup() { kill "$moto_pid" 2>/dev/null || true; wait "$moto_pid" 2>/dev/null || true; }
trap cleanup EXIT INT TERM
for _ in $(seq 1 150); do
  if "$venv/bin/python" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/')" 2>/dev/null; then
    break
  fi
  if ! kill -0 "$moto_pid" 2>/dev/null; then
    echo "moto did not start:"; cat "${TMPDIR:-/tmp}/cobro-moto-$port.log"; exit 1
  fi
  sleep 0.2
done

export COBRO_MOTO_URL="http://127.0.0.1:$port" COBRO_REQUIRE_MOTO=1
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL

if [ "${COBRO_TEST_SKIP_LINT:-0}" != 1 ]; then
  echo "==> cargo fmt --check"
  cargo fmt --all -- --check
  echo "==> cargo clippy"
  cargo clippy --workspace --all-targets --locked -- -D warnings
fi
echo "==> cargo test (contract suites on SQLite and on moto, end-to-end on the local stack)"
log="${TMPDIR:-/tmp}/cobro-test-$$.log"
set +e
cargo test --workspace --locked 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# One closing line for the whole run: the sum over every test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed/) p += $(i-1); if ($i ~ /^failed/) f += $(i-1); if ($i ~ /^ignored/) s += $(i-1) } }
     END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$log" > "$log.sum"
rm -f "$log"
if [ "$status" != 0 ]; then cat "$log.sum"; rm -f "$log.sum"; exit "$status"; fi
echo "==> cfn-lint template.yaml"
"$venv/bin/cfn-lint" template.yaml
echo "==> all checks passed"
cat "$log.sum"; rm -f "$log.sum"
