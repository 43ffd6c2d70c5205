"""The compiled core under hostile use: tampered states, overflowing weights, extreme pressure,
concurrent use from two threads, objects whose constructor never ran.

Every case must end in a clear Python exception with the object unchanged, never in a crash, a
hang or a silent wrong answer. Cases that could crash or hang the interpreter run in a fresh one
(``run_isolated``), so that a regression fails its test instead of stopping the whole run.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from mlbs import RankIndex, WeightedIndex


def run_isolated(code: str, timeout: float = 60.0) -> dict:
    """Run ``code`` in a new interpreter with this one's import path; it prints a JSON object on
    its last line, which is returned. A crash (non-zero exit) or a hang (timeout) fails."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    assert proc.returncode == 0, f"exit status {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------------
# Restoring a state: checked whole before any memory is touched

TAMPERED_STATES = [
    # (state, exception, message)
    ((10**6, [1.0, 1.0, 1.0], (1, 2, 3, 4)), "ValueError", "n = 1000000 holds 3"),
    ((2, [1.0, 1.0, 1.0], (1, 2, 3, 4)), "ValueError", "n = 2 holds 3"),
    ((0, [], (1, 2, 3, 4)), "ValueError", "n = 0"),
    ((-5, [1.0], (1, 2, 3, 4)), "ValueError", "n = -5"),
    ((3.0, [1.0, 1.0, 1.0], (1, 2, 3, 4)), "TypeError", "integer n"),
    ((3, ["a", "b", "c"], (1, 2, 3, 4)), "TypeError", "real numbers"),
    ((3, [[1.0, 1.0, 1.0]], (1, 2, 3, 4)), "ValueError", "one-dimensional"),
    ((3, [1.0, float("nan"), 1.0], (1, 2, 3, 4)), "ValueError", "item 1"),
    ((3, [1.0, 1.0, 1.0], (1, 2, 3)), "TypeError", "generator state"),
    ((3, [1.0, 1.0, 1.0], (0, 0, 0, 0)), "ValueError", "all zero"),
    ((3, [1.0, 1.0]), "ValueError", "tuple of 2"),
]


@pytest.mark.parametrize("cls", ["WeightedIndex", "RankIndex"])
def test_tampered_states_are_refused_before_use(cls):
    result = run_isolated(
        f"""
        import json
        import numpy as np
        from mlbs import {cls} as Cls
        cases = json.loads({json.dumps([(list(s), e, m) for s, e, m in TAMPERED_STATES])!r})
        out = []
        for state, exc, match in cases:
            state = tuple(np.asarray(x) if i == 1 else tuple(x) if i == 2 else x for i, x in enumerate(state))
            obj = Cls.__new__(Cls)
            try:
                obj.__setstate__(state)
                out.append([exc, match, "no error", ""])
            except Exception as e:
                out.append([exc, match, type(e).__name__, str(e)])
        print(json.dumps(out))
        """
    )
    for expected, match, got, message in result:
        assert got == expected and match in message, (expected, match, got, message)


@pytest.mark.parametrize("cls", ["WeightedIndex", "RankIndex"])
def test_every_pickle_protocol_and_copy_round_trip(cls):
    result = run_isolated(
        f"""
        import copy, json, pickle
        import numpy as np
        from mlbs import {cls} as Cls
        obj = Cls(50, seed=3)
        obj.assign(np.random.default_rng(0).random(50))
        values = "weights" if Cls.__name__ == "WeightedIndex" else "scores"
        out = []
        clones = [pickle.loads(pickle.dumps(obj, protocol=p)) for p in range(pickle.HIGHEST_PROTOCOL + 1)]
        for clone in clones + [copy.copy(obj), copy.deepcopy(obj)]:
            out.append(bool(np.array_equal(getattr(clone, values)(), getattr(obj, values)()))
                       and clone.rng_state == obj.rng_state and type(clone) is Cls)
        print(json.dumps(out))
        """
    )
    assert result == [True] * (pickle.HIGHEST_PROTOCOL + 3)


# ---------------------------------------------------------------------------------------------
# Weights whose total overflows: refused by assign and by the state path, as by update

def test_assign_refuses_an_overflowing_total_and_changes_nothing():
    index = WeightedIndex(3, seed=0)
    index.assign([1.0, 2.0, 3.0])
    before = index.weights(), index.total(), index.nonzero(), index.rng_state
    with pytest.raises(OverflowError, match="overflow"):
        index.assign([1e308, 1e308, 1.0])
    np.testing.assert_array_equal(index.weights(), before[0])
    assert (index.total(), index.nonzero(), index.rng_state) == before[1:]
    assert sorted(index.draw_distinct(3).tolist()) == [0, 1, 2]


def test_state_with_an_overflowing_total_is_refused():
    state = (3, np.array([1e308, 1e308, 1.0]), (1, 2, 3, 4))
    with pytest.raises(OverflowError, match="overflow"):
        WeightedIndex.__new__(WeightedIndex).__setstate__(state)


@pytest.mark.parametrize("n", [2, 9, 70, 1000])
def test_assign_accepts_large_totals_that_stay_finite(n):
    """Near the limit the decision follows the tree's own total: finite totals are kept."""
    w = np.full(n, 1.7e308 / n)
    index = WeightedIndex(n, seed=0)
    index.assign(w)
    assert math.isfinite(index.total()) and index.total() == pytest.approx(math.fsum(w), rel=1e-12)
    assert sorted(index.draw_distinct(n).tolist()) == list(range(n))


def test_overflowing_total_cannot_make_distinct_draws_spin():
    result = run_isolated(
        """
        import json
        from mlbs import WeightedIndex
        index = WeightedIndex(3, seed=0)
        try:
            index.assign([1e308, 1e308, 1.0])
            refused = False
        except OverflowError:
            refused = True
        index.assign([1e308, 1e307, 1.0])
        print(json.dumps({"refused": refused, "drawn": sorted(index.draw_distinct(3).tolist())}))
        """,
        timeout=30,
    )
    assert result == {"refused": True, "drawn": [0, 1, 2]}


# ---------------------------------------------------------------------------------------------
# Rank law at extreme pressure: finite, exact, bounded


def log_space_rank_probabilities(n: int, pressure: float) -> np.ndarray:
    """p(rank r) = s^(r/n) / sum_j s^(j/n), computed from logarithms (no overflow)."""
    logw = math.log(pressure) * np.arange(1, n + 1) / n
    return np.exp(logw - logw.max() - np.log(np.exp(logw - logw.max()).sum()))


@pytest.mark.parametrize("pressure", [1e300, 1.7e308])
@pytest.mark.parametrize("n", [1, 2, 3, 10, 1000])
def test_rank_law_at_extreme_pressure_is_finite_and_exact(n, pressure):
    index = RankIndex(n, seed=0)
    index.assign(np.arange(n, dtype=float))
    p = index.probabilities(pressure)
    assert np.isfinite(p).all() and p.sum() == pytest.approx(1.0, rel=1e-12)
    np.testing.assert_allclose(p, log_space_rank_probabilities(n, pressure), rtol=1e-9, atol=0)


def test_distinct_rank_draws_at_extreme_pressure_end():
    result = run_isolated(
        """
        import json
        import numpy as np
        from mlbs import RankIndex
        out = []
        for n in [2, 3, 5, 50, 3000]:
            for pressure in [1e300, 1.7e308]:
                index = RankIndex(n, seed=1)
                index.assign(np.arange(n, dtype=float))
                for k in sorted({1, 2, n // 2, n}):
                    drawn = index.draw_distinct(k, pressure).tolist()
                    out.append([n, k, len(set(drawn)) == k, drawn[0]])
        print(json.dumps(out))
        """,
        timeout=30,
    )
    for n, k, distinct, first in result:
        assert distinct, (n, k)
        assert first == n - 1 or n > 50  # up to n = 50, all but 1e-6 of the mass is on the top rank


# ---------------------------------------------------------------------------------------------
# One object used from two threads: refused with RuntimeError, never corrupted

HAMMER = """
import json, threading, time
import numpy as np
from mlbs import {cls} as Cls
n, k = 200_000, 20_000
obj = Cls(n, seed=0)
obj.assign(np.random.default_rng(0).random(n) + 0.5)
refused, done, other = [0], [0], []
def work(seed):
    rng = np.random.default_rng(seed)
    stop = time.perf_counter() + 1.5
    while time.perf_counter() < stop:
        try:
            if rng.random() < 0.5:
                obj.update(rng.integers(0, n, k), rng.random(k) + 0.5)
            else:
                {draw}
            done[0] += 1
        except RuntimeError as e:
            assert "in use by another thread" in str(e), e
            refused[0] += 1
        except Exception as e:
            other.append(repr(e))
threads = [threading.Thread(target=work, args=(s,)) for s in range(4)]
for t in threads: t.start()
for t in threads: t.join()
result = dict(refused=refused[0], done=done[0], other=other)
{check}
print(json.dumps(result))
"""

WEIGHTED_CHECK = """
w = obj.weights()
result.update(min=float(w.min()), nonzero=int(obj.nonzero()), positive=int((w > 0).sum()),
              total_ok=bool(abs(obj.total() - w.sum()) <= 1e-9 * w.sum()),
              distinct=len(set(obj.draw_distinct(n).tolist())))
"""

RANK_CHECK = """
s = obj.scores()
order = obj.order()
result.update(order_ok=bool(np.array_equal(order, np.lexsort((np.arange(n), s)))),
              distinct=len(set(obj.draw_distinct(n, 8.0).tolist())))
"""


@pytest.mark.parametrize("cls", ["WeightedIndex", "RankIndex"])
def test_concurrent_use_is_refused_and_never_corrupts(cls):
    draw = "obj.draw_distinct(k)" if cls == "WeightedIndex" else "obj.draw_distinct(k, 8.0)"
    check = WEIGHTED_CHECK if cls == "WeightedIndex" else RANK_CHECK
    result = run_isolated(HAMMER.format(cls=cls, draw=draw, check=check), timeout=60)
    assert result["other"] == []
    assert result["refused"] > 0 and result["done"] > 0
    assert result["distinct"] == 200_000
    if cls == "WeightedIndex":
        assert result["min"] >= 0.5 and result["nonzero"] == result["positive"] == 200_000
        assert result["total_ok"]
    else:
        assert result["order_ok"]


# ---------------------------------------------------------------------------------------------
# An object whose constructor never ran: every method raises TypeError

CALLS = {
    "WeightedIndex": [
        "len(obj)", "obj.weights()", "obj.assign([1.0])", "obj.update([0], [1.0])", "obj.draw(1)",
        "obj.draw_distinct(1)", "obj.total()", "obj.nonzero()", "obj.memory_bytes()", "obj.weight(0)",
        "obj.prefix([0])", "obj.locate([0.0])", "obj.probabilities()", "obj.rng_state",
        "setattr(obj, 'rng_state', (1, 2, 3, 4))", "obj.seed(1)", "pickle.dumps(obj)", "obj._level_addresses()",
    ],
    "RankIndex": [
        "len(obj)", "obj.scores()", "obj.assign([1.0])", "obj.update([0], [1.0])", "obj.draw(1, 2.0)",
        "obj.draw_distinct(1, 2.0)", "obj.rank([0])", "obj.select([1])", "obj.order()",
        "obj.probabilities(2.0)", "obj.rng_state", "setattr(obj, 'rng_state', (1, 2, 3, 4))",
        "obj.seed(1)", "pickle.dumps(obj)",
    ],
}


@pytest.mark.parametrize("cls", sorted(CALLS))
def test_methods_of_an_unconstructed_object_raise(cls):
    result = run_isolated(
        f"""
        import json, pickle
        from mlbs import {cls} as Cls
        out = []
        for call in {CALLS[cls]!r}:
            obj = Cls.__new__(Cls)
            try:
                eval(call)
                out.append([call, "no error", ""])
            except Exception as e:
                out.append([call, type(e).__name__, str(e)])
        print(json.dumps(out))
        """
    )
    for call, got, message in result:
        assert got == "TypeError" and "not initialised" in message, (call, got, message)


def test_methods_check_the_type_of_self():
    with pytest.raises(TypeError, match="WeightedIndex"):
        WeightedIndex.draw(RankIndex(3, seed=0), 1)
