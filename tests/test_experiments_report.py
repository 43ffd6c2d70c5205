"""Report formatting, the Wilcoxon test against a hand computation, time to target, plots."""
import itertools
import math

import numpy as np
import pytest

from mlbs.experiments.aggregate import Cell, aggregate
from mlbs.experiments.plots import convergence_plot, fold_band
from mlbs.experiments.report import (best_methods, cells_csv, convergence_warnings, dataset_table_markdown,
                                     fold_comparison, format_cell, plain_reading, table2_markdown,
                                     wilcoxon_markdown, wilcoxon_rows)
from mlbs.experiments.timing import first_time_reaching, time_to_target
from mlbs.experiments.wilcoxon import signed_rank_test


def _exact_two_sided(diffs):
    """p-value by enumerating every sign assignment of the ranks (no ties, no zeros)."""
    ranks = np.argsort(np.argsort(np.abs(diffs))) + 1
    r_plus = ranks[np.asarray(diffs) > 0].sum()
    total = ranks.sum()
    t = min(r_plus, total - r_plus)
    count = 0
    for signs in itertools.product([0, 1], repeat=len(diffs)):
        w = (ranks * np.array(signs)).sum()
        count += min(w, total - w) <= t
    return count / 2 ** len(diffs)


def test_wilcoxon_against_a_hand_example():
    base = np.zeros(6)
    method = np.array([0.1, -0.2, 0.3, 0.4, 0.5, 0.6])
    r = signed_rank_test(method, base, "macro_f1")
    # ranks 1..6; the negative difference has rank 2
    assert (r.r_plus, r.r_minus, r.statistic, r.n_used) == (19.0, 2.0, 2.0, 6)
    assert r.p == pytest.approx(6 / 64) == pytest.approx(_exact_two_sided(method))
    assert r.decision == "tie" and r.method == "exact"


def test_wilcoxon_direction_follows_the_metric():
    better = np.array([0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07])
    up = signed_rank_test(better, np.zeros(7), "macro_auc")
    assert up.p == pytest.approx(2 / 128) and up.decision == "win"
    down = signed_rank_test(better, np.zeros(7), "hamming_loss")  # larger loss: worse
    assert down.decision == "loss" and down.r_minus == 28.0


def test_wilcoxon_drops_zero_differences_and_checks_input():
    r = signed_rank_test([1.0, 1.0, 2.0], [1.0, 1.0, 1.0], "macro_f1")
    assert r.n_pairs == 3 and r.n_used == 1
    none = signed_rank_test([1.0, 2.0], [1.0, 2.0], "macro_f1")
    assert none.decision == "tie" and math.isnan(none.p)
    with pytest.raises(ValueError, match="equal length"):
        signed_rank_test([1.0], [1.0, 2.0], "macro_f1")


def test_format_and_best():
    assert format_cell(0.123456, 0.00049) == "0.1235 ± 0.0005"
    assert format_cell(float("nan"), 0.0) == "n/a"
    assert best_methods({"a": 0.5, "b": 0.6}, "macro_f1") == {"b"}
    assert best_methods({"a": 0.5, "b": 0.6}, "one_error") == {"a"}
    assert best_methods({"a": 0.50001, "b": 0.50004, "c": float("nan")}, "macro_f1") == {"a", "b"}


def _cells():
    vals = {("d1", "random"): (0.5, 0.7), ("d1", "adaptive"): (0.6, 0.6), ("d2", "random"): (0.4, 0.4),
            ("d2", "adaptive"): (0.3, 0.5)}
    cells = {}
    for (d, m), (f1, err) in vals.items():
        cells[("mlp", d, m, "macro_f1")] = Cell("mlp", d, m, "macro_f1", (f1, f1), ((0, 0), (0, 1)))
        cells[("mlp", d, m, "one_error")] = Cell("mlp", d, m, "one_error", (err, err + 0.2), ((0, 0), (0, 1)))
    return cells


def test_table2_layout_bolds_the_best_per_metric_and_row():
    md = table2_markdown(_cells(), ["mlp"], ["d1", "d2"], ["random", "adaptive"], metrics=("macro_f1", "one_error"))
    lines = md.splitlines()
    assert lines[2] == "| Dataset | Macro-F1 ↑ random | Macro-F1 ↑ adaptive | One-error ↓ random | One-error ↓ adaptive |"
    assert lines[4] == ("| d1 | 0.5000 ± 0.0000 | **0.6000 ± 0.0000** | 0.8000 ± 0.1000 | "
                        "**0.7000 ± 0.1000** |")
    assert lines[5] == ("| d2 | **0.4000 ± 0.0000** | 0.3000 ± 0.0000 | **0.5000 ± 0.1000** | "
                        "0.6000 ± 0.1000 |")


def test_dataset_table_and_csv():
    md = dataset_table_markdown(_cells(), "mlp", "d1", ["random", "adaptive"], metrics=("macro_f1", "one_error"))
    assert "| One-error ↓ | 0.8000 ± 0.1000 | **0.7000 ± 0.1000** |" in md
    rows = cells_csv(_cells()).splitlines()
    assert rows[0] == "model,dataset,method,metric,mean,std,n_folds,best,fold_values"
    assert "mlp,d1,adaptive,macro_f1,0.600000,0.000000,2,1,0.600000 0.600000" in rows


def test_wilcoxon_table_needs_two_datasets():
    rows = wilcoxon_rows(_cells(), ["mlp"], ["d1", "d2"], ["random", "adaptive"], metrics=("macro_f1",))
    assert rows[0]["n_datasets"] == 2 and rows[0]["test"].decision == "tie"
    one = wilcoxon_rows(_cells(), ["mlp"], ["d1"], ["random", "adaptive"], metrics=("macro_f1",))
    assert "n/a (needs ≥ 2 datasets; 1)" in wilcoxon_markdown(one)


def _record(method, fold, loss_eval, loss, times, f1=0.5, val=None, best_epoch=0):
    val = [0.5] * len(times) if val is None else val
    return {"key": {"dataset": "d", "model": "mlp", "method": method, "fold": fold, "seed": 0},
            "result": {"test": {"macro_f1": f1, "macro_auc": f1}, "test_final": {"macro_f1": f1},
                       "best_epoch": best_epoch, "epochs_run": len(times), "early_stopped": False,
                       "best_is_last": best_epoch == len(times) - 1,
                       "curves": {"train_loss_eval": loss_eval, "train_loss": loss, "train_time": times,
                                  "val_auc": val},
                       "batches": {"loss": loss, "train_time": times}}}


def test_time_to_target():
    assert first_time_reaching([3, 2, 1], [1, 2, 3], 2, False) == (1, 2.0)
    assert first_time_reaching([3, 2], [1, 2], 0.5, False) == (None, None)
    assert first_time_reaching([0.5, None, 0.7], [1, 2, 3], 0.6, True) == (2, 3.0)
    recs = [_record("random", 0, [3.0, 2.0, 1.0], [3.0, 2.5, 2.0], [1.0, 2.0, 3.0]),
            _record("adaptive", 0, [2.5, 1.0, 0.5], [2.0, 1.9, 1.8], [1.5, 2.0, 4.0]),
            _record("hard", 0, [3.0, 2.0, 1.5], [3.0, 3.0, 3.0], [1.0, 2.0, 3.0])]
    by = {e.method: e for e in time_to_target(recs, "eval")}
    assert by["random"].times == (3.0,) and by["adaptive"].times == (2.0,)
    assert by["adaptive"].relative_change == pytest.approx(-1 / 3)
    assert by["hard"].reached == 0 and math.isnan(by["hard"].mean_time)
    batches = {e.method: e for e in time_to_target(recs, "batches")}
    assert batches["adaptive"].times == (1.5,)


def test_time_to_target_on_the_validation_metric():
    # Random's best validation Macro-AUC is 0.7 (epoch 2, at 3 s); Adaptive reaches it at epoch 1.
    recs = [_record("random", 0, [1.0] * 3, [1.0] * 3, [1.0, 2.0, 3.0], val=[0.6, None, 0.7]),
            _record("adaptive", 0, [1.0] * 3, [1.0] * 3, [1.5, 2.5, 3.5], val=[0.5, 0.71, 0.69]),
            _record("hard", 0, [1.0] * 3, [1.0] * 3, [1.0, 2.0, 3.0], val=[0.5, 0.6, 0.69])]
    by = {e.method: e for e in time_to_target(recs)}
    assert by["random"].times == (3.0,) and by["adaptive"].times == (2.5,) and by["hard"].reached == 0
    assert by["adaptive"].relative_change == pytest.approx(-0.5 / 3)


def _fold_cells(random, method, metric="macro_auc"):
    folds = tuple((0, f) for f in range(len(random)))
    return {("mlp", "d", "random", metric): Cell("mlp", "d", "random", metric, tuple(random), folds),
            ("mlp", "d", "adaptive", metric): Cell("mlp", "d", "adaptive", metric, tuple(method), folds)}


def test_fold_comparison_pairs_folds_and_orients_the_metric():
    cells = _fold_cells([0.70, 0.72, 0.74, 0.71, 0.73], [0.71, 0.74, 0.73, 0.73, 0.76])
    c = fold_comparison(cells, "mlp", "d", "adaptive", "random", "macro_auc")
    assert c.difference == pytest.approx(0.014) and c.ahead == 4 and c.n_folds == 5
    spread = (np.std([0.70, 0.72, 0.74, 0.71, 0.73]) + np.std([0.71, 0.74, 0.73, 0.73, 0.76])) / 2
    assert c.spread == pytest.approx(spread)
    assert c.test.p == pytest.approx(signed_rank_test([0.71, 0.74, 0.73, 0.73, 0.76],
                                                      [0.70, 0.72, 0.74, 0.71, 0.73], "macro_auc").p)
    loss = _fold_cells([0.2] * 3, [0.1, 0.3, 0.1], "ranking_loss")
    down = fold_comparison(loss, "mlp", "d", "adaptive", "random", "ranking_loss")
    assert down.difference == pytest.approx(1 / 30) and down.ahead == 2  # lower loss favours the method


def test_plain_reading_states_direction_size_and_significance():
    five = plain_reading(_fold_cells([0.70, 0.72, 0.74, 0.71, 0.73], [0.71, 0.74, 0.73, 0.73, 0.76]),
                         "mlp", "d", ["random", "adaptive"], metrics=("macro_auc",))
    assert "adaptive is ahead of random on 1 of 1 metrics: Macro-AUC by 0.0140 (4/5 folds better" in five
    assert "no difference is significant" in five
    assert "smallest possible p is 0.0625" in five
    eight = plain_reading(_fold_cells([0.5] * 8, [0.51, 0.52, 0.53, 0.54, 0.55, 0.56, 0.57, 0.58]),
                          "mlp", "d", ["random", "adaptive"], metrics=("macro_auc",))
    assert "significant for adaptive on Macro-AUC (win, p = 0.008)" in eight
    assert "smallest possible p" not in eight


def test_unconverged_runs_are_listed():
    recs = [_record("random", 0, [1.0] * 3, [1.0] * 3, [1.0, 2.0, 3.0], best_epoch=2),
            _record("adaptive", 0, [1.0] * 3, [1.0] * 3, [1.0, 2.0, 3.0], best_epoch=1)]
    assert convergence_warnings(recs) == ["d/mlp/random fold 0 seed 0: best validation epoch 3 is the last of 3 "
                                          "trained"]


def test_fold_band_over_curves_of_unequal_length():
    mean, low, high, count = fold_band([[1.0, 2.0, 3.0], [3.0, None], [2.0]])
    np.testing.assert_allclose(mean, [2.0, 2.0, 3.0])
    np.testing.assert_allclose(low, [1.0, 2.0, 3.0])
    np.testing.assert_allclose(high, [3.0, 2.0, 3.0])
    assert count.tolist() == [3, 1, 1]


def test_convergence_plot_draws_every_fold(tmp_path):
    recs = [_record(m, f, [1.0 - 0.1 * e for e in range(4)], [1.0] * 4, [1.0, 2.0, 3.0, 4.0],
                    val=[0.5, 0.6, 0.7, 0.65], best_epoch=2) for m in ("random", "adaptive") for f in range(3)]
    path = convergence_plot(recs, "mlp", "d", tmp_path / "p.png")
    assert path.stat().st_size > 10_000
    with pytest.raises(ValueError, match="no record of d/clif"):
        convergence_plot(recs, "clif", "d", tmp_path / "q.png")


def test_aggregate_uses_population_std():
    recs = [_record("random", f, [1.0], [1.0], [1.0], f1=v) for f, v in enumerate([0.2, 0.4])]
    cell = aggregate(recs)[("mlp", "d", "random", "macro_f1")]
    assert cell.mean == pytest.approx(0.3) and cell.std == pytest.approx(0.1)
