# The two commands of the README. Each sets up what is missing first.
.PHONY: quick test setup bench lint

# The main job: the quick sweep on the embedded synthetic benchmark, then fit, optimum,
# plots and report.
quick: setup
	cargo run --release --quiet -- sweep configs/quick.yaml

# The test suite (release build: the tests train small models).
test: setup
	cargo test --release

setup:
	@scripts/setup.sh

# Formatting (rustfmt.toml) and clippy with every warning an error; CI runs it after the tests.
lint: setup
	cargo fmt --check
	cargo clippy --release --all-targets --quiet -- -D warnings

# Benchmarks, each printed beside its Python reference.
bench: setup
	cargo run --release --quiet --bin vislaw-bench -- train
	cargo run --release --quiet --bin vislaw-bench -- fit
	cargo run --release --quiet --bin vislaw-bench -- encode
