# The two commands of the README. Each sets up what is missing first.
.PHONY: quick test setup bench

# The main job: the quick sweep on the embedded synthetic benchmark, then fit, optimum,
# plots and report.
quick: setup
	cargo run --release --quiet -- sweep configs/quick.yaml

# The test suite (release build: the tests train small models).
test: setup
	cargo test --release

setup:
	@scripts/setup.sh

# Benchmarks, each printed beside its Python reference.
bench: setup
	cargo run --release --quiet --bin vislaw-bench -- train
	cargo run --release --quiet --bin vislaw-bench -- fit
