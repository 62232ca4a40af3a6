# raftq — every entry point a person or CI uses. `make run` and `make test` install and build as needed.
SHELL := /bin/bash
.DEFAULT_GOAL := run

SEEDS ?= 1000
SEED ?=
NODES ?=

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

.PHONY: install build test run sim clean
install: node_modules/.package-lock.json

build: install
	npx tsc -p tsconfig.json

## test: type-check, build and run every test (unit, simulator scenarios and the seed sweep).
test: build
	npx vitest run

## run: the main job.
run: build
	node dist/src/cli/main.js demo-sim

## sim: the randomized simulator sweep (SEEDS=n seeds), or replay one seed with a full trace (SEED=n).
sim: build
	node dist/test/sim/sweep.js $(if $(SEED),--seed $(SEED),--seeds $(SEEDS)) $(if $(NODES),--nodes $(NODES),)

clean:
	rm -rf dist
