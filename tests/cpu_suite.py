"""A pytest plugin that runs the suite's benchmarks on a machine without a GPU: the CUDA
test double (``tests/fake_cuda.py``) in place of the CUDA runtime, and ONNX Runtime behind
the torch backend's interface. Load it with ``-p tests.cpu_suite`` (or
``PYTEST_PLUGINS=tests.cpu_suite``) to drive the commands that run the suite (``trtbench
ab``, ``bisect``) through their whole flow in CPU tests. What it times is the CPU running
ONNX Runtime: never a figure of any GPU."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest

REASON = "tensorrt is not part of the CPU suite (tests/cpu_suite.py)"


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    import fixtures.options
    import fixtures.session
    from tests.fake_cuda import CpuEngine, FakeRuntime
    from trtbench.catalogue import graph_io
    from trtbench.gpu import cuda
    from trtbench.gpu.backends import torch_backend

    runtime = FakeRuntime()
    cuda.cudart = runtime

    def unavailable(name: str) -> str | None:
        return None if name == "torch" else REASON

    fixtures.options.backend_unavailable = unavailable
    fixtures.session.backend_unavailable = unavailable
    folder = Path(tempfile.mkdtemp(prefix="cpu-suite-"))
    config.add_cleanup(lambda: [p.unlink() for p in folder.iterdir()] and None)

    def cpu_engine(model: Any, spec: Any, precision: str = "fp32", variant: str = "logits") -> CpuEngine:
        from trtbench.graphs import export_onnx

        path = folder / f"{spec.name}-{variant}.onnx"
        if not path.exists():
            export_onnx(model, spec, path, variant)  # fp32 weights: within every precision's tolerance
        return CpuEngine(runtime, path, precision, variant, graph_io(spec, variant))

    torch_backend.TorchEngine = cpu_engine
