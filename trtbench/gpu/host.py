"""A quieter host for the timed rounds (``--host-isolation``), as pyperf and
pytest-benchmark's ``--benchmark-disable-gc`` do for CPU benchmarks:

* ``process``: no garbage collection inside a timed round; torch's intra-op thread pool of
  one thread (its idle workers spin and steal cycles); the process on a fixed set of cores
  (the last ``CORES`` the process may use: the scheduler no longer moves it across the
  machine between processes).
* ``threads``: as ``process``, and each of the suite's threads on a core of its own in that
  set: the main thread on the first, each worker thread on the next.
* ``off``: none of it.

README, "Quieter processes", gives what each measurably changed.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import os
import threading
from collections.abc import Iterator

LEVELS = ("off", "process", "threads")
CORES = 4


class _Plan:
    level = "off"
    cores: list[int] = []
    _next: Iterator[int] = iter(())
    _lock = threading.Lock()


def isolate(level: str) -> str:
    """Apply ``level`` to this process; what was done, in words (for the run's notes)."""
    if level not in LEVELS:
        raise ValueError(f"host isolation {level!r} is not one of {LEVELS}")
    _Plan.level = level
    if level == "off":
        return "host isolation off"
    import torch

    torch.set_num_threads(1)
    allowed = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(allowed) < 2:
        return f"host isolation {level}: one intra-op thread, no collection in timed rounds (one core: no pinning)"
    _Plan.cores = allowed[-CORES:]
    os.sched_setaffinity(0, _Plan.cores)
    if level == "threads":
        _Plan._next = itertools.cycle(_Plan.cores[1:] or _Plan.cores)
        os.sched_setaffinity(threading.get_native_id(), {_Plan.cores[0]})
    return (
        f"host isolation {level}: cores {_Plan.cores}"
        + (", main thread on the first, each worker on its own" if level == "threads" else "")
        + "; one intra-op thread; no collection in timed rounds"
    )


def pin_this_thread() -> None:
    """Called by each worker thread as it starts: its own core of the set (``threads`` only)."""
    if _Plan.level != "threads" or not _Plan.cores:
        return
    with _Plan._lock:
        core = next(_Plan._next)
    os.sched_setaffinity(threading.get_native_id(), {core})


@contextlib.contextmanager
def timed_region() -> Iterator[None]:
    """Around a timed round: no garbage collection in it unless isolation is off (a collection
    pass would land in whichever round allocated past the threshold)."""
    if _Plan.level == "off" or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
