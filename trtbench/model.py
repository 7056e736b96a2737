"""The model: any classifier of ``torchvision.models`` (``--model``; ResNet-18 by default)
with its own input size, and its weights.

Default weights are seeded and *calibrated*, so that outputs tell images apart (random
weights on random data predict one class for every image): batch-norm statistics are set
from seeded calibration images, and the classifier layer is re-drawn on the whitened,
centred features it sees, so the logits are image-dependent.
"""

from __future__ import annotations

import hashlib
import io
import json
import warnings
from pathlib import Path
from typing import Any

import torch
import torchvision

from trtbench.catalogue import ModelSpec
from trtbench.files import file_sha256, write_atomic
from trtbench.images import IMAGES_VERSION, make_images, normalize

WEIGHTS_SEED = 0
CALIBRATION_SEED = 424242  # never a data seed: calibration images are not test images
CALIBRATION_IMAGES = 128
LOGIT_STD = 3.0  # spread of the calibrated logits: softmax neither flat nor one-hot
CALIBRATION_VERSION = 2  # bump when the calibration recipe changes (cache keys)
RESIDUAL_GAIN = 0.25  # scale of each residual branch's last batch norm (see calibrate)


class ModelError(ValueError):
    """A model name or weights file that cannot be used; the message is one line."""


def classifier_names() -> list[str]:
    """The image classifiers of ``torchvision.models`` (not detection, segmentation, video...)."""
    return sorted(torchvision.models.list_models(module=torchvision.models))


def model_spec(name: str) -> ModelSpec:
    """The model's identity and input size (224 unless the architecture needs another)."""
    names = classifier_names()
    if name not in names:
        examples = ", ".join(
            n
            for n in (
                "resnet18",
                "resnet50",
                "mobilenet_v3_large",
                "efficientnet_b0",
                "convnext_tiny",
                "vit_b_16",
                "inception_v3",
            )
            if n in names
        )
        what = "not an image classifier" if name in torchvision.models.list_models() else "unknown"
        raise ModelError(
            f"--model {name or repr(name)}: {what}; allowed: one of the {len(names)} classifiers of "
            f"torchvision.models, e.g. {examples}"
        )
    if name.startswith("vit_"):
        return ModelSpec(name, 224)  # a ViT built without weights takes 224 (its DEFAULT weights' size may differ)
    try:  # metadata only, nothing downloaded: inception_v3 needs 299
        size = int(torchvision.models.get_model_weights(name).DEFAULT.transforms.keywords.get("crop_size", 224))
    except (ValueError, AttributeError, KeyError):
        size = 224
    return ModelSpec(name, size)


def _construct(name: str) -> Any:
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # googlenet/inception warn about their weight init
        torch.manual_seed(WEIGHTS_SEED)
        return torchvision.models.get_model(name, weights=None)


def _classifier_layer(model: Any) -> Any:
    """The last ``nn.Linear`` with 1000 outputs: the layer whose outputs are the logits."""
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear) and m.out_features == 1000]
    return linears[-1] if linears else None


def weights_identity(weights: Path | None) -> str:
    """What a saved run records of its weights: runs of other weights (kernels can time
    differently on other values) never set each other's thresholds."""
    if weights is not None:
        return f"sha256:{file_sha256(weights)[:16]}"  # of the file: the same tensors saved twice may differ
    # the calibration's numerics follow torch, as the calibrated-weights cache key does
    return (
        f"seeded:{WEIGHTS_SEED}:calibration-v{CALIBRATION_VERSION}:torch-{torch.__version__}"
        f":torchvision-{torchvision.__version__}"
    )


def build_model(spec: ModelSpec, weights_state: dict[str, Any] | None = None, cache_dir: Path | None = None) -> Any:
    """The model in eval mode on the CPU: ``weights_state`` (a state dict checked by
    ``load_weights``), else seeded weights calibrated on seeded images (cached in
    ``cache_dir``: calibration takes seconds)."""
    model = _construct(spec.name)
    if weights_state is not None:
        model.load_state_dict(weights_state)
        return model.eval()
    cached = None
    if cache_dir is not None:
        tag = json.dumps(
            [
                spec.name,
                spec.image_size,
                WEIGHTS_SEED,
                CALIBRATION_SEED,
                CALIBRATION_IMAGES,
                CALIBRATION_VERSION,
                IMAGES_VERSION,
                torch.__version__,
                torchvision.__version__,
            ]
        )
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
       fp16 rounding alone moves its logits far more than a trained network's (README,
       "Correctness").
    1. Batch-norm running statistics from one pass over the calibration images (each BN
       layer normalises what it really sees; random init leaves them at 0/1).
    2. The classifier layer is redrawn: seeded Gaussian weights over the (shrunk-)whitened
       features it receives, its bias minus their mean (so the logits carry no constant
       part), scaled to a logit spread of ``LOGIT_STD``.
    """
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
    try:
        with warnings.catch_warnings():  # torch's advice on weights_only: the one line below says it all
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        kind = type(exc).__name__
        raise ModelError(
            f"--weights {path}: not a file torch.load can read ({kind}); "
            f"expected a {spec.name} state dict saved with torch.save"
        ) from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelError(
            f"--weights {path}: holds a {type(state).__name__}, not a state dict of tensors; "
            f"expected a {spec.name} state dict"
        )
    expected = _construct(spec.name).state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [
        k
        for k in expected
        if k in state
        and (
            tuple(state[k].shape) != tuple(expected[k].shape)
            or state[k].is_floating_point() != expected[k].is_floating_point()
        )
    ]
    if missing or unexpected or wrong:

        def first(keys: list[str]) -> str:
            return f" ({', '.join(keys[:3])}{', ...' if len(keys) > 3 else ''})" if keys else ""

        raise ModelError(
            f"--weights {path}: a state dict of {len(state)} tensors that does not fit {spec.name} "
            f"({len(expected)} tensors): {len(missing)} missing{first(missing)}, "
            f"{len(unexpected)} unexpected{first(unexpected)}, {len(wrong)} of another shape or type{first(wrong)}"
        )
    return state
