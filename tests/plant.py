"""Planted slowdowns, outside the product code, for the runs that prove the gates
(`trtbench ab`, `bisect`): a pytest plugin loaded with ``PYTEST_PLUGINS=tests.plant``.

What to plant is read from the environment variable ``PLANT``, else from a file
``plant.txt`` at the root of the checkout under test (so that commits can differ in it):
comma-separated entries ``APPROACH:host:MS`` (a busy-wait of MS milliseconds on the host
after each batch's post-processing: host time after the download, on the critical path of
the serial approaches; a wait before the compute events would hide behind the upload still
running on the GPU) or ``APPROACH:gpu:MS`` (a GPU sleep of MS milliseconds on the compute
stream right after each batch's launch, inside its compute events: GPU compute; needs torch
and a GPU) or ``APPROACH:wrong:BATCH`` (batch BATCH's logits, as the checks see them, 20% too
large in every round: a wrong output the correctness check must fail). An approach planted
twice gets both.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


def parse(text: str) -> dict[str, dict[str, float]]:
    planted: dict[str, dict[str, float]] = {}
    for entry in filter(None, (e.strip() for e in text.split(","))):
        approach, where, ms = entry.split(":")
        if where not in ("host", "gpu", "wrong"):
            raise pytest.UsageError(f"PLANT {entry!r}: where is host, gpu or wrong")
        planted.setdefault(approach, {})[where] = float(ms)
    return planted


def busy_wait(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def gpu_sleeper() -> Callable[[Any, float], None]:
    """A function that makes a stream's GPU sleep for about MS milliseconds (torch's spin kernel,
    its cycles per millisecond measured once on this GPU)."""
    import torch

    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    cycles = 10_000_000
    torch.cuda._sleep(cycles)  # warm-up
    start.record()
    torch.cuda._sleep(cycles)
    end.record()
    end.synchronize()
    per_ms = cycles / start.elapsed_time(end)

    def sleep(stream: Any, ms: float) -> None:
        with torch.cuda.stream(torch.cuda.ExternalStream(stream.ptr)):
            torch.cuda._sleep(int(per_ms * ms))

    return sleep


PLANTED = pytest.StashKey[dict[str, dict[str, float]]]()


def pytest_report_header(config: pytest.Config) -> str:
    return f"planted slowdowns (tests/plant.py): {config.stash.get(PLANTED, {}) or 'none'}"


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    text = os.environ.get("PLANT")
    file = Path(str(config.rootpath)) / "plant.txt"
    if text is None and file.is_file():
        text = file.read_text()
    planted = parse(text or "")
    config.stash[PLANTED] = planted
    if not planted:
        return
    from trtbench.gpu.pipeline import Pipeline, Sink

    sleep_gpu = gpu_sleeper() if any("gpu" in p for p in planted.values()) else None
    compute, store, store_top5 = Pipeline.compute, Sink.store, Sink.store_top5

    def planted_compute(self: Any, index: int, stream: Any, launch: Callable[[], None]) -> None:
        self.sink.planted_host_ms = planted.get(self.name, {}).get("host")
        self.sink.planted_wrong_batch = planted.get(self.name, {}).get("wrong")
        gpu_ms = planted.get(self.name, {}).get("gpu")
        if gpu_ms and sleep_gpu is not None:

            def launch_then_sleep() -> None:
                launch()
                sleep_gpu(stream, gpu_ms)

            return compute(self, index, stream, launch_then_sleep)
        return compute(self, index, stream, launch)

    def after(method: Callable[..., None]) -> Callable[..., None]:
        def planted_store(self: Any, index: int, *args: Any) -> None:
            method(self, index, *args)
            if getattr(self, "planted_wrong_batch", None) == index:
                self.logits[index] *= 1.2
            ms = getattr(self, "planted_host_ms", None)
            if ms:
                busy_wait(ms / 1e3)

        return planted_store

    Pipeline.compute = planted_compute
    Sink.store, Sink.store_top5 = after(store), after(store_top5)
    config.add_cleanup(
        lambda: (
            setattr(Pipeline, "compute", compute),
            setattr(Sink, "store", store),
            setattr(Sink, "store_top5", store_top5),
        )
    )
