# raftq — every entry point a person or CI uses. `make run` and `make test` install and build as needed.
SHELL := /bin/bash
.DEFAULT_GOAL := run

SEEDS ?= 1000
SEED ?=
NODES ?=

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

.PHONY: install build generate test run sim sim-demo clean
install: node_modules/.package-lock.json

PROTOS := $(wildcard proto/raftq/v1/*.proto)

# TypeScript types generated from the .proto files: the one source of truth for the wire shapes.
src/generated/.stamp: $(PROTOS) node_modules/.package-lock.json
	rm -rf src/generated
	npx proto-loader-gen-types --longs=Number --enums=String --defaults --oneofs --includeComments \
	  --grpcLib=@grpc/grpc-js -I proto -O src/generated $(patsubst proto/%,%,$(PROTOS))
	echo '{"type":"commonjs"}' > src/generated/package.json
	@touch $@

generate: src/generated/.stamp

build: install generate
	npx tsc -p tsconfig.json

## test: type-check, build and run every test (unit, simulator scenarios and the seed sweep).
test: build
	npx vitest run --dir test

## run: the main job: a local 3-node cluster in the foreground (data in ./data, Ctrl-C stops it cleanly).
run: build
	node --enable-source-maps dist/src/cli/main.js local-cluster

## sim-demo: a simulated 3-node cluster electing, replicating and re-electing after a crash, told in prose.
sim-demo: build
	node dist/test/sim/demo.js

## sim: the randomized simulator sweep (SEEDS=n seeds), or replay one seed with a full trace (SEED=n).
sim: build
	node dist/test/sim/sweep.js $(if $(SEED),--seed $(SEED),--seeds $(SEEDS)) $(if $(NODES),--nodes $(NODES),)

## chaos: a Jepsen-style run: real nodes behind fault-injecting proxies, load, faults, then the history
## check (DURATION=60s, NODES=3, SEED=random and printed; see docs/chaos.md). Exit 1 on any violation.
.PHONY: chaos
chaos: build
	node --enable-source-maps dist/src/cli/main.js chaos --duration $(or $(DURATION),60s) --nodes $(or $(NODES),3) $(if $(SEED),--seed $(SEED),)

## bench: throughput, latency and failover of a local 3-node cluster beside bare gRPC and LevelDB baselines
## (BENCH_SECONDS=5 per measured run, RUNS=3: about 5 minutes); rewrites docs/benchmarks.md, JSON in .work/bench/.
## NODE_LOG_LEVEL=info keeps the nodes' logs, with the Raft core's trace (why each election began), in the temp dir.
.PHONY: bench
bench: build
	node --enable-source-maps dist/src/bench/run.js --seconds $(or $(BENCH_SECONDS),5) --runs $(or $(RUNS),3) $(if $(NODE_LOG_LEVEL),--node-log-level $(NODE_LOG_LEVEL) --keep,)

## bench-trace: where one closed loop's time goes: a fresh 3-node cluster with the cycle trace on (RAFTQ_CYCLE_TRACE),
## the SDK publisher with IN_FLIGHT=64 messages in flight for BENCH_SECONDS=6, then each stage's p50 / p90 / mean in ms.
.PHONY: bench-trace
bench-trace: build
	@d=$$(mktemp -d) && RAFTQ_CYCLE_TRACE=$$d node --enable-source-maps dist/src/bench/trace-run.js --seconds $(or $(BENCH_SECONDS),6) --in-flight $(or $(IN_FLIGHT),64); status=$$?; rm -rf $$d; exit $$status

## bench-backlog: a fresh local 3-node cluster filled with MESSAGES=1000000 × 100-byte messages: fill rate, each
## node's RSS and data dir, a follower's restart time, a --join node's catch-up time; PASS/FAIL against the
## targets (300 MB RSS, 10 s restart); JSON in .work/bench/backlog.json. KEYS=0 sends no idempotency keys.
.PHONY: bench-backlog
bench-backlog: build
	node --enable-source-maps dist/src/bench/backlog.js --messages $(or $(MESSAGES),1000000) --churn 0 $(if $(filter 0,$(KEYS)),--no-idempotency-keys,)

## bench-churn: CHURN=1000000 messages enqueued and acked through a fresh 3-node cluster while each node's data
## dir is sampled; exits 1 if a final data dir exceeds a limit that does not grow with CHURN; JSON in
## .work/bench/churn.json. KEYS=0 sends no idempotency keys.
.PHONY: bench-churn
bench-churn: build
	node --enable-source-maps dist/src/bench/backlog.js --messages 0 --churn $(or $(CHURN),1000000) $(if $(filter 0,$(KEYS)),--no-idempotency-keys,)

## bench-apply: one node's queue state machine in-process (no gRPC, no Raft): µs per message to enqueue (keyed,
## 100 per entry), lease and ack, each entry written as one LevelDB batch. Quiet enough to compare builds.
.PHONY: bench-apply
bench-apply: build
	node --enable-source-maps dist/src/bench/apply-cost.js --entries $(or $(ENTRIES),1500) --rounds $(or $(ROUNDS),3)

## bench-backlog-store: fills a LevelDB queue store with MESSAGES=1000000 × 100-byte messages, prints RSS,
## then times a restart (open + rebuild) in a fresh process and prints its RSS (about a minute).
.PHONY: bench-backlog-store
bench-backlog-store: build
	node --expose-gc --enable-source-maps dist/src/bench/backlog-store.js --messages $(or $(MESSAGES),1000000)

clean:
	rm -rf dist src/generated
