"""Which TensorRT engines the approaches need, and an on-disk cache that is never stale.

Everything here is pure Python (no TensorRT import): the decisions (profile shapes
from options, which fp16 path and which flags the installed TensorRT offers, cache
keys) are unit-tested on the CPU. The few calls into TensorRT live in
``trtbench.gpu.backends.tensorrt_backend``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Sequence

from filelock import FileLock

MULTI_PROFILE_SHAPES = ((1, 16, 32), (64, 128, 192))  # the tutorial's two profiles
KEY_SCHEMA = 1  # bump when the meaning of a key field changes


class EngineConfigError(ValueError):
    """Options that no engine can satisfy (raised before any build starts)."""


@dataclasses.dataclass(frozen=True)
class TrtCapabilities:
    """What the installed TensorRT offers, found by feature detection."""

    version: str
    has_fp16_flag: bool  # BuilderFlag.FP16 exists (removed in 11.x)
    has_strongly_typed_flag: bool  # NetworkDefinitionCreationFlag.STRONGLY_TYPED exists
    has_profile_sharing_flag: bool  # PreviewFeature.PROFILE_SHARING_0806 exists

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])

    @classmethod
    def detect(cls, trt: Any) -> "TrtCapabilities":
        preview = getattr(trt, "PreviewFeature", None)
        return cls(
            version=str(trt.__version__),
            has_fp16_flag=hasattr(trt.BuilderFlag, "FP16"),
            has_strongly_typed_flag=hasattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED"),
            has_profile_sharing_flag=preview is not None and hasattr(preview, "PROFILE_SHARING_0806"),
        )


@dataclasses.dataclass(frozen=True)
class EngineSpec:
    """Everything that decides what a build produces (all of it goes into the cache key)."""

    name: str  # fp32, fp16, multi_profile, shared_profile
    precision: str  # fp32 or fp16 (compute); I/O stays fp32
    profiles: tuple[tuple[int, int, int], ...]  # (min, opt, max) batch per profile
    fp16_path: str | None = None  # "builder_flag" (10.x) or "strongly_typed" (11.x, or forced)
    profile_sharing_flag: bool = False  # PreviewFeature.PROFILE_SHARING_0806 (TensorRT < 10)
    max_aux_streams: int | None = None  # None: TensorRT's default
    onnx_variant: str = "fp32"  # which exported ONNX the network is parsed from

    @property
    def batch_ranges(self) -> list[tuple[int, int]]:
        return [(lo, hi) for lo, _, hi in self.profiles]


def profile_for_batch(batch: int, ranges: Sequence[tuple[int, int]]) -> int:
    """The first optimization profile whose (min, max) batch range holds ``batch``."""
    for index, (lo, hi) in enumerate(ranges):
        if lo <= batch <= hi:
            return index
    raise EngineConfigError(
        f"batch size {batch} is outside every optimization profile {[f'{lo}..{hi}' for lo, hi in ranges]}")


def choose_fp16_path(caps: TrtCapabilities, force_strongly_typed: bool = False) -> str:
    """fp16 on 10.x is BuilderFlag.FP16 (as the tutorial); 11.x has only strong typing."""
    if force_strongly_typed or not caps.has_fp16_flag:
        if caps.major < 10 and not caps.has_strongly_typed_flag:
            raise EngineConfigError(f"TensorRT {caps.version} has neither BuilderFlag.FP16 nor strong typing")
        return "strongly_typed"
    return "builder_flag"


def needs_profile_sharing_flag(caps: TrtCapabilities) -> bool:
    """Before 10.0 contexts share a profile only with the preview flag; from 10.0 it is default."""
    if caps.major >= 10:
        return False
    if not caps.has_profile_sharing_flag:
        raise EngineConfigError(f"TensorRT {caps.version} cannot share a profile between contexts")
    return True


def engine_specs(
    batch_size: int,
    caps: TrtCapabilities,
    max_aux_streams: int | None = None,
    force_strongly_typed: bool = False,
) -> dict[str, EngineSpec]:
    """The four engines, keyed by name, for ``--batch-size`` (tutorial: 1/128/256)."""
    if batch_size < 1:
        raise EngineConfigError(f"batch size must be >= 1, got {batch_size}")
    if max_aux_streams is not None and max_aux_streams < 0:
        raise EngineConfigError(f"max_aux_streams must be >= 0, got {max_aux_streams}")
    wide = ((1, batch_size, 2 * batch_size),)
    fp16_path = choose_fp16_path(caps, force_strongly_typed)
    fp16_onnx = "fp16" if fp16_path == "strongly_typed" else "fp32"
    aux = max_aux_streams
    return {
        "fp32": EngineSpec("fp32", "fp32", wide, max_aux_streams=aux),
        "fp16": EngineSpec("fp16", "fp16", wide, fp16_path, onnx_variant=fp16_onnx, max_aux_streams=aux),
        "multi_profile": EngineSpec(
            "multi_profile", "fp16", MULTI_PROFILE_SHAPES, fp16_path, onnx_variant=fp16_onnx, max_aux_streams=aux
        ),
        "shared_profile": EngineSpec(
            "shared_profile", "fp16", wide, fp16_path, needs_profile_sharing_flag(caps), onnx_variant=fp16_onnx,
            max_aux_streams=aux,
        ),
    }


def multi_profile_batches(batch_size: int) -> tuple[int, int]:
    """The small and large batch of the multi-profile approach, checked against its profiles."""
    small, large = MULTI_PROFILE_SHAPES[0][1], batch_size
    lo, _, hi = MULTI_PROFILE_SHAPES[1]
    if not lo <= large <= hi:
        raise EngineConfigError(
            f"--batch-size {batch_size} is outside the multi-profile engine's second profile {lo}..{hi}"
        )
    return small, large


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def cache_key(spec: EngineSpec, onnx_sha256: str, trt_version: str, gpu_name: str, compute_capability: str) -> dict[str, Any]:
    """The full identity of an engine: model, TensorRT, GPU and every build option.

    Normalised through JSON (tuples become lists) so it compares equal to the recorded copy.
    """
    key: dict[str, Any] = json.loads(json.dumps({
        "schema": KEY_SCHEMA,
        "onnx_sha256": onnx_sha256,
        "tensorrt": trt_version,
        "gpu_name": gpu_name,
        "compute_capability": compute_capability,
        "spec": dataclasses.asdict(spec),
    }))
    return key


def key_digest(key: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temp file in the same folder, then rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclasses.dataclass
class CachedEngine:
    path: Path
    data: bytes
    key: dict[str, Any]
    built: bool  # True if built in this call
    build_seconds: float | None


class EngineCache:
    """Engines, their metadata and layer information in one folder, one lock per engine.

    ``get_or_build`` returns a cached engine only when its recorded key equals the
    requested one and ``validate`` accepts its bytes (a deserialization check);
    otherwise it warns, rebuilds and replaces it.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def paths(self, name: str, digest: str) -> tuple[Path, Path, Path]:
        stem = self.root / f"{name}-{digest[:16]}"
        return stem.with_suffix(".engine"), stem.with_suffix(".json"), stem.with_suffix(".layers.json")

    def timing_cache_path(self, trt_version: str, gpu_name: str) -> Path:
        tag = hashlib.sha256(f"{trt_version}|{gpu_name}".encode()).hexdigest()[:16]
        return self.root / f"timing-{tag}.cache"

    def get_or_build(
        self,
        key: dict[str, Any],
        build: Callable[[], bytes],
        validate: Callable[[bytes], str | None],
        layer_info: Callable[[bytes], str] | None = None,
        rebuild: bool = False,
    ) -> CachedEngine:
        name = key["spec"]["name"]
        digest = key_digest(key)
        engine_path, meta_path, layers_path = self.paths(name, digest)
        self.root.mkdir(parents=True, exist_ok=True)
        with FileLock(str(engine_path) + ".lock"):
            if not rebuild:
                cached = self._load_valid(engine_path, meta_path, key, validate)
                if cached is not None:
                    return CachedEngine(engine_path, cached, key, built=False, build_seconds=None)
            start = time.perf_counter()
            data = build()
            seconds = time.perf_counter() - start
            problem = validate(data)
            if problem is not None:
                raise RuntimeError(f"engine {name!r} was built but does not load: {problem}")
            write_atomic(engine_path, data)
            meta = {"key": key, "digest": digest, "build_seconds": round(seconds, 3), "bytes": len(data)}
            write_atomic(meta_path, json.dumps(meta, indent=1, sort_keys=True).encode())
            if layer_info is not None:
                write_atomic(layers_path, layer_info(data).encode())
            return CachedEngine(engine_path, data, key, built=True, build_seconds=seconds)

    @staticmethod
    def _load_valid(engine_path: Path, meta_path: Path, key: dict[str, Any], validate: Callable[[bytes], str | None]) -> bytes | None:
        if not engine_path.exists():
            return None
        try:
            recorded = json.loads(meta_path.read_text())["key"]
        except (OSError, ValueError, KeyError) as exc:
            warnings.warn(f"cached engine {engine_path.name}: metadata unreadable ({exc}); rebuilding")
            return None
        if recorded != key:
            warnings.warn(f"cached engine {engine_path.name}: recorded key differs from the requested one; rebuilding")
            return None
        data = engine_path.read_bytes()
        problem = validate(data)
        if problem is not None:
            warnings.warn(f"cached engine {engine_path.name} does not deserialize ({problem}); rebuilding")
            return None
        return data
