"""The figures of a round that are pure arithmetic, the quieter host of --host-isolation,
and the ONNX export made once per content."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from trtbench.figures import busy_ms

ROOT = Path(__file__).resolve().parents[1]


def test_busy_time_is_the_union_of_the_spans():
    assert busy_ms(np.array([0.0, 5.0]), np.array([4.0, 9.0])) == 8.0  # apart
    assert busy_ms(np.array([0.0, 2.0]), np.array([4.0, 6.0])) == 6.0  # overlapping (two contexts)
    assert busy_ms(np.array([2.0, 0.0, 1.0]), np.array([3.0, 10.0, 2.0])) == 10.0  # nested, in any order
    assert busy_ms(np.array([0.0, 4.0]), np.array([4.0, 8.0])) == 8.0  # touching
    assert busy_ms(np.array([]), np.array([])) == 0.0


def isolated(level):
    code = (
        "import os, threading; from trtbench.gpu.host import isolate, timed_region; "
        f"print(isolate({level!r})); print(sorted(os.sched_getaffinity(0))); "
        "print(sorted(os.sched_getaffinity(threading.get_native_id()))); import gc\n"
        "with timed_region(): print(gc.isenabled())\n"
        "import torch; print(torch.get_num_threads())"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    return done.stdout.splitlines()


@pytest.mark.skipif(not hasattr(__import__("os"), "sched_getaffinity"), reason="no CPU affinity on this system")
def test_host_isolation_levels():
    import os

    allowed = sorted(os.sched_getaffinity(0))
    off = isolated("off")
    assert off[0] == "host isolation off" and off[1] == str(allowed) and off[3] == "True"
    process = isolated("process")
    if len(allowed) >= 2:
        cores = allowed[-4:]
        assert process[1] == str(cores) and process[2] == str(cores)  # the process on the last 4 cores it may use
    assert process[3] == "False" and process[4] == "1"  # no collection in a timed round; one intra-op thread
    with pytest.raises(ValueError, match="not one of"):
        from trtbench.gpu.host import isolate

        isolate("threads")


def test_an_export_is_made_once_per_content(net, spec, tmp_path, monkeypatch):
    from trtbench import graphs

    made = []
    real = graphs.export_onnx
    monkeypatch.setattr(graphs, "export_onnx", lambda *a: made.append(a[3]) or real(*a))
    first = graphs.cached_export(net, spec, tmp_path, "logits", False, "seeded")
    again = graphs.cached_export(net, spec, tmp_path, "logits", False, "seeded")
    other = graphs.cached_export(net, spec, tmp_path, "logits", False, "sha256:other-weights")
    assert first == again != other and len(made) == 2
    first.write_bytes(b"broken")  # an unreadable file is made again, not served
    assert graphs.cached_export(net, spec, tmp_path, "logits", False, "seeded") == first and len(made) == 3
