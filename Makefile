# The README's commands. `make test` is what CI runs (.ci/run).
# Needs only the Rust toolchain and python3 (with venv/pip): the Python tools (moto, cfn-lint)
# are installed into .venv on first use, from the pins in scripts/requirements-test.txt.
.PHONY: run test lint moto venv clean-venv

# The whole system on one machine: http://127.0.0.1:3000
run:
	cargo run --release -p cobro-local

# .venv, moto on a free loopback port, fmt, clippy, every test, cfn-lint; moto is stopped at the
# end whatever happened (scripts/test.sh).
test:
	bash scripts/test.sh

lint: venv
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	.venv/bin/cfn-lint template.yaml

# moto in the foreground on 127.0.0.1:$(MOTO_PORT), for running single tests by hand:
#   COBRO_MOTO_URL=http://127.0.0.1:5055 AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \
#     AWS_REGION=us-east-1 cargo test -p cobro-tests contract
MOTO_PORT ?= 5055
moto:
	MOTO_PORT=$(MOTO_PORT) bash scripts/moto.sh

venv:
	bash scripts/venv.sh

clean-venv:
	rm -rf .venv
