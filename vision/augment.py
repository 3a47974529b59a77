"""Crop-level augmentation for embedder training: what a warped detection looks like in practice.

A detected quad is never exact, so a training crop is a clean catalog image re-warped through a
slightly wrong quad (a few % over- or under-cropped, rotated, skewed), then seen through a sleeve
(tint, a broad specular streak) and the photometric degradations of `vision.degrade`.
Every function takes a BGR uint8 image (H, W, 3) and a numpy Generator and returns a new one.
"""

from __future__ import annotations

import cv2
import numpy as np

from vision.degrade import Rng, random_degrade, sleeve_tint


def imperfect_crop(
    img: np.ndarray,
    rng: Rng,
    max_scale: float = 0.05,
    max_jitter: float = 0.025,
    max_angle: float = 4.0,
) -> np.ndarray:
    """Re-warp the card through a perturbed quad: the error a corner detector makes."""
    h, w = img.shape[:2]
    corners = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    center = corners.mean(axis=0)
    # Positive scale: the quad is larger than the card (over-crop, background shows).
    scale = 1.0 + rng.uniform(-max_scale, max_scale)
    angle = np.deg2rad(rng.uniform(-max_angle, max_angle))
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]], np.float32)
    quad = (corners - center) * scale @ rot.T + center
    quad += rng.normal(0, max_jitter / 2, (4, 2)).astype(np.float32) * [w, h]
    quad += rng.uniform(-max_jitter, max_jitter, 2).astype(np.float32) * [w, h]
    matrix = cv2.getPerspectiveTransform(quad.astype(np.float32), corners)
    background = _background(h, w, rng)
    out = cv2.warpPerspective(
        img,
        matrix,
        (w, h),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(0, 0, 0),
    )
    inside = cv2.warpPerspective(
        np.full((h, w), 255, np.uint8),
        matrix,
        (w, h),
        flags=cv2.INTER_NEAREST,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
    out[inside == 0] = background[inside == 0]
    return out


def _background(h: int, w: int, rng: Rng) -> np.ndarray:
    """A table, playmat or neighbouring card: a flat colour with some texture."""
    color = rng.uniform(0, 255, 3)
    base = np.empty((h, w, 3), np.float32)
    base[:] = color
    texture = cv2.resize(rng.normal(0, 30, (8, 8, 3)).astype(np.float32), (w, h))
    return np.clip(base + texture, 0, 255).astype(np.uint8)


def sleeve_glare(img: np.ndarray, rng: Rng) -> np.ndarray:
    """A sleeve's broad specular streak: a soft bright band across the card at some angle."""
    h, w = img.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(0, np.pi)
    offset = rng.uniform(-0.4, 0.4) * max(h, w)
    dist = (xs - w / 2) * np.cos(angle) + (ys - h / 2) * np.sin(angle) - offset
    width = rng.uniform(0.04, 0.2) * max(h, w)
    strength = rng.uniform(0.3, 0.85)
    mask = (strength * np.exp(-0.5 * (dist / width) ** 2))[..., None]
    out = img.astype(np.float32) * (1 - mask) + 255.0 * mask
    return np.clip(out, 0, 255).astype(np.uint8)


def foil_sheen(img: np.ndarray, rng: Rng) -> np.ndarray:
    """A foil's rainbow sheen: a low-frequency hue shift over part of the card."""
    h, w = img.shape[:2]
    phase = rng.uniform(0, 2 * np.pi, 3)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    wave = np.stack([np.sin((xs / w + ys / h) * rng.uniform(2, 6) + p) for p in phase], axis=-1)
    out = img.astype(np.float32) + wave * rng.uniform(10, 35)
    return np.clip(out, 0, 255).astype(np.uint8)


def augment_crop(img: np.ndarray, rng: Rng, strength: float = 1.0) -> np.ndarray:
    """One training view of a clean card image: imperfect crop, sleeve, then photometric damage."""
    if rng.random() < 0.9:
        img = imperfect_crop(img, rng)
    if rng.random() < 0.3 * strength:
        img = sleeve_tint(img, rng)
    if rng.random() < 0.3 * strength:
        img = sleeve_glare(img, rng)
    if rng.random() < 0.1 * strength:
        img = foil_sheen(img, rng)
    return random_degrade(img, rng, strength)
