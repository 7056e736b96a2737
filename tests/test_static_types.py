"""The TensorRT code type-checks against tensorrt-stubs, and the check has teeth."""

import textwrap

from trtbench.commands.static_check import ROOT, run_mypy


def test_tensorrt_code_typechecks_against_the_stubs_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the suite's own sources, wherever the command is run from
    out, status = run_mypy()
    assert status == 0, out
    assert "Success: no issues found in 4 source files" in out


def test_a_wrong_tensorrt_call_is_caught(tmp_path):
    """Guards against the stubs silently resolving to Any (then every call would pass)."""
    bad = tmp_path / "bad_trt.py"
    bad.write_text(
        textwrap.dedent("""
        import tensorrt as trt

        def f(ctx: trt.IExecutionContext) -> None:
            ctx.execute_async_v3("not a stream")
            trt.BuilderFlag.NO_SUCH_FLAG
    """)
    )
    out, status = run_mypy([str(bad)])
    assert status == 1
    assert 'Argument 1 to "execute_async_v3"' in out and "NO_SUCH_FLAG" in out
    assert ROOT.exists()
