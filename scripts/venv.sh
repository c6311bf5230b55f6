#!/usr/bin/env bash
# Creates .venv with the pinned Python tools of scripts/requirements-test.txt (moto, cfn-lint with
# the SAM translator and the serverless rules, the SAM CLI; every dependency held by
# scripts/constraints-test.txt), unless it is already complete. Needs only python3 with venv and pip.
#
# A complete install leaves a stamp named after the hash of those two files. No stamp (first
# run, changed pins, an install that was interrupted or failed) means the venv is rebuilt from
# scratch, so a half-installed .venv never lingers.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.venv
req=scripts/requirements-test.txt
stamp="$venv/.installed-$(cat "$req" scripts/constraints-test.txt | sha256sum | cut -c1-16)"

if [ -f "$stamp" ] && [ -x "$venv/bin/moto_server" ] && [ -x "$venv/bin/cfn-lint" ] && [ -x "$venv/bin/sam" ] \
  && "$venv/bin/python" -c 'import importlib.util as u, sys
sys.exit(not all(u.find_spec(m) for m in ("moto", "cfnlint", "samtranslator", "cfn_lint_serverless", "samcli")))' 2>/dev/null; then
  exit 0
fi

echo "==> Python tools into $venv (moto, cfn-lint, SAM CLI): once, takes about a minute"
start=$(date +%s)
rm -rf "$venv"
if ! python3 -m venv "$venv"; then
  echo "error: 'python3 -m venv' failed; on Debian/Ubuntu install python3-venv" >&2
  rm -rf "$venv"
  exit 1
fi
# --quiet hides progress and the list of what was installed; errors still print.
if ! PIP_DISABLE_PIP_VERSION_CHECK=1 "$venv/bin/pip" install --quiet --no-input -r "$req"; then
  echo "error: installing $req into $venv failed (see above)" >&2
  exit 1
fi
touch "$stamp"
echo "    installed in $(($(date +%s) - start)) s"
