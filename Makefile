# Every target runs inside .venv/, which `make setup` creates (idempotent; quick when nothing changed).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.setup-stamp
PORT ?= 8000
export PYTHONPATH := $(CURDIR):$(CURDIR)/platform

.PHONY: setup test lint demo web worker validator beat bench torch system-deps

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[platform,dev]'
	@touch $(STAMP)

# Optional: PyTorch for the numeric parity tests and the framework benchmarks (never needed by the product).
torch: setup
	$(PY) -m pip install --quiet --disable-pip-version-check torch==2.13.0

# Debian packages the browser test and the integration tests use (run as root).
system-deps:
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium redis-server postgresql

test: setup
	$(PY) -m pytest

lint: setup
	$(PY) -m ruff check .

# The demo runs with DEBUG off like production; it makes up a SECRET_KEY per run unless one is set.
demo: setup
	SECRET_KEY="$${SECRET_KEY:-$$($(PY) -c 'import secrets; print(secrets.token_urlsafe(50))')}" \
		$(PY) manage.py demo --port $(PORT)

web: setup
	$(PY) manage.py migrate --noinput
	$(VENV)/bin/gunicorn arena.wsgi --bind 0.0.0.0:$(PORT) --workers 2 --pythonpath platform

worker: setup
	$(VENV)/bin/celery --workdir platform -A arena worker --loglevel INFO --concurrency 1

# Checks uploads (the validation queue; run at least one beside the scoring workers).
validator: setup
	ARENA_WORKER_ROLE=validate $(VENV)/bin/celery --workdir platform -A arena worker --loglevel INFO --concurrency 2

beat: setup
	$(VENV)/bin/celery --workdir platform -A arena beat --loglevel INFO

bench: setup
	$(PY) benchmarks/evaluator.py
	$(PY) benchmarks/leaderboard.py
	$(PY) benchmarks/framework_vs_torch.py
	$(PY) benchmarks/language.py
	$(PY) benchmarks/compression.py
	$(PY) benchmarks/fairness.py
