"""A quieter host for the timed rounds (``--host-isolation process``), as pyperf and
pytest-benchmark's ``--benchmark-disable-gc`` do for CPU benchmarks: no garbage collection
inside a timed round, torch's intra-op thread pool of one thread (its idle workers spin and
steal cycles), and the process on a fixed set of cores (the last ``CORES`` it may use: the
scheduler no longer moves it across the machine between processes).

Off by default: README, "Quieter processes", gives what was measured. Pinning each thread
to a core of its own made the approaches with worker threads far noisier on an H200, and is
gone; this level was not measured to lower the noise there (measure it on a runner with
`trtbench ab`, one side with it and one without).
"""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Iterator

LEVELS = ("off", "process")
CORES = 4


class _State:
    level = "off"


def isolate(level: str) -> str:
    """Apply ``level`` to this process; what was done, in words (for the run's notes)."""
    if level not in LEVELS:
        raise ValueError(f"host isolation {level!r} is not one of {LEVELS}")
    _State.level = level
    if level == "off":
        return "host isolation off"
    import torch

    torch.set_num_threads(1)
    allowed = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(allowed) < 2:
        return "host isolation process: one intra-op thread, no collection in timed rounds (one core: no pinning)"
    cores = allowed[-CORES:]
    os.sched_setaffinity(0, cores)
    return f"host isolation process: cores {cores}; one intra-op thread; no collection in timed rounds"


@contextlib.contextmanager
def timed_region() -> Iterator[None]:
    """Around a timed round: no garbage collection in it unless isolation is off (a collection
    pass would land in whichever round allocated past the threshold)."""
    if _State.level == "off" or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
