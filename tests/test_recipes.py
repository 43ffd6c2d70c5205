"""The training-loop recipes of docs/training-loops.md, run as written: plain PyTorch, Lightning,
accelerate, two epochs each on bundled yeast with Adaptive.

Each run records what the loop passed to ``observe`` (ids, and the per-sample losses of the
outputs), checks that the targets the loop trained on are the labels of those ids, and checks at
the end that the policy's per-sample loss table holds, for every sample, the loss of its last
observation: every observation reached the samples it belongs to.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

import mlbs.data
from mlbs.torch import BatchSampler, per_sample_bce

DOC = Path(__file__).resolve().parents[1] / "docs" / "training-loops.md"


def recipe(name: str) -> str:
    match = re.search(rf"<!-- recipe: {name} -->\n```python\n(.*?)```", DOC.read_text(), re.S)
    assert match, f"no recipe {name!r} in {DOC}"
    return match.group(1)


@pytest.mark.parametrize("name", ["pytorch", "lightning", "accelerate"])
def test_recipe_observations_reach_their_samples(name, monkeypatch):
    pytest.importorskip({"pytorch": "torch", "lightning": "lightning", "accelerate": "accelerate"}[name])
    Y = mlbs.data.load_dataset("yeast").Y.toarray()
    records = []
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

    monkeypatch.setattr(BatchSampler, "observe", recording)
    namespace: dict = {"__name__": f"recipe_{name}"}
    exec(compile(recipe(name), f"{DOC.name}:{name}", "exec"), namespace)

    sampler = namespace["sampler"]
    selector = sampler.selector
    n = Y.shape[0]
    assert selector.current_epoch == 1 and selector.policy.selecting and not selector.pending
    assert sum(ids.size for ids, _ in records) == 2 * n
    last = np.full(n, np.nan)
    for ids, values in records:
        last[ids] = values
    assert not np.isnan(last).any()
    np.testing.assert_allclose(selector.policy.loss, last, rtol=1e-6)
