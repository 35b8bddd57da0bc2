.PHONY: install serve test tests tests-redis style types config-doc upgrade-deps check-lowest bench-quick bench

install:
	[ -x .venv/bin/python ] || python3 -m venv .venv
	.venv/bin/python -m pip install -q --require-hashes -r requirements/test.txt
	.venv/bin/python -m pip install -q --no-deps --no-build-isolation -e .

serve: install
	.venv/bin/chatsupport serve

test:
	./scripts/test.sh

tests:
	.venv/bin/python -m pytest tests -q -n 4

# The whole suite again with every test server on Redis instead of the in-memory broker.
tests-redis:
	CHATSUPPORT_TEST_BROKER=redis://127.0.0.1:6379/0 .venv/bin/python -m pytest tests -q -n 4

style:
	.venv/bin/ruff format src tests bench
	.venv/bin/ruff check --fix src tests bench

types:
	.venv/bin/mypy

# docs/configuration.md from the settings declared in src/chatsupport/config.py.
config-doc:
	.venv/bin/python scripts/config-doc

# Refresh the lock (requirements/test.txt) to today's releases, then run the whole suite.
upgrade-deps:
	./scripts/upgrade-deps

# mypy and the suite on the lowest runtime versions pyproject.toml admits.
check-lowest:
	./scripts/check-lowest

bench-quick:
	.venv/bin/python bench/run.py --quick

bench:
	.venv/bin/python bench/run.py --full
