"""Engine decisions and the engine cache: pure logic, no TensorRT.

The TensorRT 10-vs-11 branch is exercised with capability records as feature detection
would produce them; nothing here builds or runs an engine.
"""

import dataclasses
import json
import threading
import types
import warnings
from pathlib import Path

import pytest

from trtbench.catalogue import ENGINE_KINDS as ENGINES
from trtbench.engines import (
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
        module = types.SimpleNamespace(
            __version__=version,
            BuilderFlag=flags,
            NetworkDefinitionCreationFlag=types.SimpleNamespace(STRONGLY_TYPED=1),
        )
        if preview:
            module.PreviewFeature = types.SimpleNamespace(PROFILE_SHARING_0806=0)
        return module

    assert TrtCapabilities.detect(fake("10.13.0", fp16=True, preview=True)) == TRT10.__class__(
        "10.13.0", True, True, True
    )
    caps = TrtCapabilities.detect(fake("11.4.1", fp16=False, preview=False))
    assert not caps.has_fp16_flag and not caps.has_profile_sharing_flag and caps.major == 11


@pytest.mark.parametrize("caps", [TRT10, TRT11], ids=["10.x", "11.x"])
def test_fp16_is_strongly_typed_on_10_and_11_alike(caps):
    """Finding 3: 10.x has BuilderFlag.FP16, but fp16 engines are built as on 11.x."""
    assert choose_fp16_path(caps) == "strongly_typed"
    specs = engine_specs(128, caps)
    for name in ("fp16", "multi_profile", "shared_profile", "fp16_postprocess", "fp16_uint8"):
        assert specs[name].fp16_path == "strongly_typed" and specs[name].onnx_fp16 is True
    assert specs["fp32"].fp16_path is None and specs["fp32"].onnx_fp16 is False


def test_fp16_impossible_without_strong_typing():
    with pytest.raises(
        EngineConfigError,
        match=r"^TensorRT 8.6.1 has no strongly typed networks; the suite builds fp16 "
        r"engines strongly typed \(TensorRT 10.x or 11.x\)$",
    ):
        choose_fp16_path(TRT8)


def test_profile_sharing_flag_only_before_10():
    assert needs_profile_sharing_flag(TRT8) is True
    assert needs_profile_sharing_flag(TRT10) is False
    assert needs_profile_sharing_flag(TRT11) is False  # never referenced where it does not exist
    with pytest.raises(EngineConfigError):
        needs_profile_sharing_flag(dataclasses.replace(TRT8, has_profile_sharing_flag=False))


def test_specs_follow_the_tutorial_shapes():
    specs = engine_specs(128, TRT10)
    assert (
        set(specs)
        == set(ENGINES)
        == {"fp32", "fp16", "multi_profile", "shared_profile", "fp16_postprocess", "fp16_uint8"}
    )
    assert specs["fp32"].profiles == ((1, 128, 256),) and specs["fp32"].fp16_path is None
    assert specs["fp32"].input_shape == (3, 224, 224) and specs["fp16_uint8"].input_shape == (224, 224, 3)
    assert specs["multi_profile"].profiles == multi_profile_shapes(128) == ((1, 16, 32), (64, 128, 192))
    assert specs["fp16"].fp16_path == "strongly_typed" and specs["fp16"].onnx_fp16 is True
    assert specs["shared_profile"].profile_sharing_flag is False
    assert [specs[n].graph_variant for n in ("fp16", "fp16_postprocess", "fp16_uint8")] == [
        "logits",
        "postprocess",
        "uint8",
    ]
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


@pytest.mark.parametrize("batch", [1, 8, 32, 128, 256, 300])
def test_an_engine_for_a_measured_batch_size_has_it_as_its_profiles_opt(batch):
    """Finding 5: batch-1 and sweep cases get an engine tuned for their batch size (trtexec
    builds for the shape it measures); min and max stay those of the session's engines, and the
    multi-profile engine keeps its own profiles."""
    specs = engine_specs(128, TRT10, max_batch=300, opt_batch=batch)
    default = engine_specs(128, TRT10, max_batch=300)
    for name in ("fp32", "fp16", "shared_profile", "fp16_postprocess", "fp16_uint8"):
        assert specs[name].profiles == ((1, batch, 300),) and default[name].profiles == ((1, 128, 300),)
        assert (key_digest(_key(spec=specs[name])) == key_digest(_key(spec=default[name]))) == (batch == 128)
    assert specs["multi_profile"] == default["multi_profile"]


def test_a_measured_batch_size_outside_the_profile_is_refused():
    assert engine_specs(128, TRT10, opt_batch=256)["fp16"].profiles == ((1, 256, 256),)
    for batch in (0, 257):
        with pytest.raises(
            EngineConfigError,
            match=rf"^batch size {batch} to measure is outside the engines' profile "
            r"1\.\.256$",
        ):
            engine_specs(128, TRT10, opt_batch=batch)


def test_multi_profile_needs_two_batch_sizes():
    with pytest.raises(EngineConfigError, match="--batch-size 1: the multi-profile engine needs two batch sizes"):
        multi_profile_shapes(1)


def test_profile_selection_and_range_errors():
    spec = engine_specs(128, TRT10)["multi_profile"]
    ranges = spec.batch_ranges
    assert profile_for_batch(1, ranges) == 0 and profile_for_batch(16, ranges) == 0  # a profile's minimum is in it
    assert profile_for_batch(32, ranges) == 0 and profile_for_batch(64, ranges) == 1
    assert profile_for_batch(128, ranges) == 1 and profile_for_batch(192, ranges) == 1
    with pytest.raises(
        EngineConfigError, match=r"batch size 48 is outside every optimization profile \['1..32', '64..192'\]"
    ):
        profile_for_batch(48, ranges)
    with pytest.raises(EngineConfigError, match="batch size 193 is outside"):
        profile_for_batch(193, ranges)
    assert multi_profile_batches(128) == (16, 128)


def _key(**changes):
    base = dict(
        spec=engine_specs(128, TRT10)["fp16"],
        onnx_sha256="a" * 64,
        trt_version="10.13.0.35",
        gpu_name="NVIDIA H100 80GB HBM3",
        compute_capability="9.0",
    )
    base.update(changes)
    return cache_key(**base)


@pytest.mark.parametrize(
    "change",
    [
        {"onnx_sha256": "b" * 64},
        {"trt_version": "10.14.1"},
        {"gpu_name": "NVIDIA A100-SXM4-80GB"},
        {"compute_capability": "8.0"},
        {"spec": engine_specs(128, TRT10, max_aux_streams=1)["fp16"]},
        {"spec": engine_specs(128, TRT10, opt_batch=1)["fp16"]},
        {"spec": engine_specs(64, TRT10)["fp16"]},
        {"spec": engine_specs(128, TRT10, image_size=299)["fp16"]},
        {"spec": engine_specs(128, TRT10)["fp16_postprocess"]},
        {"spec": engine_specs(128, TRT10, max_batch=512)["fp16"]},
    ],
)
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


# ---------------------------------------------------------------- formats on disk, boundaries, messages
# (each pins a behaviour a mutation test found unchecked: see mutation/run.py)


def test_detect_needs_the_sharing_feature_itself_not_just_the_preview_enum():
    module = types.SimpleNamespace(
        __version__="8.6.1",
        BuilderFlag=types.SimpleNamespace(FP16=0),
        NetworkDefinitionCreationFlag=types.SimpleNamespace(),
        PreviewFeature=types.SimpleNamespace(FASTER_DYNAMIC_SHAPES_0805=0),
    )
    caps = TrtCapabilities.detect(module)
    assert caps == TrtCapabilities("8.6.1", True, False, False)


def test_fp16_path_and_the_10x_strong_typing_it_trusts():
    no_flags_10 = TrtCapabilities(
        "10.0.1", has_fp16_flag=False, has_strongly_typed_flag=False, has_profile_sharing_flag=False
    )
    assert choose_fp16_path(no_flags_10) == "strongly_typed"  # 10.x has strong typing whatever detection saw
    assert choose_fp16_path(dataclasses.replace(TRT8, has_strongly_typed_flag=True)) == "strongly_typed"
    with pytest.raises(EngineConfigError, match=r"^TensorRT 8.6.1 cannot share a profile between contexts$"):
        needs_profile_sharing_flag(dataclasses.replace(TRT8, has_profile_sharing_flag=False))


def test_specs_fields_for_every_engine():
    specs = engine_specs(128, dataclasses.replace(TRT8, has_strongly_typed_flag=True))
    assert {n: s.precision for n, s in specs.items()} == {
        "fp32": "fp32",
        "fp16": "fp16",
        "multi_profile": "fp16",
        "shared_profile": "fp16",
        "fp16_postprocess": "fp16",
        "fp16_uint8": "fp16",
    }
    assert {n: s.profile_sharing_flag for n, s in specs.items()} == {n: n == "shared_profile" for n in specs}


def test_batch_2_has_a_multi_profile_engine_and_batch_1_keeps_every_other_engine():
    assert engine_specs(2, TRT10)["multi_profile"].profiles == ((1, 1, 1), (2, 2, 3))
    assert set(engine_specs(1, TRT10)) == set(ENGINES) - {"multi_profile"}


def test_multi_profile_shapes_at_small_batches_and_its_message():
    assert multi_profile_shapes(3) == ((1, 1, 2), (3, 3, 4))
    assert multi_profile_shapes(16) == ((1, 2, 4), (8, 16, 24))
    with pytest.raises(
        EngineConfigError,
        match=r"^--batch-size 1: the multi-profile engine needs two batch sizes, "
        r"so --batch-size >= 2$",
    ):
        multi_profile_shapes(1)


def test_a_profiles_minimum_and_maximum_are_in_it():
    ranges = [(1, 32), (64, 192)]
    assert [profile_for_batch(b, ranges) for b in (1, 32, 64, 192)] == [0, 0, 1, 1]
    for batch in (0, 33, 63, 193):
        with pytest.raises(EngineConfigError, match=f"batch size {batch} is outside"):
            profile_for_batch(batch, ranges)


def test_max_aux_streams_zero_is_a_value_not_the_default():
    specs = engine_specs(64, TRT10, max_aux_streams=0)
    assert all(s.max_aux_streams == 0 for s in specs.values())
    assert key_digest(_key(spec=specs["fp16"])) != key_digest(_key(spec=engine_specs(64, TRT10)["fp16"]))


def test_cache_key_records_every_field_by_name():
    spec = engine_specs(128, TRT10)["fp16"]
    assert _key() == {
        "schema": 3,
        "onnx_sha256": "a" * 64,
        "tensorrt": "10.13.0.35",
        "gpu_name": "NVIDIA H100 80GB HBM3",
        "compute_capability": "9.0",
        "spec": json.loads(json.dumps(dataclasses.asdict(spec))),
    }


def test_digest_does_not_depend_on_the_order_of_the_keys():
    key = _key()
    assert key_digest(dict(reversed(list(key.items())))) == key_digest(key)


def test_file_sha256_of_a_file_of_several_chunks(tmp_path):
    import hashlib

    data = bytes(range(256)) * 5000  # 1.2 MiB: more than one read
    path = tmp_path / "model.onnx"
    path.write_bytes(data)
    from trtbench.files import file_sha256

    assert file_sha256(path) == hashlib.sha256(data).hexdigest()
    (tmp_path / "empty").write_bytes(b"")
    assert file_sha256(tmp_path / "empty") == hashlib.sha256(b"").hexdigest()


def test_timing_cache_path_per_tensorrt_and_gpu(tmp_path):
    import hashlib

    cache = EngineCache(tmp_path)
    tag = hashlib.sha256(b"10.13.0|NVIDIA H100 80GB HBM3").hexdigest()[:16]
    assert cache.timing_cache_path("10.13.0", "NVIDIA H100 80GB HBM3") == tmp_path / f"timing-{tag}.cache"
    assert cache.timing_cache_path("10.14.0", "NVIDIA H100 80GB HBM3") != cache.timing_cache_path(
        "10.13.0", "NVIDIA H100 80GB HBM3"
    )


def test_write_atomic_makes_folders_and_renames_a_hidden_temp_from_the_same_folder(tmp_path, monkeypatch):
    import os

    from trtbench import files

    renames = []
    real_replace = os.replace

    def spy(src, dst):
        renames.append((Path(src), Path(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(files.os, "replace", spy)
    target = tmp_path / "a" / "b" / "x.engine"
    files.write_atomic(target, b"payload")
    assert target.read_bytes() == b"payload"
    [(src, dst)] = renames
    assert dst == target and src.parent == target.parent
    assert src.name.startswith(".x.engine.") and src.name.endswith(".tmp")


def test_write_atomic_cleans_up_and_keeps_the_original_error(tmp_path, monkeypatch):
    from trtbench import files

    def fail(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(files.os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        files.write_atomic(tmp_path / "x.engine", b"payload")
    assert list(tmp_path.iterdir()) == []


def test_an_interrupt_right_after_the_rename_stays_an_interrupt(tmp_path, monkeypatch):
    import os

    from trtbench import files

    real_replace = os.replace

    def replace_then_interrupt(src, dst):
        real_replace(src, dst)
        raise KeyboardInterrupt

    monkeypatch.setattr(files.os, "replace", replace_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        files.write_atomic(tmp_path / "x.engine", b"payload")
    assert [p.name for p in tmp_path.iterdir()] == ["x.engine"]


class Clock:
    """perf_counter for the cache: each call 1.23456 s after the previous one."""

    def __init__(self):
        self.now = 100.0

    def __call__(self):
        self.now += 1.23456
        return self.now


def test_cache_files_names_and_metadata_format(tmp_path, monkeypatch):
    from trtbench import engines

    monkeypatch.setattr(engines.time, "perf_counter", Clock())
    root = tmp_path / "nested" / "engines"
    validated, described = [], []

    def validate(data):
        validated.append(data)
        return None

    def layers(data):
        described.append(data)
        return '{"Layers": []}'

    key = _key()
    entry = EngineCache(root).get_or_build(key, Builds(), validate, layer_info=layers)
    digest = key_digest(key)
    engine = root / f"fp16-{digest[:16]}.engine"
    assert entry == engines.CachedEngine(
        engine, b"engine-bytes1", key, built=True, build_seconds=pytest.approx(1.23456)
    )
    assert validated == described == [b"engine-bytes1"]
    assert sorted(p.name for p in root.iterdir()) == sorted(
        [engine.name, f"fp16-{digest[:16]}.json", f"fp16-{digest[:16]}.layers.json", f"fp16-{digest[:16]}.engine.lock"]
    )
    assert (root / f"fp16-{digest[:16]}.json").read_text() == json.dumps(
        {"key": key, "digest": digest, "build_seconds": 1.235, "bytes": len(b"engine-bytes1")}, indent=1, sort_keys=True
    )
    hit = EngineCache(root).get_or_build(key, Builds(), ok)
    assert hit == engines.CachedEngine(engine, b"engine-bytes1", key, built=False, build_seconds=None)


@pytest.mark.parametrize("damage", ["not json", "{}", '{"digest": "x"}'])
def test_unreadable_metadata_warns_and_rebuilds_never_crashes(tmp_path, damage):
    cache, build = EngineCache(tmp_path), Builds()
    entry = cache.get_or_build(_key(), build, ok)
    entry.path.with_suffix(".json").write_text(damage)
    with pytest.warns(UserWarning, match=rf"^cached engine {entry.path.name}: metadata unreadable \(.+\); rebuilding$"):
        again = cache.get_or_build(_key(), build, ok)
    assert again.built and build.count == 2 and json.loads(entry.path.with_suffix(".json").read_text())["key"] == _key()
