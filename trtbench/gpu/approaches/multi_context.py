"""Approach 8, multi_context: N execution contexts, each with its own thread, streams
and buffers, splitting the batches round-robin (the tutorial: 2 contexts on a
shared-profile engine).

Each context runs the overlap pipeline (double-buffered uploads, post-processing on
its own thread) over its share; the round ends when every thread is done, so the
timed figure is the effective time for all batches.
"""

from __future__ import annotations

from typing import Any

from trtbench.gpu.approaches.overlap import OverlapPipeline
from trtbench.gpu.backends.base import Engine
from trtbench.gpu.cuda import Stream
from trtbench.gpu.pipeline import Pipeline, WorkerThread, Workload

DEFAULT_CONTEXTS = 2


class MultiContextPipeline(Pipeline):
    name = "multi_context"

    def __init__(self, engine: Engine, workload: Workload, contexts: int = DEFAULT_CONTEXTS) -> None:
        super().__init__(engine, workload)
        if contexts < 1:
            raise ValueError(f"multi_context needs at least 1 context, got {contexts}")
        # one context per part (its point is the number of contexts): its input address and
        # event change every batch and are bound before the compute span, only when they change
        self.parts = [
            self.own(
                OverlapPipeline.open(
                    engine,
                    workload,
                    indices=range(k, workload.batches, contexts),
                    shared=self,
                    label=f"ctx{k} ",
                    context_per_slot=False,
                )
            )
            for k in range(contexts)
        ]
        self.contexts_used = sum(part.contexts_used for part in self.parts)
        self.threads = [self.own(WorkerThread(f"context-{k}")) for k in range(contexts)]

    def prepare_round(self) -> None:
        super().prepare_round()
        for part in self.parts:  # poison each part's buffers on its own stream
            part.prepare_round()

    def poison_stream(self) -> Stream | None:
        return None  # each part poisons its own buffers

    def run_round(self) -> None:
        for part, thread in zip(self.parts, self.threads):
            thread.submit(part.run_round)
        for thread in self.threads:
            thread.drain()
        self.events.mark_recorded()

    def extra_metrics(self) -> dict[str, Any]:
        return {"contexts": len(self.parts)}


Approach = MultiContextPipeline
