# The two commands of the README. Each sets up .venv (torch 2.13.0 CPU first, then mlbs with
# its test extras, compiling the C++ core) and then does its job.
.PHONY: setup run test demo

setup:
	./scripts/setup_env.sh

# The main job: Random vs Adaptive vs D2ACE with the MLP on the bundled yeast, 5 folds,
# 100 epochs; prints the table and the paths of the report and plots (under runs/).
run: setup
	.venv/bin/mlbs compare --datasets yeast --models mlp --methods random adaptive d2ace --folds 5

# Everything the project checks; CI runs exactly this (.ci/run).
test: setup
	./scripts/run_tests.sh

# The sampling core's scaling table at small sizes (mlbs vs numpy vs torch).
demo: setup
	.venv/bin/python bench/core_scaling.py --sizes 10000 100000 1000000 --batches 256 --budget 0.3
