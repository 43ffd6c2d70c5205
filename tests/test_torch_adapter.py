"""mlbs.torch: DataLoader integration, observations keyed by ids, deferred delivery, draw-ahead,
the one-index sampler, checkpoints, per-sample BCE."""

from __future__ import annotations

import itertools
import pickle
import time
import warnings

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

import mlbs.torch.sampler as sampler_module
from mlbs.policies import Adaptive, Hard
from mlbs.selector import BatchSelector, UnobservedBatchWarning
from mlbs.torch import BatchSampler, DistributedBatchSampler, IndexSampler, WithIndices, collate_with_indices, per_sample_bce
from mlbs.torch.inflight import InFlight, Observation, Pending

from stand_ins import N, Q, labels, outputs_of

B = 32


def bce(z, y):
    """Reference per-sample BCE of logits, in numpy float64."""
    z, y = np.asarray(z, dtype=np.float64), np.asarray(y, dtype=np.float64)
    return (np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))).mean(axis=1)


def loss_of(idx):
    return bce(outputs_of(idx), labels()[np.asarray(idx)])


def selector(policy="adaptive", **kw):
    Y = labels()
    p = Adaptive(Y, weights=np.linspace(1, 2, N)) if policy == "adaptive" else Hard(Y)
    return BatchSelector(p, kw.pop("batch_size", B), warmup_epochs=1, seed=3, **kw)


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


@pytest.mark.parametrize("ahead", [0, 2])
def test_checkpoint_resumes_the_same_future_batches(ahead):
    full = run(BatchSampler(selector(), ahead=ahead), 3)
    first = BatchSampler(selector(), ahead=ahead)
    head = run(first, 3, stop=15)
    state = pickle.loads(pickle.dumps(first.state_dict()))
    resumed = BatchSampler(selector(), ahead=ahead)
    resumed.load_state_dict(state)
    tail = run(resumed, 3, start=state["epoch"])
    assert head + tail == full


@pytest.mark.parametrize("kind", ["logits", "probabilities"])
def test_per_sample_bce_matches_numpy(kind):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(64, 7, generator=g, dtype=torch.float64) * 5
    y = (torch.rand(64, 7, generator=g) < 0.3).float()
    if kind == "logits":
        expected = bce(logits.numpy(), y.numpy())
        got = per_sample_bce(logits, y)
    else:
        probabilities = torch.sigmoid(logits).float()   # float32, as a model gives them
        p = probabilities.double().clamp(1e-7, 1 - 1e-7).numpy()
        expected = -(y.numpy() * np.log(p) + (1 - y.numpy()) * np.log1p(-p)).mean(axis=1)
        got = per_sample_bce(probabilities, y, kind="probabilities")
    assert got.dtype == torch.float32
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5)


def test_observe_errors():
    sampler = BatchSampler(selector())
    with pytest.raises(RuntimeError, match="without a batch"):
        sampler.observe(torch.zeros(B, Q))
    batch = next(iter(sampler))
    with pytest.raises(ValueError, match="shape"):
        sampler.observe(torch.zeros(len(batch), Q + 1))
    with pytest.raises(ValueError, match="not finite"):
        sampler.observe(torch.full((len(batch), Q), float("nan")))
    with pytest.raises(ValueError, match="holds 32"):
        sampler.observe(torch.zeros(len(batch) - 1, Q))
    with pytest.raises(ValueError, match="exactly one"):
        sampler.observe()
    with pytest.raises(ValueError, match=r"indices must have shape \(32,\)"):
        sampler.observe(torch.zeros(len(batch), Q), indices=batch[:3])
    assert len(sampler.selector.pending) == 1
    with pytest.raises(TypeError):
        BatchSampler("not a selector")
    with pytest.raises(ValueError, match="ahead and in_flight"):
        BatchSampler(selector(), ahead=-1)
    with pytest.raises(ValueError, match="remainder"):
        DistributedBatchSampler(selector(), num_replicas=2, rank=0, remainder="wrap")
    with pytest.raises(ValueError, match="rank"):
        DistributedBatchSampler(selector(), num_replicas=2, rank=2)


# ---------------------------------------------------------------------------------------------
# Observations keyed by sample ids: the three ways order matching credited the wrong samples.

class SlowBatches(Dataset):
    """(x, y) items; a batch holding sample 0 or 1 is slow to load, so that the other worker
    delivers the batches after it first."""

    def __init__(self):
        self.y = torch.from_numpy(labels()).float()

    def __len__(self):
        return N

    def __getitem__(self, i):
        return torch.tensor(float(i)), self.y[i]

    def __getitems__(self, indices):
        if 0 in indices or 1 in indices:
            time.sleep(0.2)
        return [self[i] for i in indices]


def test_out_of_order_loader_observations_reach_their_samples():
    sampler = BatchSampler(selector())
    loader = DataLoader(WithIndices(SlowBatches()), batch_sampler=sampler, num_workers=2, in_order=False)
    out_of_order = 0
    for epoch in range(3):
        sampler.set_epoch(epoch)
        for ids, (x, y) in loader:
            np.testing.assert_array_equal(x.numpy(), ids.numpy())
            if not np.array_equal(ids.numpy(), sampler.selector.pending[0]):
                out_of_order += 1
            losses = per_sample_bce(torch.from_numpy(outputs_of(ids.numpy())), y)
            sampler.observe(losses=losses, indices=ids)
            np.testing.assert_allclose(sampler.selector.policy.loss[ids.numpy()], losses.numpy(), rtol=1e-6)
        assert not sampler.selector.pending
    assert out_of_order > 0  # the case this test is about happened


def test_skipped_batch_with_ids_leaves_every_other_observation_right():
    sampler = BatchSampler(selector("hard"))
    skipped = None
    for step, ids in enumerate(sampler):
        if step == 3:          # say its loss was NaN: the loop skips it
            skipped = np.asarray(ids)
            sampler.discard(indices=ids)
            continue
        sampler.observe(torch.from_numpy(outputs_of(ids)), indices=torch.tensor(ids))
    table = sampler.selector.policy.loss
    observed = np.setdiff1d(np.arange(N), skipped)
    np.testing.assert_allclose(table[observed], loss_of(observed), rtol=1e-12)
    assert np.all(table[skipped] == 0)


def test_skipped_batch_without_ids_is_refused_or_reported():
    # N mod B != 0: the last observation has the wrong size for the batch it would be credited to
    sampler = BatchSampler(selector("hard"))
    batches = list(sampler)
    with pytest.raises(ValueError, match="Pass indices="):
        for step, b in enumerate(batches):
            if step != 3:
                sampler.observe(torch.from_numpy(outputs_of(b)))
    # all batches of one size: the shift is seen at the epoch's end
    sampler = BatchSampler(selector("hard", batch_size=30))
    for step, b in enumerate(sampler):
        if step != 3:
            sampler.observe(torch.from_numpy(outputs_of(b)))
    with pytest.warns(UnobservedBatchWarning, match="wrong samples"):
        sampler.set_epoch(1)
        next(iter(sampler))


def test_batches_split_across_processes_accelerate_style():
    """Two processes, each given every other batch (accelerate's BatchSamplerShard), gather their
    (ids, losses) and both observe the union: every observation reaches its samples on both."""
    from accelerate.data_loader import BatchSamplerShard

    samplers = [BatchSampler(selector()) for _ in range(2)]
    for epoch in range(3):
        shards = []
        for rank, s in enumerate(samplers):
            s.set_epoch(epoch)
            shards.append(BatchSamplerShard(s, num_processes=2, process_index=rank, even_batches=False))
        for pair in itertools.zip_longest(*shards):
            ids = np.concatenate([np.asarray(b) for b in pair if b is not None])
            losses = torch.from_numpy(loss_of(ids))
            for s in samplers:
                s.observe(losses=losses, indices=ids)
                np.testing.assert_array_equal(s.selector.policy.loss[ids], losses.numpy())
        assert not samplers[0].selector.pending and not samplers[1].selector.pending
    assert samplers[0].selector.fingerprint() == samplers[1].selector.fingerprint()

    # without ids, a process observing only its own batches by order is reported
    alone = BatchSampler(selector())
    for b in BatchSamplerShard(alone, num_processes=2, process_index=0, even_batches=False):
        alone.observe(torch.from_numpy(outputs_of(b)))
    with pytest.warns(UnobservedBatchWarning, match="wrong samples"):
        next(iter(alone))


def test_with_indices_and_custom_collate():
    ds = WithIndices(dataset())
    assert ds[7][0] == 7 and int(ds[7][1][0]) == 7
    loader = DataLoader(ds, batch_size=5, collate_fn=collate_with_indices(lambda items: len(items)))
    ids, n = next(iter(loader))
    assert ids.dtype == torch.int64 and ids.tolist() == [0, 1, 2, 3, 4] and n == 5


# ---------------------------------------------------------------------------------------------
# Deferred delivery (the device path), exercised on CPU with completions the test controls.

class FakeCopy:
    """Stands for a device-to-host copy: records when it is waited for."""

    waits: list[int] = []

    def __init__(self, serial, values):
        self.serial, self.values = serial, values

    def read(self):
        FakeCopy.waits.append(self.serial)
        return self.values


def test_in_flight_delivers_in_order_and_keeps_the_newest():
    delivered = []
    queue = InFlight(lambda obs: delivered.append(int(obs.ids[0])))
    mk = lambda i, deferred: Pending(lambda: Observation(np.array([i]), np.zeros(1), "losses"), deferred)
    queue.put(mk(0, False))
    assert delivered == [0]                      # complete and nothing ahead: at once
    queue.put(mk(1, True))
    queue.put(mk(2, False))                      # complete, but behind a deferred one
    assert delivered == [0] and len(queue) == 2
    queue.put(mk(3, True))
    queue.drain(keep=1)
    assert delivered == [0, 1, 2] and len(queue) == 1
    queue.drain()
    assert delivered == [0, 1, 2, 3] and len(queue) == 0


def test_deferred_observations_are_delivered_before_the_draw_that_needs_them(monkeypatch):
    """With in_flight = 1, batch t is drawn after delivering observations 0..t-2 and without
    waiting for observation t-1; the reference is the selector driven by hand."""
    serial = itertools.count()
    FakeCopy.waits = []

    def fake_to_host(tensor):
        copy = FakeCopy(next(serial), tensor.detach().numpy().copy())
        return copy.read, True
    monkeypatch.setattr(sampler_module, "to_host", fake_to_host)
    sampler = BatchSampler(selector(), in_flight=1)
    got = []
    for epoch in range(3):
        sampler.set_epoch(epoch)
        for step, b in enumerate(sampler):
            got.append(np.asarray(b))
            t = len(got) - 1  # observation t made copies 2t (ids) and 2t + 1 (values)
            if epoch >= 1 and step >= 1:   # the draw did not wait for the latest observation
                assert FakeCopy.waits[-1] == 2 * (t - 2) + 1
            sampler.observe(torch.from_numpy(outputs_of(b)), indices=torch.tensor(b))

    reference = selector()
    expected, late = [], []
    for epoch in range(3):
        for obs in late:
            reference.observe(obs, outputs_of(obs))
        late = []
        it = reference.epoch(epoch)
        while True:
            if reference.is_selective(epoch) and len(late) > 1:
                first = late.pop(0)
                reference.observe(first, outputs_of(first))
            try:
                b = next(it)
            except StopIteration:
                break
            expected.append(b)
            late.append(b)
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_array_equal(a, b)


def test_draw_ahead_hands_out_batches_drawn_earlier():
    ahead = 2
    sampler = BatchSampler(selector(), ahead=ahead)
    got = []
    for epoch in range(3):
        sampler.set_epoch(epoch)
        it = iter(sampler)
        for b in it:
            upcoming = sampler.upcoming()
            if epoch >= 1 and len(got) % len(sampler) < len(sampler) - ahead:
                assert len(upcoming) == ahead
            got.append((np.asarray(b), [u.copy() for u in upcoming]))
            sampler.observe(torch.from_numpy(outputs_of(b)))
    for i, (b, upcoming) in enumerate(got):   # upcoming() announced the batches that came next
        for k, u in enumerate(upcoming):
            np.testing.assert_array_equal(u, got[i + 1 + k][0])

    reference = selector()   # batch t drawn after observing batches 0..t-ahead-1
    expected = []
    for epoch in range(3):
        it = reference.epoch(epoch)
        buffer = list(itertools.islice(it, ahead))
        for b in it:
            buffer.append(b)
            head = buffer.pop(0)
            expected.append(head)
            reference.observe(head, outputs_of(head))
        for head in buffer:
            expected.append(head)
            reference.observe(head, outputs_of(head))
    for (a, _), b in zip(got, expected, strict=True):
        np.testing.assert_array_equal(a, b)


def test_index_sampler_gives_the_selector_batches_one_index_at_a_time():
    batch_sampler, index_sampler = BatchSampler(selector()), IndexSampler(selector())
    loader = DataLoader(WithIndices(dataset()), sampler=index_sampler, batch_size=B)
    assert len(index_sampler) == N
    for epoch in range(3):
        batch_sampler.set_epoch(epoch)
        index_sampler.set_epoch(epoch)
        for expected, (ids, _) in zip(batch_sampler, loader, strict=True):
            np.testing.assert_array_equal(ids.numpy(), expected)
            batch_sampler.observe(torch.from_numpy(outputs_of(expected)))
            index_sampler.observe(torch.from_numpy(outputs_of(ids.numpy())), indices=ids)
    np.testing.assert_array_equal(batch_sampler.selector.policy.probabilities(),
                                  index_sampler.selector.policy.probabilities())


# ---------------------------------------------------------------------------------------------
# torchdata's StatefulDataLoader

SET_VITAL = "ignore:'set_vital' is deprecated"  # torchdata's own call into torch


@pytest.mark.filterwarnings(SET_VITAL)
def test_stateful_dataloader_without_workers_resumes_exactly():
    from torchdata.stateful_dataloader import StatefulDataLoader

    def loop(loader, sampler, epochs, start=0, stop=None):
        seen = []
        for epoch in range(start, epochs):
            sampler.set_epoch(epoch)
            for ids, _ in loader:
                seen.append(ids.numpy())
                sampler.observe(torch.from_numpy(outputs_of(ids.numpy())), indices=ids)
                if stop is not None and len(seen) == stop:
                    return seen
        return seen

    full_sampler = BatchSampler(selector())
    full = loop(StatefulDataLoader(WithIndices(dataset()), batch_sampler=full_sampler), full_sampler, 3)
    sampler = BatchSampler(selector())
    loader = StatefulDataLoader(WithIndices(dataset()), batch_sampler=sampler)
    head = loop(loader, sampler, 3, stop=17)
    state = pickle.loads(pickle.dumps(loader.state_dict()))
    epoch = sampler.selector.current_epoch
    sampler = BatchSampler(selector())
    loader = StatefulDataLoader(WithIndices(dataset()), batch_sampler=sampler)
    loader.load_state_dict(state)
    tail = loop(loader, sampler, 3, start=epoch)
    assert len(head) + len(tail) == len(full)
    for a, b in zip(head + tail, full):
        np.testing.assert_array_equal(a, b)


@pytest.mark.filterwarnings(SET_VITAL)
def test_stateful_dataloader_with_workers_is_refused():
    from torchdata.stateful_dataloader import StatefulDataLoader

    sampler = BatchSampler(selector())
    loader = StatefulDataLoader(WithIndices(dataset()), batch_sampler=sampler, num_workers=2)
    with pytest.raises(RuntimeError, match="StatefulDataLoader with num_workers > 0"):
        next(iter(loader))


# ---------------------------------------------------------------------------------------------
# bench/gpu_loop.py: the same loop on the CPU, and a clean skip without CUDA

def test_gpu_loop_bench_runs_on_cpu_and_skips_without_cuda(tmp_path, monkeypatch, capsys):
    import runpy
    import sys
    from pathlib import Path

    script = str(Path(__file__).resolve().parents[1] / "bench" / "gpu_loop.py")
    out = tmp_path / "loop.json"
    monkeypatch.setattr(sys, "argv", ["gpu_loop.py", "--device", "cpu", "--n", "1500", "--epochs", "2", "--hidden", "16",
                                      "--json", str(out)])
    with pytest.raises(SystemExit) as status:
        runpy.run_path(script, run_name="__main__")
    assert status.value.code == 0
    import json
    rates = json.loads(out.read_text())["steps_per_s"]
    assert set(rates) == {"Random", "Adaptive, in_flight=1", "Adaptive, in_flight=0"} and min(rates.values()) > 0
    if not torch.cuda.is_available():
        monkeypatch.setattr(sys, "argv", ["gpu_loop.py"])
        with pytest.raises(SystemExit) as status:
            runpy.run_path(script, run_name="__main__")
        assert status.value.code == 0 and "skipped" in capsys.readouterr().out
