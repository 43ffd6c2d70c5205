"""Executors: where the runs of a grid are trained.

:func:`mlbs.experiments.runner.run_grid` owns the result store: it decides which runs are still
to do, hands them to an executor and writes each record as the executor returns it. An executor
only trains. ``executor.run(tasks, on_start, on_epoch)`` yields ``(key, outcome)`` in the order the
runs finish, the outcome being the run's result (a dict) or a :class:`RunFailure`.

:class:`SerialExecutor`
    In this process, one run at a time; an exception stops the grid, as in any Python loop.
:class:`ProcessExecutor`
    ``jobs`` worker processes on this machine, each with its own thread count.
:class:`RayExecutor`
    One Ray task per run, on a local Ray instance or an existing cluster.

A run is deterministic given its key, its configuration and its thread count (seeded folds,
weights and draws; the selection kernels sum in a fixed order whatever the thread count, torch's
reductions do not), so every executor gives the records of a serial run with the same number of
threads per run; the tests compare them. A run that fails in a worker is reported and the others go
on; a worker that dies (killed, out of memory) has its run started again, at most ``max_retries``
times, and the run is then reported. Only finished runs come back, so a record is written once.

This module imports neither torch nor numba at import time, so that a worker can fix its thread
counts (:func:`limit_threads`) before they load.
"""
from __future__ import annotations

import os
import queue
import signal
import threading
import traceback
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Union

from .config import ExperimentConfig
from .store import RunKey

__all__ = ["RunTask", "RunFailure", "SerialExecutor", "ProcessExecutor", "RayExecutor", "limit_threads",
           "execute"]

#: Environment variables that size the thread pools of the numerical libraries (OpenMP, BLAS,
#: Numba), read when those libraries load.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS")

StartFn = Callable[[RunKey], None]
EpochFn = Callable[[RunKey, int, int], None]


@dataclass(frozen=True)
class RunTask:
    """One run to train: its identity and configuration."""

    key: RunKey
    config: ExperimentConfig


@dataclass(frozen=True)
class RunFailure:
    """A run that did not finish: its key and why (a traceback or the executor's message)."""

    key: RunKey
    message: str


Outcome = Union[dict, RunFailure]


def limit_threads(n: int) -> None:
    """Use ``n`` threads in torch, Numba and FAISS for the rest of this process.

    Meant for a worker process that trains one run at a time: the environment variables are set
    first, so libraries loaded later (and their OpenMP runtime) start with ``n`` threads; then the
    libraries already able to change at run time are set explicitly.
    """
    n = int(n)
    if n < 1:
        raise ValueError(f"the thread count must be >= 1, got {n}")
    for name in THREAD_VARIABLES:
        os.environ[name] = str(n)
    import faiss
    import numba
    import torch

    torch.set_num_threads(n)
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    faiss.omp_set_num_threads(n)


def execute(task: RunTask, progress: Callable[[int, int], None] | None = None) -> dict:
    """Train one run; ``progress(epoch, epochs)`` after each epoch."""
    from .loop import run_fold

    key = task.key
    return run_fold(key.dataset, key.model, key.method, key.fold, task.config, seed=key.seed, progress=progress)


# ----------------------------------------------------------------------------------------- serial
class SerialExecutor:
    """Every run in this process, one after the other (exceptions propagate)."""

    def run(self, tasks: Iterable[RunTask], on_start: StartFn | None = None,
            on_epoch: EpochFn | None = None) -> Iterator[tuple[RunKey, Outcome]]:
        for task in tasks:
            if on_start is not None:
                on_start(task.key)
            hook = None if on_epoch is None else (lambda e, n, _k=task.key: on_epoch(_k, e, n))
            yield task.key, execute(task, hook)


# -------------------------------------------------------------------------------- worker processes
def _exit_with_parent(parent: int) -> None:
    """End this worker when its parent is gone (``kill -9`` of the driver leaves no orphans)."""
    while True:
        threading.Event().wait(1.0)
        if os.getppid() != parent:
            os._exit(1)


def _worker_main(inbox, outbox, threads: int, parent: int) -> None:
    """Loop of a worker process: take a task from ``inbox``, train it, report on ``outbox``.

    Messages sent: ``("epoch", epoch, epochs)`` after each epoch, then ``("done", result)`` or
    ``("error", traceback)``. Ctrl-C is left to the driver, which ends the workers itself.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()
    limit_threads(threads)
    while True:
        task = inbox.get()
        if task is None:
            return
        try:
            result = execute(task, lambda e, n: outbox.put(("epoch", e, n)))
        except Exception:  # reported to the driver, which goes on with the other runs
            outbox.put(("error", traceback.format_exc()))
        else:
            outbox.put(("done", result))


class ProcessExecutor:
    """``jobs`` worker processes on this machine, one run each at a time.

    Parameters
    ----------
    jobs : int
        Number of worker processes (runs at once).
    threads : int
        Threads of torch, Numba and FAISS in each worker (:func:`limit_threads`).
    max_retries : int
        How many times a run whose worker died is started again before it is reported.

    Notes
    -----
    Workers are started with the ``spawn`` method (a fresh interpreter: no inherited torch or
    OpenMP state, the same on every platform), each with its own task queue, so the driver always
    knows which run a worker holds. Workers end when their driver ends, whatever the way.
    """

    def __init__(self, jobs: int, threads: int = 1, max_retries: int = 1) -> None:
        if int(jobs) < 1:
            raise ValueError(f"jobs must be >= 1, got {jobs}")
        if int(threads) < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        if int(max_retries) < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        self.jobs, self.threads, self.max_retries = int(jobs), int(threads), int(max_retries)

    def run(self, tasks: Iterable[RunTask], on_start: StartFn | None = None,
            on_epoch: EpochFn | None = None) -> Iterator[tuple[RunKey, Outcome]]:
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        source = iter(tasks)  # taken one at a time, as workers become free
        retry: list[RunTask] = []
        attempts: dict[RunKey, int] = {}
        workers: dict[int, tuple] = {}  # slot -> (process, inbox, outbox, task or None)

        def next_task():
            return retry.pop() if retry else next(source, None)

        def start_worker(slot):
            inbox, outbox = ctx.SimpleQueue(), ctx.Queue()
            proc = ctx.Process(target=_worker_main, args=(inbox, outbox, self.threads, os.getpid()),
                               name=f"mlbs-worker-{slot}", daemon=True)
            proc.start()
            workers[slot] = (proc, inbox, outbox, None)

        def assign(slot, task):
            if slot not in workers or not workers[slot][0].is_alive():
                start_worker(slot)
            proc, inbox, outbox, _ = workers[slot]
            attempts[task.key] = attempts.get(task.key, 0) + 1
            workers[slot] = (proc, inbox, outbox, task)
            if on_start is not None:
                on_start(task.key)
            inbox.put(task)

        try:
            for slot in range(self.jobs):
                task = next_task()
                if task is None:
                    break
                assign(slot, task)
            while any(w[3] is not None for w in workers.values()):
                for slot in list(workers):
                    proc, inbox, outbox, task = workers[slot]
                    if task is None:
                        continue
                    outcome = None
                    try:
                        message = outbox.get(timeout=0.05)
                    except queue.Empty:
                        if proc.is_alive():
                            continue
                        # died while holding a run: that run is started again or reported
                        proc.join()
                        if attempts[task.key] <= self.max_retries:
                            retry.append(task)
                        else:
                            outcome = RunFailure(task.key, f"its worker process died (exit code {proc.exitcode}) "
                                                           f"in each of {attempts[task.key]} attempts")
                    else:
                        if message[0] == "epoch":
                            if on_epoch is not None:
                                on_epoch(task.key, message[1], message[2])
                            continue
                        outcome = message[1] if message[0] == "done" else RunFailure(task.key, message[1])
                    workers[slot] = (proc, inbox, outbox, None)
                    following = next_task()  # keep the worker busy while the driver stores the outcome
                    if following is not None:
                        assign(slot, following)
                    if outcome is not None:
                        yield task.key, outcome
        finally:
            for proc, inbox, _, task in workers.values():
                if task is None and proc.is_alive():  # idle: asked to end
                    inbox.put(None)
                else:
                    proc.terminate()  # an unfinished run: it has no record, a later grid runs it again
            for proc, *_ in workers.values():
                proc.join()


# ---------------------------------------------------------------------------------------------- Ray
def _ray_execute(task: RunTask, threads: int) -> dict:
    """Body of the Ray task of one run."""
    limit_threads(threads)
    return execute(task)


class RayExecutor:
    """One Ray task per run.

    Parameters
    ----------
    address : str, optional
        Ray cluster to join (``"auto"``, ``"ray://host:10001"``, ``"host:6379"``); default: a Ray
        instance already initialised in this process, else a new local one.
    cpus_per_run : float
        CPUs each task asks for; the run uses ``max(1, round(cpus_per_run))`` threads.
    gpus_per_run : float
        GPUs each task asks for (fractions share a GPU).
    max_retries : int
        Ray restarts a task whose worker died (node lost, killed, out of memory) up to this many
        times; an exception raised by the run itself is not retried (it would fail again).

    Notes
    -----
    The records come back to the driver, which writes them: the store needs no shared file
    system. Progress is known per finished run (Ray tasks report nothing while they run).
    """

    def __init__(self, address: str | None = None, cpus_per_run: float = 1.0, gpus_per_run: float = 0.0,
                 max_retries: int = 2) -> None:
        if not cpus_per_run > 0:
            raise ValueError(f"cpus_per_run must be > 0, got {cpus_per_run}")
        if not gpus_per_run >= 0:
            raise ValueError(f"gpus_per_run must be >= 0, got {gpus_per_run}")
        if int(max_retries) < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        self.address, self.cpus_per_run, self.gpus_per_run = address, float(cpus_per_run), float(gpus_per_run)
        self.max_retries = int(max_retries)

    def run(self, tasks: Iterable[RunTask], on_start: StartFn | None = None,
            on_epoch: EpochFn | None = None) -> Iterator[tuple[RunKey, Outcome]]:
        try:
            import ray
        except ImportError as exc:
            raise ImportError("the Ray executor needs ray: pip install 'mlbs[cluster]'") from exc
        started_here = not ray.is_initialized()
        if started_here:
            ray.init(address=self.address, include_dashboard=False, log_to_driver=False)
        remote = ray.remote(_ray_execute).options(
            num_cpus=self.cpus_per_run, num_gpus=self.gpus_per_run, max_retries=self.max_retries,
            retry_exceptions=False, name="mlbs-run")
        threads = max(1, round(self.cpus_per_run))
        pending = {}
        try:
            for task in tasks:
                pending[remote.remote(task, threads)] = task
                if on_start is not None:
                    on_start(task.key)
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    task = pending.pop(ref)
                    try:
                        outcome = ray.get(ref)
                    except ray.exceptions.RayTaskError as exc:  # the run raised
                        outcome = RunFailure(task.key, str(exc))
                    except ray.exceptions.RayError as exc:  # its worker died max_retries + 1 times
                        outcome = RunFailure(task.key, f"{type(exc).__name__} after {self.max_retries} "
                                                       f"retries: {exc}")
                    yield task.key, outcome
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)
            if started_here:
                ray.shutdown()
