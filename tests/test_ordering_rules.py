"""The ordering rules on recorded figures (no GPU)."""

from trtbench.catalogue import CHAIN
from trtbench.ordering import Figure, check_ordering, confirm_chain_failures, failures, figure_case

B = 128


def good_figures(backend="torch"):
    ms = {
        "baseline": 25.0,
        "reuse_buffers": 22.0,
        "pinned_memory": 9.0,
        "fp16": 6.7,
        "overlap": 6.3,
        "async_postprocess": 6.4,
        "cuda_graph": 4.0,
        "gpu_postprocess": 3.5,
        "uint8_input": 3.2,
    }
    uploads = {"reuse_buffers": 12.7, "pinned_memory": 1.5, "gpu_postprocess": 1.47, "uint8_input": 0.37}
    figs = [Figure(backend, name, B, ms[name], upload_ms=uploads.get(name)) for name in CHAIN]
    figs += [Figure(backend, "async_postprocess", 1, 4.3), Figure(backend, "cuda_graph", 1, 0.5)]
    return figs


def test_good_figures_pass_and_missing_rules_are_reported_not_failed():
    verdicts = check_ordering(good_figures(), B)
    assert not failures(verdicts)
    missing = [v for v in verdicts if v.ok is None]
    assert [v.rule for v in missing] == ["multi_profile not slower than one profile on the small batches"]


def test_chain_step_slower_beyond_tolerance_fails_naming_pair_and_figures():
    figs = [f if f.case != "overlap" else Figure("torch", "overlap", B, 7.1) for f in good_figures()]
    failed = failures(check_ordering(figs, B, tolerance=0.05))
    rules = {v.rule for v in failed}
    assert "overlap not slower than fp16" in rules and "overlap faster than serial fp16" in rules
    message = next(v.message for v in failed if v.rule == "overlap not slower than fp16")
    assert "7.100 ms" in message and "6.700 ms" in message and "+6.0%" in message


def test_within_tolerance_passes():
    figs = [
        f if f.case != "async_postprocess" or f.batch_size != B else Figure("torch", f.case, B, 6.5)
        for f in good_figures()
    ]  # +3.2% over overlap
    assert not failures(check_ordering(figs, B, tolerance=0.05))
    assert [v.rule for v in failures(check_ordering(figs, B, tolerance=0.03))] == [
        "async_postprocess not slower than overlap"
    ]
    at_the_boundary = [
        f if f.case != "async_postprocess" or f.batch_size != B else Figure("torch", f.case, B, 6.3)
        for f in good_figures()
    ]
    assert not failures(check_ordering(at_the_boundary, B, tolerance=0.0))  # equal is not slower


def test_pinned_upload_needs_2x():
    figs = [
        f if f.case != "pinned_memory" else Figure("torch", "pinned_memory", B, 9.0, upload_ms=7.0)
        for f in good_figures()
    ]
    failed = failures(check_ordering(figs, B))
    assert [v.rule for v in failed] == ["pinned upload at least 2x faster than pageable"]
    exactly = [
        f if f.case != "pinned_memory" else Figure("torch", "pinned_memory", B, 9.0, upload_ms=6.35)
        for f in good_figures()
    ]
    assert not failures(check_ordering(exactly, B))  # 2.00x is enough


def test_uint8_upload_needs_3x_and_new_approaches_extend_the_chain():
    figs = [
        f if f.case != "uint8_input" else Figure("torch", "uint8_input", B, 3.2, upload_ms=0.6) for f in good_figures()
    ]
    assert [v.rule for v in failures(check_ordering(figs, B))] == ["uint8 upload at least 3x faster than fp32 pinned"]
    assert CHAIN[-3:] == ("cuda_graph", "gpu_postprocess", "uint8_input")
    slower = [
        f if f.case != "gpu_postprocess" else Figure("torch", "gpu_postprocess", B, 4.5, upload_ms=1.47)
        for f in good_figures()
    ]
    assert [v.rule for v in failures(check_ordering(slower, B))] == ["gpu_postprocess not slower than cuda_graph"]


def test_a_missing_upload_figure_leaves_its_rule_unjudged():
    figs = [f if f.case != "uint8_input" else Figure("torch", "uint8_input", B, 3.2) for f in good_figures()]
    verdict = next(v for v in check_ordering(figs, B) if v.rule.startswith("uint8 upload"))
    assert verdict.ok is None and "not measured" in verdict.message


def test_cuda_graph_must_beat_eager_at_batch_1():
    figs = [f if f.case != "cuda_graph" else Figure("torch", "cuda_graph", 1, 4.4) for f in good_figures()]
    assert [v.rule for v in failures(check_ordering(figs, B))] == ["cuda_graph faster than without a graph at batch 1"]


def test_multi_profile_rule_and_backends_are_separate():
    figs = (
        good_figures("tensorrt")
        + good_figures("torch")
        + [
            Figure("tensorrt", "multi_profile-two_profiles", B, 3.0, small_batch_gpu_ms=0.9),
            Figure("tensorrt", "multi_profile-one_profile", B, 3.1, small_batch_gpu_ms=0.8),
        ]
    )
    failed = failures(check_ordering(figs, B))
    assert [(v.backend, v.rule) for v in failed] == [
        ("tensorrt", "multi_profile not slower than one profile on the small batches")
    ]


def test_batch1_test_ids_feed_the_batch1_rule():
    """The benchmark's case ids map onto the rule keys (a mismatch left the rule unevaluated)."""
    from trtbench.catalogue import CASES

    ids = [case.id for case in CASES]
    assert figure_case("cuda_graph-b1") == "cuda_graph" and "cuda_graph-b1" in ids
    assert figure_case("async_postprocess-b1") == "async_postprocess" and "async_postprocess-b1" in ids
    assert {"multi_profile-two_profiles", "multi_profile-one_profile"} <= {figure_case(i) for i in ids}
    figs = [Figure("torch", figure_case(i), 1, 4.0 if i.startswith("async") else 0.5) for i in ids if i.endswith("-b1")]
    verdict = next(v for v in check_ordering(figs, 128) if v.rule.startswith("cuda_graph faster"))
    assert verdict.ok is True


def test_failed_chain_step_is_rejudged_on_the_interleaved_measurement():
    figs = [
        f if f.case != "reuse_buffers" else Figure("torch", "reuse_buffers", B, 27.0, upload_ms=12.7)
        for f in good_figures()
    ]
    verdicts = check_ordering(figs, B)
    assert [v.rule for v in failures(verdicts)] == ["reuse_buffers not slower than baseline"]
    calls = []

    def drift_only(backend, before, after):  # paired: the successor is really faster
        calls.append((backend, before, after))
        return 25.0, 24.0

    judged = confirm_chain_failures(verdicts, drift_only)
    assert calls == [("torch", "baseline", "reuse_buffers")]  # only the failed chain step is re-measured
    assert not failures(judged)
    step = next(v for v in judged if v.rule == "reuse_buffers not slower than baseline")
    assert "27.000 ms" in step.message and "interleaved re-measurement: reuse_buffers 24.000 ms" in step.message


def test_confirmed_chain_failure_still_fails_and_other_rules_are_not_rejudged():
    figs = [f if f.case != "overlap" else Figure("torch", "overlap", B, 7.5) for f in good_figures()]
    judged = confirm_chain_failures(check_ordering(figs, B), lambda backend, a, b: (6.7, 7.4))
    rules = {v.rule for v in failures(judged)}
    # the chain step is confirmed (+10.4%), and the strict rule is judged on the session medians
    assert rules == {"overlap not slower than fp16", "overlap faster than serial fp16"}


# ---------------------------------------------------------------- every verdict's fields, boundaries, messages
# (each pins a behaviour a mutation test found unchecked: see mutation/run.py)

RULES = [
    "reuse_buffers not slower than baseline",
    "pinned_memory not slower than reuse_buffers",
    "fp16 not slower than pinned_memory",
    "overlap not slower than fp16",
    "async_postprocess not slower than overlap",
    "cuda_graph not slower than async_postprocess",
    "gpu_postprocess not slower than cuda_graph",
    "uint8_input not slower than gpu_postprocess",
    "pinned upload at least 2x faster than pageable",
    "uint8 upload at least 3x faster than fp32 pinned",
    "fp16 faster than fp32",
    "overlap faster than serial fp16",
    "cuda_graph faster than without a graph at batch 1",
    "multi_profile not slower than one profile on the small batches",
]


def by_rule(verdicts):
    return {v.rule: v for v in verdicts}


def test_every_rule_is_judged_per_backend_in_order():
    verdicts = check_ordering(good_figures("torch") + good_figures("tensorrt"), B)
    assert [(v.backend, v.rule) for v in verdicts] == [(b, r) for b in ("tensorrt", "torch") for r in RULES]
    assert check_ordering([], B) == []


def test_messages_of_the_judged_rules():
    v = by_rule(check_ordering(good_figures(), B))
    assert v["reuse_buffers not slower than baseline"].message == (
        "reuse_buffers 22.000 ms vs baseline 25.000 ms per batch (-12.0%, tolerance +5%)"
    )
    assert v["reuse_buffers not slower than baseline"].chain_step == ("baseline", "reuse_buffers")
    assert v["pinned upload at least 2x faster than pageable"].message == (
        "upload pageable 12.700 ms vs pinned 1.500 ms (8.47x)"
    )
    assert v["uint8 upload at least 3x faster than fp32 pinned"].message == (
        "upload fp32 pinned 1.470 ms vs uint8 pinned 0.370 ms (3.97x)"
    )
    assert (
        v["fp16 faster than fp32"].message == "fp16 6.700 ms vs pinned_memory 9.000 ms per batch at batch 128 (1.34x)"
    )
    assert v["cuda_graph faster than without a graph at batch 1"].message == (
        "cuda_graph 0.500 ms vs async_postprocess 4.300 ms per batch at batch 1 (8.60x)"
    )
    for verdict in v.values():
        assert verdict.backend == "torch"
        assert (verdict.chain_step is not None) == (
            " not slower than " in verdict.rule and not verdict.rule.startswith("multi_profile")
        )
        assert verdict.ok is (None if verdict.rule.startswith("multi_profile") else True)


def test_what_is_missing_is_named_and_the_other_rules_are_still_judged():
    figs = [f for f in good_figures() if f.case not in ("reuse_buffers",)]
    verdicts = check_ordering(figs, B)
    assert [x.rule for x in verdicts] == RULES  # every rule has its verdict, measured or not
    v = by_rule(verdicts)
    assert v["reuse_buffers not slower than baseline"].message == (
        "reuse_buffers not slower than baseline: not measured (baseline, reuse_buffers)"
    )
    assert v["pinned_memory not slower than reuse_buffers"].ok is None
    assert v["fp16 not slower than pinned_memory"].ok is True  # the chain goes on past a gap
    assert v["pinned upload at least 2x faster than pageable"].message == (
        "pinned upload at least 2x faster than pageable: not measured (reuse_buffers, pinned_memory)"
    )
    assert all(x.backend == "torch" for x in v.values())
    only_fast = by_rule(check_ordering([f for f in good_figures() if f.case != "pinned_memory"], B))
    assert only_fast["fp16 faster than fp32"].message == (
        "fp16 faster than fp32: not measured (pinned_memory@128, fp16@128)"
    )
    no_eager = by_rule(
        check_ordering([f for f in good_figures() if f.batch_size != 1 or f.case != "async_postprocess"], B)
    )
    assert no_eager["cuda_graph faster than without a graph at batch 1"].ok is None
    assert no_eager["overlap faster than serial fp16"].ok is True
    assert by_rule(check_ordering(good_figures(), B))[RULES[-1]].message == (
        "multi_profile not slower than one profile on the small batches: not measured "
        "(multi_profile-two_profiles, multi_profile-one_profile)"
    )


def test_an_upload_rule_needs_both_upload_figures():
    for case in ("reuse_buffers", "pinned_memory"):
        figs = [f if f.case != case else Figure("torch", case, B, f.batch_ms) for f in good_figures()]  # no upload_ms
        verdict = by_rule(check_ordering(figs, B))["pinned upload at least 2x faster than pageable"]
        assert verdict.ok is None and verdict.backend == "torch"
    figs = [f for f in good_figures() if f.case != "reuse_buffers"]
    assert by_rule(check_ordering(figs, B))["pinned upload at least 2x faster than pageable"].ok is None


def test_a_strict_rule_fails_on_a_tie():
    figs = [f if f.case != "fp16" else Figure("torch", "fp16", B, 9.0) for f in good_figures()]
    v = by_rule(check_ordering(figs, B))
    assert v["fp16 faster than fp32"].ok is False  # equal is not faster
    assert v["fp16 not slower than pinned_memory"].ok is True  # equal is not slower


def multi_profile(two, one):
    return good_figures("tensorrt") + [
        Figure("tensorrt", "multi_profile-two_profiles", B, 3.0, small_batch_gpu_ms=two),
        Figure("tensorrt", "multi_profile-one_profile", B, 3.1, small_batch_gpu_ms=one),
    ]


def test_multi_profile_rule_boundaries_and_message():
    rule = RULES[-1]
    passing = by_rule(check_ordering(multi_profile(0.8, 0.9), B))[rule]
    assert (
        passing.ok is True
        and passing.backend == "tensorrt"
        and passing.message
        == ("small batches: two profiles 0.800 ms vs one profile 0.900 ms GPU (-11.1%, tolerance +5%)")
    )
    assert by_rule(check_ordering(multi_profile(0.9, 0.9), B, tolerance=0.0))[rule].ok is True  # equal: not slower
    assert by_rule(check_ordering(multi_profile(0.91, 0.9), B, tolerance=0.0))[rule].ok is False
    for two, one in ((None, 0.9), (0.9, None)):
        assert by_rule(check_ordering(multi_profile(two, one), B))[rule].ok is None
    lone = good_figures("tensorrt") + [Figure("tensorrt", "multi_profile-one_profile", B, 3.1, small_batch_gpu_ms=0.9)]
    assert by_rule(check_ordering(lone, B))[rule].ok is None


def test_rejudged_step_passes_at_exactly_the_tolerance():
    figs = [f if f.case != "overlap" else Figure("torch", "overlap", B, 7.5) for f in good_figures()]
    judged = confirm_chain_failures(
        check_ordering(figs, B, tolerance=0.0), lambda backend, a, b: (6.7, 6.7), tolerance=0.0
    )
    assert by_rule(judged)["overlap not slower than fp16"].ok is True  # equal in the paired measurement
