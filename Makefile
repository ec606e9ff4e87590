# Paydesk: the two commands a new user needs.
#   make run   - install, migrate, seed demo data, serve on http://127.0.0.1:8000 (SQLite, eager tasks)
#   make test  - install, check PostgreSQL, Redis and RabbitMQ, run lint and the whole test suite against them
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip

.PHONY: run test lint bench install-dev install-prod clean browser promtool security

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.prod-installed: requirements/base.txt requirements/prod.txt | $(VENV)/bin/python
	$(PIP) install --quiet -r requirements/prod.txt
	touch $@

$(VENV)/.dev-installed: requirements/base.txt requirements/prod.txt requirements/dev.txt | $(VENV)/bin/python
	$(PIP) install --quiet -r requirements/dev.txt
	touch $@ $(VENV)/.prod-installed

install-prod: $(VENV)/.prod-installed
install-dev: $(VENV)/.dev-installed

run: install-prod
	DJANGO_SETTINGS_MODULE=config.settings.local $(PY) manage.py migrate --noinput -v 0
	DJANGO_SETTINGS_MODULE=config.settings.local $(PY) manage.py seed_demo
	DJANGO_SETTINGS_MODULE=config.settings.local $(PY) manage.py runserver 127.0.0.1:8000

# The same checks run as pre-commit hooks (.pre-commit-config.yaml): ruff, the import contracts
# (pyproject.toml [tool.importlinter]) and mypy (pyproject.toml [tool.mypy]).
lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy
	DJANGO_SETTINGS_MODULE=config.settings.test $(PY) manage.py makemigrations --check --dry-run

# The back office's browser tests drive Debian's Chromium; installed here when missing (as root,
# like CI), never through `playwright install`.
browser:
	command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)

# The operations tests check the Prometheus rules with Debian's promtool; installed when missing.
promtool:
	command -v promtool >/dev/null || (apt-get update && apt-get install -y --no-install-recommends prometheus)

test: install-dev browser promtool
	$(PY) tests/check_services.py
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory security
	$(VENV)/bin/pytest -n 2

# Static security checks (bandit: findings fixed or justified inline with `# nosec <id>: why`) and
# known vulnerabilities of the installed pinned requirements (pip-audit; tests/supply_chain.py says
# how many packages it could really audit: its database may be unreachable from a closed network).
security: install-dev
	$(VENV)/bin/bandit -q -r apps config -x "*/tests/*,*/migrations/*"
	$(PY) tests/supply_chain.py

# Throughput and latency against the machine's own ceilings (README "Performance"). Needs the
# services `make test` needs, plus wrk (Debian's, installed here when missing) and pgbench.
bench: install-dev
	command -v wrk >/dev/null || (apt-get update && apt-get install -y wrk)
	$(PY) bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) db.sqlite3 staticfiles .pytest_cache .ruff_cache test-artifacts
