"""Report formatting, the Wilcoxon test against a hand computation, time to target, plots."""
import itertools
import math

import numpy as np
import pytest

from mlbs.experiments.aggregate import Cell, aggregate
from mlbs.experiments.report import (best_methods, cells_csv, dataset_table_markdown, format_cell,
                                     table2_markdown, wilcoxon_markdown, wilcoxon_rows)
from mlbs.experiments.timing import first_time_below, time_to_target
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


def _record(method, fold, loss_eval, loss, times, f1=0.5):
    return {"key": {"dataset": "d", "model": "mlp", "method": method, "fold": fold, "seed": 0},
            "result": {"test": {"macro_f1": f1}, "test_final": {"macro_f1": f1},
                       "curves": {"train_loss_eval": loss_eval, "train_loss": loss, "train_time": times,
                                  "val_auc": [0.5] * len(times)},
                       "batches": {"loss": loss, "train_time": times}}}


def test_time_to_target():
    assert first_time_below([3, 2, 1], [1, 2, 3], 2) == (1, 2.0)
    assert first_time_below([3, 2], [1, 2], 0.5) == (None, None)
    recs = [_record("random", 0, [3.0, 2.0, 1.0], [3.0, 2.5, 2.0], [1.0, 2.0, 3.0]),
            _record("adaptive", 0, [2.5, 1.0, 0.5], [2.0, 1.9, 1.8], [1.5, 2.0, 4.0]),
            _record("hard", 0, [3.0, 2.0, 1.5], [3.0, 3.0, 3.0], [1.0, 2.0, 3.0])]
    by = {e.method: e for e in time_to_target(recs, "eval")}
    assert by["random"].times == (3.0,) and by["adaptive"].times == (2.0,)
    assert by["adaptive"].relative_change == pytest.approx(-1 / 3)
    assert by["hard"].reached == 0 and math.isnan(by["hard"].mean_time)
    batches = {e.method: e for e in time_to_target(recs, "batches")}
    assert batches["adaptive"].times == (1.5,)


def test_aggregate_uses_population_std():
    recs = [_record("random", f, [1.0], [1.0], [1.0], f1=v) for f, v in enumerate([0.2, 0.4])]
    cell = aggregate(recs)[("mlp", "d", "random", "macro_f1")]
    assert cell.mean == pytest.approx(0.3) and cell.std == pytest.approx(0.1)
