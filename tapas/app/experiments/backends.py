"""Where jobs run: this process, a local process pool, or a Ray cluster.

Every backend keeps one contract, :func:`map_jobs`: call ``fn(*args)`` for each
``args`` tuple somewhere, and hand each result (or error) to ``on_result`` *in the
calling process*, in completion order, with a bounded number of jobs in flight. Only
the caller sees results, so only the caller writes the LDE (DuckDB has one writer),
and a job function never needs a database, settings or a shared file system.

* ``local`` (the default): ``workers`` spawned processes, or this process when
  ``workers`` is 0;
* ``ray``: one Ray task per job, declaring one CPU, and one GPU when the job's device
  is ``cuda`` (or ``auto`` on a cluster that has GPUs); a task whose worker process or
  node dies is retried (``max_retries``), a task that raises is not. ``address`` None
  starts a local Ray instance (``workers`` CPUs, all cores when 0) for the duration of
  the call; ``auto`` or ``ray://host:10001`` joins a running cluster, whose nodes need
  ``tapas`` installed. A Ray session opened by the caller (:func:`ray_session`) is
  reused, so one command pays Ray's start-up once.

Ray is an optional dependency (``pip install 'tapas-nas[ray]'``), imported only here
and only when the ``ray`` backend is chosen.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import socket
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any

BACKENDS = ("local", "ray")
RAY_MISSING = "the ray backend needs Ray: pip install 'tapas-nas[ray]'"
LOCAL_RAY_OBJECT_STORE = 256 * 1024**2
"""Object store of a Ray instance started here: results are small dicts, keep it modest."""
MAX_RETRIES = 3
"""Retries of a Ray task whose worker process or node was lost."""

OnResult = Callable[[int, Any, BaseException | None], None]
"""``on_result(index, result, error)``: ``result`` is None when ``error`` is set."""


class BackendError(RuntimeError):
    """The backend cannot run jobs (Ray missing, cluster unreachable, unknown name)."""


def init_worker() -> None:
    """One torch thread per worker: the backend, not torch, spreads work over the cores."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch  # here: after OMP_NUM_THREADS, which torch reads when it loads

    torch.set_num_threads(1)
    with contextlib.suppress(RuntimeError):  # already set in this process
        torch.set_num_interop_threads(1)


def check_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise BackendError(f"unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}")
    return backend


def map_jobs(fn: Callable[..., Any], args: list[tuple], on_result: OnResult,
             workers: int = 0, backend: str = "local", address: str | None = None,
             device: str = "cpu", max_in_flight: int | None = None,
             max_retries: int = MAX_RETRIES) -> None:
    """Run ``fn(*a)`` for each ``a`` on ``backend``; report each outcome to ``on_result``.

    A ``KeyboardInterrupt`` cancels what is in flight and propagates; results already
    handed to ``on_result`` are the caller's to keep.
    """
    check_backend(backend)
    if not args:
        return
    if backend == "ray":
        with ray_session(address, workers) as ray:
            _ray_map(ray, fn, args, on_result, device, max_in_flight, max_retries)
    elif workers <= 0:
        init_worker()
        for i, a in enumerate(args):
            try:
                r = fn(*a)
            except (ValueError, RuntimeError) as e:
                on_result(i, None, e)
            else:
                on_result(i, r, None)
    else:
        _pool_map(fn, args, on_result, workers, max_in_flight)


def _pool_map(fn: Callable[..., Any], args: list[tuple], on_result: OnResult, workers: int,
              max_in_flight: int | None) -> None:
    limit = max_in_flight or workers * 4
    # spawn: workers never inherit the parent's open DuckDB connection or torch threads
    ex = ProcessPoolExecutor(max_workers=workers, initializer=init_worker,
                             mp_context=multiprocessing.get_context("spawn"))
    try:
        it = iter(enumerate(args))
        running: dict[Future, int] = {}
        for i, a in it:
            running[ex.submit(fn, *a)] = i
            if len(running) >= limit:
                break
        while running:
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in finished:
                i = running.pop(fut)
                err = fut.exception()
                on_result(i, None if err else fut.result(), err)
                nxt = next(it, None)
                if nxt is not None:
                    running[ex.submit(fn, *nxt[1])] = nxt[0]
    finally:
        ex.shutdown(wait=True, cancel_futures=True)


# ---------------------------------------------------------------------------------- Ray
def import_ray() -> Any:
    """``ray``, or a :class:`BackendError` with the one line that says how to get it."""
    try:
        import ray  # the optional ray extra: its absence is the one-line error below
    except ImportError:
        raise BackendError(RAY_MISSING) from None
    return ray


@contextlib.contextmanager
def ray_session(address: str | None = None, num_cpus: int = 0) -> Iterator[Any]:
    """Connect to Ray for the duration of the block (reusing a connection already open).

    ``address`` None starts a local instance with ``num_cpus`` CPUs (all when 0), no
    dashboard and a small object store, and shuts it down at the end.
    """
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                          "logging_level": logging.WARNING}
    where = f"the Ray cluster at {address!r}" if address else "a local Ray instance"
    try:
        if address:
            _check_reachable(address)
            ray.init(address=address, **kw)
        else:
            ray.init(num_cpus=num_cpus or os.cpu_count() or 1,
                     object_store_memory=LOCAL_RAY_OBJECT_STORE, **kw)
    except (ConnectionError, RuntimeError, ValueError, OSError) as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise BackendError(f"cannot start or reach {where}: {msg}") from None
    try:
        yield ray
    finally:
        ray.shutdown()


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail in seconds, not minutes, when a ``host:port`` or ``ray://host:port`` address
    does not answer (Ray itself waits for a lost head node for minutes)."""
    if address == "auto":
        return
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"expected 'auto', 'host:port' or 'ray://host:port', got {address!r}")
    with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
        pass


def _ray_call(fn: Callable[..., Any], args: tuple) -> Any:
    """What a Ray task runs: the job, in a worker set up like a pool worker."""
    init_worker()
    return fn(*args)


def ray_gpus_per_job(ray: Any, device: str) -> float:
    """GPUs a job declares: one for ``cuda``; for ``auto``, one when the cluster has any.

    ``cuda`` on a cluster without GPUs is an error now rather than tasks that never start.
    """
    has_gpu = ray.cluster_resources().get("GPU", 0) > 0
    if device == "cuda":
        if not has_gpu:
            raise BackendError("device 'cuda' asks one GPU per job, but the Ray cluster has "
                               "no GPU; use --device cpu or auto")
        return 1.0
    return 1.0 if device == "auto" and has_gpu else 0.0


def _ray_error(ray: Any, e: BaseException) -> BaseException:
    """The job's own exception when it raised; otherwise Ray's (a lost worker or node)."""
    if isinstance(e, ray.exceptions.RayTaskError):
        cause = getattr(e, "cause", None)
        if isinstance(cause, BaseException):
            return cause
    return e


def _ray_map(ray: Any, fn: Callable[..., Any], args: list[tuple], on_result: OnResult,
             device: str, max_in_flight: int | None, max_retries: int) -> None:
    task = ray.remote(_ray_call).options(
        num_cpus=1, num_gpus=ray_gpus_per_job(ray, device), max_retries=max_retries,
        retry_exceptions=False, name=getattr(fn, "__name__", "job"))
    cpus = int(ray.cluster_resources().get("CPU", 1)) or 1
    limit = max_in_flight or 2 * cpus
    fn_ref = ray.put(fn)
    it = iter(enumerate(args))
    running: dict[Any, int] = {}

    def submit() -> None:
        nxt = next(it, None)
        if nxt is not None:
            running[task.remote(fn_ref, nxt[1])] = nxt[0]

    try:
        while len(running) < limit and len(running) < len(args):
            before = len(running)
            submit()
            if len(running) == before:
                break
        while running:
            ready, _ = ray.wait(list(running), num_returns=1)
            for ref in ready:
                i = running.pop(ref)
                try:
                    r = ray.get(ref)
                except ray.exceptions.RayError as e:
                    on_result(i, None, _ray_error(ray, e))
                else:
                    on_result(i, r, None)
                submit()
    finally:
        for ref in running:  # interrupted: stop what is still running
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=True)
