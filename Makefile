# hookhost tasks. The README's two commands are `make run` and `make test`.
#
# Everything a task needs is installed by the task itself, project-locally:
# the wasm32-wasip2 Rust target, componentize-py in .venv/ (from PyPI) and
# componentize-js + jco + playwright-core in node_modules/ (from npm, pinned
# by package-lock.json); only Debian's chromium (for the dashboard's browser
# tests) is a system package (apt-get). The rest work on a fresh machine with rustup, cargo,
# python3 (with venv) and node/npm; nothing is installed globally.

CARGO ?= cargo
PYTHON ?= python3
NPM ?= npm
# Example plugins served by `make run` (folders under plugins/): Rust crates,
# a Python one (app.py) and a JavaScript one (plugin.js).
RUST_PLUGINS := echo github push-digest
PY_PLUGINS := stripe
JS_PLUGINS := shopify
EXAMPLES_DIR := target/example-plugins
# Components are built here, then renamed into EXAMPLES_DIR (same file system).
BUILD_DIR := target/example-build
LISTEN ?= 127.0.0.1:8080
# The PostgreSQL server the fleet tests create their databases on.
PG_HOST ?= 127.0.0.1
PG_PORT ?= 5432
# The admin API and its dashboard (http://$(ADMIN)/ui/); loopback only.
ADMIN ?= 127.0.0.1:9090

# The plugin toolchains for Python and JavaScript (versions: see README).
VENV := .venv
COMPONENTIZE_PY_VERSION := 0.25.1
COMPONENTIZE_PY := $(VENV)/bin/componentize-py
PY_TOOLS_STAMP := $(VENV)/.componentize-py-$(COMPONENTIZE_PY_VERSION)
COMPONENTIZE_JS := node_modules/.bin/componentize-js
JCO := node_modules/.bin/jco
JS_TOOLS_STAMP := node_modules/.package-lock.json

.PHONY: run test plugins wasm-target py-tools js-tools browser prom-tools pg-client tools js-types lint fmt bench bench-smoke fuzz fuzz-tools

## Build the example plugins and serve them on $(LISTEN), with the admin API
## and its dashboard on $(ADMIN).
run: plugins
	$(CARGO) run --release -p hookhost -- serve --listen $(LISTEN) --admin $(ADMIN) \
		--plugins $(EXAMPLES_DIR) --data target/example-data

## Run every test: unit tests, then the integration suite against the real host.
## The fleet tests (every test with `postgres` in its name) need the
## PostgreSQL server at $(PG_HOST):$(PG_PORT) (HOOKHOST_TEST_POSTGRES, default
## postgres://postgres@127.0.0.1:5432/test, a role that may create
## databases). Without one they are skipped, loudly, and never counted as
## passed; in CI (CI=true) an unreachable server is an error.
test: tools
	@if timeout 3 bash -c 'exec 3<>/dev/tcp/$(PG_HOST)/$(PG_PORT)' 2>/dev/null; then \
		echo "== PostgreSQL at $(PG_HOST):$(PG_PORT): running every test"; \
		$(CARGO) test; \
	elif [ "$$CI" = "true" ]; then \
		echo "error: PostgreSQL is unreachable at $(PG_HOST):$(PG_PORT); CI runs the fleet tests against it" >&2; \
		exit 1; \
	else \
		echo "######## SKIPPED: PostgreSQL is unreachable at $(PG_HOST):$(PG_PORT): the fleet tests (names with 'postgres') do not run ########" >&2; \
		$(CARGO) test -- --skip postgres; \
		echo "######## SKIPPED: the fleet tests did not run (no PostgreSQL at $(PG_HOST):$(PG_PORT)); they are not counted as passed ########" >&2; \
	fi

## Everything the build needs besides cargo.
tools: wasm-target py-tools js-tools browser prom-tools

## Debian's Chromium, which the dashboard's browser tests drive
## (tests/all/dashboard.rs, through playwright-core from js-tools). They
## fail without it, so it is installed here when missing (as root; the
## package list is refreshed only if the first try cannot find it).
browser:
	@command -v chromium >/dev/null || apt-get install -y chromium || \
		{ apt-get update && apt-get install -y chromium; }

## psql, with which the bench's (g) creates its database: Debian's
## postgresql-client when it is missing (as root).
pg-client:
	@command -v psql >/dev/null || apt-get install -y postgresql-client || \
		{ apt-get update && apt-get install -y postgresql-client; }

## promtool, which checks docs/prometheus-alerts.yml (tests/all/alerts.rs):
## Debian's `prometheus` package if it is missing (its service is not
## started). Where it cannot be installed the test checks the metric names
## alone, unless HOOKHOST_REQUIRE_PROMTOOL=1 (CI).
prom-tools:
	@command -v promtool >/dev/null || { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] \
		&& { DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus >/dev/null \
		|| { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus >/dev/null; }; }; } \
		|| echo "promtool not installed: tests/all/alerts.rs checks the Prometheus rules' metric names only"

## componentize-py in a project-local virtual environment.
py-tools: $(PY_TOOLS_STAMP)
$(PY_TOOLS_STAMP):
	@$(PYTHON) -c 'import venv' 2>/dev/null || { echo "python3 with the venv module is needed (e.g. apt-get install python3-venv)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --disable-pip-version-check --quiet componentize-py==$(COMPONENTIZE_PY_VERSION)
	touch $@

## componentize-js, jco and playwright-core (which drives the browser tests)
## in a project-local node_modules, as locked.
## `npm install` rather than `npm ci`: with `omit-lockfile-registry-resolved`
## (set on our machines) npm 11's `ci` refuses this lock over the optional
## platform packages of other systems ("Missing: ...-win32-x64-msvc@ from lock
## file"); `install` installs the same locked versions. `--no-save`: without
## it npm 11 rewrites the committed lock (adding other platforms' optional
## packages) on every fresh install.
js-tools: $(JS_TOOLS_STAMP)
$(JS_TOOLS_STAMP): package.json package-lock.json
	@command -v $(NPM) >/dev/null || { echo "npm (Node.js 20 or later) is needed"; exit 1; }
	$(NPM) install --no-save --no-audit --no-fund
	touch $@

## Regenerate the TypeScript declarations of the WIT world for JS plugins.
js-types: js-tools
	rm -rf sdk/js/types
	$(JCO) types wit --world-name handler -o sdk/js/types

## Build the example plugins into $(EXAMPLES_DIR) (NAME.wasm + NAME.toml).
plugins: tools
	$(CARGO) build --release --target wasm32-wasip2 $(addprefix -p ,$(RUST_PLUGINS))
	mkdir -p $(BUILD_DIR)
	for p in $(PY_PLUGINS); do \
		PYTHONDONTWRITEBYTECODE=1 $(COMPONENTIZE_PY) -d wit -w handler componentize \
			-p plugins/$$p -p sdk/python app -o $(BUILD_DIR)/$$p.wasm || exit 1; \
	done
	for p in $(JS_PLUGINS); do \
		$(COMPONENTIZE_JS) plugins/$$p/plugin.js --wit wit --world-name handler \
			-o $(BUILD_DIR)/$$p.wasm || exit 1; \
	done
	@# cargo names a crate's component with `_` for `-` (push_digest.wasm).
	for p in $(RUST_PLUGINS); do \
		cp target/wasm32-wasip2/release/$$(echo $$p | tr - _).wasm $(BUILD_DIR)/$$p.wasm || exit 1; \
	done
	mkdir -p $(EXAMPLES_DIR)
	@# The verified examples read a demo secret from NAME.secret beside them.
	@for p in github push-digest stripe shopify; do \
		test -f $(EXAMPLES_DIR)/$$p.secret || echo hookhost-demo-secret > $(EXAMPLES_DIR)/$$p.secret; \
	done
	@# Manifest first, then the component, each renamed into place: a running
	@# host never sees a half-written file or a component without its manifest.
	for p in $(RUST_PLUGINS) $(PY_PLUGINS) $(JS_PLUGINS); do \
		if [ -f plugins/$$p/$$p.toml ]; then \
			cp plugins/$$p/$$p.toml $(EXAMPLES_DIR)/.$$p.toml.tmp && \
			mv $(EXAMPLES_DIR)/.$$p.toml.tmp $(EXAMPLES_DIR)/$$p.toml; \
		fi; \
		mv $(BUILD_DIR)/$$p.wasm $(EXAMPLES_DIR)/$$p.wasm; \
	done

## hookhost against its native baseline: one table (docs/performance.md).
bench: wasm-target
	$(CARGO) xtask bench

## A seconds-long run of the bench command (CI), on the test build's dev
## binaries: checks every step still works. Its figures mean nothing.
## With PostgreSQL at $(PG_HOST):$(PG_PORT) it also runs (g), the fleet
## (required in CI); without it, (g) is skipped and says so.
bench-smoke: wasm-target pg-client
	@if timeout 3 bash -c 'exec 3<>/dev/tcp/$(PG_HOST)/$(PG_PORT)' 2>/dev/null; then \
		$(CARGO) xtask bench --smoke --profile dev --scenarios a,b,c,d,e,f,g; \
	elif [ "$$CI" = "true" ]; then \
		echo "error: PostgreSQL is unreachable at $(PG_HOST):$(PG_PORT); CI runs the bench's fleet scenario (g) against it" >&2; \
		exit 1; \
	else \
		echo "######## SKIPPED: (g) fleet, no PostgreSQL at $(PG_HOST):$(PG_PORT) ########" >&2; \
		$(CARGO) xtask bench --smoke --profile dev; \
	fi

## The long fuzz run (docs/fuzzing.md): every target of fuzz/ built with
## coverage instrumentation in $(FUZZ_TARGET_DIR) (not the test build's
## target/), then FUZZ_TIME seconds each, FUZZ_PARALLEL at a time. The short
## run is part of `make test` (tests/all/fuzz.rs).
FUZZ_TIME ?= 600
FUZZ_PARALLEL ?= 1
FUZZ_TARGET_DIR ?= $(CURDIR)/target/fuzz
CARGO_FUZZ_VERSION := 0.13.2
fuzz: fuzz-tools
	FUZZ_TIME=$(FUZZ_TIME) FUZZ_PARALLEL=$(FUZZ_PARALLEL) FUZZ_TARGET_DIR=$(FUZZ_TARGET_DIR) \
		CARGO=$(CARGO) fuzz/run.sh

## cargo-fuzz, if missing (into ~/.cargo/bin: a cargo subcommand).
fuzz-tools:
	@$(CARGO) fuzz --version >/dev/null 2>&1 || \
		$(CARGO) install cargo-fuzz --version $(CARGO_FUZZ_VERSION) --locked

## Format check and lints, as CI runs them.
lint: tools
	$(CARGO) fmt --all --check
	$(CARGO) fmt --manifest-path fuzz/Cargo.toml --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) clippy -p xtask -- -D warnings
	$(CARGO) clippy --target wasm32-wasip2 --workspace \
		--exclude hookhost --exclude hookhost-test-artifacts \
		--exclude hookhost-baseline --exclude xtask -- -D warnings

fmt:
	$(CARGO) fmt --all

wasm-target:
	@rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2
