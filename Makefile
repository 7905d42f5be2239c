# hookhost tasks. The README's two commands are `make run` and `make test`.
#
# Everything a task needs is installed by the task itself (the wasm32-wasip2
# Rust target), so both work on a fresh machine with only rustup + cargo.

CARGO ?= cargo
# Example plugins served by `make run` (folders under plugins/).
PLUGINS := echo github push-digest
EXAMPLES_DIR := target/example-plugins
LISTEN ?= 127.0.0.1:8080

.PHONY: run test plugins wasm-target lint fmt bench bench-smoke

## Build the example plugins and serve them on $(LISTEN).
run: plugins
	$(CARGO) run --release -p hookhost -- serve --listen $(LISTEN) \
		--plugins $(EXAMPLES_DIR) --data target/example-data

## Run every test: unit tests, then the integration suite against the real host.
test: wasm-target
	$(CARGO) test

## Build the example plugins into $(EXAMPLES_DIR) (NAME.wasm + NAME.toml).
plugins: wasm-target
	$(CARGO) build --release --target wasm32-wasip2 $(addprefix -p ,$(PLUGINS))
	mkdir -p $(EXAMPLES_DIR)
	@# github.toml and push-digest.toml verify signatures with the secret in
	@# NAME.secret: demo ones.
	@test -f $(EXAMPLES_DIR)/github.secret || echo hookhost-demo-secret > $(EXAMPLES_DIR)/github.secret
	@test -f $(EXAMPLES_DIR)/push-digest.secret || echo hookhost-demo-secret > $(EXAMPLES_DIR)/push-digest.secret
	@# Manifest first, then the component, each renamed into place: a running
	@# host never sees a half-written file or a component without its manifest.
	for p in $(PLUGINS); do \
		if [ -f plugins/$$p/$$p.toml ]; then \
			cp plugins/$$p/$$p.toml $(EXAMPLES_DIR)/.$$p.toml.tmp && \
			mv $(EXAMPLES_DIR)/.$$p.toml.tmp $(EXAMPLES_DIR)/$$p.toml; \
		fi; \
		cp target/wasm32-wasip2/release/$$p.wasm $(EXAMPLES_DIR)/.$$p.wasm.tmp && \
		mv $(EXAMPLES_DIR)/.$$p.wasm.tmp $(EXAMPLES_DIR)/$$p.wasm; \
	done

## hookhost against its native baseline: one table (README "Performance").
bench: wasm-target
	$(CARGO) xtask bench

## A seconds-long run of the bench command (CI), on the test build's dev
## binaries: checks every step still works. Its figures mean nothing.
bench-smoke: wasm-target
	$(CARGO) xtask bench --smoke --profile dev

## Format check and lints, as CI runs them.
lint: wasm-target
	$(CARGO) fmt --all --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) clippy -p xtask -- -D warnings
	$(CARGO) clippy --target wasm32-wasip2 --workspace \
		--exclude hookhost --exclude hookhost-test-artifacts \
		--exclude hookhost-baseline --exclude xtask -- -D warnings

fmt:
	$(CARGO) fmt --all

wasm-target:
	@rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2
