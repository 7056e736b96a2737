"""The relative ordering the techniques must keep, checked on recorded medians.

Pure logic: figures in, one verdict per rule out. Figures compare only within one
backend and one batch size.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable

from trtbench.catalogue import CHAIN

DEFAULT_TOLERANCE = 0.05
PINNED_UPLOAD_SPEEDUP = 2.0
UINT8_UPLOAD_SPEEDUP = 3.0  # a quarter of the bytes


@dataclasses.dataclass(frozen=True)
class Figure:
    backend: str
    case: str  # approach name, or approach-variant (multi_profile-two_profiles)
    batch_size: int
    batch_ms: float  # median wall time per batch
    upload_ms: float | None = None  # median host-to-device time per batch
    small_batch_gpu_ms: float | None = None  # multi_profile: the engine's GPU time on the small batches


@dataclasses.dataclass(frozen=True)
class Verdict:
    rule: str
    backend: str
    ok: bool | None  # None: a figure the rule needs was not measured in this session
    message: str
    chain_step: tuple[str, str] | None = None  # (predecessor, successor) for chain rules


def figure_case(test_case: str) -> str:
    """The rule key of a test case id: ``cuda_graph-b1`` is ``cuda_graph`` at batch 1;
    variants (``multi_profile-two_profiles``) stay distinct."""
    return test_case.removesuffix("-b1")


def _index(figures: Iterable[Figure]) -> dict[tuple[str, str, int], Figure]:
    return {(f.backend, f.case, f.batch_size): f for f in figures}


def check_ordering(figures: Iterable[Figure], batch_size: int, tolerance: float = DEFAULT_TOLERANCE) -> list[Verdict]:
    figs = _index(figures)
    verdicts: list[Verdict] = []
    for backend in sorted({b for b, _, _ in figs}):

        def get(case: str, batch: int = batch_size, backend: str = backend) -> Figure | None:
            return figs.get((backend, case, batch))

        def missing(rule: str, *needed: str, backend: str = backend) -> Verdict:
            return Verdict(rule, backend, None, f"{rule}: not measured ({', '.join(needed)})")

        for slower_ok, faster in zip(CHAIN, CHAIN[1:]):
            rule = f"{faster} not slower than {slower_ok}"
            a, b = get(slower_ok), get(faster)
            if a is None or b is None:
                verdicts.append(missing(rule, slower_ok, faster))
                continue
            change = b.batch_ms / a.batch_ms - 1
            ok = change <= tolerance
            verdicts.append(
                Verdict(
                    rule,
                    backend,
                    ok,
                    f"{faster} {b.batch_ms:.3f} ms vs {slower_ok} {a.batch_ms:.3f} ms per batch "
                    f"({change:+.1%}, tolerance +{tolerance:.0%})",
                    chain_step=(slower_ok, faster),
                )
            )

        for rule, slow_case, fast_case, needed, what in (
            (
                f"pinned upload at least {PINNED_UPLOAD_SPEEDUP:g}x faster than pageable",
                "reuse_buffers",
                "pinned_memory",
                PINNED_UPLOAD_SPEEDUP,
                ("pageable", "pinned"),
            ),
            (
                f"uint8 upload at least {UINT8_UPLOAD_SPEEDUP:g}x faster than fp32 pinned",
                "gpu_postprocess",
                "uint8_input",
                UINT8_UPLOAD_SPEEDUP,
                ("fp32 pinned", "uint8 pinned"),
            ),
        ):
            slow, fast = get(slow_case), get(fast_case)
            if slow is None or fast is None or slow.upload_ms is None or fast.upload_ms is None:
                verdicts.append(missing(rule, slow_case, fast_case))
                continue
            speedup = slow.upload_ms / fast.upload_ms
            verdicts.append(
                Verdict(
                    rule,
                    backend,
                    speedup >= needed,
                    f"upload {what[0]} {slow.upload_ms:.3f} ms vs {what[1]} {fast.upload_ms:.3f} ms ({speedup:.2f}x)",
                )
            )

        for rule, slow_case, fast_case, batch in (
            ("fp16 faster than fp32", "pinned_memory", "fp16", batch_size),
            ("overlap faster than serial fp16", "fp16", "overlap", batch_size),
            ("cuda_graph faster than without a graph at batch 1", "async_postprocess", "cuda_graph", 1),
        ):
            slow, fast = get(slow_case, batch), get(fast_case, batch)
            if slow is None or fast is None:
                verdicts.append(missing(rule, f"{slow_case}@{batch}", f"{fast_case}@{batch}"))
                continue
            verdicts.append(
                Verdict(
                    rule,
                    backend,
                    fast.batch_ms < slow.batch_ms,
                    f"{fast_case} {fast.batch_ms:.3f} ms vs {slow_case} {slow.batch_ms:.3f} ms per batch "
                    f"at batch {batch} ({slow.batch_ms / fast.batch_ms:.2f}x)",
                )
            )

        rule = "multi_profile not slower than one profile on the small batches"
        two, one = get("multi_profile-two_profiles"), get("multi_profile-one_profile")
        if two is None or one is None or two.small_batch_gpu_ms is None or one.small_batch_gpu_ms is None:
            verdicts.append(missing(rule, "multi_profile-two_profiles", "multi_profile-one_profile"))
        else:
            change = two.small_batch_gpu_ms / one.small_batch_gpu_ms - 1
            verdicts.append(
                Verdict(
                    rule,
                    backend,
                    change <= tolerance,
                    f"small batches: two profiles {two.small_batch_gpu_ms:.3f} ms vs one profile "
                    f"{one.small_batch_gpu_ms:.3f} ms GPU ({change:+.1%}, tolerance +{tolerance:.0%})",
                )
            )
    return verdicts


PairMeasure = Callable[[str, str, str], tuple[float, float]]


def confirm_chain_failures(
    verdicts: list[Verdict], measure: PairMeasure, tolerance: float = DEFAULT_TOLERANCE
) -> list[Verdict]:
    """Re-judge each failed chain step on an interleaved re-measurement of the pair.

    Two benchmarks run one after the other see different host conditions; where a step's
    gain is small (reuse_buffers saves ~3% of a batch dominated by a pageable upload that
    drifts +-10% between tests), that drift alone can fail the step. ``measure(backend,
    predecessor, successor)`` runs both pipelines in alternating rounds and returns their
    median ms per batch; the step fails only if the successor is slower there too. Both
    measurements stay in the message.
    """
    judged = []
    for v in verdicts:
        if v.ok is not False or v.chain_step is None:
            judged.append(v)
            continue
        before, after = v.chain_step
        a_ms, b_ms = measure(v.backend, before, after)
        change = b_ms / a_ms - 1
        judged.append(
            dataclasses.replace(
                v,
                ok=change <= tolerance,
                message=(
                    f"{v.message}; interleaved re-measurement: {after} {b_ms:.3f} ms vs {before} {a_ms:.3f} ms "
                    f"per batch ({change:+.1%})"
                ),
            )
        )
    return judged


def failures(verdicts: Iterable[Verdict]) -> list[Verdict]:
    return [v for v in verdicts if v.ok is False]
