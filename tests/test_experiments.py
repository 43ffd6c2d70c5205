"""Experiment configuration, learning-rate warm-up, method registry and the training loop."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import mlbs
from mlbs.experiments import loop as loop_module
from mlbs.experiments.config import MODEL_LR, PATIENCE, PROTOCOL_VERSION, ExperimentConfig
from mlbs.experiments.loop import _state_copy, run_fold
from mlbs.experiments.methods import METHODS, build_policy, get_method
from mlbs.experiments.optim import lr_at_step, warmup_steps

torch.set_num_threads(1)
TINY = dict(epochs=2, n_folds=2, eval_train_loss=True)


# ---------------------------------------------------------------------------------- config
def test_hash_ignores_seed_and_separates_settings():
    a = ExperimentConfig(epochs=5)
    assert a.hash() == ExperimentConfig(epochs=5, seed=7).hash()
    assert a.hash() != ExperimentConfig(epochs=6).hash()
    assert a.hash() != ExperimentConfig(epochs=5, method_options={"pressure": 16}).hash()
    # options are stored sorted: the order they were given in does not matter
    assert ExperimentConfig(method_options={"a": 1, "b": 2}).hash() == \
        ExperimentConfig(method_options={"b": 2, "a": 1}).hash()


def test_hash_is_stable_across_processes():
    here = ExperimentConfig(epochs=9, model_options={"dropout": 0.2}).hash()
    code = ("from mlbs.experiments.config import ExperimentConfig;"
            "print(ExperimentConfig(epochs=9, model_options={'dropout': 0.2}).hash())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(Path(mlbs.__file__).resolve().parents[1]), "PYTHONHASHSEED": "123"})
    assert out.stdout.strip() == here


def test_config_round_trip_and_protocols():
    c = ExperimentConfig.for_protocol("paper-code", epochs=3)
    assert (c.checkpoint, c.validation, c.random_order, c.seed, c.epochs) == ("final", "zhou2024", "fixed", 42, 3)
    back = ExperimentConfig.from_dict(json.loads(json.dumps(c.as_dict())))
    assert back == c and back.hash() == c.hash()
    assert ExperimentConfig.for_protocol("mlbs").checkpoint == "best"


@pytest.mark.parametrize("kwargs, match", [
    ({"checkpoint": "middle"}, "checkpoint must be one of"),
    ({"epochs": 0}, "epochs"),
    ({"n_folds": 1}, "n_folds"),
    ({"validation_fraction": 1.5}, "validation_fraction"),
    ({"method_options": {"f": object()}}, "JSON value"),
])
def test_config_rejects_bad_values(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        ExperimentConfig(**kwargs)


def test_unknown_protocol_and_field_list_valid_names():
    with pytest.raises(ValueError, match="paper-code"):
        ExperimentConfig.for_protocol("zhou")
    with pytest.raises(ValueError, match="valid:.*epochs"):
        ExperimentConfig.for_protocol("mlbs", epoch=3)


def test_records_of_another_protocol_version_are_refused():
    # A configuration stored before the version field existed (version 1) and any other version.
    old = ExperimentConfig().as_dict()
    del old["protocol_version"], old["model_lr"], old["patience"]
    old["lr"] = 1e-4
    with pytest.raises(ValueError, match="protocol version 1.*never mixed"):
        ExperimentConfig.from_dict(old)
    with pytest.raises(ValueError, match=f"version {PROTOCOL_VERSION + 1}"):
        ExperimentConfig(protocol_version=PROTOCOL_VERSION + 1)
    assert ExperimentConfig().hash() != ExperimentConfig(model_lr={**MODEL_LR, "mlp": 1e-4}).hash()


def test_learning_rate_per_model_and_override():
    from mlbs.models import MODELS

    c = ExperimentConfig()
    assert set(dict(c.model_lr)) == set(MODELS)  # every model has its stated rate
    assert [c.lr_for(m) for m in MODELS] == [MODEL_LR[m] for m in MODELS]
    assert ExperimentConfig(lr=3e-3).lr_for("dela") == 3e-3
    paper = ExperimentConfig.for_protocol("paper-code")
    assert [paper.lr_for(m) for m in MODELS] == [1e-4] * len(MODELS) and paper.patience == 0
    with pytest.raises(ValueError, match="no learning rate for model 'foo'"):
        c.lr_for("foo")
    with pytest.raises(ValueError, match="learning rates must be numbers > 0"):
        ExperimentConfig(model_lr={"mlp": -1.0})


def test_early_stopping_needs_the_best_checkpoint():
    assert ExperimentConfig().patience == PATIENCE
    with pytest.raises(ValueError, match="needs checkpoint='best'"):
        ExperimentConfig(checkpoint="final")
    assert ExperimentConfig.for_protocol("mlbs", checkpoint="final").patience == 0


# ---------------------------------------------------------------------------------- warm-up
def test_linear_warmup():
    assert [lr_at_step(t, 1.0, 4, "linear") for t in (1, 2, 3, 4, 5, 100)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert lr_at_step(1, 2.0, 0, "linear") == 2.0


def test_code_warmup_runs_the_first_step_at_full_rate():
    # The published code sets lr = base * t / W after the t-th step.
    assert [lr_at_step(t, 1.0, 4, "code") for t in (1, 2, 3, 4, 5, 6)] == [1.0, 0.25, 0.5, 0.75, 1.0, 1.0]


def test_warmup_length():
    mlbs = ExperimentConfig(lr_warmup_epochs=10, batch_size=128)
    assert warmup_steps(mlbs, 1000, 3) == 10 * 7
    code = ExperimentConfig(lr_warmup="code", batch_size=128)
    assert warmup_steps(code, 1000, 3) == 3 * 7


# ---------------------------------------------------------------------------------- methods
def test_unknown_method_lists_valid_names():
    with pytest.raises(ValueError, match="adaptive.*d2ace"):
        get_method("adaptve")
    assert get_method("Active-Bias").name == "active_bias"


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_method_builds_from_a_training_fold(name):
    rng = np.random.default_rng(0)
    Y = (rng.random((60, 4)) < 0.4).astype(np.float32)
    Y[:, 0] = 1.0
    X = rng.random((60, 5)).astype(np.float32)
    policy = build_policy(name, Y, X, seed=1)
    assert policy.n == 60


# ---------------------------------------------------------------------------------- loop
def test_state_copy_is_a_real_copy():
    net = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    saved = _state_copy(net)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(1.0)
    net.train()
    net(torch.randn(8, 3))  # moves the BatchNorm running statistics
    for k, v in net.state_dict().items():
        if v.is_floating_point():
            assert not torch.equal(saved[k], v), k


def test_run_fold_records_curves_and_metrics():
    cfg = ExperimentConfig(**TINY)
    r = run_fold("emotions", "mlp", "adaptive", 0, cfg)
    assert len(r["curves"]["val_auc"]) == 2 and len(r["curves"]["train_loss_eval"]) == 2
    assert r["n_train"] + r["n_val"] + r["n_test"] == 593
    assert r["batches"]["train_time"] == sorted(r["batches"]["train_time"])
    assert set(r["test"]) >= {"macro_f1", "micro_f1", "macro_auc", "ranking_loss", "hamming_loss", "one_error"}
    assert 0 <= r["best_epoch"] < 2 and r["checkpoint"] == "best"
    assert r["timing"]["sampler_s"] <= r["timing"]["train_s"]


def test_best_epoch_weights_are_tested(monkeypatch):
    """With a validation score that only falls, epoch 0 is best: the test metrics must be those of
    a 1-epoch run, while the final-epoch metrics are those of the full run."""
    cfg = dict(TINY, epochs=3, eval_train_loss=False)
    full = run_fold("emotions", "mlp", "random", 1, ExperimentConfig(**cfg))
    one = run_fold("emotions", "mlp", "random", 1, ExperimentConfig(**dict(cfg, epochs=1)))
    scores = iter([0.9, 0.8, 0.7])
    monkeypatch.setattr(loop_module, "validation_score", lambda Y, F, conv: next(scores))
    r = run_fold("emotions", "mlp", "random", 1, ExperimentConfig(**cfg))
    assert r["best_epoch"] == 0
    assert r["test"] == one["test"]
    assert r["test_final"] == full["test_final"]
    assert r["test"] != r["test_final"]


def test_early_stopping_after_patience_epochs_without_improvement(monkeypatch):
    """Scores 0.5, 0.7, 0.6, 0.65, 0.7, ...: the best is epoch 1 (ties do not count as
    improvements), so patience 3 ends training after epoch 4 and tests epoch 1's weights."""
    scores = iter([0.5, 0.7, 0.6, 0.65, 0.7, 0.9, 0.9, 0.9])
    monkeypatch.setattr(loop_module, "validation_score", lambda Y, F, conv: next(scores))
    cfg = ExperimentConfig(**dict(TINY, epochs=8, patience=3, eval_train_loss=False))
    r = run_fold("emotions", "mlp", "random", 0, cfg)
    assert (r["best_epoch"], r["epochs_run"], r["early_stopped"], r["best_is_last"]) == (1, 5, True, False)
    assert len(r["curves"]["val_auc"]) == len(r["curves"]["train_time"]) == 5
    one = run_fold("emotions", "mlp", "random", 0, ExperimentConfig(**dict(TINY, epochs=2, eval_train_loss=False)))
    assert r["test"] == one["test_final"]


def test_a_best_last_epoch_is_flagged(monkeypatch):
    scores = iter([0.5, 0.6, 0.7])
    monkeypatch.setattr(loop_module, "validation_score", lambda Y, F, conv: next(scores))
    r = run_fold("emotions", "mlp", "random", 0, ExperimentConfig(**dict(TINY, epochs=3)))
    assert (r["best_epoch"], r["epochs_run"], r["early_stopped"], r["best_is_last"]) == (2, 3, False, True)
    assert r["lr"] == MODEL_LR["mlp"]


def test_paper_code_protocol_uses_final_weights_and_half_folds():
    cfg = ExperimentConfig.for_protocol("paper-code", epochs=2, n_folds=2)
    r = run_fold("emotions", "mlp", "random", 0, cfg)
    assert r["checkpoint"] == "final" and r["best_epoch"] == 1 and r["test"] == r["test_final"]
    assert abs(r["n_val"] - r["n_test"]) <= 1 and r["lr_warmup_steps"] == 0


def test_unknown_names_are_reported():
    cfg = ExperimentConfig(**TINY)
    with pytest.raises(ValueError, match="yeast"):
        run_fold("yeest", "mlp", "random", 0, cfg)
    with pytest.raises(ValueError, match="mlp"):
        run_fold("emotions", "mpl", "random", 0, cfg)
    with pytest.raises(ValueError, match="fold must be in"):
        run_fold("emotions", "mlp", "random", 5, cfg)
