# The two commands of the README. Each sets up .venv (torch 2.13.0 CPU first, then mlbs with
# its test extras, compiling the C++ core) and then does its job.
.PHONY: setup test demo

setup:
	./scripts/setup_env.sh

# Everything the project checks; CI runs exactly this (.ci/run).
test: setup
	./scripts/run_tests.sh

# The main job. Until the experiment runner exists: the core's scaling table at small sizes.
demo: setup
	.venv/bin/python bench/core_scaling.py --sizes 10000 100000 1000000 --batches 256 --budget 0.3
