#!/usr/bin/env bash
# moto in the foreground on 127.0.0.1 only, for running tests by hand (`make moto`):
#
#   make moto                     # prints its URL; Ctrl-C stops it
#   COBRO_MOTO_URL=http://127.0.0.1:5055 AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \
#     AWS_REGION=us-east-1 cargo test -p cobro-tests contract
#
# The port is MOTO_PORT (default 5055). `make test` does not use this: it starts its own moto on a
# free port and stops it at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/venv.sh
port="${MOTO_PORT:-5055}"
echo "==> moto on http://127.0.0.1:$port (Ctrl-C stops it)"
exec .venv/bin/moto_server -H 127.0.0.1 -p "$port"
