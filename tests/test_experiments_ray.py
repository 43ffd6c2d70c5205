"""A grid as Ray tasks on a local Ray of 2 CPUs: the same records as a serial run, each written
once by the driver; a run that raises is reported, not retried and not recorded."""
import pytest

torch = pytest.importorskip("torch")
ray = pytest.importorskip("ray", reason="the Ray executor needs ray (pip install 'mlbs[cluster]')")

from mlbs.experiments.config import ExperimentConfig  # noqa: E402
from mlbs.experiments.executors import RayExecutor  # noqa: E402
from mlbs.experiments.runner import Grid, run_grid  # noqa: E402
from mlbs.experiments.store import ResultStore  # noqa: E402

from test_experiments_parallel import CFG, GRID, comparable  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray for the module (its start-up costs seconds); the executor uses it and leaves
    it running."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_ray_reproduces_the_serial_records_and_writes_each_once(tmp_path_factory, local_ray):
    reference = ResultStore(tmp_path_factory.mktemp("serial"))
    run_grid(GRID, CFG, reference)
    store = ResultStore(tmp_path_factory.mktemp("ray"))
    started, finished = [], []
    summary = run_grid(GRID, CFG, store, executor=RayExecutor(cpus_per_run=1), on_start=started.append,
                       on_done=lambda key, result: finished.append(key))
    assert not summary["failed"]
    assert sorted(started, key=str) == sorted(finished, key=str) == sorted(GRID.keys(), key=str)
    assert comparable(store.load(CFG.hash())) == comparable(reference.load(CFG.hash()))
    assert ray.is_initialized()  # a Ray it did not start is left to its owner
    # a second pass finds every record and submits nothing
    again = run_grid(GRID, CFG, store, executor=RayExecutor(), on_start=started.append)
    assert again["done"] == [] and len(again["skipped"]) == 4 and len(started) == 4

    bad = ExperimentConfig(epochs=2, n_folds=3, eval_train_loss=False, method_options={"pressure": -1.0})
    grid = Grid(("emotions",), ("mlp",), ("hard",), (0,))
    failed = run_grid(grid, bad, store, executor=RayExecutor(max_retries=3))
    assert failed["done"] == [] and [f.key for f in failed["failed"]] == grid.keys()
    assert "pressure must be" in failed["failed"][0].message
    assert not store.has(bad, grid.keys()[0])


def test_bad_requests_are_refused():
    with pytest.raises(ValueError, match="cpus_per_run"):
        RayExecutor(cpus_per_run=0)
    with pytest.raises(ValueError, match="gpus_per_run"):
        RayExecutor(gpus_per_run=-1)
