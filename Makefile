# Pinned tools, built from the Go module proxy into bin/ on first use.
TEMPORAL_VERSION  := v1.5.1
VERSITYGW_VERSION := v1.8.0
STATICCHECK_VERSION := v0.8.2
export GOBIN := $(CURDIR)/bin

.PHONY: build run test lint bench bench-table bench-api bench-gold bench-stream bench-backfill bench-workers tools postgres clients clean

build: ## bin/pipeline
	@scripts/timed.sh "bin/pipeline" go build -o bin/pipeline ./cmd/pipeline

# Built one after another, each with its progress: on a bare machine that is
# minutes of compiling and downloading. Not side by side: the three share
# most of their dependencies, which the first build downloads and compiles
# for the others, while parallel builds compile them each (cold, on 2 cores:
# 354 s side by side, 320 s one after another).
run: build tools ## the embedded default with demo traffic
	bin/pipeline dev --demo

test: tools clients lint ## lint, then unit and integration tests against the real components, incl. kill -9 of a worker
	STREAM_FAULT=1 go test -count=1 -timeout 9m ./...

lint: bin/.staticcheck-$(STATICCHECK_VERSION) ## go vet, staticcheck and gofmt; go.mod tidy
	go vet ./...
	bin/staticcheck ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	@go mod tidy -diff >/dev/null || { echo "go.mod or go.sum is not tidy: run go mod tidy"; go mod tidy -diff; exit 1; }

bench: bench-table bench-api bench-gold bench-stream bench-backfill bench-workers ## every benchmark

bench-table: tools clients ## one table, one run: each stage of API → Kafka → bronze → gold → silver against its baseline (kcat, a plain kafka-go reader, psql \copy, a plain Parquet writer), API p50/p99, freshness at 10k events/s, CPU and peak RSS per process
	go run ./tests/benchworkers -workers 1 -shards 3 -realistic

bench-api: ## event API vs a raw kafka-go writer
	go run ./tests/benchapi

bench-gold: postgres ## gold load vs psql \copy
	go run ./tests/benchgold

bench-stream: tools ## stream stages and freshness vs a plain kafka-go reader and psql \copy
	STREAM_BENCH=1 go test -count=1 -run TestStreamBench -v -timeout 15m ./workflows

bench-backfill: tools ## Backfill of one day of 1M events per layer, 1 and 2 workers, vs psql \copy
	go run ./tests/benchbackfill

bench-workers: tools ## live stream end to end through the API with 1, 2 and 3 worker processes (1 and 3 shards)
	go run ./tests/benchworkers

tools: bin/.temporal-$(TEMPORAL_VERSION) bin/.versitygw-$(VERSITYGW_VERSION) postgres

bin/.temporal-$(TEMPORAL_VERSION):
	@scripts/timed.sh "temporal CLI $(TEMPORAL_VERSION)" go install github.com/temporalio/cli/cmd/temporal@$(TEMPORAL_VERSION) && touch $@

bin/.versitygw-$(VERSITYGW_VERSION):
	@scripts/timed.sh "versitygw $(VERSITYGW_VERSION)" go install github.com/versity/versitygw/cmd/versitygw@$(VERSITYGW_VERSION) && touch $@

bin/.staticcheck-$(STATICCHECK_VERSION):
	@scripts/timed.sh "staticcheck $(STATICCHECK_VERSION)" go install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) && touch $@

postgres: ## a PostgreSQL server on 127.0.0.1:5432 unless DATABASE_URL is set
	@scripts/ensure-postgres.sh

clients: ## kcat and chromium, which the tests drive from outside
	@scripts/ensure-clients.sh

clean:
	rm -rf bin .dev
