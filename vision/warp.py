"""Perspective warp of a card quad to a canonical upright crop, and the card window around it."""

from __future__ import annotations

import math

import cv2
import numpy as np

CARD_SIZE = (448, 626)  # (w, h) in pixels: 63 x 88 mm at ~7.1 px/mm


def card_homography(quad: np.ndarray, size: tuple[int, int] = CARD_SIZE) -> np.ndarray:
    """3x3 homography from photo pixels to the crop (quad corners land on the crop's corners)."""
    w, h = size
    dst = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    return cv2.getPerspectiveTransform(np.asarray(quad, np.float32).reshape(4, 2), dst)


def region(image: np.ndarray, outline: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The photo's pixels around `outline` ((N, 2) photo pixels), area-averaged by the whole
    factor `k` when it is 2 or more: (pixels, 3x3 photo -> them). Sampling only the region is
    quicker than sampling the whole photo (its rows stay in cache), and gives the same pixels."""
    ih, iw = image.shape[:2]
    k = max(k, 1)
    x0, y0 = np.floor(outline.min(0)).astype(int).clip(0, [iw, ih])
    x1, y1 = (np.ceil(outline.max(0)).astype(int) + 1).clip(0, [iw, ih])
    x1, y1 = x0 + (x1 - x0) // k * k, y0 + (y1 - y0) // k * k  # OpenCV's fast INTER_AREA path
    if x1 <= x0 or y1 <= y0:
        return image, np.eye(3)
    roi = image[y0:y1, x0:x1]
    if k > 1:
        roi = cv2.resize(roi, ((x1 - x0) // k, (y1 - y0) // k), interpolation=cv2.INTER_AREA)
    # Pixel centres: x_region = (x - x0 + 0.5) / k - 0.5.
    return roi, np.array(
        [[1 / k, 0, (0.5 - x0) / k - 0.5], [0, 1 / k, (0.5 - y0) / k - 0.5], [0, 0, 1]], np.float64
    )


def warp_card(image: np.ndarray, quad: np.ndarray, size: tuple[int, int] = CARD_SIZE) -> np.ndarray:
    """The card inside `quad` (TL, TR, BR, BL as printed) as an upright crop of `size` (w, h)."""
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 image, got shape {image.shape}")
    quad = np.asarray(quad, np.float32).reshape(4, 2)
    hom = card_homography(quad, size)
    # Shrinking a card by 2x or more aliases with bilinear sampling: area-average it by the whole
    # factor first.
    factor = float(np.linalg.norm(quad[3] - quad[0])) / size[1]
    src, to_src = region(image, quad, int(factor))
    return cv2.warpPerspective(
        src,
        hom @ np.linalg.inv(to_src),
        size,
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )


WINDOW_SIZE = (128, 176)  # (w, h) of a card window: about the card's 63:88 aspect
WINDOW_MARGIN = 0.12  # of the card's own width / height, on each side
WINDOW_FILL = 114  # outside the photo: the detector's letterbox grey


def window_homography(
    quad: np.ndarray, size: tuple[int, int] = WINDOW_SIZE, margin: float = WINDOW_MARGIN
) -> np.ndarray:
    """3x3 homography photo -> window: the unit card square [-m, 1+m]^2 fills the window."""
    w, h = size
    unit = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], np.float32)
    card_from_unit = cv2.getPerspectiveTransform(unit, np.asarray(quad, np.float32).reshape(4, 2))
    span = 1 + 2 * margin
    window_from_unit = np.array(
        [[w / span, 0, w * margin / span], [0, h / span, h * margin / span], [0, 0, 1]], np.float64
    )
    return window_from_unit @ np.linalg.inv(card_from_unit)


def card_window(
    image: np.ndarray,
    quad: np.ndarray,
    size: tuple[int, int] = WINDOW_SIZE,
    margin: float = WINDOW_MARGIN,
    shrunk: dict[int, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The card around a rough `quad` (TL, TR, BR, BL) with a margin, upright: (crop, photo->crop).

    The crop is h x w x 3 BGR uint8; the quad's corners land at `margin / (1 + 2 margin)` of the
    window from its sides, so the true edges are visible even when the quad is a few % off.
    `shrunk`: a cache of the whole photo area-averaged by whole factors, shared by the windows of
    one photo (the cards of a photo are mostly of one size, and the refiner cuts each several
    times); without it, only the window's own region is shrunk.
    """
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 image, got shape {image.shape}")
    hom = window_homography(quad, size, margin)
    # The window's outline in the photo, and how much the photo shrinks to fit it.
    outline = cv2.perspectiveTransform(
        np.array([[[0, 0], [size[0], 0], [size[0], size[1]], [0, size[1]]]], np.float32),
        np.linalg.inv(hom),
    )[0]
    factor = float(np.sqrt(cv2.contourArea(outline) / (size[0] * size[1])))
    ih, iw = image.shape[:2]
    k = int(factor)
    if k >= 2 and shrunk is not None and ih >= k and iw >= k:
        # A copy shrunk by a smaller factor serves too while the rest is under 1.5x (as between
        # int(factor) and factor at k = 2). A new copy is shrunk as little as that allows, so
        # that it serves the cards up to 1.5x larger too: with the largest card first, one
        # shrink serves all the cards of a photo.
        k = max((j for j in shrunk if j <= factor <= 1.5 * j), default=math.ceil(factor / 1.5))
        if k not in shrunk:
            whole = image[: ih // k * k, : iw // k * k]
            shrunk[k] = cv2.resize(whole, (iw // k, ih // k), interpolation=cv2.INTER_AREA)
        src = shrunk[k]
        to_src = np.array(
            [[1 / k, 0, 0.5 / k - 0.5], [0, 1 / k, 0.5 / k - 0.5], [0, 0, 1]], np.float64
        )
    else:
        # Bilinear sampling of a much larger card aliases: area-average the region first, to
        # within 1.5x of the window's resolution (the same at training and run time).
        src, to_src = region(image, outline, k)
    crop = cv2.warpPerspective(
        src,
        hom @ np.linalg.inv(to_src),
        size,
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(WINDOW_FILL,) * 3,
    )
    return crop, hom
