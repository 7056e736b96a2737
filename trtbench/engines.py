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
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from filelock import FileLock

from trtbench.catalogue import ENGINE_KINDS
from trtbench.files import write_atomic

KEY_SCHEMA = 3  # bump when the meaning of a key field changes (3: every network strongly typed)


class EngineConfigError(ValueError):
    """Options that no engine can satisfy (raised before any build starts)."""


@dataclasses.dataclass(frozen=True)
class TrtCapabilities:
    """What the installed TensorRT offers, found by feature detection."""

    version: str
    has_fp16_flag: bool  # BuilderFlag.FP16 exists (weak typing, removed in 11.x; recorded, never set)
    has_strongly_typed_flag: bool  # NetworkDefinitionCreationFlag.STRONGLY_TYPED exists
    has_profile_sharing_flag: bool  # PreviewFeature.PROFILE_SHARING_0806 exists

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])

    @classmethod
    def detect(cls, trt: Any) -> TrtCapabilities:
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

    name: str  # fp32, fp16, multi_profile, shared_profile, fp16_postprocess, fp16_uint8
    precision: str  # fp32 or fp16 (compute); outputs stay fp32
    profiles: tuple[tuple[int, int, int], ...]  # (min, opt, max) batch per profile
    input_shape: tuple[int, ...]  # one sample: (3, H, W) float, or (H, W, 3) uint8
    fp16_path: str | None = None  # "strongly_typed" for fp16 engines (10.x and 11.x), None for fp32
    profile_sharing_flag: bool = False  # PreviewFeature.PROFILE_SHARING_0806 (TensorRT < 10)
    max_aux_streams: int | None = None  # None: TensorRT's default
    graph_variant: str = "logits"  # which graph (trtbench.catalogue.GRAPH_VARIANTS)
    onnx_fp16: bool = False  # parsed from the fp16-weights export (the strongly typed path)

    @property
    def batch_ranges(self) -> list[tuple[int, int]]:
        return [(lo, hi) for lo, _, hi in self.profiles]


def profile_for_batch(batch: int, ranges: Sequence[tuple[int, int]]) -> int:
    """The first optimization profile whose (min, max) batch range holds ``batch``."""
    for index, (lo, hi) in enumerate(ranges):
        if lo <= batch <= hi:
            return index
    raise EngineConfigError(
        f"batch size {batch} is outside every optimization profile {[f'{lo}..{hi}' for lo, hi in ranges]}"
    )


def choose_fp16_path(caps: TrtCapabilities) -> str:
    """fp16 engines are strongly typed networks parsed from the fp16 ONNX on every TensorRT
    the suite supports: 11.x has nothing else, and 10.x's weakly typed BuilderFlag.FP16
    (deprecated since 10.12) lets TensorRT pick fp16 for layers the graph keeps in fp32, so
    an upgrade would change precision, not only kernels."""
    if caps.major < 10 and not caps.has_strongly_typed_flag:
        raise EngineConfigError(
            f"TensorRT {caps.version} has no strongly typed networks; the suite builds fp16 "
            "engines strongly typed (TensorRT 10.x or 11.x)"
        )
    return "strongly_typed"


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
    image_size: int = 224,
    max_aux_streams: int | None = None,
    max_batch: int = 0,
    opt_batch: int | None = None,
) -> dict[str, EngineSpec]:
    """Every engine, keyed by name, for ``--batch-size`` (tutorial: profile 1/128/256).
    ``max_batch`` widens the profile for a batch-size sweep beyond 2x the batch size.
    ``opt_batch``: the batch size the engine is measured at (batch-1 cases, sweep points),
    the opt of the single profile (trtexec builds for the shape it measures); the batch size
    by default. The multi-profile engine keeps its own profiles."""
    if batch_size < 1:
        raise EngineConfigError(f"batch size must be >= 1, got {batch_size}")
    if max_aux_streams is not None and max_aux_streams < 0:
        raise EngineConfigError(f"max_aux_streams must be >= 0, got {max_aux_streams}")
    opt = batch_size if opt_batch is None else opt_batch
    hi = max(2 * batch_size, max_batch)
    if not 1 <= opt <= hi:
        raise EngineConfigError(f"batch size {opt} to measure is outside the engines' profile 1..{hi}")
    wide = ((1, opt, hi),)
    fp16_path = choose_fp16_path(caps)
    specs = {}
    for name, (precision, variant) in ENGINE_KINDS.items():
        fp16 = precision == "fp16"
        profiles: tuple[tuple[int, int, int], ...]
        if name == "multi_profile":
            if batch_size < 2:
                continue  # two profiles need two batch sizes: the approach says so when selected
            profiles = multi_profile_shapes(batch_size)
        else:
            profiles = wide
        specs[name] = EngineSpec(
            name,
            precision,
            profiles,
            input_shape=(image_size, image_size, 3) if variant == "uint8" else (3, image_size, image_size),
            fp16_path=fp16_path if fp16 else None,
            profile_sharing_flag=name == "shared_profile" and needs_profile_sharing_flag(caps),
            max_aux_streams=max_aux_streams,
            graph_variant=variant,
            onnx_fp16=fp16,
        )
    return specs


def multi_profile_shapes(batch_size: int) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """The two profiles of the multi-profile engine, derived from ``--batch-size`` B:
    a small one around B/8 and a large one around B, never overlapping. At B = 128 they
    are the tutorial's [1, 16, 32] and [64, 128, 192]."""
    if batch_size < 2:
        raise EngineConfigError(
            f"--batch-size {batch_size}: the multi-profile engine needs two batch sizes, so --batch-size >= 2"
        )
    small = max(1, batch_size // 8)
    small_max = max(small, min(2 * small, batch_size - 1))
    large_min = max(small_max + 1, batch_size // 2)
    return (1, small, small_max), (large_min, batch_size, batch_size + batch_size // 2)


def multi_profile_batches(batch_size: int) -> tuple[int, int]:
    """The small and large batch of the multi-profile approach (each at its profile's opt)."""
    small, large = multi_profile_shapes(batch_size)
    return small[1], large[1]


def cache_key(
    spec: EngineSpec, onnx_sha256: str, trt_version: str, gpu_name: str, compute_capability: str
) -> dict[str, Any]:
    """The full identity of an engine: model, TensorRT, GPU and every build option.

    Normalised through JSON (tuples become lists) so it compares equal to the recorded copy.
    """
    key: dict[str, Any] = json.loads(
        json.dumps(
            {
                "schema": KEY_SCHEMA,
                "onnx_sha256": onnx_sha256,
                "tensorrt": trt_version,
                "gpu_name": gpu_name,
                "compute_capability": compute_capability,
                "spec": dataclasses.asdict(spec),
            }
        )
    )
    return key


def key_digest(key: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


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
    def _load_valid(
        engine_path: Path, meta_path: Path, key: dict[str, Any], validate: Callable[[bytes], str | None]
    ) -> bytes | None:
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
