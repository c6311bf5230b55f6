# The README's commands. `make test` is what CI runs.
.PHONY: run test lint moto clean-venv

run:
	cargo run --release -p cobro-local

test:
	bash scripts/test.sh

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

# moto in the foreground on 127.0.0.1:5055, for running single tests by hand:
#   COBRO_MOTO_URL=http://127.0.0.1:5055 cargo test -p cobro-tests --test all contract
moto:
	test -x .venv/bin/moto_server || COBRO_TEST_ONLY_VENV=1 bash scripts/test.sh
	.venv/bin/moto_server -H 127.0.0.1 -p 5055

clean-venv:
	rm -rf .venv
