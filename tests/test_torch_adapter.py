"""mlbs.torch: DataLoader integration, checkpoints, per-sample BCE, distributed data parallel."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from torch.utils.data import DataLoader, TensorDataset

from mlbs.losses import per_sample_bce as numpy_bce
from mlbs.policies import Adaptive, Hard
from mlbs.selector import BatchSelector
from mlbs.torch import BatchSampler, DistributedBatchSampler, per_sample_bce

N, Q, B = 300, 5, 32


def labels():
    rng = np.random.default_rng(0)
    return (rng.random((N, Q)) < 0.5 * 0.6 ** np.arange(Q)).astype(np.int8)


def outputs_of(idx):
    """A deterministic stand-in for a model: logits depend only on the sample ids."""
    idx = np.asarray(idx, dtype=np.float64)
    return np.cos(np.outer(idx + 1.0, np.arange(1, Q + 1)) * 0.37) * 3.0


def selector(policy="adaptive"):
    Y = labels()
    p = Adaptive(Y, weights=np.linspace(1, 2, N)) if policy == "adaptive" else Hard(Y)
    return BatchSelector(p, B, warmup_epochs=1, seed=3)


def dataset():
    return TensorDataset(torch.arange(N), torch.from_numpy(labels()).float())


@pytest.mark.parametrize("workers", [0, 2])
def test_dataloader_batches_come_from_the_sampler_and_observe_matches_them(workers):
    sampler = BatchSampler(selector())
    loader = DataLoader(dataset(), batch_sampler=sampler, num_workers=workers)
    for epoch in range(3):
        sampler.set_epoch(epoch)
        count = 0
        for ids, y in loader:
            pending = sampler.selector.pending[0]
            np.testing.assert_array_equal(ids.numpy(), pending)  # order kept, even with prefetch
            logits = torch.from_numpy(outputs_of(ids.numpy()))
            sampler.observe(losses=per_sample_bce(logits, y))
            count += 1
        assert count == len(sampler) == -(-N // B)
    assert not sampler.selector.pending and sampler.selector.policy.selecting


def test_epochs_advance_without_set_epoch():
    sampler = BatchSampler(selector("hard"))
    for _ in range(3):
        batches = list(iter(sampler))
        for b in batches:
            sampler.observe(torch.from_numpy(outputs_of(b)))
        assert len(batches) == len(sampler)
    assert sampler.selector.current_epoch == 2


def test_checkpoint_resumes_the_same_future_batches():
    def run(sampler, epochs, stop=None, start=0):
        seen = []
        for epoch in range(start, epochs):
            sampler.set_epoch(epoch)
            for b in sampler:
                seen.append(b)
                sampler.observe(torch.from_numpy(outputs_of(b)))
                if stop is not None and len(seen) == stop:
                    return seen
        return seen

    full = run(BatchSampler(selector()), 3)
    first = BatchSampler(selector())
    head = run(first, 3, stop=15)
    state = pickle.loads(pickle.dumps(first.state_dict()))
    resumed = BatchSampler(selector())
    resumed.load_state_dict(state)
    tail = run(resumed, 3, start=state["epoch"])
    assert head + tail == full


def test_per_sample_bce_matches_numpy():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(64, 7, generator=g) * 5
    y = (torch.rand(64, 7, generator=g) < 0.3).float()
    np.testing.assert_allclose(per_sample_bce(logits, y).numpy(), numpy_bce(logits.numpy(), y.numpy()), rtol=1e-5)


def test_observe_errors():
    sampler = BatchSampler(selector())
    with pytest.raises(RuntimeError, match="without a batch"):
        sampler.observe(torch.zeros(B, Q))
    batch = next(iter(sampler))
    with pytest.raises(ValueError, match="shape"):
        sampler.observe(torch.zeros(len(batch), Q + 1))
    with pytest.raises(ValueError, match="not finite"):
        sampler.observe(torch.full((len(batch), Q), float("nan")))
    with pytest.raises(TypeError):
        BatchSampler("not a selector")


# ---------------------------------------------------------------------------------------------
# Distributed data parallel (two processes, gloo)

def _ddp_worker(rank, world, init_file, out_dir):
    torch.distributed.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        sampler = DistributedBatchSampler(selector())
        local, global_ = [], []
        for epoch in range(3):
            sampler.set_epoch(epoch)
            for ids in sampler:
                global_.append(sampler.selector.pending[0].copy())
                local.append(np.asarray(ids))
                sampler.observe(torch.from_numpy(outputs_of(ids)))
        np.savez(f"{out_dir}/rank{rank}.npz", probabilities=sampler.selector.policy.probabilities(),
                 table=sampler.selector.policy.table, **{f"g{i}": g for i, g in enumerate(global_)},
                 **{f"l{i}": x for i, x in enumerate(local)})
    finally:
        torch.distributed.destroy_process_group()


def test_distributed_ranks_keep_identical_states_and_batches(tmp_path):
    mp.spawn(_ddp_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    r0, r1 = np.load(tmp_path / "rank0.npz"), np.load(tmp_path / "rank1.npz")
    np.testing.assert_array_equal(r0["probabilities"], r1["probabilities"])
    np.testing.assert_array_equal(r0["table"], r1["table"])
    steps = len([k for k in r0.files if k.startswith("g")])
    assert steps == 3 * (-(-N // B))
    # Reference: one process observing whole global batches with the same seeds.
    single = BatchSampler(selector())
    expected = []
    for epoch in range(3):
        single.set_epoch(epoch)
        for b in single:
            expected.append(np.asarray(b))
            single.observe(torch.from_numpy(outputs_of(b)))
    for i in range(steps):
        np.testing.assert_array_equal(r0[f"g{i}"], r1[f"g{i}"])
        np.testing.assert_array_equal(r0[f"g{i}"], expected[i])
        np.testing.assert_array_equal(np.concatenate([r0[f"l{i}"], r1[f"l{i}"]]), expected[i])
    np.testing.assert_array_equal(r0["probabilities"], single.selector.policy.probabilities())
