"""Export, ONNX Runtime reference and its cache (CPU)."""

import numpy as np
import onnx
import pytest

from trtbench import model as resnet


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    m = resnet.build_resnet18()
    return m, resnet.export_onnx(m, tmp_path_factory.mktemp("x") / "r18.onnx")


def test_export_has_tutorial_names_dynamic_batch_and_passes_checker(exported):
    _, path = exported
    graph = onnx.load(str(path)).graph
    onnx.checker.check_model(str(path), full_check=True)
    assert [i.name for i in graph.input] == ["input0"] and [o.name for o in graph.output] == ["output0"]
    dims = graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param and [d.dim_value for d in dims[1:]] == [3, 224, 224]


def test_weights_are_deterministic_and_match_onnxruntime(exported, tmp_path):
    import torch

    m, path = exported
    again = resnet.build_resnet18()
    for a, b in zip(m.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)
    x = resnet.make_batches(3, 2, 1)[0]
    ort_out = resnet.run_onnxruntime(path, [x])[0]
    with torch.no_grad():
        torch_out = m(torch.from_numpy(x)).numpy()
    assert np.linalg.norm(ort_out - torch_out) / np.linalg.norm(torch_out) < 1e-5


def test_batches_are_seeded():
    a, b = resnet.make_batches(7, 2, 2), resnet.make_batches(7, 2, 2)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert a[0].shape == (2, 3, 224, 224) and a[0].dtype == np.float32
    assert not np.array_equal(a[0], resnet.make_batches(8, 2, 1)[0])


def test_reference_is_deterministic_and_cached(exported, tmp_path, monkeypatch):
    _, path = exported
    batches = resnet.make_batches(5, 2, 2)
    first, cached = resnet.reference_outputs(path, 5, batches, tmp_path)
    assert not cached and len(list(tmp_path.glob("reference-*.npz"))) == 1
    calls = []
    monkeypatch.setattr(resnet, "run_onnxruntime", lambda *a: calls.append(a))
    second, cached = resnet.reference_outputs(path, 5, batches, tmp_path)
    assert cached and not calls  # ONNX Runtime did not run again
    assert all(np.array_equal(a, b) for a, b in zip(first, second))
    # another seed is another key: computed, not served from the cache
    monkeypatch.setattr(resnet, "run_onnxruntime", lambda p, b: [np.zeros((2, 1000), np.float32)] * 2)
    _, cached = resnet.reference_outputs(path, 6, batches, tmp_path)
    assert not cached


def test_fp16_export_keeps_fp32_io(exported, tmp_path):
    m, _ = exported
    path = resnet.export_onnx(m, tmp_path / "h.onnx", fp16=True)
    graph = onnx.load(str(path)).graph
    assert graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert any(init.data_type == onnx.TensorProto.FLOAT16 for init in graph.initializer)
