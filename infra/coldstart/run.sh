#!/usr/bin/env bash
# Cold start and size of every Lambda binary against a hello-world, side by side.
#   bash infra/coldstart/run.sh [RUNS] [FUNCTION...]
# Builds the release binaries for this machine, starts moto (the functions' first event reaches
# DynamoDB there), runs coldstart-bench, and prints binary and zip sizes. Naming functions
# measures only those (and the hello-world); COLDSTART_BUILD=0 measures what is already built;
# COLDSTART_LIVE=1 starts them with WhatsApp configured, as in production.
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-30}
shift || true
functions=("$@")
[ ${#functions[@]} -gt 0 ] || functions=(webhook crm-api reminders sender payment-confirmed inbound plans export events-out)
target=${CARGO_TARGET_DIR:-target}
here=infra/coldstart

if [ "${COLDSTART_BUILD:-1}" != 0 ]; then
  # By binary name, as `sam build` (cargo lambda build --bin) does: Cargo then resolves features
  # over the whole workspace, so the binaries are the ones deployed (`-p` would resolve them over
  # the named packages only and give different, smaller binaries).
  echo "==> release build"
  cargo build --release --locked --bin coldstart-hello --bin coldstart-bench "${functions[@]/#/--bin=cobro-}"
fi

source "$here/stack.sh"

bin="$target/release"
echo "==> cold starts ($runs runs each, in turn)"
specs=("hello-world=$bin/coldstart-hello:$here/events/hello.json")
for f in "${functions[@]}"; do specs+=("$f=$bin/cobro-$f:$here/events/$f.json"); done
"$bin/coldstart-bench" --runs "$runs" --json "$target/coldstart.json" "${specs[@]}"

echo "==> sizes (stripped binary; zipped as bootstrap, deflate level 9)"
.venv/bin/python - "$bin" coldstart-hello "${functions[@]/#/cobro-}" <<'PY'
import io, os, sys, zipfile
for name in sys.argv[2:]:
    path = os.path.join(sys.argv[1], name)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.write(path, "bootstrap")
    print(f"{name:<26} {os.path.getsize(path)/1e6:6.2f} MB   zip {len(buf.getvalue())/1e6:5.2f} MB")
PY
