"""The training loop of one (dataset, model, method, fold, seed) run.

Steps:

1. the dataset's fold (iterative stratification) and its validation split; min-max scaling;
2. the model (``build_model``, initial weights seeded by the run's seed, hence identical for every
   fold and method), ``model.prepare`` on the training labels;
3. the method's policy from the training labels (and features) and a
   :class:`~mlbs.selector.BatchSelector` with the method's sampling warm-up;
4. per epoch: the batches, each trained with Adam under the LR warm-up and observed by the
   selector; then, off the clock, the validation Macro-AUC and (optionally) the full training loss
   in eval mode; a deep copy of the weights at each strict improvement of the validation score;
   training stops early after ``config.patience`` epochs without such an improvement;
5. test metrics with the checkpoint the protocol selects (best validation epoch or final epoch),
   and also with the final-epoch weights.

Logged per epoch: mean training loss of the batches as trained, full training loss in eval mode,
validation Macro-AUC, cumulative training time (training steps plus the sampler's drawing and
bookkeeping, evaluation excluded) and cumulative sampler time; per batch: the training loss and
the cumulative training time.
"""
from __future__ import annotations

import math
import time
import warnings
from typing import Callable

import numpy as np
import torch

from mlbs.models import build_model
from mlbs.selector import BatchSelector

from .config import ExperimentConfig
from .datasets import canonical_dataset, fold_data, prepare
from .evaluate import mean_bce, predict, test_metrics, validation_score
from .methods import build_policy, get_method, prime_method
from .optim import lr_at_step, make_optimizer, warmup_steps

__all__ = ["run_fold", "derive_seed"]

#: ``progress(epoch, epochs)`` is called after every finished epoch.
ProgressFn = Callable[[int, int], None]


def derive_seed(seed: int, *parts: int) -> int:
    """A 32-bit seed derived from ``seed`` and integer ``parts`` (independent streams)."""
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, *[int(p) for p in parts]]).generate_state(1)[0])


def _fixed_batches(n: int, batch_size: int):
    return [np.arange(lo, min(lo + batch_size, n)) for lo in range(0, n, batch_size)]


def _state_copy(model: torch.nn.Module) -> dict:
    """A real copy of every parameter and buffer (``state_dict().copy()`` would share tensors)."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def run_fold(dataset: str, model: str, method: str, fold: int, config: ExperimentConfig, *,
             seed: int | None = None, progress: ProgressFn | None = None) -> dict:
    """Train and evaluate one run; return its result as a JSON-compatible dict.

    Parameters
    ----------
    dataset, model, method : str
        Registered names (the errors list the valid ones).
    fold : int
        Held-out fold, ``0 <= fold < config.n_folds``.
    config : ExperimentConfig
    seed : int, optional
        Defaults to ``config.seed``.
    progress : callable, optional
        ``progress(epoch, epochs)`` after every epoch (a progress bar; an exception raised there
        aborts the run).

    Returns
    -------
    dict
        ``test`` (metrics at the protocol's checkpoint), ``test_final`` (final-epoch weights),
        ``best_epoch``, ``checkpoint``, ``epochs_run``, ``early_stopped``, ``best_is_last`` (the
        best validation epoch is the last one trained: the model had not converged), ``lr``,
        sizes, ``curves`` (per epoch), ``batches`` (per batch)
        and ``timing`` (seconds).
    """
    seed = config.seed if seed is None else int(seed)
    dataset = canonical_dataset(dataset)
    spec = get_method(method)
    prime_method(spec.name)
    t_start = time.perf_counter()
    prepared = prepare(dataset, config, seed)
    data = fold_data(prepared, fold, config, seed)
    n_train, q = data.Y_train.shape
    if n_train < 1 or data.Y_val.shape[0] < 1 or data.Y_test.shape[0] < 1:
        raise ValueError(f"{dataset} fold {fold}: an empty training, validation or test part")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(seed, fold, 1))
        net = build_model(model, data.X_train.shape[1], q, preset=config.model_preset, dataset=dataset,
                          **{"seed": seed, **config.model_kwargs()})
        return _train(net, spec, data, fold, config, seed, progress, t_start, config.lr_for(model))


def _train(net, spec, data, fold, config, seed, progress, t_start, lr) -> dict:
    X, Y = torch.from_numpy(data.X_train), torch.from_numpy(data.Y_train)
    n_train = X.shape[0]
    net.prepare(Y)
    basetrain = spec.name == "random" and config.random_optimizer == "basetrain"
    optimizer = make_optimizer(net, config, lr, weight_decay=0.0 if basetrain else None)
    warm = 0 if basetrain else warmup_steps(config, n_train, spec.warmup_epochs)
    fixed = spec.name == "random" and config.random_order == "fixed"
    selector = None
    if not fixed:
        t0 = time.perf_counter()
        policy = build_policy(spec.name, data.Y_train, data.X_train, seed=derive_seed(seed, fold, 2),
                              options=config.method_kwargs())
        selector = BatchSelector(policy, min(config.batch_size, n_train), warmup_epochs=spec.warmup_epochs,
                                 warmup_order=config.warmup_order, batch_sizes=config.selective_batch_sizes,
                                 seed=derive_seed(seed, fold, 3))
        setup_s = time.perf_counter() - t0
    else:
        setup_s = 0.0
    curves = {k: [] for k in ("train_loss", "train_loss_eval", "val_auc", "train_time", "sampler_time")}
    batches = {"loss": [], "train_time": []}
    train_s = sampler_s = eval_s = 0.0
    step, best, best_epoch, best_state = 0, -math.inf, -1, None
    for epoch in range(config.epochs):
        net.train()
        losses = []
        t0 = time.perf_counter()
        iterator = iter(_fixed_batches(n_train, config.batch_size) if fixed else selector.epoch(epoch))
        sampler_s += time.perf_counter() - t0
        while True:
            t0 = time.perf_counter()
            batch = next(iterator, None)
            t1 = time.perf_counter()
            sampler_s += t1 - t0
            train_s += t1 - t0
            if batch is None:
                break
            step += 1
            for group in optimizer.param_groups:
                group["lr"] = lr_at_step(step, lr, warm, config.lr_warmup)
            idx = torch.from_numpy(np.asarray(batch, dtype=np.int64))
            out = net.train_step(X[idx], Y[idx])
            optimizer.zero_grad(set_to_none=True)
            out.loss.backward()
            optimizer.step()
            t2 = time.perf_counter()
            if selector is not None:
                if spec.observation == "losses":
                    selector.observe(batch, losses=out.per_sample.numpy())
                else:
                    selector.observe(batch, out.sel_probs.numpy(), kind="probabilities")
            t3 = time.perf_counter()
            sampler_s += t3 - t2
            train_s += t3 - t0
            loss = float(out.loss.detach())
            losses.append(loss)
            batches["loss"].append(loss)
            batches["train_time"].append(train_s)
        t0 = time.perf_counter()
        F_val = predict(net, data.X_val)
        score = validation_score(data.Y_val, F_val, config.val_auc)
        curves["val_auc"].append(score)
        curves["train_loss_eval"].append(mean_bce(data.Y_train, predict(net, data.X_train))
                                          if config.eval_train_loss else None)
        curves["train_loss"].append(float(np.mean(losses)))
        curves["train_time"].append(train_s)
        curves["sampler_time"].append(sampler_s)
        if config.checkpoint == "best" and score > best:  # strict: the earliest epoch wins ties
            best, best_epoch, best_state = score, epoch, _state_copy(net)
        eval_s += time.perf_counter() - t0
        if progress is not None:
            progress(epoch, config.epochs)
        if config.checkpoint == "best" and config.patience and best_state is not None \
                and epoch - best_epoch >= config.patience:
            break
    epochs_run = len(curves["val_auc"])
    t0 = time.perf_counter()
    final = test_metrics(data.Y_test, predict(net, data.X_test))
    checkpoint = config.checkpoint
    if checkpoint == "best" and best_state is None:
        warnings.warn("the validation score was never defined (no validation label with both classes): "
                      "the final-epoch weights are tested", RuntimeWarning, stacklevel=3)
        checkpoint = "final"
    if checkpoint == "best":
        net.load_state_dict(best_state)
        test = test_metrics(data.Y_test, predict(net, data.X_test))
    else:
        test, best_epoch = final, epochs_run - 1
    eval_s += time.perf_counter() - t0
    return {
        "test": test,
        "test_final": final,
        "best_epoch": int(best_epoch),
        "checkpoint": checkpoint,
        "epochs_run": int(epochs_run),
        "early_stopped": epochs_run < config.epochs,
        "best_is_last": checkpoint == "best" and best_epoch == epochs_run - 1,
        "lr": float(lr),
        "n_train": int(n_train), "n_val": int(data.Y_val.shape[0]), "n_test": int(data.Y_test.shape[0]),
        "d": int(X.shape[1]), "q": int(Y.shape[1]),
        "lr_warmup_steps": int(warm),
        "sampling_warmup_epochs": int(spec.warmup_epochs),
        "curves": curves,
        "batches": batches,
        "timing": {"train_s": train_s, "sampler_s": sampler_s, "eval_s": eval_s, "policy_setup_s": setup_s,
                   "total_s": time.perf_counter() - t_start},
    }
