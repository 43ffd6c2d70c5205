"""The training-loop recipes of docs/training-loops.md, run as written: plain PyTorch, Lightning,
accelerate, two epochs each on bundled yeast with Adaptive.

Each run records what the loop passed to ``observe`` (ids, and the per-sample losses of the
outputs), checks that the targets the loop trained on are the labels of those ids, and checks at
the end that the policy's per-sample loss table holds, for every sample, the loss of its last
observation: every observation reached the samples it belongs to.
"""

from __future__ import annotations

import os
import pickle
import re
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

import mlbs.data
from mlbs.torch import BatchSampler, per_sample_bce

DOC = Path(__file__).resolve().parents[1] / "docs" / "training-loops.md"


def recipe(name: str) -> str:
    match = re.search(rf"<!-- recipe: {name} -->\n```python\n(.*?)```", DOC.read_text(), re.S)
    assert match, f"no recipe {name!r} in {DOC}"
    return match.group(1)


def run_recipe(name: str, records: list) -> dict:
    """Execute a recipe with ``BatchSampler.observe`` recording (ids, per-sample losses)."""
    Y = mlbs.data.load_dataset("yeast").Y.toarray()
    observe = BatchSampler.observe

    def recording(self, outputs=None, *, indices=None, targets=None, losses=None, kind="logits"):
        ids = torch.as_tensor(indices).cpu().numpy()
        if targets is not None:
            np.testing.assert_array_equal(torch.as_tensor(targets).cpu().numpy(), Y[ids])
            values = per_sample_bce(torch.as_tensor(outputs), torch.as_tensor(targets))
        else:
            values = torch.as_tensor(losses)
        records.append((ids, values.detach().cpu().numpy().astype(np.float64)))
        observe(self, outputs, indices=indices, targets=targets, losses=losses, kind=kind)

    BatchSampler.observe = recording
    try:
        namespace: dict = {"__name__": f"recipe_{name}"}
        exec(compile(recipe(name), f"{DOC.name}:{name}", "exec"), namespace)
    finally:
        BatchSampler.observe = observe
    return namespace


def summary(selector) -> dict:
    """What the checks read from a selector after the recipe (picklable)."""
    return {"loss": selector.policy.loss.copy(), "epoch": selector.current_epoch, "pending": len(selector.pending),
            "selecting": selector.policy.selecting, "fingerprint": selector.fingerprint()}


def check_every_observation_reached_its_samples(done: dict, records: list) -> None:
    """Two epochs done, nothing outstanding, each sample observed twice, and the policy's loss
    table holding each sample's last observed loss."""
    n = done["loss"].size
    assert done["epoch"] == 1 and done["selecting"] and done["pending"] == 0
    assert sum(ids.size for ids, _ in records) == 2 * n
    last = np.full(n, np.nan)
    for ids, values in records:
        last[ids] = values
    assert not np.isnan(last).any()
    np.testing.assert_allclose(done["loss"], last, rtol=1e-6)


@pytest.mark.filterwarnings("ignore:.*LeafSpec.* is deprecated")  # Lightning's own call into torch
@pytest.mark.parametrize("name", ["pytorch", "lightning", "accelerate"])
def test_recipe_observations_reach_their_samples(name):
    pytest.importorskip({"pytorch": "torch", "lightning": "lightning", "accelerate": "accelerate"}[name])
    records = []
    namespace = run_recipe(name, records)
    check_every_observation_reached_its_samples(summary(namespace["sampler"].selector), records)


def _accelerate_worker(rank, port, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE="2", OMP_NUM_THREADS="1")
    torch.set_num_threads(1)
    records = []
    namespace = run_recipe("accelerate", records)
    with open(f"{out}/rank{rank}.pkl", "wb") as f:
        pickle.dump({"processes": namespace["accelerator"].num_processes, "records": records,
                     "done": summary(namespace["sampler"].selector)}, f)


def test_accelerate_recipe_in_two_processes(tmp_path):
    """accelerate gives each process every other batch and pads the last step; with the gather,
    both processes observe every batch once, on its samples, and keep the same state."""
    pytest.importorskip("accelerate")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_accelerate_worker, args=(port, str(tmp_path)), nprocs=2, join=True)
    ranks = [pickle.loads((tmp_path / f"rank{r}.pkl").read_bytes()) for r in range(2)]
    assert [r["processes"] for r in ranks] == [2, 2]
    assert ranks[0]["done"]["fingerprint"] == ranks[1]["done"]["fingerprint"]
    for r in ranks:
        check_every_observation_reached_its_samples(r["done"], r["records"])
