"""The ordering rules on recorded figures (no GPU)."""

from trtbench.ordering import CHAIN, Figure, check_ordering, confirm_chain_failures, failures, figure_case

B = 128


def good_figures(backend="torch"):
    ms = {"baseline": 25.0, "reuse_buffers": 22.0, "pinned_memory": 9.0, "fp16": 6.7, "overlap": 6.3,
          "async_postprocess": 6.4, "cuda_graph": 4.0, "gpu_postprocess": 3.5, "uint8_input": 3.2}
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
    figs = [f if f.case != "async_postprocess" or f.batch_size != B else Figure("torch", f.case, B, 6.5)
            for f in good_figures()]  # +3.2% over overlap
    assert not failures(check_ordering(figs, B, tolerance=0.05))
    assert [v.rule for v in failures(check_ordering(figs, B, tolerance=0.03))] == [
        "async_postprocess not slower than overlap"]
    at_the_boundary = [f if f.case != "async_postprocess" or f.batch_size != B else Figure("torch", f.case, B, 6.3)
                       for f in good_figures()]
    assert not failures(check_ordering(at_the_boundary, B, tolerance=0.0))  # equal is not slower


def test_pinned_upload_needs_2x():
    figs = [f if f.case != "pinned_memory" else Figure("torch", "pinned_memory", B, 9.0, upload_ms=7.0)
            for f in good_figures()]
    failed = failures(check_ordering(figs, B))
    assert [v.rule for v in failed] == ["pinned upload at least 2x faster than pageable"]
    exactly = [f if f.case != "pinned_memory" else Figure("torch", "pinned_memory", B, 9.0, upload_ms=6.35)
               for f in good_figures()]
    assert not failures(check_ordering(exactly, B))  # 2.00x is enough


def test_uint8_upload_needs_3x_and_new_approaches_extend_the_chain():
    figs = [f if f.case != "uint8_input" else Figure("torch", "uint8_input", B, 3.2, upload_ms=0.6)
            for f in good_figures()]
    assert [v.rule for v in failures(check_ordering(figs, B))] == ["uint8 upload at least 3x faster than fp32 pinned"]
    assert CHAIN[-3:] == ("cuda_graph", "gpu_postprocess", "uint8_input")
    slower = [f if f.case != "gpu_postprocess" else Figure("torch", "gpu_postprocess", B, 4.5, upload_ms=1.47)
              for f in good_figures()]
    assert [v.rule for v in failures(check_ordering(slower, B))] == ["gpu_postprocess not slower than cuda_graph"]


def test_a_missing_upload_figure_leaves_its_rule_unjudged():
    figs = [f if f.case != "uint8_input" else Figure("torch", "uint8_input", B, 3.2) for f in good_figures()]
    verdict = next(v for v in check_ordering(figs, B) if v.rule.startswith("uint8 upload"))
    assert verdict.ok is None and "not measured" in verdict.message


def test_cuda_graph_must_beat_eager_at_batch_1():
    figs = [f if f.case != "cuda_graph" else Figure("torch", "cuda_graph", 1, 4.4) for f in good_figures()]
    assert [v.rule for v in failures(check_ordering(figs, B))] == ["cuda_graph faster than without a graph at batch 1"]


def test_multi_profile_rule_and_backends_are_separate():
    figs = good_figures("tensorrt") + good_figures("torch") + [
        Figure("tensorrt", "multi_profile-two_profiles", B, 3.0, small_batch_gpu_ms=0.9),
        Figure("tensorrt", "multi_profile-one_profile", B, 3.1, small_batch_gpu_ms=0.8),
    ]
    failed = failures(check_ordering(figs, B))
    assert [(v.backend, v.rule) for v in failed] == [
        ("tensorrt", "multi_profile not slower than one profile on the small batches")]


def test_batch1_test_ids_feed_the_batch1_rule():
    """The benchmark's case ids map onto the rule keys (a mismatch left the rule unevaluated)."""
    from benchmarks.test_approaches import CASES

    ids = [case_id for case_id, _, _ in CASES]
    assert figure_case("cuda_graph-b1") == "cuda_graph" and "cuda_graph-b1" in ids
    assert figure_case("async_postprocess-b1") == "async_postprocess" and "async_postprocess-b1" in ids
    assert {"multi_profile-two_profiles", "multi_profile-one_profile"} <= {figure_case(i) for i in ids}
    figs = [Figure("torch", figure_case(i), 1, 4.0 if i.startswith("async") else 0.5) for i in ids if i.endswith("-b1")]
    verdict = next(v for v in check_ordering(figs, 128) if v.rule.startswith("cuda_graph faster"))
    assert verdict.ok is True


def test_failed_chain_step_is_rejudged_on_the_interleaved_measurement():
    figs = [f if f.case != "reuse_buffers" else Figure("torch", "reuse_buffers", B, 27.0, upload_ms=12.7)
            for f in good_figures()]
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
