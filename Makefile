# The commands of the README. `make setup` creates .venv (torch 2.13.0 CPU first, the build tools,
# then mlbs with its extras, compiling the C++ core) and does nothing while pyproject.toml, the
# C++ sources, the binding and the Python package are unchanged (scripts/setup_env.sh keeps a
# hash of them in .venv/.mlbs-stamp); every other target starts with it.
.PHONY: setup run test demo dev

setup:
	./scripts/setup_env.sh

# The main job: Random vs Adaptive vs D2ACE with the MLP on the bundled yeast, 5 folds, the
# protocol's defaults (per-model learning rate, early stopping); prints the table with the fold
# spread, a plain reading of it, and the paths of the report and plots (under runs/).
run: setup
	.venv/bin/mlbs compare --datasets yeast --models mlp --methods random adaptive d2ace --folds 5

# Everything the project checks; CI runs exactly this (.ci/run).
test: setup
	./scripts/run_tests.sh

# The sampling core's scaling table at small sizes (mlbs vs numpy vs torch).
demo: setup
	.venv/bin/python bench/core_scaling.py --sizes 10000 100000 1000000 --batches 256 --budget 0.3

# Developer loop: compile the core in place into python/mlbs/ (then PYTHONPATH=python works
# without reinstalling; only needed again after a C++ change).
dev: setup
	. .venv/bin/activate && ./scripts/build_inplace.sh
