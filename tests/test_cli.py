"""The ``mlbs`` command line: help, datasets, run, compare (with resume), report, errors."""
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import torch

import mlbs
from mlbs.cli import main

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[1]
TINY = ["--epochs", "2", "--folds", "2", "--no-train-eval-loss"]


def test_entry_point_is_declared():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, func = scripts["mlbs"].split(":")
    assert (module, func) == ("mlbs.cli", "main")


@pytest.mark.parametrize("command", [[], ["datasets"], ["run"], ["compare"], ["report"]])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main(command + ["--help"])
    assert exc.value.code == 0
    assert "usage: mlbs" in capsys.readouterr().out


def test_module_runs_as_a_script():
    out = subprocess.run([sys.executable, "-m", "mlbs.cli", "--help"], capture_output=True, text=True,
                         env={"PYTHONPATH": str(Path(mlbs.__file__).resolve().parents[1])}, check=True)
    assert "compare" in out.stdout and "report" in out.stdout


def test_datasets_lists_statistics(capsys):
    assert main(["datasets", "yeast", "emotions"]) == 0
    out = capsys.readouterr().out
    assert "| yeast | 2417 | 103 | 14 | 4.237 | 7.20 |" in out
    assert "| emotions | 593 | 72 | 6 | 1.868 | 1.48 |" in out
    assert "Parsed files are cached in " in out and "MLBS_CACHE" in out


@pytest.mark.parametrize("argv, valid", [
    (["run", "--dataset", "yeest", "--model", "mlp", "--method", "random"], "yeast"),
    (["run", "--dataset", "yeast", "--model", "mpl", "--method", "random"], "mlp"),
    (["run", "--dataset", "yeast", "--model", "mlp", "--method", "adaptiv"], "adaptive"),
    (["datasets", "nope"], "emotions"),
])
def test_unknown_names_list_the_valid_ones(argv, valid, capsys, tmp_path):
    assert main(argv + (["--out", str(tmp_path)] if argv[0] == "run" else [])) == 2
    err = capsys.readouterr().err
    assert "mlbs: error: unknown" in err and valid in err


def test_compare_runs_resumes_and_reports(tmp_path, capsys):
    out = tmp_path / "store"
    argv = ["compare", "--datasets", "emotions", "--methods", "random", "adaptive", "--out", str(out)] + TINY
    assert main(argv) == 0
    cap = capsys.readouterr()
    assert "emotions/mlp/adaptive fold 1 done: 100%" in cap.err  # the progress bar
    assert "4 to do" in cap.err
    assert "| Macro-F1 ↑ |" in cap.out
    plots = [line.split(": ", 1)[1] for line in cap.out.splitlines() if line.startswith("plot: ")]
    assert len(plots) == 1 and Path(plots[0]).is_file() and plots[0].endswith(".png")
    assert main(argv) == 0  # everything is stored: nothing is run again
    cap = capsys.readouterr()
    assert "4 already stored, 0 to do" in cap.err and "0 runs done" in cap.out
    # a second configuration in the same store: report must be told which one
    assert main(["run", "--dataset", "emotions", "--model", "mlp", "--method", "random", "--out", str(out),
                 "--epochs", "1", "--folds", "2", "--only-folds", "0", "--no-progress"]) == 0
    capsys.readouterr()
    with pytest.raises(SystemExit, match="several configurations"):
        main(["report", "--out", str(out)])
    hashes = sorted(p.name for p in (out / "records").iterdir())
    assert main(["report", "--out", str(out), "--config", hashes[0], "--no-plots"]) == 0
    assert "report:" in capsys.readouterr().out


def test_version_and_help_list_models_methods_and_defaults(capsys):
    from mlbs import __version__
    from mlbs.experiments.config import MODEL_LR, PATIENCE
    from mlbs.experiments.methods import METHODS
    from mlbs.models import MODELS

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out.strip() == f"mlbs {__version__}"
    with pytest.raises(SystemExit):
        main(["compare", "--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    assert f"models: {', '.join(MODELS)}" in text and f"methods: {', '.join(METHODS)}" in text
    assert f"early stopping after {PATIENCE} epochs" in text and f"mlp {MODEL_LR['mlp']:g}" in text


def test_report_ignores_records_of_an_older_protocol_version(tmp_path, capsys):
    import json

    out = tmp_path / "store"
    argv = ["run", "--dataset", "emotions", "--model", "mlp", "--method", "random", "--out", str(out),
            "--epochs", "1", "--folds", "2", "--only-folds", "0", "--no-progress"]
    assert main(argv) == 0
    (new,) = [p.name for p in (out / "records").iterdir()]
    # the same store as an older mlbs left it: a configuration without the protocol version
    old_config = json.loads((out / "configs" / f"{new}.json").read_text())
    del old_config["config"]["protocol_version"]
    (out / "configs" / "0123456789ab.json").write_text(json.dumps(old_config))
    (out / "records" / "0123456789ab").mkdir()
    capsys.readouterr()
    assert main(["report", "--out", str(out), "--no-plots"]) == 0  # only the current configuration
    cap = capsys.readouterr()
    assert "older protocol version (0123456789ab)" in cap.err and "never mixes" in cap.err
    assert f"configuration {new}" in (out / f"report-{new}" / "report.md").read_text()
    with pytest.raises(SystemExit, match="older protocol version"):
        main(["report", "--out", str(out), "--config", "0123456789ab"])


def test_a_run_whose_best_epoch_is_its_last_is_reported_as_not_converged(tmp_path, capsys):
    argv = ["run", "--dataset", "emotions", "--model", "mlp", "--method", "random", "--out", str(tmp_path),
            "--epochs", "1", "--folds", "2", "--only-folds", "0"]
    assert main(argv) == 0  # with one epoch the best epoch is always the last
    cap = capsys.readouterr()
    assert "emotions/mlp/random fold 0 seed 0: the best validation epoch is the last of 1 trained" in cap.err
    assert "warning, not converged: emotions/mlp/random fold 0 seed 0" in cap.out

