"""Photometric degradations of a photo or a crop: what phones, sleeves and lamps do to a card.

Shared by the scene generator (detector training) and the crop augmenter (embedder training).
Every function takes a BGR uint8 image and a numpy Generator and returns a new BGR uint8 image.
"""

from __future__ import annotations

import cv2
import numpy as np

Rng = np.random.Generator


def gaussian_blur(img: np.ndarray, rng: Rng, max_sigma: float = 2.0) -> np.ndarray:
    sigma = rng.uniform(0.3, max_sigma)
    return cv2.GaussianBlur(img, (0, 0), sigma)


def motion_blur(img: np.ndarray, rng: Rng, max_len: int = 15) -> np.ndarray:
    length = int(rng.integers(3, max(4, max_len)))
    line = np.zeros((length, length), np.float32)
    line[length // 2, :] = 1.0 / length
    rot = cv2.getRotationMatrix2D((length / 2 - 0.5, length / 2 - 0.5), rng.uniform(0, 180), 1.0)
    kernel = cv2.warpAffine(line, rot, (length, length))
    kernel = kernel / max(kernel.sum(), 1e-6)
    return cv2.filter2D(img, -1, kernel)


def noise(img: np.ndarray, rng: Rng, max_sigma: float = 12.0) -> np.ndarray:
    sigma = rng.uniform(2.0, max_sigma)
    out = img.astype(np.float32) + rng.normal(0, sigma, img.shape).astype(np.float32)
    return np.clip(out, 0, 255).astype(np.uint8)


def jpeg(img: np.ndarray, rng: Rng, min_quality: int = 25) -> np.ndarray:
    quality = int(rng.integers(min_quality, 95))
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    out = cv2.imdecode(buf, cv2.IMREAD_COLOR) if ok else None
    return img if out is None else out


def color_cast(img: np.ndarray, rng: Rng, strength: float = 0.18) -> np.ndarray:
    """White balance off, exposure off, contrast and gamma changed."""
    gains = 1.0 + rng.uniform(-strength, strength, 3)
    exposure = rng.uniform(0.6, 1.3)
    contrast = rng.uniform(0.75, 1.25)
    gamma = rng.uniform(0.75, 1.35)
    out = img.astype(np.float32) / 255.0
    out = out * gains[None, None, :] * exposure
    out = (out - 0.5) * contrast + 0.5
    out = np.clip(out, 0, 1) ** gamma
    return (out * 255).astype(np.uint8)


def glare(img: np.ndarray, rng: Rng, max_spots: int = 2) -> np.ndarray:
    """Specular highlights: soft bright ellipses or streaks, as lamps make on glossy cards."""
    h, w = img.shape[:2]
    mask = np.zeros((h, w), np.float32)
    for _ in range(int(rng.integers(1, max_spots + 1))):
        center = (int(rng.uniform(0, w)), int(rng.uniform(0, h)))
        axes = (int(rng.uniform(0.05, 0.4) * w), int(rng.uniform(0.02, 0.2) * h))
        cv2.ellipse(mask, center, axes, rng.uniform(0, 180), 0, 360, rng.uniform(0.5, 1.0), -1)
    blur = max(3, int(min(h, w) * rng.uniform(0.03, 0.12)) | 1)
    soft = cv2.GaussianBlur(mask, (blur, blur), 0)[..., None]
    out = img.astype(np.float32) * (1 - soft) + 255.0 * soft
    return np.clip(out, 0, 255).astype(np.uint8)


def shadow(img: np.ndarray, rng: Rng) -> np.ndarray:
    """A soft-edged darker region (a hand or a phone between lamp and card)."""
    h, w = img.shape[:2]
    pts = rng.uniform(0, 1, (int(rng.integers(3, 6)), 2)) * [w, h]
    pts = np.vstack([pts, [[rng.choice([0, w]), rng.choice([0, h])]]]).astype(np.int32)
    mask = np.zeros((h, w), np.float32)
    cv2.fillPoly(mask, [cv2.convexHull(pts)], 1.0)
    blur = max(3, int(min(h, w) * 0.08) | 1)
    soft = cv2.GaussianBlur(mask, (blur, blur), 0)[..., None]
    out = img.astype(np.float32) * (1 - rng.uniform(0.25, 0.6) * soft)
    return np.clip(out, 0, 255).astype(np.uint8)


def sleeve_tint(img: np.ndarray, rng: Rng) -> np.ndarray:
    """A card seen through a sleeve or toploader: lower contrast, slight haze and tint."""
    tint = rng.uniform(200, 255, 3).astype(np.float32)
    alpha = rng.uniform(0.04, 0.18)
    out = img.astype(np.float32) * (1 - alpha) + tint[None, None, :] * alpha
    return np.clip(out, 0, 255).astype(np.uint8)


PHOTOMETRIC = (
    (color_cast, 0.8),
    (shadow, 0.25),
    (glare, 0.35),
    (sleeve_tint, 0.3),
    (gaussian_blur, 0.3),
    (motion_blur, 0.15),
    (noise, 0.35),
    (jpeg, 0.5),
)


def random_degrade(img: np.ndarray, rng: Rng, strength: float = 1.0) -> np.ndarray:
    """Apply each degradation with its probability (scaled by `strength`), in a fixed order."""
    for fn, p in PHOTOMETRIC:
        if rng.random() < p * strength:
            img = fn(img, rng)
    return img
