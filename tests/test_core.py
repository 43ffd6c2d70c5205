"""mlbs.core: the only door to the compiled extension; every kernel wrapper refuses bad indices,
lengths, dtypes and layouts with a Python exception (a kernel given them would read or write
outside its arrays) and changes nothing when it refuses."""
from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from mlbs import core
from mlbs.chain import ChainGraph, draw_chain

PACKAGE = Path(__file__).resolve().parents[1] / "python" / "mlbs"


def test_core_is_the_only_module_that_imports_the_extension():
    importers = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [f"{node.module}.{a.name}" for a in node.names] + [str(node.module)]
            if any(n == "mlbs._core" or n.startswith("mlbs._core.") for n in names):
                importers.append(path.relative_to(PACKAGE).as_posix())
    assert importers == ["core.py"]


def labels(n=6, q=4, seed=0):
    rng = np.random.default_rng(seed)
    Y = sp.csr_matrix((rng.random((n, q)) < 0.5).astype(np.int8))
    Y.sort_indices()
    return Y


# -- LabelsCSR ---------------------------------------------------------------------------------

def test_labels_are_checked_once_and_frozen():
    Y = labels()
    checked = core.LabelsCSR.of(Y)
    assert checked.shape == Y.shape and not Y.indptr.flags.writeable and not Y.indices.flags.writeable
    with pytest.raises(TypeError, match="CSR"):
        core.LabelsCSR.of(Y.toarray())
    bad = labels()
    bad.indices[0] = 9
    with pytest.raises(ValueError, match="label id 9"):
        core.LabelsCSR.of(bad)
    bad = labels()
    bad.indptr[2], bad.indptr[3] = bad.indptr[3], bad.indptr[2] - 1
    with pytest.raises(ValueError, match="indptr"):
        core.LabelsCSR.of(bad)
    unsorted = sp.csr_matrix((np.ones(2, np.int8), np.array([2, 1]), np.array([0, 2, 2])), shape=(2, 4))
    with pytest.raises(ValueError, match="increasing"):
        core.LabelsCSR.of(unsorted)


def test_checked_indices():
    assert core.checked_indices(np.array([0, 5]), 6).dtype == np.int64
    for bad, error in ((np.array([0, 6]), IndexError), (np.array([-1]), IndexError), ([10 ** 9], IndexError),
                       (np.array([0.0]), TypeError), (np.zeros((1, 1), np.int64), ValueError)):
        with pytest.raises(error):
            core.checked_indices(bad, 6)
    with pytest.raises(IndexError, match="sample index 1000000000 .position 1"):
        core.checked_indices([1, 10 ** 9], 6)


# -- observe_quantized (Adaptive) ---------------------------------------------------------------

def quantized_inputs(n=8):
    return np.zeros(n), np.ones(n), np.array([1, 2]), np.array([0.5, 0.25])


def test_observe_quantized_refuses_bad_input_and_leaves_the_table_alone():
    table, w, idx, loss = quantized_inputs()
    ok = {"table_max": 0.0, "argmax": 0, "pressure": 8.0}
    cases = [
        (IndexError, dict(indices=np.array([1, 10 ** 9]))),
        (IndexError, dict(indices=np.array([-1, 2]))),
        (ValueError, dict(losses=np.array([0.5]))),
        (ValueError, dict(weights=np.ones(7))),
        (IndexError, dict(argmax=8)),
        (IndexError, dict(argmax=-1)),
        (ValueError, dict(pressure=1.0)),
        (ValueError, dict(table_max=np.nan)),
        (TypeError, dict(table=np.zeros(8, np.float32))),
        (TypeError, dict(table=np.zeros((8, 1)))),
        (TypeError, dict(table=np.zeros(16)[::2])),
        (TypeError, dict(losses=[0.5, 0.25])),
        (TypeError, dict(indices=np.array([1.0, 2.0]))),
    ]
    for error, change in cases:
        args = {"table": table, "weights": w, "indices": idx, "losses": loss, **ok, **change}
        with pytest.raises(error):
            core.observe_quantized(**args)
        assert not table.any()
    frozen = np.zeros(8)
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="writable"):
        core.observe_quantized(frozen, w, idx, loss, **ok)
    # and the valid call does its job
    assert core.observe_quantized(table, w, idx, loss, **ok) is None  # from max 0 to 0.5: the maximum moved
    np.testing.assert_array_equal(table[[1, 2]], loss)


# -- window_visit (Uncertain, D2ACE) ------------------------------------------------------------

def window_tables(n=6, w=3, q=4, dtype=np.float32):
    return {"window": np.zeros((n, w, q), dtype), "count": np.zeros(n, np.int64), "E": np.zeros((n, q), dtype),
            "phi": np.zeros((n, q), dtype), "loss": np.zeros((0, 0), dtype)}


def test_window_visit_refuses_bad_input_and_leaves_the_tables_alone():
    Y = core.LabelsCSR.of(labels())
    out = np.zeros((2, 4), np.float32)
    rows = np.array([0, 5])
    cases = [
        (IndexError, dict(rows=np.array([0, 10 ** 9]))),
        (IndexError, dict(rows=np.array([-3, 0]))),
        (ValueError, dict(outputs=np.zeros((3, 4), np.float32))),
        (TypeError, dict(outputs=np.zeros((2, 4), np.int64))),
        (ValueError, dict(tables={"count": np.zeros(5, np.int64)})),
        (TypeError, dict(tables={"count": np.zeros(6, np.int32)})),
        (ValueError, dict(tables={"E": np.zeros((6, 3), np.float32)})),
        (TypeError, dict(tables={"phi": np.zeros((6, 4), np.float64)})),
        (ValueError, dict(tables={"window": np.zeros((6, 0, 4), np.float32)})),
        (TypeError, dict(labels=labels())),
        (ValueError, dict(alpha=1.5)),
    ]
    for error, change in cases:
        tables = window_tables()
        tables.update(change.pop("tables", {}))
        args = {"rows": rows, "outputs": out, "labels": Y, "tables": tables, "logits": True, "alpha": 0.7, **change}
        with pytest.raises(error):
            core.window_visit(**args)
        assert not any(a.any() for a in tables.values())
    tables = window_tables()
    loss = core.window_visit(rows, out, Y, tables=tables, logits=True, alpha=0.7)
    assert loss.shape == (2,) and tables["count"].tolist() == [1, 0, 0, 0, 0, 1]


# -- observe_bce, scan_losses, outputs_valid: None sends the caller to its naming checks ----------

def test_fast_paths_refuse_bad_indices_and_answer_none_for_other_problems():
    Y = core.LabelsCSR.of(labels())
    out = np.zeros((2, 4))
    for bad, error in (([0, 10 ** 9], IndexError), ([0, -1], IndexError), ([0.0, 1.0], TypeError)):
        with pytest.raises(error):
            core.observe_bce(bad, out, Y)
        with pytest.raises(error):
            core.scan_losses(bad, [0.1, 0.2], 6)
    assert core.observe_bce([0, 1], out[:, :3], Y) is None
    assert core.observe_bce([0, 1], np.asfortranarray(np.zeros((2, 4))), Y) is None
    assert core.observe_bce([0, 1], np.full((2, 4), np.nan), Y) is None
    with pytest.raises(TypeError, match="LabelsCSR"):
        core.observe_bce([0, 1], out, labels())
    assert core.observe_bce([0, 1], out, Y)[1].shape == (2,)
    assert core.scan_losses([0, 1], [0.1], 6) is None
    assert core.scan_losses([0, 1], [0.1, np.nan], 6) is None
    assert core.outputs_valid([[0.0]]) is None and core.outputs_valid(np.array([[np.inf]])) is False


# -- AdaC's chain graph: checked once, before its kernels read it -----------------------------------

def chain_arrays():
    # 3 samples, 2 labels: sample 0 has label 0, sample 1 labels 0 and 1, sample 2 label 1
    return dict(seed_label=[0, 1, 1], related_ptr=[0, 1, 2], related=[1, 0], posting_ptr=[0, 2, 4],
                posting_item=[0, 1, 1, 2], label_ptr=[0, 1, 3, 4], label_of=[0, 0, 1, 1])


def test_chain_graph_and_draw_refuse_bad_input():
    for name, value in (("seed_label", [0, 2, 1]), ("related", [1, 5]), ("posting_item", [0, 1, 1, 9]),
                        ("label_of", [0, 0, 1, -1]), ("posting_ptr", [0, 3, 2]), ("label_ptr", [0, 1, 3, 5])):
        with pytest.raises(ValueError):
            ChainGraph.of(**{**chain_arrays(), name: value})
    graph = ChainGraph.of(**chain_arrays())
    items, pairs = core.WeightedIndex(3, seed=0), core.WeightedIndex(4, seed=0)
    items.assign(np.ones(3))
    pairs.assign(np.ones(4))
    with pytest.raises(ValueError, match="distinct"):
        draw_chain(items, pairs, graph, 4)
    with pytest.raises(ValueError, match="samples"):
        draw_chain(core.WeightedIndex(5, seed=0), pairs, graph, 1)
    with pytest.raises(TypeError):
        draw_chain(items, pairs, chain_arrays(), 1)
    batch, _ = draw_chain(items, pairs, graph, 3)
    assert sorted(batch.tolist()) == [0, 1, 2]
