# Two commands do all the set-up (see README.md):
#   make server   builds Eddy (release) and starts it on 127.0.0.1:8088 with ./eddy-data
#   make test     runs the whole test suite
# Both install missing system packages first (libclang for RocksDB's bindgen, Node.js and
# npm for the web console) and build the console (web/ -> web/dist, embedded in the
# binary); make test also installs what its tests drive (kcat, kafka-python,
# confluent-kafka, chromium).

# Reuse one build directory outside the clone, so fresh clones do not rebuild RocksDB.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/eddy-target
ARGS ?=

.PHONY: deps build server test bench

deps:
	@scripts/ensure-system-deps.sh

build: deps
	scripts/build-web.sh
	cargo build --release --bin eddy
	@mkdir -p bin && ln -sf "$(CARGO_TARGET_DIR)/release/eddy" bin/eddy

server: build
	bin/eddy server $(ARGS)

test: deps
	@scripts/ensure-test-tools.sh
	scripts/build-web.sh
	scripts/test.sh

bench: build
	bin/eddy bench append --records 5000000 --flush interval
	bin/eddy bench csas --records 1000000
