# swarmsim: common tasks. `make help` lists them.
GO      ?= go
BIN     := bin
PROTOS  := $(sort $(wildcard engine/api/*.proto realnet/rpc/*.proto))

.PHONY: help build test proto run bench clean

help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

build: ## build bin/swarmsim and bin/swarmd
	CGO_ENABLED=0 $(GO) build -o $(BIN)/ ./cmd/swarmsim ./cmd/swarmd

test: ## run every test (what CI runs)
	$(GO) test ./...

proto: ## regenerate the protobuf code (needs protoc, protoc-gen-go, protoc-gen-go-grpc)
	protoc --proto_path=. --go_out=. --go_opt=paths=source_relative \
		--go-grpc_out=. --go-grpc_opt=paths=source_relative $(PROTOS)

clean:
	rm -rf $(BIN)
