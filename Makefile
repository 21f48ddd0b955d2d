# The two commands a newcomer needs are `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/billing
TEST_REDIS_URL ?= redis://127.0.0.1:6379/0
# pytest-xdist workers for `make test`: 3 measured fastest on the 2-core machine (docs/decisions.md); every
# worker has its own test database (test_billing_gw0...) and its own prefix in TEST_REDIS_URL's database.
TEST_WORKERS ?= 3

.PHONY: run serve test lint venv bench messages

$(BIN)/activate: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $(BIN)/activate

venv: $(BIN)/activate

# Embedded default: SQLite, in-memory channel layer, local-memory cache, no Stripe keys.
run: venv
	scripts/ensure-gettext.sh
	env -u DATABASE_URL -u REDIS_URL $(BIN)/python manage.py compilemessages --ignore '.venv*' --verbosity 0
	env -u DATABASE_URL -u REDIS_URL $(BIN)/python manage.py migrate --noinput
	env -u DATABASE_URL -u REDIS_URL $(BIN)/python manage.py seed --demo 25
	env -u DATABASE_URL -u REDIS_URL $(BIN)/python manage.py runserver 127.0.0.1:8000

# The Procfile's processes (web, websocket, worker, scheduler) with honcho on PostgreSQL and Redis, as
# deployed (docs/deploy.md): migrations first, static files collected, then every process; Ctrl-C stops all.
SERVE_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/billing
SERVE_REDIS_URL ?= redis://127.0.0.1:6379/0
serve: venv
	scripts/ensure-services.sh
	createdb -h 127.0.0.1 -U postgres $(notdir $(SERVE_DATABASE_URL)) 2>/dev/null || true
	export DATABASE_URL=$${DATABASE_URL:-$(SERVE_DATABASE_URL)} REDIS_URL=$${REDIS_URL:-$(SERVE_REDIS_URL)} \
		PATH=$(CURDIR)/$(BIN):$$PATH && \
	python manage.py migrate --noinput && \
	python manage.py collectstatic --noinput --verbosity 0 && \
	python manage.py seed && \
	honcho start -f Procfile

# The whole suite on PostgreSQL (started if it is down), never on SQLite; schemathesis over the whole
# OpenAPI schema and the API docs in headless Chromium (installed if missing) are part of it. Tests are
# handed to the workers one by one (xdist's default `load`: see docs/decisions.md for why not `loadgroup`).
test: venv
	scripts/ensure-services.sh
	scripts/ensure-browser.sh
	scripts/ensure-gettext.sh
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} TEST_REDIS_URL=$${TEST_REDIS_URL:-$(TEST_REDIS_URL)} \
		$(BIN)/pytest -n $(TEST_WORKERS)
	$(BIN)/ruff check .
	$(BIN)/lint-imports

# The English and Arabic catalogs from the code and templates, then compiled (docs/i18n.md): translate
# every new msgid in locale/ar/LC_MESSAGES/django.po before committing (a test fails on an empty one).
messages: venv
	scripts/ensure-gettext.sh
	env -u DATABASE_URL $(BIN)/python manage.py makemessages -l ar -l en --no-obsolete \
		--ignore '.venv*' --ignore 'bench/*' --ignore 'staticfiles/*'
	env -u DATABASE_URL $(BIN)/python manage.py compilemessages --ignore '.venv*'

lint: venv
	$(BIN)/ruff check .
	$(BIN)/lint-imports

# Every benchmark in bench/ with bounded sizes (about 10 minutes on 2 cores), then README's benchmark
# table built from their output, with the load average around each (bench/run_all.py).
bench: venv
	scripts/ensure-services.sh
	$(BIN)/python bench/run_all.py
