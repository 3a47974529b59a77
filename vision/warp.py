"""Perspective warp of a card quad to a canonical upright crop."""

from __future__ import annotations

import cv2
import numpy as np

CARD_SIZE = (448, 626)  # (w, h) in pixels: 63 x 88 mm at ~7.1 px/mm


def card_homography(quad: np.ndarray, size: tuple[int, int] = CARD_SIZE) -> np.ndarray:
    """3x3 homography from photo pixels to the crop (quad corners land on the crop's corners)."""
    w, h = size
    dst = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    return cv2.getPerspectiveTransform(np.asarray(quad, np.float32).reshape(4, 2), dst)


def warp_card(image: np.ndarray, quad: np.ndarray, size: tuple[int, int] = CARD_SIZE) -> np.ndarray:
    """The card inside `quad` (TL, TR, BR, BL as printed) as an upright crop of `size` (w, h)."""
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 image, got shape {image.shape}")
    quad = np.asarray(quad, np.float32).reshape(4, 2)
    hom = card_homography(quad, size)
    # Shrinking a card by more than 2x aliases with bilinear sampling: blur to the target scale.
    side = float(np.linalg.norm(quad[3] - quad[0]))
    factor = side / size[1]
    if factor > 2.0:
        x0, y0 = np.floor(quad.min(0)).astype(int).clip(0)
        x1, y1 = np.ceil(quad.max(0)).astype(int) + 1
        roi = image[y0:y1, x0:x1]
        if roi.size:
            roi = cv2.GaussianBlur(roi, (0, 0), 0.4 * factor)
            shift = np.array([[1, 0, x0], [0, 1, y0], [0, 0, 1]], np.float64)
            return cv2.warpPerspective(
                roi, hom @ shift, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
            )
    return cv2.warpPerspective(
        image, hom, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
