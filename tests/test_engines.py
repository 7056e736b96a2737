"""Engine decisions and the engine cache: pure logic, no TensorRT.

The TensorRT 10-vs-11 branch is exercised with capability records as feature detection
would produce them; nothing here builds or runs an engine.
"""

import dataclasses
import json
import threading
import types
import warnings

import pytest

from trtbench.engines import (
    ENGINES,
    EngineCache,
    EngineConfigError,
    TrtCapabilities,
    cache_key,
    choose_fp16_path,
    engine_specs,
    key_digest,
    multi_profile_batches,
    multi_profile_shapes,
    needs_profile_sharing_flag,
    profile_for_batch,
)

TRT8 = TrtCapabilities("8.6.1", has_fp16_flag=True, has_strongly_typed_flag=False, has_profile_sharing_flag=True)
TRT10 = TrtCapabilities("10.13.0.35", has_fp16_flag=True, has_strongly_typed_flag=True, has_profile_sharing_flag=True)
TRT11 = TrtCapabilities("11.4.1", has_fp16_flag=False, has_strongly_typed_flag=True, has_profile_sharing_flag=False)


def test_detect_reads_features_not_version_numbers():
    def fake(version, *, fp16, preview):
        flags = types.SimpleNamespace(**({"FP16": 0} if fp16 else {}))
        module = types.SimpleNamespace(__version__=version, BuilderFlag=flags,
                                       NetworkDefinitionCreationFlag=types.SimpleNamespace(STRONGLY_TYPED=1))
        if preview:
            module.PreviewFeature = types.SimpleNamespace(PROFILE_SHARING_0806=0)
        return module

    assert TrtCapabilities.detect(fake("10.13.0", fp16=True, preview=True)) == TRT10.__class__(
        "10.13.0", True, True, True)
    caps = TrtCapabilities.detect(fake("11.4.1", fp16=False, preview=False))
    assert not caps.has_fp16_flag and not caps.has_profile_sharing_flag and caps.major == 11


@pytest.mark.parametrize("caps,force,expected", [
    (TRT10, False, "builder_flag"),
    (TRT10, True, "strongly_typed"),
    (TRT11, False, "strongly_typed"),
    (TRT11, True, "strongly_typed"),
    (TRT8, False, "builder_flag"),
])
def test_fp16_path(caps, force, expected):
    assert choose_fp16_path(caps, force) == expected


def test_fp16_impossible_without_flag_and_strong_typing():
    old = TrtCapabilities("8.5", has_fp16_flag=False, has_strongly_typed_flag=False, has_profile_sharing_flag=True)
    with pytest.raises(EngineConfigError, match="neither BuilderFlag.FP16 nor strong typing"):
        choose_fp16_path(old)


def test_profile_sharing_flag_only_before_10():
    assert needs_profile_sharing_flag(TRT8) is True
    assert needs_profile_sharing_flag(TRT10) is False
    assert needs_profile_sharing_flag(TRT11) is False  # never referenced where it does not exist
    with pytest.raises(EngineConfigError):
        needs_profile_sharing_flag(dataclasses.replace(TRT8, has_profile_sharing_flag=False))


def test_specs_follow_the_tutorial_shapes():
    specs = engine_specs(128, TRT10)
    assert set(specs) == set(ENGINES) == {"fp32", "fp16", "multi_profile", "shared_profile", "fp16_postprocess",
                                          "fp16_uint8"}
    assert specs["fp32"].profiles == ((1, 128, 256),) and specs["fp32"].fp16_path is None
    assert specs["fp32"].input_shape == (3, 224, 224) and specs["fp16_uint8"].input_shape == (224, 224, 3)
    assert specs["multi_profile"].profiles == multi_profile_shapes(128) == ((1, 16, 32), (64, 128, 192))
    assert specs["fp16"].fp16_path == "builder_flag" and specs["fp16"].onnx_fp16 is False
    assert specs["shared_profile"].profile_sharing_flag is False
    assert [specs[n].graph_variant for n in ("fp16", "fp16_postprocess", "fp16_uint8")] == ["logits", "postprocess",
                                                                                           "uint8"]
    assert all(s.max_aux_streams is None for s in specs.values())


def test_specs_follow_the_model_size_and_the_sweep():
    specs = engine_specs(128, TRT10, image_size=299, max_batch=512)
    assert specs["fp32"].input_shape == (3, 299, 299) and specs["fp32"].profiles == ((1, 128, 512),)
    assert engine_specs(128, TRT10, max_batch=200)["fp16"].profiles == ((1, 128, 256),)  # 2 x 128 covers it
    assert engine_specs(128, TRT10, max_aux_streams=0)["fp16"].max_aux_streams == 0


def test_specs_on_11_use_the_fp16_onnx_strongly_typed():
    specs = engine_specs(64, TRT11, max_aux_streams=2)
    for name in ("fp16", "multi_profile", "shared_profile", "fp16_postprocess", "fp16_uint8"):
        assert specs[name].fp16_path == "strongly_typed" and specs[name].onnx_fp16 is True
    assert specs["fp32"].onnx_fp16 is False and specs["fp32"].fp16_path is None and specs["fp16"].max_aux_streams == 2


def test_specs_reject_bad_options():
    with pytest.raises(EngineConfigError, match="batch size must be >= 1, got 0"):
        engine_specs(0, TRT10)
    with pytest.raises(EngineConfigError, match="max_aux_streams must be >= 0, got -1"):
        engine_specs(8, TRT10, max_aux_streams=-1)
    assert "multi_profile" not in engine_specs(1, TRT10)  # two profiles need two batch sizes


@pytest.mark.parametrize("batch", [2, 3, 8, 9, 16, 48, 64, 128, 192, 256, 1000])
def test_multi_profile_shapes_derive_from_any_batch_size(batch):
    (lo0, opt0, hi0), (lo1, opt1, hi1) = multi_profile_shapes(batch)
    assert lo0 == 1 and lo0 <= opt0 <= hi0 < lo1 <= opt1 <= hi1  # valid, never overlapping
    assert opt1 == batch and opt0 < batch
    assert multi_profile_batches(batch) == (opt0, batch)


def test_multi_profile_needs_two_batch_sizes():
    with pytest.raises(EngineConfigError, match="--batch-size 1: the multi-profile engine needs two batch sizes"):
        multi_profile_shapes(1)


def test_profile_selection_and_range_errors():
    spec = engine_specs(128, TRT10)["multi_profile"]
    ranges = spec.batch_ranges
    assert profile_for_batch(1, ranges) == 0 and profile_for_batch(16, ranges) == 0  # a profile's minimum is in it
    assert profile_for_batch(32, ranges) == 0 and profile_for_batch(64, ranges) == 1
    assert profile_for_batch(128, ranges) == 1 and profile_for_batch(192, ranges) == 1
    with pytest.raises(EngineConfigError, match=r"batch size 48 is outside every optimization profile \['1..32', '64..192'\]"):
        profile_for_batch(48, ranges)
    with pytest.raises(EngineConfigError, match="batch size 193 is outside"):
        profile_for_batch(193, ranges)
    assert multi_profile_batches(128) == (16, 128)


def _key(**changes):
    base = dict(spec=engine_specs(128, TRT10)["fp16"], onnx_sha256="a" * 64, trt_version="10.13.0.35",
                gpu_name="NVIDIA H100 80GB HBM3", compute_capability="9.0")
    base.update(changes)
    return cache_key(**base)


@pytest.mark.parametrize("change", [
    {"onnx_sha256": "b" * 64},
    {"trt_version": "10.14.1"},
    {"gpu_name": "NVIDIA A100-SXM4-80GB"},
    {"compute_capability": "8.0"},
    {"spec": engine_specs(128, TRT10, max_aux_streams=1)["fp16"]},
    {"spec": engine_specs(128, TRT10, force_strongly_typed=True)["fp16"]},
    {"spec": engine_specs(64, TRT10)["fp16"]},
    {"spec": engine_specs(128, TRT10, image_size=299)["fp16"]},
    {"spec": engine_specs(128, TRT10)["fp16_postprocess"]},
    {"spec": engine_specs(128, TRT10, max_batch=512)["fp16"]},
])
def test_every_key_field_changes_the_digest(change):
    assert key_digest(_key(**change)) != key_digest(_key())


def test_same_inputs_same_digest():
    assert key_digest(_key()) == key_digest(_key())


class Builds:
    def __init__(self, payload=b"engine-bytes"):
        self.count, self.payload = 0, payload

    def __call__(self):
        self.count += 1
        return self.payload + str(self.count).encode()


def ok(data):
    return None


def test_cache_builds_once_then_hits(tmp_path):
    cache, build = EngineCache(tmp_path), Builds()
    first = cache.get_or_build(_key(), build, ok, layer_info=lambda d: '{"Layers": []}')
    second = cache.get_or_build(_key(), build, ok)
    assert first.built and not second.built and build.count == 1 and second.data == first.data
    engine, meta, layers = cache.paths("fp16", key_digest(_key()))
    assert json.loads(meta.read_text())["key"] == _key()
    assert json.loads(layers.read_text()) == {"Layers": []}
    assert not list(tmp_path.glob("*.tmp"))  # atomic writes leave no temp files


def test_rebuild_forces_a_build(tmp_path):
    cache, build = EngineCache(tmp_path), Builds()
    cache.get_or_build(_key(), build, ok)
    again = cache.get_or_build(_key(), build, ok, rebuild=True)
    assert again.built and build.count == 2


def test_engine_that_fails_to_deserialize_is_rebuilt_with_warning(tmp_path):
    cache, build = EngineCache(tmp_path), Builds()
    entry = cache.get_or_build(_key(), build, ok)
    entry.path.write_bytes(b"corrupt")
    with pytest.warns(UserWarning, match="does not deserialize"):
        again = cache.get_or_build(_key(), build, lambda d: "bad magic" if d == b"corrupt" else None)
    assert again.built and again.data != b"corrupt" and entry.path.read_bytes() == again.data


def test_recorded_key_mismatch_is_rebuilt_with_warning(tmp_path):
    cache, build = EngineCache(tmp_path), Builds()
    entry = cache.get_or_build(_key(), build, ok)
    meta = entry.path.with_suffix(".json")
    doc = json.loads(meta.read_text())
    doc["key"]["tensorrt"] = "10.0.0"  # same file name, different recorded identity
    meta.write_text(json.dumps(doc))
    with pytest.warns(UserWarning, match="recorded key differs"):
        assert cache.get_or_build(_key(), build, ok).built


def test_built_engine_that_does_not_load_is_an_error_naming_it(tmp_path):
    with pytest.raises(RuntimeError, match="engine 'fp16' was built but does not load: nope"):
        EngineCache(tmp_path).get_or_build(_key(), Builds(), lambda d: "nope")
    assert not list(tmp_path.glob("*.engine"))


def test_two_sessions_build_the_same_engine_once(tmp_path):
    build, results, barrier = Builds(), [], threading.Barrier(2)

    def slow_build():
        import time

        time.sleep(0.2)
        return build()

    def session():
        barrier.wait()
        results.append(EngineCache(tmp_path).get_or_build(_key(), slow_build, ok))

    threads = [threading.Thread(target=session) for _ in range(2)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert build.count == 1 and sorted(r.built for r in results) == [False, True]
