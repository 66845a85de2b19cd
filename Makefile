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
bench:
	cargo build --release -p paygate-server -p paygate-bench
	rm -rf target/bench && mkdir -p target/bench
	cd target/bench && PAYGATE_BIND=127.0.0.1:18080 PAYGATE_ADMIN_EMAIL=ops@bench.test PAYGATE_ADMIN_PASSWORD=benchpassword123 PAYGATE_LOG=warn ../release/paygate serve & echo $$! > target/bench/pid; sleep 2
	target/release/paygate-bench --base http://127.0.0.1:18080 --admin-email ops@bench.test --admin-password benchpassword123 --setup -n 20000 -c 32 --check --runs 3 --server-pid $$(cat target/bench/pid); kill $$(cat target/bench/pid)
