"""The model, its graphs, the images and the ONNX Runtime reference (CPU)."""

import numpy as np
import onnx
import pytest
import torch

from trtbench import catalogue as cat
from trtbench import graphs as gr
from trtbench import images as img
from trtbench import model as m
from trtbench import reference as ref


@pytest.fixture(scope="module")
def exported(net, spec, tmp_path_factory):
    folder = tmp_path_factory.mktemp("onnx")
    return {v: gr.export_onnx(net, spec, folder / f"{v}.onnx", v) for v in cat.GRAPH_VARIANTS}


def test_model_names_and_sizes():
    assert m.model_spec("resnet18") == cat.ModelSpec("resnet18", 224, 1000)
    assert m.model_spec("inception_v3").image_size == 299  # what the architecture needs
    assert m.model_spec("vit_b_16").image_size == 224
    assert "resnet50" in m.classifier_names() and "fasterrcnn_resnet50_fpn" not in m.classifier_names()


@pytest.mark.parametrize("name,what", [("fasterrcnn_resnet50_fpn", "not an image classifier"), ("resnet19", "unknown")])
def test_unknown_or_non_classifier_model_is_refused_with_examples(name, what):
    with pytest.raises(m.ModelError) as info:
        m.model_spec(name)
    message = str(info.value)
    assert message.startswith(f"--model {name}: {what}; allowed: ") and "resnet50" in message and "\n" not in message


def test_default_weights_discriminate_at_batch_128(net, spec):
    """The correctness checks' power: many classes, logits mostly image-dependent."""
    x = torch.from_numpy(img.normalize(img.make_images(10088, 0, 128, spec.image_size)))
    with torch.no_grad():
        logits = net(x).numpy()
    found = ref.Discrimination.of(logits)
    assert found.distinct_classes >= ref.MIN_DISTINCT_CLASSES_AT_128 and found.image_dependent_share >= 0.5
    assert found.meets_targets and "distinct top-1 classes in a batch of 128" in found.describe()


def test_uncalibrated_random_weights_would_not_discriminate(spec):
    """Control: the problem the calibration solves (one class for every image)."""
    x = torch.from_numpy(img.normalize(img.make_images(10088, 0, 32, spec.image_size)))
    with torch.no_grad():
        found = ref.Discrimination.of(m._construct("resnet18").eval()(x).numpy())
    assert not found.meets_targets


def test_calibrated_weights_are_cached_and_deterministic(spec, net, tmp_path):
    first = m.build_model(spec, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("model-resnet18-*.pt"))) == 1
    again = m.build_model(spec, cache_dir=tmp_path)  # from the cache
    for a, b, c in zip(first.state_dict().values(), again.state_dict().values(), net.state_dict().values()):
        assert torch.equal(a, b) and torch.equal(a, c)


def test_a_second_model_exports_and_matches_onnxruntime(tmp_path):
    spec = m.model_spec("mobilenet_v3_large")
    net = m.build_model(spec, cache_dir=tmp_path)
    path = gr.export_onnx(net, spec, tmp_path / "mnv3.onnx", "postprocess")
    x = img.normalize(img.make_images(3, 0, 4, spec.image_size))
    out = ref.run_onnxruntime(path, [x])[0]
    with torch.no_grad():
        expected = net(torch.from_numpy(x)).numpy()
    assert np.linalg.norm(out["output0"] - expected) / np.linalg.norm(expected) < 1e-4
    assert (out["top5_class"][:, 0] == expected.argmax(axis=1)).all()


def test_exports_have_the_tutorial_names_a_dynamic_batch_and_pass_the_checker(exported):
    for variant, path in exported.items():
        graph = onnx.load(str(path)).graph
        onnx.checker.check_model(str(path), full_check=True)
        inputs, outputs = cat.graph_io(m.model_spec("resnet18"), variant)
        assert [i.name for i in graph.input] == list(inputs) and [o.name for o in graph.output] == list(outputs)
        dims = graph.input[0].type.tensor_type.shape.dim
        assert dims[0].dim_param and [d.dim_value for d in dims[1:]] == list(inputs["input0"][1])


def test_graph_variants_agree_with_the_model_and_each_other(exported, net, spec):
    images = img.make_images(5, 0, 4, spec.image_size)
    x = img.normalize(images)
    with torch.no_grad():
        expected = net(torch.from_numpy(x)).numpy()
    logits = ref.run_onnxruntime(exported["logits"], [x])[0]
    post = ref.run_onnxruntime(exported["postprocess"], [x])[0]
    u8 = ref.run_onnxruntime(exported["uint8"], [images])[0]
    assert np.linalg.norm(logits["output0"] - expected) / np.linalg.norm(expected) < 1e-5
    for out in (post, u8):
        assert np.linalg.norm(out["output0"] - expected) / np.linalg.norm(expected) < 1e-5
        probs = np.exp(expected - expected.max(1, keepdims=True))
        probs /= probs.sum(1, keepdims=True)
        top = np.argsort(-probs, axis=1)[:, :5]
        np.testing.assert_array_equal(out["top5_class"], top)
        np.testing.assert_allclose(out["top5_prob"], np.take_along_axis(probs, top, 1), rtol=1e-4, atol=1e-6)
        assert out["top5_class"].dtype == np.int32 and out["top5_prob"].dtype == np.float32


def test_images_are_seeded_prefix_consistent_and_in_the_tutorial_range():
    a = img.make_images(7, 1, 4)
    assert a.shape == (4, 224, 224, 3) and a.dtype == np.uint8
    assert np.array_equal(a, img.make_images(7, 1, 4))
    assert np.array_equal(a[:2], img.make_images(7, 1, 2))  # a smaller batch is a prefix
    assert not np.array_equal(a, img.make_images(8, 1, 4)) and not np.array_equal(a, img.make_images(7, 2, 4))
    x = img.normalize(a)
    assert x.shape == (4, 3, 224, 224) and x.dtype == np.float32 and x.flags.c_contiguous
    assert -1.0 <= x.min() < -0.9 and 0.9 < x.max() <= 1.0
    np.testing.assert_allclose(x[1, 2, 10, 20], a[1, 10, 20, 2] / 127.5 - 1, rtol=1e-6)


def test_image_batches_are_cached(tmp_path):
    first = img.image_batches(3, 2, 2, 32, tmp_path)
    assert len(list(tmp_path.glob("images-*.npy"))) == 1
    again = img.image_batches(3, 2, 2, 32, tmp_path)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert np.array_equal(first[1], img.make_images(3, 1, 2, 32))


def test_reference_is_cached_per_graph_and_data(exported, tmp_path, monkeypatch):
    batches = [img.normalize(img.make_images(5, i, 2)) for i in range(2)]
    first, cached = ref.reference_outputs(exported["logits"], batches, tmp_path)
    assert not cached and len(list(tmp_path.glob("reference-*.npz"))) == 1
    calls = []
    monkeypatch.setattr(ref, "run_onnxruntime", lambda *a: calls.append(a))
    second, cached = ref.reference_outputs(exported["logits"], batches, tmp_path)
    assert cached and not calls and all(np.array_equal(a["output0"], b["output0"]) for a, b in zip(first, second))
    # other data, or another graph (another model's export): never served from the cache
    monkeypatch.setattr(ref, "run_onnxruntime", lambda p, b: [{"output0": np.zeros((2, 1000), np.float32)}] * 2)
    assert not ref.reference_outputs(exported["logits"], batches[::-1], tmp_path)[1]
    assert not ref.reference_outputs(exported["postprocess"], batches, tmp_path)[1]


def test_fp16_export_keeps_fp32_io(net, spec, tmp_path):
    path = gr.export_onnx(net, spec, tmp_path / "h.onnx", "postprocess", fp16=True)
    graph = onnx.load(str(path)).graph
    assert graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert any(init.data_type == onnx.TensorProto.FLOAT16 for init in graph.initializer)


def test_weights_of_another_architecture_are_one_line_with_counts(spec, tmp_path):
    path = tmp_path / "r34.pt"
    torch.save(m._construct("resnet34").state_dict(), path)
    with pytest.raises(m.ModelError) as info:
        m.load_weights(spec, path)
    message = str(info.value)
    assert "\n" not in message and len(message) < 400
    assert message.startswith(f"--weights {path}: a state dict of ") and "does not fit resnet18" in message
    assert "0 missing" in message and "unexpected (layer1.2.conv1.weight, " in message


def test_weights_that_are_not_a_torch_file(spec, tmp_path):
    path = tmp_path / "random.pt"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(
        m.ModelError,
        match=r"^--weights .*random.pt: not a file torch.load can read \(\w+\); "
        r"expected a resnet18 state dict saved with torch.save$",
    ):
        m.load_weights(spec, path)


def test_integer_tensors_in_place_of_float_weights_are_refused(spec, net, tmp_path):
    path = tmp_path / "ints.pt"
    state = net.state_dict()
    state["fc.weight"] = state["fc.weight"].round().to(torch.int64)
    torch.save(state, path)
    with pytest.raises(m.ModelError, match=r"0 missing, 0 unexpected, 1 of another shape or type \(fc.weight\)$"):
        m.load_weights(spec, path)


def test_a_pickle_that_is_not_weights_is_one_line_with_no_warning(spec, tmp_path, recwarn):
    import pickle

    path = tmp_path / "obj.pt"
    path.write_bytes(pickle.dumps({"a": __import__("datetime").date(2020, 1, 1)}))
    with pytest.raises(m.ModelError, match="not a file torch.load can read"):
        m.load_weights(spec, path)
    assert not [w for w in recwarn if "torch" in str(w.filename)]


def test_an_empty_model_name_is_shown_as_such():
    with pytest.raises(m.ModelError, match=r"^--model '': unknown; allowed: one of the \d+ classifiers"):
        m.model_spec("")


def test_real_weights_load(spec, net, tmp_path):
    path = tmp_path / "good.pt"
    torch.save(net.state_dict(), path)
    again = m.build_model(spec, m.load_weights(spec, path))
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), again.state_dict().values()))


def test_weights_identity_names_the_seeded_recipe_or_the_files_content(tmp_path):
    seeded = m.weights_identity(None)
    import torchvision

    assert seeded == (
        f"seeded:{m.WEIGHTS_SEED}:calibration-v{m.CALIBRATION_VERSION}:torch-{torch.__version__}"
        f":torchvision-{torchvision.__version__}"
    )
    a, b, c = tmp_path / "a.pt", tmp_path / "b.pt", tmp_path / "c.pt"
    a.write_bytes(b"one state dict")
    c.write_bytes(b"one state dict")
    b.write_bytes(b"another state dict")
    assert m.weights_identity(a) == m.weights_identity(c) != m.weights_identity(b)  # by content, not by name
    assert m.weights_identity(a).startswith("sha256:") and len(m.weights_identity(a)) == len("sha256:") + 16
