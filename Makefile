# swarmsim: common tasks. `make help` lists them.
GO      ?= go
BIN     := bin
PROTOS  := $(sort $(wildcard engine/api/*.proto realnet/rpc/*.proto))

.PHONY: help build test proto proto-tools run sweep bench bench-ci clean

PROTOC_GEN_GO      := google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
PROTOC_GEN_GO_GRPC := google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2

help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

build: ## build bin/swarmsim and bin/swarmd
	CGO_ENABLED=0 $(GO) build -o $(BIN)/ ./cmd/swarmsim ./cmd/swarmd

SCENARIO ?= scenarios/leader-failover.yaml

run: ## run the default scenario in the simulator and print its report (SCENARIO=file to choose)
	$(GO) run ./cmd/swarmsim run $(SCENARIO)

test: ## run every test (what CI runs)
	$(GO) test -timeout 30m ./...

SEEDS ?= 1..500

sweep: ## sweep every scenario file but the 10k-worker one over SEEDS (1..500; minutes; not run in CI)
	CGO_ENABLED=0 $(GO) build -o $(BIN)/ ./cmd/swarmsim
	@fail=0; for f in $(filter-out scenarios/scale-10k-workers.yaml,$(wildcard scenarios/*.yaml)); do \
		$(BIN)/swarmsim sweep $$f --seeds $(SEEDS) || fail=1; \
	done; exit $$fail

proto: ## regenerate the protobuf code (needs protoc, protoc-gen-go, protoc-gen-go-grpc)
	protoc --proto_path=. --go_out=. --go_opt=paths=source_relative \
		--go-grpc_out=. --go-grpc_opt=paths=source_relative $(PROTOS)

proto-tools: ## install the protoc plugins at the versions the committed code was made with
	$(GO) install $(PROTOC_GEN_GO)
	$(GO) install $(PROTOC_GEN_GO_GRPC)

bench: ## regenerate reports/ with every benchmark at full size (minutes each; not run in CI)
	CGO_ENABLED=0 $(GO) build -o $(BIN)/ ./cmd/swarmsim
	$(BIN)/swarmsim bench raft --seeds 7 --out reports
	$(BIN)/swarmsim bench scale --seeds 3 --out reports
	$(BIN)/swarmsim bench scheduler failover realwrites --out reports

bench-ci: ## run every benchmark once at its smallest size, as CI does through go test
	$(GO) test -count=1 -run 'TestQuick' ./bench/suite

clean:
	rm -rf $(BIN)
