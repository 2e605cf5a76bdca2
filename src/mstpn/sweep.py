"""Sweeps that survive being killed: many independent jobs, one result file each, any executor.

A job is a small JSON-able ``spec`` (a dict) handed to a job function named as ``"module:function"``
(importable in a fresh process, so any executor can run it). Its id is derived from the function name
and the spec's content (:func:`job_id`), and its result is written atomically to ``DIR/<id>.json``
(temporary file, then rename) the moment it finishes. A rerun of the same sweep skips every id whose
result file is there and valid, so a sweep killed at any point (kill -9 included) resumes without
redoing finished jobs; a damaged result file is reported and the job runs again.

Executors: ``serial`` (in this process, for tests and debugging), ``local`` (a fresh process per
job, at most ``workers`` at a time; each sets its torch thread count before torch is imported) and
``ray`` (Ray Core tasks with ``num_cpus`` = threads per job, on a local Ray or an existing cluster:
``ray_address`` or ``RAY_ADDRESS``; optional extra ``pip install 'mstpn[ray]'``; the cluster's
workers need mstpn and the job's module installed).
Workers return each record to this process, which writes the result files, so a cluster needs no
shared disk.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

from tqdm import tqdm

from mstpn.atomic import atomic_write_json
from mstpn.errors import UserError

EXECUTORS = ("serial", "local", "ray")
RAY_CONNECT_TIMEOUT_S = 10.0
"""How long to wait for a Ray cluster's address to answer (a wrong address otherwise hangs ray.init)."""


def job_id(function: str, spec: dict) -> str:
    """16 hex digits of the SHA-256 of the function name and the canonical JSON of ``spec``."""
    try:
        text = json.dumps({"function": function, "spec": spec}, sort_keys=True, separators=(",", ":"))
    except TypeError as exc:
        raise UserError(f"sweep job spec: must be JSON-able ({exc})") from None
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def resolve(function: str) -> Callable[[dict], dict]:
    """The job function named ``"module:function"``."""
    module, _, name = function.partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        raise UserError(f"sweep function: cannot import {function!r} (expected 'module:function')") from None


def _set_threads(threads: int) -> None:
    """Worker start: thread counts before torch is imported (and again after, should it be)."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)
    import torch

    torch.set_num_threads(threads)


def compute_job(function: str, spec: dict, threads: int | None = None) -> dict:
    """Run one job (in whatever process the executor chose); returns its record for the result file."""
    if threads is not None:
        _set_threads(threads)
    start = time.perf_counter()
    result = resolve(function)(spec)
    return {"id": job_id(function, spec), "function": function, "spec": spec, "result": result,
            "wall_s": round(time.perf_counter() - start, 3)}


def load_result(path: Path) -> dict | None:
    """A finished job's record, or None when the file is missing or damaged."""
    try:
        record = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return record if isinstance(record, dict) and "result" in record else None


def run_sweep(function: str, specs: Iterable[dict], out: str | os.PathLike, *, executor: str = "local",
              threads_per_job: int = 1, workers: int | None = None, ray_address: str | None = None,
              progress: bool = True) -> dict[str, dict]:
    """Run every job of ``specs`` not yet finished in ``out``; returns {id: record} of all of them.

    ``local`` runs ``workers`` processes (default: cores // threads_per_job, at least 1), each with
    ``threads_per_job`` torch threads; ``ray`` asks ``threads_per_job`` CPUs per task of the Ray at
    ``ray_address`` (default ``RAY_ADDRESS``, else a local Ray started for the sweep).
    """
    if executor not in EXECUTORS:
        raise UserError(f"--executor: must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    if threads_per_job < 1:
        raise UserError(f"--threads-per-job: must be >= 1, got {threads_per_job}")
    resolve(function)  # a wrong name fails here, before any work
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    jobs = {job_id(function, spec): spec for spec in specs}
    done: dict[str, dict] = {}
    for ident in jobs:
        path = out / f"{ident}.json"
        record = load_result(path)
        if record is not None:
            done[ident] = record
        elif path.exists():
            print(f"sweep: {path} is damaged; running that job again")
    todo = [ident for ident in jobs if ident not in done]
    bar = tqdm(total=len(jobs), initial=len(done), unit="job", desc="sweep", disable=not progress)
    for record in _execute(function, [jobs[i] for i in todo], executor, threads_per_job, workers,
                           ray_address):
        atomic_write_json(out / f"{record['id']}.json", record)
        done[record["id"]] = record
        bar.update(1)
    bar.close()
    return {ident: done[ident] for ident in jobs}


def _execute(function: str, specs: list[dict], executor: str, threads: int, workers: int | None,
             ray_address: str | None) -> Iterator[dict]:
    """Records of the jobs of ``specs``, in the order they finish."""
    if executor == "serial":
        for spec in specs:
            yield compute_job(function, spec)
    elif executor == "local":
        workers = workers or max(1, (os.cpu_count() or 1) // threads)
        # spawn, one job per process: each job starts clean (its thread settings come before its torch
        # import, and nothing an earlier job did, such as torch.compile's per-process caches filling
        # up, carries over)
        fresh = {"max_tasks_per_child": 1} if sys.version_info >= (3, 11) else {}  # 3.10: reused workers
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"),
                                 initializer=_set_threads, initargs=(threads,), **fresh) as pool:
            futures = [pool.submit(compute_job, function, spec, threads) for spec in specs]
            for future in as_completed(futures):
                yield future.result()
    else:
        yield from _execute_ray(function, specs, threads, ray_address)


def _execute_ray(function: str, specs: list[dict], threads: int, address: str | None) -> Iterator[dict]:
    address = address or os.environ.get("RAY_ADDRESS")
    if address and address not in ("auto", "local"):
        _check_reachable(address)
    try:
        import ray
    except ImportError:
        raise UserError("--executor ray: Ray is not installed (pip install 'mstpn[ray]')") from None
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    try:
        task = ray.remote(num_cpus=threads)(compute_job)
        pending = [task.remote(function, spec, threads) for spec in specs]
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            yield ray.get(ready[0])
    finally:
        if started:
            ray.shutdown()


def _check_reachable(address: str) -> None:
    """Refuse a Ray address whose host:port does not answer within RAY_CONNECT_TIMEOUT_S."""
    import socket

    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=RAY_CONNECT_TIMEOUT_S):
            pass
    except (OSError, ValueError):
        raise UserError(f"--ray-address {address}: nothing answers there within {RAY_CONNECT_TIMEOUT_S:g} s "
                        "(expected HOST:PORT of a running `ray start --head`)") from None
