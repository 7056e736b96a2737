"""The input images: procedural (gradients, gratings, shapes, noise), uint8 HWC as a
decoder hands them over. Image ``k`` of batch ``i`` depends only on ``(seed, i, k)``, so a
batch of 8 is the first 8 images of the batch of 128. The float input is the tutorial's
normalisation, ``x / 127.5 - 1`` (range -1..1), in NCHW."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np

from trtbench.files import write_atomic

IMAGES_VERSION = 1  # bump when the image recipe changes (cache keys)


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


def image_batches(
    seed: int, batch_size: int, batches: int, size: int, cache_dir: Path | None = None
) -> list[np.ndarray]:
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
