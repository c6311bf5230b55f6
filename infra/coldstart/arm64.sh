#!/usr/bin/env bash
# The arm64 Lambda binaries exactly as `sam build` makes them, checked before a deploy:
#   bash infra/coldstart/arm64.sh [FUNCTION...]
# Builds each function with cargo-lambda (`cargo lambda build --release --arm64 --bin`, the
# command of SAM's rust-cargolambda build method, with cargo-lambda's Zig linker), prints each
# bootstrap's ELF type, size and zipped size, and, where qemu-aarch64 and an arm64 glibc are
# installed (Debian: qemu-user libc6-arm64-cross libgcc-s1-arm64-cross), starts each one under
# emulation against moto and has it answer its first event, as run.sh does natively. Times under
# emulation mean nothing; what this shows is that the deployed binaries start and work.
# cargo-lambda (and the Zig it runs) goes into .venv-lambda, once. ARM64_GLIBC=2.34 builds them
# as the CDK app does instead (`--target aarch64-unknown-linux-gnu.2.34`: linked against
# provided.al2023's glibc, without the libpthread and libdl stubs); the libraries each one needs
# are printed either way.
set -euo pipefail
cd "$(dirname "$0")/../.."
functions=("$@")
[ ${#functions[@]} -gt 0 ] || functions=(webhook crm-api reminders sender payment-confirmed inbound plans export events-out)
target=${CARGO_TARGET_DIR:-target}
here=infra/coldstart
version=1.9.2

if ! .venv-lambda/bin/cargo-lambda --version 2>/dev/null | grep -q "$version"; then
  echo "==> cargo-lambda $version into .venv-lambda"
  rm -rf .venv-lambda
  python3 -m venv .venv-lambda
  PIP_DISABLE_PIP_VERSION_CHECK=1 .venv-lambda/bin/pip install --quiet --no-input "cargo-lambda==$version"
fi
rustup target add aarch64-unknown-linux-gnu >/dev/null

target_flag=(--arm64)
[ -z "${ARM64_GLIBC:-}" ] || target_flag=(--target "aarch64-unknown-linux-gnu.$ARM64_GLIBC")
echo "==> cargo lambda build --release ${target_flag[*]}"
PATH="$PWD/.venv-lambda/bin:$PATH" cargo lambda build --release "${target_flag[@]}" "${functions[@]/#/--bin=cobro-}"

echo "==> the bootstraps (zipped as bootstrap, deflate level 9)"
python3 - "$target/lambda" "${functions[@]/#/cobro-}" <<'PY'
import io, os, re, subprocess, sys, zipfile
bad = 0
for name in sys.argv[2:]:
    path = os.path.join(sys.argv[1], name, "bootstrap")
    with open(path, "rb") as f:
        head = f.read(20)
    machine = int.from_bytes(head[18:20], "little")
    kind = {2: "fixed-address executable", 3: "position-independent executable"}.get(head[16], "?")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.write(path, "bootstrap")
    zipped = len(buf.getvalue()) / 1e6
    ok = machine == 183 and zipped <= 4.0  # EM_AARCH64, and Lambda's budget here
    bad += not ok
    dynamic = subprocess.run(["readelf", "-d", path], capture_output=True, text=True).stdout
    needs = " ".join(re.findall(r"Shared library: \[([^]]+)\]", dynamic))
    print(f"{name:<26} {'aarch64' if machine == 183 else machine:<8} {kind:<32}"
          f" {os.path.getsize(path)/1e6:6.2f} MB   zip {zipped:5.2f} MB   needs {needs}"
          f"{'' if ok else '   <- not as expected'}")
sys.exit(bad)
PY

if ! command -v qemu-aarch64 >/dev/null || [ ! -e /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 ]; then
  echo "==> no qemu-aarch64 with an arm64 glibc: not started (apt install qemu-user libc6-arm64-cross libgcc-s1-arm64-cross)"
  exit 0
fi

echo "==> release build of the bench (native)"
cargo build --release --locked --bin coldstart-bench
source "$here/stack.sh"
wrappers=$(mktemp -d)
trap 'kill $moto 2>/dev/null || true; rm -rf "$wrappers"' EXIT
specs=()
for f in "${functions[@]}"; do
  printf '#!/bin/sh\nexec qemu-aarch64 -L /usr/aarch64-linux-gnu %s\n' "$(realpath "$target/lambda/cobro-$f/bootstrap")" > "$wrappers/$f"
  chmod +x "$wrappers/$f"
  specs+=("$f=$wrappers/$f:$here/events/$f.json")
done
echo "==> each started under qemu-aarch64 against moto, answering its first event"
"$target/release/coldstart-bench" --runs 2 --json "$wrappers/coldstart.json" "${specs[@]}"
