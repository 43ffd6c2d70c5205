"""Each policy states its defaults once (class attributes); the experiment layer reads them, and
expands the papers'-code presets of mlbs.experiments.presets."""
from __future__ import annotations

import numpy as np
import pytest

import mlbs.policies as policies
from mlbs.experiments.methods import METHODS, build_policy, get_method
from mlbs.experiments.presets import POLICY_PRESETS, preset_options

EXPECTED = {"random": (0, "losses"), "hard": (3, "losses"), "adaptive": (3, "losses"), "adac": (3, "losses"),
            "uncertain": (10, "probabilities"), "d2ace": (10, "probabilities"),
            "active_bias": (10, "probabilities"), "recency_bias": (10, "probabilities")}


def problem(n=60, q=5, seed=0):
    rng = np.random.default_rng(seed)
    Y = (rng.random((n, q)) < 0.3).astype(np.int8)
    Y[0] = 1
    return Y, rng.random((n, 3))


def test_methods_read_the_policy_defaults():
    assert set(METHODS) == set(EXPECTED)
    for name, (warmup, observation) in EXPECTED.items():
        spec = get_method(name)
        cls = getattr(policies, spec.policy)
        assert spec.warmup_epochs == cls.warmup_epochs == warmup
        assert spec.observation == observation
        assert cls.observation == ("losses" if observation == "losses" else "outputs")


def test_a_policy_class_default_moves_the_method_with_it(monkeypatch):
    monkeypatch.setattr(policies.Hard, "warmup_epochs", 7)
    assert get_method("hard").warmup_epochs == 7


@pytest.mark.parametrize("cls, refresh", [(policies.Hard, "batch"), (policies.Adaptive, "batch"),
                                          (policies.Random, "epoch"), (policies.Uncertain, "epoch")])
def test_default_refresh(cls, refresh):
    Y, _ = problem()
    policy = cls(Y, weights=np.ones(60)) if cls is policies.Adaptive else cls(Y)
    assert cls.default_refresh == refresh == policy.refresh


def test_compat_presets_expand_and_explicit_options_win():
    Y, X = problem()
    d = build_policy("d2ace", Y, X, options={"compat": "d2ace"})
    assert (d.config.loss_transform, d.config.qmm_clip, d.config.entropy_nan) == ("2-exp", True, True)
    d = build_policy("d2ace", Y, X, options={"compat": "d2ace", "qmm_clip": False})
    assert (d.config.loss_transform, d.config.qmm_clip) == ("2-exp", False)
    r = build_policy("recency_bias", Y, options={"compat": "uncertainty_batch_analyse"})
    assert r.signals.length == 5 and r.pressure(0) == pytest.approx(10.0)
    a = build_policy("adaptive", Y, X, options={"compat": "mladabatch"})
    assert not a.weighted and np.array_equal(a.imbalance_weights, np.ones(60))
    with pytest.raises(ValueError, match="compat must be one of"):
        build_policy("d2ace", Y, X, options={"compat": "d2acee"})
    with pytest.raises(ValueError, match="not Hard"):
        build_policy("hard", Y, options={"compat": "d2ace"})
    for preset, by_policy in POLICY_PRESETS.items():
        for name in by_policy:
            assert preset_options(name, preset) == by_policy[name]


def test_active_bias_weight_mode_is_refused_by_the_experiment_loop():
    """The loop trains with the model's own loss; Active Bias's loss weights would be dropped and
    the run would be plain shuffled batches recorded as Active Bias."""
    Y, _ = problem()
    with pytest.raises(ValueError, match="mode='weight'"):
        build_policy("active_bias", Y, options={"mode": "weight"})
    assert build_policy("active_bias", Y, options={"mode": "sample"}).mode == "sample"
    policy = policies.ActiveBias(Y, mode="weight")  # the library still offers it to loops that apply it
    assert policy.uniform and policy.loss_weights(np.array([0, 1])).tolist() == [1.0, 1.0]
    with pytest.raises(IndexError):
        policy.loss_weights(np.array([0, 60]))


@pytest.mark.parametrize("cls, setting, value", [(policies.Uncertain, "window", 3), (policies.ActiveBias, "ddof", 0),
                                                 (policies.D2ACE, "window", 3)])
def test_settings_come_as_a_config_or_as_keywords(cls, setting, value):
    Y, X = problem()
    extra = {"features": X} if cls is policies.D2ACE else {}
    by_config = cls(Y, config=cls.Config(**{setting: value}), **extra)
    by_keyword = cls(Y, **{setting: value}, **extra)
    assert by_config.config == by_keyword.config and getattr(by_config.config, setting) == value
    default = getattr(cls.Config(), setting)
    assert cls(Y, config=cls.Config(**{setting: value}), **{setting: default}, **extra).config == cls.Config()
    with pytest.raises(TypeError, match="has no setting 'windows'"):
        cls(Y, windows=3, **extra)
