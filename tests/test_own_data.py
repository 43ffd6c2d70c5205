"""Comparisons on one's own data: `mlbs compare --data`, `mlbs datasets --data` and `compare(X, Y)`.

Tiny files written by the tests (150 rows, 6 features, 3 labels learnable from the features),
2 folds of 2 epochs, so that the whole module stays within seconds of training.
"""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

import mlbs
from mlbs.cli import main
from mlbs.experiments import compare
from mlbs.experiments.datasets import add_arrays, canonical_dataset

RNG = np.random.default_rng(0)
X = np.round(RNG.normal(size=(150, 6)), 5)
Y = (X @ RNG.normal(size=(6, 3)) + RNG.normal(size=(150, 3)) > 0.3).astype(np.uint8)
FAST = ["--methods", "random", "adaptive", "--epochs", "2", "--folds", "2", "--no-plots", "--no-progress"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The same data as npz, CSV, LibSVM (with the repository header) and ARFF + XML."""
    d = tmp_path_factory.mktemp("own")
    np.savez(d / "tiny.npz", X=X, Y=Y)
    cells = [[repr(float(v)) for v in x] + [str(int(v)) for v in y] for x, y in zip(X, Y)]
    (d / "tiny.csv").write_text("a,b,c,d,e,f,y1,y2,y3\n" + "".join(",".join(c) + "\n" for c in cells))
    svm = [f"{len(X)} {X.shape[1]} {Y.shape[1]}"] + [
        ",".join(str(j) for j in np.flatnonzero(y)) + " " + " ".join(f"{i}:{float(v)!r}" for i, v in enumerate(x))
        for x, y in zip(X, Y)]
    (d / "tiny.svm").write_text("\n".join(svm) + "\n")
    header = ["@relation 'tiny: -C 3'"] + [f"@attribute {a} numeric" for a in "abcdef"] + \
             [f"@attribute y{j} {{0,1}}" for j in (1, 2, 3)] + ["@data"]
    (d / "tiny.arff").write_text("\n".join(header + [",".join(c) for c in cells]) + "\n")  # -C 3 is stale
    (d / "tiny.xml").write_text('<?xml version="1.0"?>\n<labels xmlns="http://mulan.sourceforge.net/labels">'
                                '<label name="y1"/><label name="y2"/><label name="y3"/></labels>\n')
    return d


def _records(out):
    (config,) = [p.stem for p in (out / "configs").glob("*.json")]
    recs = [json.loads(p.read_text()) for p in (out / "records" / config).rglob("fold*-seed*.json")]
    return {(r["key"]["dataset"], r["key"]["method"], r["key"]["fold"]): r["result"]["test"] for r in recs}


def test_compare_on_npz_and_csv_files(files, tmp_path, capsys):
    out = tmp_path / "store"
    code = main(["compare", "--data", str(files / "tiny.npz"), str(files / "tiny.csv"), "--label-prefix", "y",
                 "--out", str(out), *FAST])
    text = capsys.readouterr().out
    assert code == 0
    records = _records(out)
    names = sorted({k[0] for k in records})
    assert len(names) == 2 and names[0].startswith("tiny-") and names[1].startswith("tiny-")
    assert len(records) == 2 * 2 * 2  # datasets x methods x folds
    for name in names:
        assert name in text  # the tables name the datasets
        described = json.loads((out / "datasets" / f"{name}.json").read_text())
        assert described["n"] == 150 and described["q"] == 3 and described["format"] in ("npz", "csv")
    # the same numbers from two formats of the same data: same folds, same weights, same metrics
    a, b = names
    for method in ("random", "adaptive"):
        for fold in (0, 1):
            assert records[(a, method, fold)] == pytest.approx(records[(b, method, fold)], rel=1e-5, nan_ok=True)


def test_compare_on_arff_and_libsvm_files_and_python_arrays_agree(files, tmp_path, capsys):
    out = tmp_path / "store"
    with warnings.catch_warnings():  # the stale -C 3 must not matter: the XML beside the ARFF decides
        warnings.filterwarnings("error", message=".*no label XML.*")
        code = main(["compare", "--data", str(files / "tiny.arff"), str(files / "tiny.svm"), "--out", str(out),
                     *FAST])
    assert code == 0, capsys.readouterr().err
    records = _records(out)
    assert len({k[0] for k in records}) == 2 and len(records) == 8
    result = compare(X, Y, methods=["random", "adaptive"], folds=2, epochs=2)
    assert result.datasets == (canonical_dataset(result.datasets[0]),) and len(result.records) == 4
    assert "random" in result.summary and "Macro-AUC" in result.table()
    mine = {(r["key"]["method"], r["key"]["fold"]): r["result"]["test"] for r in result.records}
    for (dataset, method, fold), test in records.items():
        assert test == pytest.approx(mine[(method, fold)], rel=1e-5, nan_ok=True), (dataset, method, fold)
    cell = result.cells[("mlp", result.datasets[0], "random", "macro_auc")]
    assert cell.n == 2 and 0.5 < cell.mean <= 1.0


def test_datasets_command_lists_own_files(files, capsys):
    assert main(["datasets", "--data", str(files / "tiny.csv"), "--label-names", "y1,y2,y3"]) == 0
    out = capsys.readouterr().out
    row = [line for line in out.splitlines() if line.startswith("| tiny-")]
    assert len(row) == 1 and "| 150 | 6 | 3 |" in row[0] and "tiny.csv" in row[0]


@pytest.mark.parametrize("content, options, message", [
    ("a,b,y\n1,2,1\n3,x,0\n", ["--label-names", "y"], "bad.csv:3: value 'x' of column 'b' is not a number"),
    ("a,b,y\n1,2,1\n", [], "exactly one of label_names, label_prefix or label_count"),
    ("a,b,y\n1,2,1\n", ["--label-names", "y", "--xml", "x.xml"], "--xml applies to none of the --data files"),
])
def test_bad_own_files_give_a_clear_error(tmp_path, capsys, content, options, message):
    (tmp_path / "bad.csv").write_text(content)
    code = main(["compare", "--data", str(tmp_path / "bad.csv"), *options, "--out", str(tmp_path / "s"), *FAST])
    assert code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def test_compare_needs_data(tmp_path, capsys):
    assert main(["compare", "--out", str(tmp_path / "s"), *FAST]) == 2
    assert "--datasets NAME" in capsys.readouterr().err


def test_array_sources_are_checked_and_named_once():
    name = add_arrays(X, Y, name="mine")
    assert add_arrays(X, sp.csr_matrix(Y), name="mine") == name  # the same data again: fine
    with pytest.raises(ValueError, match="already names other data"):
        add_arrays(X[::-1], Y, name="mine")
    with pytest.raises(ValueError, match="registered dataset"):
        add_arrays(X, Y, name="yeast")
    with pytest.raises(ValueError, match="must start with a letter"):
        add_arrays(X, Y, name="../up")
    with pytest.raises(ValueError, match=r"label Y\[0, 0\] = 2"):
        add_arrays(X, np.where(np.arange(3) == 0, 2, Y))


def test_labels_too_rare_for_the_protocol_are_a_clear_error():
    rare = np.zeros_like(Y)
    rare[:10, 0] = 1
    with pytest.raises(ValueError, match="no label has more than 20 positives"):
        compare(X, rare, methods=["random"], folds=2, epochs=1)


def test_a_worker_process_finds_the_files_of_its_parent(files, tmp_path):
    """A process started after add_file (a --jobs worker) resolves the file's name through the environment."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from mlbs.experiments.datasets import FILES_VARIABLE, add_file

    name = add_file(files / "tiny.csv", label_prefix="y")
    code = ("import sys\nfrom mlbs.experiments.datasets import canonical_dataset, load_named\n"
            "n = canonical_dataset(sys.argv[1])\nd = load_named(n)\nprint(n, d.n, d.q)\n")
    env = dict(os.environ, PYTHONPATH=str(Path(mlbs.__file__).resolve().parents[1]))
    assert name in env[FILES_VARIABLE]
    out = subprocess.run([sys.executable, "-c", code, name], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [name, "150", "3"]
    changed = tmp_path / "tiny.csv"
    changed.write_text((files / "tiny.csv").read_text())
    moved = add_file(changed, label_prefix="y")
    assert moved == name  # same content, same name, wherever it lies
    changed.write_text((files / "tiny.csv").read_text().replace("\n0.", "\n1.", 1))
    env = dict(os.environ, PYTHONPATH=env["PYTHONPATH"])
    out = subprocess.run([sys.executable, "-c", code, name], env=env, capture_output=True, text=True)
    assert out.returncode != 0 and "changed since it was read" in out.stderr


def test_compare_leaves_the_runs_another_process_holds(files, tmp_path, capsys):
    import os

    from mlbs import cli
    from mlbs.experiments.datasets import add_file
    from mlbs.experiments.store import ResultStore, RunKey

    out = tmp_path / "store"
    argv = ["compare", "--data", str(files / "tiny.csv"), "--label-prefix", "y", "--out", str(out), *FAST]
    config = cli._config(cli.build_parser().parse_args(argv))
    key = RunKey(add_file(files / "tiny.csv", label_prefix="y"), "mlp", "adaptive", 1, config.seed)
    with ResultStore(out).try_claim(config, key):  # as another process would hold it (a distinct flock)
        assert main(argv) == 0
    text = capsys.readouterr().out
    assert "3 runs done" in text and "1 left to another process" in text and f"process {os.getpid()}" in text
    assert not ResultStore(out).has(config, key)
