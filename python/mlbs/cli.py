"""The ``mlbs`` command: datasets, single runs, comparisons and reports.

Subcommands (``mlbs <command> --help`` for the options):

``datasets``  the registered datasets, where they were found, and n, d, q, Card, MeanIR after the
              papers' preprocessing;
``run``       one (dataset, model, method) over its folds;
``compare``   a grid of datasets x models x methods x folds, then the report;
``report``    tables, Wilcoxon tests, time to target and convergence plots from stored results.

Results go to a store folder (``--out``, default ``runs/mlbs``): one record per finished
(dataset, model, method, fold, seed) and configuration, so an interrupted ``run`` or ``compare``
started again with the same options continues where it stopped.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
import time
from pathlib import Path

from mlbs.experiments.comparison import DEFAULT_METHODS, DEFAULT_MODELS

__all__ = ["main", "build_parser"]

DEFAULT_OUT = Path("runs") / "mlbs"


def _options(pairs: list[str] | None, flag: str) -> dict:
    """``["k=v", ...]`` -> dict; values parsed as JSON when possible, else kept as strings."""
    out = {}
    for item in pairs or []:
        if "=" not in item:
            raise SystemExit(f"mlbs: error: {flag} expects NAME=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


def _defaults_text() -> str:
    """The valid models and methods and the protocol's training defaults, for ``--help``."""
    from mlbs.experiments.config import MODEL_LR, PATIENCE, ExperimentConfig
    from mlbs.experiments.methods import METHODS

    c = ExperimentConfig()
    rates = ", ".join(f"{m} {lr:g}" for m, lr in MODEL_LR.items())
    return "\n".join(textwrap.fill(line, 100, subsequent_indent="  ") for line in (
            f"models: {', '.join(MODEL_LR)}",
            f"methods: {', '.join(METHODS)}",
            f"defaults of protocol mlbs: {c.epochs} epochs with early stopping after {PATIENCE} epochs without "
            f"a better validation Macro-AUC, batch {c.batch_size}, {c.n_folds} folds, seed {c.seed}, Adam "
            f"(weight decay {c.weight_decay:g}) with a {c.lr_warmup_epochs}-epoch linear LR warm-up to the "
            f"model's rate ({rates}), test with the best-validation-epoch weights.",
            "protocol paper-code: the authors' settings (lr 1e-4, 101 epochs, final-epoch weights, seed 42)."))


def _add_config_args(p: argparse.ArgumentParser, default_epochs: int | None = None) -> None:
    g = p.add_argument_group("protocol and training")
    g.add_argument("--protocol", default="mlbs", choices=["mlbs", "paper-code"],
                   help="settings preset (defined in mlbs/experiments/config.py; default: mlbs)")
    g.add_argument("--epochs", type=int, default=default_epochs,
                   help="training epochs (default: the protocol's, 100 for mlbs, 101 for paper-code)")
    g.add_argument("--folds", type=int, default=None, dest="n_folds", help="number of folds (default 5)")
    g.add_argument("--only-folds", type=int, nargs="+", default=None, metavar="K",
                   help="run only these held-out folds (0-based)")
    g.add_argument("--seeds", type=int, nargs="+", default=None,
                   help="seeds (default: the protocol's, 0 for mlbs, 42 for paper-code)")
    g.add_argument("--batch-size", type=int, default=None)
    g.add_argument("--lr", type=float, default=None,
                   help="base learning rate for every model (default: the model's, listed below)")
    g.add_argument("--patience", type=int, default=None,
                   help="early stopping after this many epochs without a better validation Macro-AUC; "
                        "0 trains every epoch (default: the protocol's, 20 for mlbs, 0 for paper-code)")
    g.add_argument("--checkpoint", choices=["best", "final"], default=None,
                   help="weights tested: best validation epoch or final epoch (default: the protocol's)")
    g.add_argument("--model-preset", choices=["mlbs", "papers", "original"], default=None,
                   help="model sizes: mlbs, papers (as in the seed paper's code) or original (each model's "
                        "own paper) (default: the protocol's, mlbs for mlbs, papers for paper-code)")
    g.add_argument("--method-option", action="append", metavar="NAME=VALUE",
                   help="extra policy argument, JSON value (repeatable), e.g. pressure=16")
    g.add_argument("--model-option", action="append", metavar="NAME=VALUE",
                   help="extra model configuration field, JSON value (repeatable)")
    g.add_argument("--no-train-eval-loss", action="store_true",
                   help="skip the per-epoch full training-set loss (faster; disables time-to-target on it)")
    o = p.add_argument_group("execution")
    o.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"result store folder (default: {DEFAULT_OUT})")
    o.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    o.add_argument("--no-progress", action="store_true", help="no progress bar")


def _add_executor_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("parallel and cluster runs (docs/cluster.md)")
    g.add_argument("--jobs", type=int, default=1,
                   help="runs at once in worker processes of this machine, each with --threads threads "
                        "(default 1: in this process)")
    g.add_argument("--executor", choices=["local", "ray"], default="local",
                   help="local: this machine (--jobs); ray: one Ray task per run (default: local)")
    g.add_argument("--address", default=None,
                   help="Ray cluster to join, e.g. auto or ray://head:10001 (default: a new local Ray)")
    g.add_argument("--cpus-per-run", type=float, default=1.0, help="Ray: CPUs per run, also its threads (default 1)")
    g.add_argument("--gpus-per-run", type=float, default=0.0, help="Ray: GPUs per run (default 0)")
    g.add_argument("--max-retries", type=int, default=2,
                   help="times a run whose worker died is started again before it is reported (default 2)")
    g.add_argument("--dry-run", action="store_true",
                   help="print the runs still to do and an estimate of their CPU time; train nothing")


def _executor(args):
    """The executor the options ask for (None: this process)."""
    from mlbs.experiments.executors import ProcessExecutor, RayExecutor

    if getattr(args, "executor", "local") == "ray":
        return RayExecutor(args.address, args.cpus_per_run, args.gpus_per_run, args.max_retries)
    if getattr(args, "address", None) is not None:
        raise ValueError("--address is an option of --executor ray")
    jobs = getattr(args, "jobs", 1)
    if jobs < 1:
        raise ValueError(f"--jobs must be >= 1, got {jobs}")
    return ProcessExecutor(jobs, args.threads, args.max_retries) if jobs > 1 else None


def _add_data_args(p: argparse.ArgumentParser, files: bool = True) -> None:
    g = p.add_argument_group("data")
    g.add_argument("--data-dir", type=Path, default=None, metavar="DIR",
                   help="folder holding the MULAN dataset folders of the registered datasets (as MLBS_DATA; "
                        "default: MLBS_DATA, else only the bundled yeast, scene, emotions)")
    if not files:
        return
    from mlbs.data.files import FORMATS

    g.add_argument("--data", nargs="+", type=Path, default=[], metavar="PATH",
                   help="own data files, each a dataset named <stem>-<hash>: ARFF (labels from the MULAN XML "
                        "beside it, --label-names or --label-count), .npz (keys X and Y, dense or CSR), CSV/TSV "
                        "(--label-names, --label-prefix or --label-count), multi-label LibSVM/svmlight "
                        "(.svm, .svmlight, .libsvm, .txt)")
    g.add_argument("--format", choices=sorted(FORMATS), default=None,
                   help="format of the --data files (default: from their names)")
    g.add_argument("--label-names", "--label-columns", dest="label_names", default=None, metavar="A,B,...",
                   type=lambda text: [t.strip() for t in text.split(",") if t.strip()],
                   help="comma-separated names of the label attributes (ARFF) or columns (CSV)")
    g.add_argument("--label-prefix", default=None, help="CSV: the label columns are those whose name starts so")
    g.add_argument("--label-count", type=int, default=None, metavar="Q",
                   help="the last Q attributes (ARFF) or columns (CSV) are the labels")
    g.add_argument("--xml", type=Path, default=None,
                   help="ARFF: the MULAN label XML (default: the XML of the same name beside the file)")
    g.add_argument("--allow-missing", action="store_true",
                   help="keep missing feature values as NaN instead of refusing the file")
    g.add_argument("--one-based", action="store_true",
                   help="LibSVM/svmlight: feature indices start at 1 (default: 0 with the repository's header "
                        "line, else guessed)")


def _own_data(args) -> list[str]:
    """Read the ``--data`` files; return their dataset names."""
    from mlbs.data.files import FORMATS, detect_format
    from mlbs.experiments.datasets import add_file

    given = {k: getattr(args, k) for k in ("label_names", "label_prefix", "label_count", "xml")
             if getattr(args, k) is not None}
    if args.allow_missing:
        given["allow_missing"] = True
    if args.one_based:
        given["zero_based"] = False
    formats = [args.format or detect_format(path) for path in args.data]
    unused = sorted(k for k in given if k != "allow_missing" and not any(k in FORMATS[f] for f in formats))
    if unused:
        raise ValueError(f"--{unused[0].replace('_', '-')} applies to none of the --data files "
                         f"({', '.join(sorted(set(formats)))})")
    if "xml" in given and len(args.data) > 1:
        raise ValueError("--xml names the label file of one ARFF file; give one --data path with it")
    return [add_file(path, format=fmt, **{k: v for k, v in given.items() if k == "allow_missing" or k in FORMATS[fmt]})
            for path, fmt in zip(args.data, formats)]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``mlbs``."""
    parser = argparse.ArgumentParser(prog="mlbs", description=__doc__.split("\n\n")[0], epilog=_defaults_text(),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    from mlbs import __version__

    parser.add_argument("--version", action="version", version=f"mlbs {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("datasets", help="list the datasets with n, d, q, Card, MeanIR",
                       description="The registered datasets, where their files were found, and their size and "
                                   "label statistics after the papers' preprocessing (feature retention, labels "
                                   "with at most 20 positives dropped).")
    p.add_argument("names", nargs="*", help="only these datasets")
    p.add_argument("--registry-only", action="store_true",
                   help="do not load the files: print the registered raw n, d, q, Card")
    _add_data_args(p)
    p.set_defaults(func=cmd_datasets)

    p = sub.add_parser("run", help="train one (dataset, model, method) over its folds", epilog=_defaults_text(),
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Train and evaluate one dataset x model x method over the folds; "
                                   "store one record per fold and print the test metrics.")
    p.add_argument("--dataset", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--method", required=True)
    _add_config_args(p)
    _add_data_args(p, files=False)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("compare", help="run a grid of datasets x models x methods x folds, then report",
                       epilog=_defaults_text(), formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Run every dataset x model x method x fold (resuming from the store), then "
                                   "write the report (tables, Wilcoxon tests, time to target, convergence "
                                   "plots) and print the tables and the paths of the plots.")
    p.add_argument("--datasets", nargs="+", default=[], help="registered datasets (mlbs datasets lists them)")
    p.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS))
    p.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS))
    p.add_argument("--report-dir", type=Path, default=None, help="default: <out>/report-<config hash>")
    p.add_argument("--no-plots", action="store_true")
    _add_data_args(p)
    _add_config_args(p)
    _add_executor_args(p)
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("report", help="tables, tests and plots from stored results",
                       description="Write report.md, table2.csv and the convergence plots of one stored "
                                   "configuration, and print the tables.")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"result store folder (default: {DEFAULT_OUT})")
    p.add_argument("--config", default=None, help="configuration hash (needed when the store holds several)")
    p.add_argument("--report-dir", type=Path, default=None, help="default: <out>/report-<config hash>")
    p.add_argument("--baseline", default="random")
    p.add_argument("--no-plots", action="store_true")
    p.set_defaults(func=cmd_report)
    return parser


# ------------------------------------------------------------------------------------------ commands
def cmd_datasets(args) -> int:
    """Print the dataset table."""
    from mlbs.data import load_dataset
    from mlbs.data.preprocess import preprocess
    from mlbs.data.registry import REGISTRY, find_dataset_files
    from mlbs.experiments.datasets import FEATURE_FRACTION, canonical_dataset
    from mlbs.statistics.labels import label_stats

    from mlbs.experiments.datasets import data_sources

    own = _own_data(args)
    names = [canonical_dataset(n) for n in args.names] or ([] if own else sorted(REGISTRY, key=str.lower))
    header = "| dataset | n | d | q | Card | MeanIR | source |"
    print(header + "\n|---|---|---|---|---|---|---|")
    for source in data_sources(own):
        data = preprocess(source.data, scale_fit=None)
        st = label_stats(data.Y)
        how = source.data.info.get("labels_from") or ", ".join(f"{k}={v}" for k, v in source.options) or "as stored"
        print(f"| {source.name} | {data.n} | {data.d} | {data.q} | {st.card:.3f} | {st.mean_ir:.2f} | "
              f"{source.origin} ({source.format}; labels: {how}) |")
    for name in names:
        spec = REGISTRY[name]
        try:
            _, _, origin = find_dataset_files(name)
        except FileNotFoundError:
            origin = "missing"
        if args.registry_only or origin == "missing":
            print(f"| {name} | {spec.n} | {spec.d} | {spec.q} | {spec.cardinality} | – | {origin} (raw, registry) |")
            continue
        data = preprocess(load_dataset(name), feature_fraction=FEATURE_FRACTION.get(name, 1.0), scale_fit=None)
        st = label_stats(data.Y)
        print(f"| {name} | {data.n} | {data.d} | {data.q} | {st.card:.3f} | {st.mean_ir:.2f} | {origin} |")
    print("\nAfter preprocessing: feature retention (rcv1 2 %, yahoo 5 %) and labels with at most 20 "
          "positives dropped, as in the papers' code.")
    from mlbs.data.cache import default_cache_dir

    cache = default_cache_dir()
    size = sum(f.stat().st_size for f in cache.glob("*.npz")) / 1e6 if cache.is_dir() else 0.0
    print(f"Parsed files are cached in {cache} ({size:.0f} MB); set MLBS_CACHE to another folder to move the "
          "cache, delete the folder to free the space (it is rebuilt when needed).")
    return 0


def _config(args):
    from mlbs.experiments.config import ExperimentConfig

    seeds = args.seeds
    return ExperimentConfig.for_protocol(
        args.protocol, epochs=args.epochs, n_folds=args.n_folds, batch_size=args.batch_size, lr=args.lr,
        checkpoint=args.checkpoint, patience=args.patience, model_preset=args.model_preset,
        seed=None if not seeds else seeds[0],
        method_options=_options(args.method_option, "--method-option") or None,
        model_options=_options(args.model_option, "--model-option") or None,
        eval_train_loss=False if args.no_train_eval_loss else None)


def _execute(args, datasets, models, methods):
    """Build the grid and run it with a progress bar; return (config, store, summary)."""
    import torch
    from tqdm import tqdm

    from mlbs.experiments.runner import Grid, run_grid
    from mlbs.experiments.store import ResultStore

    torch.set_num_threads(max(1, args.threads))
    config = _config(args)
    folds = args.only_folds if args.only_folds is not None else range(config.n_folds)
    grid = Grid(tuple(datasets), tuple(models), tuple(methods), tuple(folds), tuple(args.seeds or [config.seed]))
    store = ResultStore(args.out)
    pending = [k for k in grid.keys() if not store.has(config, k)]
    print(f"configuration {config.hash()} ({config.protocol}, {config.epochs} epochs): {len(grid.keys())} runs, "
          f"{len(grid.keys()) - len(pending)} already stored, {len(pending)} to do; store: {args.out}",
          file=sys.stderr)
    if getattr(args, "dry_run", False):
        from mlbs.experiments.estimate import estimate_runs

        bill = estimate_runs(pending, config)
        print(f"{len(pending)} runs to do; estimated CPU time (one thread per run, at most {config.epochs} epochs "
              f"each; measured costs: mlbs/experiments/epoch_costs.json):\n{bill.table()}")
        return config, store, None
    executor = _executor(args)
    bar = tqdm(total=len(pending) * config.epochs, unit="epoch", disable=args.no_progress, dynamic_ncols=True,
               file=sys.stderr)
    seen = {}  # epochs reported per run; a run that stops early or reports none is completed on_done

    def on_epoch(key, epoch, epochs):
        bar.set_description(f"{key.dataset}/{key.model}/{key.method} fold {key.fold} epoch {epoch + 1}/{epochs}",
                            refresh=False)
        seen[key] = seen.get(key, 0) + 1
        bar.update(1)

    def on_done(key, result):
        bar.set_description(f"{key.dataset}/{key.model}/{key.method} fold {key.fold} done", refresh=False)
        bar.update(config.epochs - seen.pop(key, 0))
        if result.get("best_is_last"):
            bar.write(f"mlbs: warning: {key.label()}: the best validation epoch is the last of {result['epochs_run']} "
                      "trained, so the model had not converged (raise --epochs or --lr)", file=sys.stderr)

    t0 = time.perf_counter()
    try:
        summary = run_grid(grid, config, store, executor=executor, on_epoch=on_epoch, on_done=on_done)
    finally:
        bar.close()
    for failure in summary["failed"]:
        print(f"mlbs: {failure.key.label()} did not finish:\n{failure.message}", file=sys.stderr)
    summary["seconds"] = time.perf_counter() - t0
    return config, store, summary


def cmd_run(args) -> int:
    """Run one (dataset, model, method) and print its fold metrics."""
    from mlbs.experiments.aggregate import aggregate
    from mlbs.experiments.report import convergence_warnings, dataset_table_markdown

    config, store, summary = _execute(args, [args.dataset], [args.model], [args.method])
    key = summary["done"][0] if summary["done"] else summary["skipped"][0]
    records = [r for r in store.load(summary["config_hash"])
               if (r["key"]["dataset"], r["key"]["model"], r["key"]["method"]) == (key.dataset, key.model, key.method)]
    print(dataset_table_markdown(aggregate(records), key.model, key.dataset, [key.method]))
    for line in convergence_warnings(records):
        print(f"warning, not converged: {line}")
    print(f"{len(summary['done'])} runs done in {summary['seconds']:.1f} s, {len(summary['skipped'])} found in the "
          f"store; records under {store.root / 'records' / summary['config_hash']}")
    return 0


def _print_report(store, config_hash, report_dir, baseline="random", plots=True) -> None:
    from mlbs.experiments.report import write_report

    files = write_report(store, config_hash, report_dir, baseline=baseline, plots=plots)
    print(files.summary)
    print(f"report: {files.markdown}\ntable (CSV): {files.csv}")
    for p in files.plots:
        print(f"plot: {p}")


def cmd_compare(args) -> int:
    """Run the grid, then report (``--dry-run``: only the estimate)."""
    from mlbs.experiments.datasets import data_sources

    own = _own_data(args)
    if not own and not args.datasets:
        raise ValueError("name the data: --datasets NAME ... (registered) and/or --data PATH ... (own files)")
    config, store, summary = _execute(args, [*args.datasets, *own], args.models, args.methods)
    if summary is None:
        return 0
    for source in data_sources(own):
        store.save_dataset(source.describe())
    h = summary["config_hash"]
    failed = f", {len(summary['failed'])} failed (no record; see above)" if summary["failed"] else ""
    busy = ""
    if summary.get("busy"):
        holder = store.holder(config, summary["busy"][0]) or {}
        busy = (f", {len(summary['busy'])} left to another process running them on this store (process "
                f"{holder.get('pid', '?')} on {holder.get('host', '?')}; report again when it is done)")
    print(f"{len(summary['done'])} runs done in {summary['seconds']:.1f} s, {len(summary['skipped'])} found in the "
          f"store{failed}{busy} (configuration {h})\n")
    _print_report(store, h, args.report_dir or args.out / f"report-{h}", plots=not args.no_plots)
    return 1 if summary["failed"] else 0


def cmd_report(args) -> int:
    """Report one stored configuration."""
    from mlbs.experiments.config import PROTOCOL_VERSION
    from mlbs.experiments.store import ResultStore

    store = ResultStore(args.out)
    stored = store.hashes()
    if not stored:
        raise SystemExit(f"mlbs: error: no results in {args.out}")
    hashes = [x for x in stored if store.config(x).get("protocol_version", 1) == PROTOCOL_VERSION]
    old = [x for x in stored if x not in hashes]
    if old:
        print(f"mlbs: {args.out} also holds {len(old)} configuration(s) of an older protocol version "
              f"({', '.join(old)}); this mlbs (protocol version {PROTOCOL_VERSION}) ignores them and never mixes "
              "them with new records", file=sys.stderr)
    if args.config in old:
        raise SystemExit(f"mlbs: error: configuration {args.config} was recorded under an older protocol version; "
                         f"report it with the mlbs that made it")
    if not hashes:
        raise SystemExit(f"mlbs: error: no results of protocol version {PROTOCOL_VERSION} in {args.out}")
    h = args.config
    if h is None:
        if len(hashes) > 1:
            lines = "\n".join(f"  {x}: protocol {store.config(x)['protocol']}, {store.config(x)['epochs']} epochs"
                              for x in hashes)
            raise SystemExit(f"mlbs: error: {args.out} holds several configurations; choose one with --config:\n"
                             f"{lines}")
        h = hashes[0]
    elif h not in hashes:
        raise SystemExit(f"mlbs: error: no configuration {h!r} in {args.out}; stored: {', '.join(hashes)}")
    _print_report(store, h, args.report_dir or args.out / f"report-{h}", args.baseline,
                  not args.no_plots)
    return 0


def main(argv=None) -> int:
    """Entry point of the ``mlbs`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "data_dir", None) is not None:
        os.environ["MLBS_DATA"] = str(args.data_dir)  # also read by worker processes
    try:
        return args.func(args)
    except (ValueError, KeyError, FileNotFoundError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"mlbs: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nmlbs: interrupted; finished runs are stored, start the same command again to continue",
              file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
