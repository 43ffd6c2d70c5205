"""DistributedBatchSampler with two gloo processes: identical states, no empty slices, refusal of
diverged ranks, and checkpoints that resume exactly across world sizes.

One ``torch.multiprocessing.spawn`` runs every scenario (starting processes is the slow part);
the tests check its records.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from mlbs.policies import Adaptive
from mlbs.selector import BatchSelector
from mlbs.torch import DistributedBatchSampler

from stand_ins import N, labels, outputs_of

EPOCHS = 3
CHECKPOINT_STEP = 25   # where the two-process run saves a checkpoint
RESUME_STEP = 7        # where the one-process checkpoint it resumes from was saved


def loss_of(idx):
    z, y = outputs_of(idx), labels()[np.asarray(idx)]
    return (np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))).mean(axis=1)


def selector(batch_size=32, seed=3):
    return BatchSelector(Adaptive(labels(), weights=np.linspace(1, 2, N)), batch_size, warmup_epochs=1, seed=seed)


def run(sampler, start_epoch=0, stop=None, by_ids=False):
    """Train EPOCHS epochs: (global batches, this rank's slices); stops after ``stop`` steps."""
    global_, local = [], []
    for epoch in range(start_epoch, EPOCHS):
        sampler.set_epoch(epoch)
        for ids in sampler:
            global_.append(sampler.selector.pending[-1].copy())
            local.append(np.asarray(ids))
            if by_ids:
                sampler.observe(losses=torch.from_numpy(loss_of(ids)).float(), indices=torch.tensor(ids))
            else:
                sampler.observe(torch.from_numpy(outputs_of(ids)))
            if stop is not None and len(global_) == stop:
                return global_, local
    return global_, local


def _worker(rank, world, init_file, out_dir):
    torch.distributed.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    record = {}
    try:
        # 300 = 13 * 23 + 1: the last global batch has one sample for two ranks
        for remainder in ("pad", "drop"):
            sampler = DistributedBatchSampler(selector(batch_size=23), remainder=remainder)
            global_, local = run(sampler, by_ids=True)
            record[remainder] = dict(local=local, length=len(sampler), fingerprint=sampler.selector.fingerprint(),
                                     table=sampler.selector.policy.loss.copy(),
                                     probabilities=sampler.selector.policy.probabilities())
        # drawing ahead: the same global batches as one process drawing ahead
        sampler = DistributedBatchSampler(selector(), ahead=2)
        announced, local = [], []
        for epoch in range(EPOCHS):
            sampler.set_epoch(epoch)
            for ids in sampler:
                local.append(np.asarray(ids))
                announced.append([u.copy() for u in sampler.upcoming()])
                sampler.observe(losses=torch.from_numpy(loss_of(ids)).float(), indices=torch.tensor(ids))
        record["ahead"] = dict(local=local, announced=announced)
        # checkpoint of a two-process run, for a one-process resume
        sampler = DistributedBatchSampler(selector())
        global_, local = run(sampler, stop=CHECKPOINT_STEP)
        record["head"], record["checkpoint"] = global_, pickle.dumps(sampler.state_dict())
        # resume from a one-process checkpoint with two processes
        with open(f"{out_dir}/single_checkpoint.pkl", "rb") as f:
            state = pickle.load(f)
        sampler = DistributedBatchSampler(selector())
        sampler.load_state_dict(state)
        record["resumed"], record["resumed_local"] = run(sampler, start_epoch=state["epoch"])
        # ranks resuming from different checkpoints are refused
        sampler = DistributedBatchSampler(selector())
        try:
            sampler.load_state_dict(state if rank == 0 else pickle.loads(record["checkpoint"]))
            record["diverged_resume"] = None
        except RuntimeError as error:
            record["diverged_resume"] = str(error)
        # a rank built with another seed is refused
        sampler = DistributedBatchSampler(selector(seed=3 if rank == 0 else 4))
        try:
            run(sampler)
            record["diverged"] = None
        except RuntimeError as error:
            record["diverged"] = str(error)
    finally:
        torch.distributed.destroy_process_group()
    with open(f"{out_dir}/rank{rank}.pkl", "wb") as f:
        pickle.dump(record, f)


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    single = DistributedBatchSampler(selector(), num_replicas=1, rank=0)
    run(single, stop=RESUME_STEP)
    with open(out / "single_checkpoint.pkl", "wb") as f:
        pickle.dump(single.state_dict(), f)
    mp.spawn(_worker, args=(2, str(out / "init"), str(out)), nprocs=2, join=True)
    return [pickle.loads((out / f"rank{r}.pkl").read_bytes()) for r in range(2)]


def reference():
    """The global batches of a one-process run."""
    return run(DistributedBatchSampler(selector(), num_replicas=1, rank=0))[0]


@pytest.mark.parametrize("remainder", ["pad", "drop"])
def test_remainder_smaller_than_the_world_gives_no_empty_slice(records, remainder):
    r0, r1 = records[0][remainder], records[1][remainder]
    assert r0["fingerprint"] == r1["fingerprint"]
    np.testing.assert_array_equal(r0["probabilities"], r1["probabilities"])
    assert all(len(part) >= 1 for part in r0["local"] + r1["local"])
    per_epoch = 14 if remainder == "pad" else 13
    assert r0["length"] == per_epoch and len(r0["local"]) == EPOCHS * per_epoch
    # every observation reached its samples: the table holds each sample's loss (float32 gathered)
    seen = np.unique(np.concatenate(r0["local"] + r1["local"]))
    np.testing.assert_allclose(r0["table"][seen], loss_of(seen), rtol=1e-6)
    if remainder == "pad":
        last = [r0["local"][13], r1["local"][13]]   # epoch 0's last batch: one sample, repeated
        assert last[0].tolist() == last[1].tolist() and len(last[0]) == 1


def test_two_processes_resume_a_one_process_checkpoint_exactly(records):
    full = reference()
    for r in records:
        tail = r["resumed"]
        assert RESUME_STEP + len(tail) == len(full)
        for a, b in zip(tail, full[RESUME_STEP:]):
            np.testing.assert_array_equal(a, b)
    joined = [np.concatenate([a, b]) for a, b in zip(records[0]["resumed_local"], records[1]["resumed_local"])]
    for a, b in zip(joined, full[RESUME_STEP:]):
        np.testing.assert_array_equal(a, b)


def test_one_process_resumes_a_two_process_checkpoint_exactly(records):
    full = reference()
    for a, b in zip(records[0]["head"], full[:CHECKPOINT_STEP]):
        np.testing.assert_array_equal(a, b)
    state = pickle.loads(records[0]["checkpoint"])
    single = DistributedBatchSampler(selector(), num_replicas=1, rank=0)
    single.load_state_dict(state)
    tail = run(single, start_epoch=state["epoch"])[0]
    assert CHECKPOINT_STEP + len(tail) == len(full)
    for a, b in zip(tail, full[CHECKPOINT_STEP:]):
        np.testing.assert_array_equal(a, b)


def test_diverged_ranks_are_refused(records):
    for r in records:
        assert r["diverged"] is not None and "ranks [1] differ from rank 0" in r["diverged"]
        assert r["diverged_resume"] is not None and "ranks [1] differ from rank 0" in r["diverged_resume"]


def test_drawing_ahead_in_two_processes(records):
    single = DistributedBatchSampler(selector(), num_replicas=1, rank=0, ahead=2)
    expected = []
    for epoch in range(EPOCHS):
        single.set_epoch(epoch)
        for ids in single:
            expected.append(np.asarray(ids))
            single.observe(losses=torch.from_numpy(loss_of(ids)).float(), indices=torch.tensor(ids))
    r0, r1 = records[0]["ahead"], records[1]["ahead"]
    assert len(r0["local"]) == len(expected)
    for a, b, e in zip(r0["local"], r1["local"], expected):
        np.testing.assert_array_equal(np.concatenate([a, b]), e)
    for r in (r0, r1):   # upcoming() announced this rank's next slices
        for i, upcoming in enumerate(r["announced"]):
            for k, u in enumerate(upcoming):
                np.testing.assert_array_equal(u, r["local"][i + 1 + k])
