.PHONY: run fmt lint test ci bench
run:
	cargo run --release --bin paygate -- serve
fmt:
	cargo fmt --all
lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
test:
	cargo test --workspace
ci:
	.ci/run
