# Paydesk: the two commands a new user needs.
#   make run   - install, start an embedded PostgreSQL (data in .run/postgres/), migrate, seed demo data,
#                serve on http://127.0.0.1:8000 (eager tasks); Ctrl-C stops the server and PostgreSQL
#   make test  - install, run lint, start whatever of PostgreSQL, Redis and RabbitMQ is not reachable
#                (embedded PostgreSQL; Debian's Redis and RabbitMQ), run the whole suite, stop them again
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip

.PHONY: run test lint bench install-dev install-local install-prod clean browser promtool security

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.prod-installed: requirements/base.txt requirements/prod.txt | $(VENV)/bin/python
	$(PIP) install --quiet -r requirements/prod.txt
	touch $@

$(VENV)/.local-installed: requirements/base.txt requirements/prod.txt requirements/local.txt | $(VENV)/bin/python
	$(PIP) install --quiet -r requirements/local.txt
	touch $@ $(VENV)/.prod-installed

$(VENV)/.dev-installed: requirements/base.txt requirements/prod.txt requirements/local.txt requirements/dev.txt | $(VENV)/bin/python
	$(PIP) install --quiet -r requirements/dev.txt
	touch $@ $(VENV)/.prod-installed $(VENV)/.local-installed

install-prod: $(VENV)/.prod-installed
install-local: $(VENV)/.local-installed
install-dev: $(VENV)/.dev-installed

# config/embedded_db.py: the embedded PostgreSQL (unless DATABASE_URL is set), migrate, seed_demo,
# runserver; the demo logins are printed last, once the server answers.
run: install-local
	$(PY) -m config.embedded_db

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

# tests/services.py: DATABASE_URL's PostgreSQL when it answers, else an embedded one (stopped after);
# Redis and RabbitMQ installed from Debian's packages and started when they do not answer (as root,
# like CI), and stopped after the run if it started them.
test: install-dev browser promtool
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory security
	$(PY) tests/services.py $(VENV)/bin/pytest -n 2

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
	rm -rf $(VENV) .run staticfiles .pytest_cache .ruff_cache test-artifacts
