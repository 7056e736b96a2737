"""The model, its ONNX graphs, the input images and the ONNX Runtime reference (CPU only).

* Any classifier of ``torchvision.models`` (``--model``; ResNet-18 by default), with its
  own input size.
* Default weights are seeded and *calibrated*, so that outputs tell images apart (random
  weights on random data predict one class for every image): batch-norm statistics are
  set from seeded calibration images, and the classifier layer is re-drawn on the
  whitened, centred features it sees, so the logits are image-dependent.
* Images are procedural (gradients, gratings, shapes, noise), uint8 HWC as a decoder
  hands them over; image ``k`` of batch ``i`` depends only on ``(seed, i, k)``, so a
  batch of 8 is the first 8 images of the batch of 128. The float input is the
  tutorial's normalisation, ``x / 127.5 - 1`` (range -1..1), in NCHW.
* Graph variants: ``logits`` (float input, logits out), ``postprocess`` (+ softmax
  top-5 probabilities and classes computed in the graph) and ``uint8`` (uint8 NHWC
  input normalised in the graph, + the post-processing outputs).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from trtbench.engines import file_sha256, write_atomic

INPUT_NAME, OUTPUT_NAME = "input0", "output0"  # as the tutorial
TOP5_PROB, TOP5_CLASS = "top5_prob", "top5_class"
TOP_K = 5
GRAPH_VARIANTS = ("logits", "postprocess", "uint8")
WEIGHTS_SEED = 0
CALIBRATION_SEED = 424242  # never a data seed: calibration images are not test images
CALIBRATION_IMAGES = 128
LOGIT_STD = 3.0  # spread of the calibrated logits: softmax neither flat nor one-hot
IMAGES_VERSION = 1  # bump when the image recipe changes (cache keys)
CALIBRATION_VERSION = 2  # bump when the calibration recipe changes (cache keys)
RESIDUAL_GAIN = 0.25  # scale of each residual branch's last batch norm (see calibrate)

# What "the outputs tell images apart" means (issue: correctness with power).
MIN_DISTINCT_CLASSES_AT_128 = 64
MIN_IMAGE_DEPENDENT_SHARE = 0.5


class ModelError(ValueError):
    """A model name or weights file that cannot be used; the message is one line."""


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    name: str
    image_size: int
    num_classes: int = 1000

    @property
    def chw(self) -> tuple[int, int, int]:
        return (3, self.image_size, self.image_size)

    @property
    def hwc(self) -> tuple[int, int, int]:
        return (self.image_size, self.image_size, 3)


def classifier_names() -> list[str]:
    """The image classifiers of ``torchvision.models`` (not detection, segmentation, video...)."""
    import torchvision

    return sorted(torchvision.models.list_models(module=torchvision.models))


def model_spec(name: str) -> ModelSpec:
    """The model's identity and input size (224 unless the architecture needs another)."""
    import torchvision

    names = classifier_names()
    if name not in names:
        examples = ", ".join(n for n in ("resnet18", "resnet50", "mobilenet_v3_large", "efficientnet_b0",
                                         "convnext_tiny", "vit_b_16", "inception_v3") if n in names)
        what = "not an image classifier" if name in torchvision.models.list_models() else "unknown"
        raise ModelError(f"--model {name or repr(name)}: {what}; allowed: one of the {len(names)} classifiers of "
                         f"torchvision.models, e.g. {examples}")
    if name.startswith("vit_"):
        return ModelSpec(name, 224)  # a ViT built without weights takes 224 (its DEFAULT weights' size may differ)
    try:  # metadata only, nothing downloaded: inception_v3 needs 299
        size = int(torchvision.models.get_model_weights(name).DEFAULT.transforms.keywords.get("crop_size", 224))
    except (ValueError, AttributeError, KeyError):
        size = 224
    return ModelSpec(name, size)


def _construct(name: str) -> Any:
    import torch
    import torchvision

    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # googlenet/inception warn about their weight init
        torch.manual_seed(WEIGHTS_SEED)
        return torchvision.models.get_model(name, weights=None)


def _classifier_layer(model: Any) -> Any:
    """The last ``nn.Linear`` with 1000 outputs: the layer whose outputs are the logits."""
    import torch

    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear) and m.out_features == 1000]
    return linears[-1] if linears else None


def weights_identity(weights: Path | None) -> str:
    """What a saved run records of its weights: runs of other weights (kernels can time
    differently on other values) never set each other's thresholds."""
    if weights is not None:
        return f"sha256:{file_sha256(weights)[:16]}"  # of the file: the same tensors saved twice may differ
    import torch
    import torchvision

    # the calibration's numerics follow torch, as the calibrated-weights cache key does
    return (f"seeded:{WEIGHTS_SEED}:calibration-v{CALIBRATION_VERSION}:torch-{torch.__version__}"
            f":torchvision-{torchvision.__version__}")


def build_model(spec: ModelSpec, weights: Path | None = None, cache_dir: Path | None = None) -> Any:
    """The model in eval mode on the CPU: ``weights`` (a state dict), else seeded weights
    calibrated on seeded images (cached in ``cache_dir``: calibration takes seconds)."""
    import torch

    model = _construct(spec.name)
    if weights is not None:
        model.load_state_dict(load_weights(spec, weights))
        return model.eval()
    cached = None
    if cache_dir is not None:
        import torchvision

        tag = json.dumps([spec.name, spec.image_size, WEIGHTS_SEED, CALIBRATION_SEED, CALIBRATION_IMAGES,
                          CALIBRATION_VERSION, IMAGES_VERSION, torch.__version__, torchvision.__version__])
        cached = Path(cache_dir) / f"model-{spec.name}-{hashlib.sha256(tag.encode()).hexdigest()[:16]}.pt"
        if cached.is_file():
            try:
                model.load_state_dict(torch.load(cached, map_location="cpu", weights_only=True))
                return model.eval()
            except Exception:  # unreadable or stale: calibrate again and overwrite
                model = _construct(spec.name)
    calibrate(model, spec)
    if cached is not None:
        buf = io.BytesIO()
        torch.save(model.state_dict(), buf)
        write_atomic(cached, buf.getvalue())
    return model.eval()


def calibrate(model: Any, spec: ModelSpec) -> None:
    """Make seeded weights discriminate, in place.

    0. Residual branches are damped (their last batch norm scaled to ``RESIDUAL_GAIN``, as
       SkipInit/Fixup do): with full-size branches a deep random ResNet is chaotic, and
       fp16 rounding alone moved ResNet-50's logits by 6.3% (ResNet-18: 0.46%); damped,
       ResNet-50 0.52%, MobileNetV3 0.45%, ResNet-18 0.35% (CPU, fp16-rounded weights).
    1. Batch-norm running statistics from one pass over the calibration images (each BN
       layer normalises what it really sees; random init leaves them at 0/1).
    2. The classifier layer is redrawn: seeded Gaussian weights over the (shrunk-)whitened
       features it receives, its bias minus their mean (so the logits carry no constant
       part), scaled to a logit spread of ``LOGIT_STD``.
    """
    import torch

    images = normalize(make_images(CALIBRATION_SEED, 0, CALIBRATION_IMAGES, spec.image_size))
    x = torch.from_numpy(images)
    model.eval()
    _damp_residual_branches(model)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for bn in norms:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative: exactly the statistics of this pass
        bn.train()
    head = _classifier_layer(model)
    features: list[Any] = []
    hook = head.register_forward_hook(lambda _m, inputs, _o: features.append(inputs[0].detach())) if head else None
    with torch.no_grad():
        model(x)
    for bn in norms:
        bn.eval()
    if hook is None:
        return  # no linear classifier layer (e.g. squeezenet): batch norm only
    hook.remove()
    feats = features[-1].double()
    mean = feats.mean(0)
    # Shrunk whitening, (C + mean eigenvalue * I)^-1/2: features vary mostly along a few
    # directions, and random class vectors over them pick few classes (56 of 128 for
    # mobilenet_v3_large); full whitening would amplify the faint directions, and with
    # them fp16 rounding. With this shrinkage: 110-119 classes, 2-3x amplification.
    eigenvalues, vectors = torch.linalg.eigh(torch.cov(feats.T))
    eigenvalues = eigenvalues.clamp(min=0)
    whiten = vectors @ torch.diag((eigenvalues + eigenvalues.mean()) ** -0.5) @ vectors.T
    gen = torch.Generator().manual_seed(WEIGHTS_SEED + 1)
    weight = torch.randn(head.out_features, head.in_features, generator=gen, dtype=torch.float64) @ whiten
    weight *= LOGIT_STD / ((feats - mean) @ weight.T).std()
    with torch.no_grad():
        head.weight.copy_(weight.float())
        if head.bias is not None:
            head.bias.copy_((-(weight @ mean)).float())


def _damp_residual_branches(model: Any) -> None:
    """Scale the last batch norm of every residual branch: torchvision's ResNet blocks
    and the inverted residuals (MobileNet, EfficientNet) that add their input back."""
    import torch
    import torchvision

    for module in model.modules():
        if isinstance(module, torchvision.models.resnet.Bottleneck):
            last = module.bn3
        elif isinstance(module, torchvision.models.resnet.BasicBlock):
            last = module.bn2
        elif getattr(module, "use_res_connect", False):
            norms = [m for m in module.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
            last = norms[-1] if norms else None
        else:
            continue
        if last is not None and last.weight is not None:
            with torch.no_grad():
                last.weight.fill_(RESIDUAL_GAIN)


def load_weights(spec: ModelSpec, path: Path) -> dict[str, Any]:
    """A state dict that fits ``spec``'s architecture, else ModelError in one line."""
    import torch

    try:
        with warnings.catch_warnings():  # torch's advice on weights_only: the one line below says it all
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        kind = type(exc).__name__
        raise ModelError(f"--weights {path}: not a file torch.load can read ({kind}); "
                         f"expected a {spec.name} state dict saved with torch.save") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelError(f"--weights {path}: holds a {type(state).__name__}, not a state dict of tensors; "
                         f"expected a {spec.name} state dict")
    expected = _construct(spec.name).state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [k for k in expected if k in state and (tuple(state[k].shape) != tuple(expected[k].shape) or
                                                    state[k].is_floating_point() != expected[k].is_floating_point())]
    if missing or unexpected or wrong:
        def first(keys: list[str]) -> str:
            return f" ({', '.join(keys[:3])}{', ...' if len(keys) > 3 else ''})" if keys else ""

        raise ModelError(
            f"--weights {path}: a state dict of {len(state)} tensors that does not fit {spec.name} "
            f"({len(expected)} tensors): {len(missing)} missing{first(missing)}, "
            f"{len(unexpected)} unexpected{first(unexpected)}, {len(wrong)} of another shape or type{first(wrong)}")
    return state


# ---------------------------------------------------------------- images

def _image(rng: np.random.Generator, size: int) -> np.ndarray:
    """One procedural RGB image: a gradient, a grating, a few shapes, sensor noise."""
    yy, xx = (np.mgrid[0:size, 0:size].astype(np.float32) + 0.5) / size
    c0, c1 = rng.uniform(0, 255, 3).astype(np.float32), rng.uniform(0, 255, 3).astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = np.cos(angle) * xx + np.sin(angle) * yy
    ramp = (ramp - ramp.min()) / (np.ptp(ramp) + 1e-6)
    img = c0 + (c1 - c0) * ramp[..., None]
    freq, theta, phase = rng.uniform(2, 24), rng.uniform(0, np.pi), rng.uniform(0, 2 * np.pi)
    wave = np.sin(2 * np.pi * freq * (np.cos(theta) * xx + np.sin(theta) * yy) + phase)
    img += (rng.uniform(10, 80) * rng.uniform(-1, 1, 3)).astype(np.float32) * wave[..., None]
    for _ in range(int(rng.integers(2, 7))):
        cx, cy = rng.uniform(0, 1, 2)
        rx, ry = rng.uniform(0.04, 0.3, 2)
        if rng.random() < 0.5:
            mask = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1
        else:
            mask = (np.abs(xx - cx) <= rx) & (np.abs(yy - cy) <= ry)
        img[mask] = rng.uniform(0, 255, 3)
    img += rng.uniform(2, 15) * rng.standard_normal(img.shape, dtype=np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def make_images(seed: int, batch_index: int, count: int, size: int = 224) -> np.ndarray:
    """``count`` uint8 images ``[count, size, size, 3]``; image k depends only on (seed, batch, k)."""
    return np.stack([_image(np.random.default_rng([seed, batch_index, k]), size) for k in range(count)])


def normalize(images: np.ndarray) -> np.ndarray:
    """uint8 NHWC -> float32 NCHW in -1..1 (the tutorial's Normalize(0.5, 0.5) after ToTensor)."""
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2), dtype=np.float32) / np.float32(127.5) - np.float32(1.0)


def image_batches(seed: int, batch_size: int, batches: int, size: int, cache_dir: Path | None = None) -> list[np.ndarray]:
    """The session's uint8 batches, cached on disk (generation takes ~10 ms an image)."""
    key = hashlib.sha256(json.dumps([seed, batch_size, batches, size, IMAGES_VERSION]).encode()).hexdigest()[:20]
    path = Path(cache_dir) / f"images-{key}.npy" if cache_dir is not None else None
    if path is not None and path.is_file():
        try:
            stored = np.load(path)
            if stored.shape == (batches, batch_size, size, size, 3) and stored.dtype == np.uint8:
                return list(stored)
        except (OSError, ValueError):
            pass  # unreadable: generate again
    data = np.stack([make_images(seed, i, batch_size, size) for i in range(batches)])
    if path is not None:
        buf = io.BytesIO()
        np.save(buf, data)
        write_atomic(path, buf.getvalue())
    return list(data)


# ---------------------------------------------------------------- graphs

def classifier_graph(model: Any, variant: str = "logits", fp16: bool = False) -> Any:
    """``model`` wrapped as one of the graph variants (the module the torch backend runs
    and the ONNX export traces). ``fp16``: fp16 weights and activations, fp32 outputs."""
    import copy

    import torch

    if variant not in GRAPH_VARIANTS:
        raise ValueError(f"graph variant {variant!r} is not one of {GRAPH_VARIANTS}")
    dtype = torch.float16 if fp16 else torch.float32

    class ClassifierGraph(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = copy.deepcopy(model).to(dtype)  # the caller's model stays as it is
            self.variant = variant

        def prepare(self, x: torch.Tensor) -> torch.Tensor:
            """The input's first use, a new tensor: after it, the input buffer may be reused."""
            if self.variant == "uint8":  # NHWC uint8 -> NCHW (a channels-last view), normalised in fp32
                # cast first: TensorRT takes UINT8 only as a network input feeding a Cast (trtbench.readiness)
                x = x.float().permute(0, 3, 1, 2) / 127.5 - 1.0
            return x.to(dtype=dtype, memory_format=torch.channels_last)

        def head(self, x: torch.Tensor) -> Any:
            logits = self.model(x).float()
            if self.variant == "logits":
                return logits
            probs, classes = torch.softmax(logits, dim=1).topk(TOP_K, dim=1)
            return logits, probs, classes.to(torch.int32)

        def forward(self, x: torch.Tensor) -> Any:
            return self.head(self.prepare(x))

    return ClassifierGraph().eval()


def graph_io(spec: ModelSpec, variant: str) -> tuple[dict[str, tuple[Any, tuple[int, ...]]], dict[str, tuple[Any, tuple[int, ...]]]]:
    """Inputs and outputs of a graph variant: name -> (numpy dtype, shape after the batch)."""
    inputs = {INPUT_NAME: (np.dtype(np.uint8), spec.hwc) if variant == "uint8" else (np.dtype(np.float32), spec.chw)}
    outputs: dict[str, tuple[Any, tuple[int, ...]]] = {OUTPUT_NAME: (np.dtype(np.float32), (spec.num_classes,))}
    if variant != "logits":
        outputs[TOP5_PROB] = (np.dtype(np.float32), (TOP_K,))
        outputs[TOP5_CLASS] = (np.dtype(np.int32), (TOP_K,))
    return inputs, outputs


def export_onnx(model: Any, spec: ModelSpec, path: Path, variant: str = "logits", fp16: bool = False) -> Path:
    """Export a graph variant with a dynamic batch; checked by onnx.checker. ``fp16``
    exports fp16 weights with fp32 I/O, the network TensorRT 10 and 11 build strongly typed."""
    import onnx
    import torch

    graph = classifier_graph(model, variant, fp16)
    inputs, outputs = graph_io(spec, variant)
    dtype, shape = inputs[INPUT_NAME]
    dummy = torch.zeros((1, *shape), dtype=torch.uint8 if dtype == np.uint8 else torch.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.onnx")
    names = list(outputs)
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)  # ViT's fused attention has no ONNX export
    try:
        _export(torch, graph, dummy, tmp, names)
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
    onnx.checker.check_model(str(tmp), full_check=True)
    tmp.replace(path)
    return path


def _export(torch: Any, graph: Any, dummy: Any, tmp: Path, names: list[str]) -> None:
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            graph, (dummy,), str(tmp), input_names=[INPUT_NAME], output_names=names,
            dynamic_axes={n: {0: "nBatchSize"} for n in [INPUT_NAME, *names]},
            opset_version=17, dynamo=False,
        )


# ---------------------------------------------------------------- reference

def arrays_sha256(arrays: Sequence[np.ndarray]) -> str:
    digest = hashlib.sha256()
    for a in arrays:
        digest.update(json.dumps([list(a.shape), str(a.dtype)]).encode())
        digest.update(np.ascontiguousarray(a).data)
    return digest.hexdigest()


def run_onnxruntime(onnx_path: Path, batches: Sequence[np.ndarray]) -> list[dict[str, np.ndarray]]:
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return [dict(zip(names, session.run(names, {INPUT_NAME: x}))) for x in batches]


def reference_outputs(onnx_path: Path, batches: Sequence[np.ndarray], cache_dir: Path) -> tuple[list[dict[str, np.ndarray]], bool]:
    """ONNX Runtime CPU outputs (every output of the graph) for exactly these batches,
    cached under (the ONNX file's hash, the inputs' hash): a reference of another model,
    graph or data is never reused. Returns (outputs, whether they came from the cache)."""
    key = hashlib.sha256(f"{file_sha256(onnx_path)}|{arrays_sha256(batches)}|v2".encode()).hexdigest()[:24]
    path = cache_dir / f"reference-{key}.npz"
    if path.exists():
        try:
            with np.load(path) as stored:
                names = sorted({k.split("/", 1)[1] for k in stored.files})
                outputs = [{n: stored[f"{i}/{n}"] for n in names} for i in range(len(batches))]
            return outputs, True
        except (OSError, KeyError, ValueError, IndexError):
            pass  # unreadable: recompute and overwrite
    outputs = run_onnxruntime(onnx_path, batches)
    buf = io.BytesIO()
    np.savez(buf, **{f"{i}/{n}": a for i, out in enumerate(outputs) for n, a in out.items()})
    write_atomic(path, buf.getvalue())
    return outputs, False


@dataclasses.dataclass(frozen=True)
class Discrimination:
    """How well a model's outputs tell the images of a batch apart (the check's power)."""

    batch: int
    distinct_classes: int
    image_dependent_share: float  # ||y - batch mean(y)|| / ||y||

    @classmethod
    def of(cls, logits: np.ndarray) -> "Discrimination":
        y = logits.astype(np.float64)
        share = float(np.linalg.norm(y - y.mean(axis=0)) / np.linalg.norm(y))
        return cls(len(y), len(np.unique(y.argmax(axis=1))), share)

    @property
    def meets_targets(self) -> bool:
        needed = min(MIN_DISTINCT_CLASSES_AT_128, self.batch // 2)  # scaled for batches under 128
        return self.distinct_classes >= needed and self.image_dependent_share >= MIN_IMAGE_DEPENDENT_SHARE

    def describe(self) -> str:
        return (f"{self.distinct_classes} distinct top-1 classes in a batch of {self.batch}, image-dependent "
                f"share of the logits {self.image_dependent_share:.1%} (targets: >= "
                f"{min(MIN_DISTINCT_CLASSES_AT_128, self.batch // 2)} and >= {MIN_IMAGE_DEPENDENT_SHARE:.0%})")
