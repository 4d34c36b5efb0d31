"""Independent model fits of a metric spread over worker processes, each fit single-threaded.

The per-factor classifiers of DCI (Eastwood & Williams 2018), the per-factor regressions of explicitness (Ridgeway &
Mozer 2018) and the per-(factor, size) probes (Locatello et al. 2019) are independent fits. :func:`run_tasks` runs them
on ``n_jobs`` joblib loky processes (the tree growers and the lbfgs loops are Python-heavy and hold the GIL, so threads
would not help), with every fit limited to ``threads`` BLAS/OpenMP threads by ``threadpoolctl`` in the worker and in
the sequential path alike: both paths execute the same single-threaded arithmetic, so their results are bit-identical
(tests/metrics/test_parallel.py), and the fits cannot oversubscribe the cores with OpenMP threads.
Tasks are dispatched most expensive first (longest-processing-time order) and the results returned in task order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from joblib import Parallel, delayed
from threadpoolctl import threadpool_limits

from metrics.types import MetricError

T = TypeVar("T")


def resolve_n_jobs(n_jobs: int | None, num_tasks: int) -> int:
    """Worker processes for ``num_tasks`` tasks: ``n_jobs`` (None: :data:`metrics.defaults.N_JOBS`), at most one per task."""
    from metrics.defaults import N_JOBS

    jobs = N_JOBS if n_jobs is None else int(n_jobs)
    if jobs < 1:
        raise MetricError(f"n_jobs must be >= 1 (or None for the CPU count), got {n_jobs}")
    return max(1, min(jobs, num_tasks))


def _limited(fn: Callable[..., T], threads: int | None, args: tuple[Any, ...]) -> T:
    """``fn(*args)`` under a BLAS/OpenMP thread limit (None: no limit)."""
    with threadpool_limits(limits=threads):
        return fn(*args)


def run_tasks(
    fn: Callable[..., T],
    tasks: Sequence[tuple[Any, ...]],
    *,
    n_jobs: int | None,
    threads: int | None = 1,
    costs: Sequence[float] | None = None,
) -> list[T]:
    """``[fn(*task) for task in tasks]``, on ``n_jobs`` processes when that is more than one; results in task order.

    ``fn`` must be a module-level function (it is pickled to the workers); ``costs`` (one per task, any unit) orders
    the dispatch, most expensive first, so that the last task to start is a cheap one.
    """
    jobs = resolve_n_jobs(n_jobs, len(tasks))
    if jobs == 1:
        return [_limited(fn, threads, task) for task in tasks]
    order = sorted(range(len(tasks)), key=lambda i: -costs[i]) if costs is not None else list(range(len(tasks)))
    outputs = Parallel(n_jobs=jobs, backend="loky", batch_size=1, pre_dispatch="n_jobs")(
        delayed(_limited)(fn, threads, tasks[i]) for i in order
    )
    done: dict[int, T] = dict(zip(order, outputs, strict=True))
    return [done[i] for i in range(len(tasks))]
