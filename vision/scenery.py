"""Procedural scenery for synthetic scenes: backgrounds, occluders and card-like distractors.

Every function takes a numpy Generator so a scene is a pure function of its seed.
"""

from __future__ import annotations

import string

import cv2
import numpy as np

Rng = np.random.Generator


def smooth_noise(h: int, w: int, rng: Rng, cells: int) -> np.ndarray:
    """Low-frequency noise in [0, 1], shape (h, w) float32."""
    small = rng.random((max(2, cells * h // max(h, w)), max(2, cells * w // max(h, w)))).astype(
        np.float32
    )
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC).clip(0, 1)


def _lighting(img: np.ndarray, rng: Rng) -> np.ndarray:
    """A lamp off to one side: a linear gradient plus vignetting."""
    h, w = img.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    a = rng.uniform(0, 2 * np.pi)
    grad = ((xx / w - 0.5) * np.cos(a) + (yy / h - 0.5) * np.sin(a)) * rng.uniform(0, 0.5)
    vig = ((xx / w - 0.5) ** 2 + (yy / h - 0.5) ** 2) * rng.uniform(0, 0.8)
    gain = (1.0 + grad - vig)[..., None]
    return np.clip(img.astype(np.float32) * gain, 0, 255).astype(np.uint8)


def _colour(rng: Rng, lo: float = 0, hi: float = 255) -> np.ndarray:
    return rng.uniform(lo, hi, 3).astype(np.float32)


def wood(h: int, w: int, rng: Rng) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    a = rng.uniform(0, np.pi)
    u = xx * np.cos(a) + yy * np.sin(a)
    warp = smooth_noise(h, w, rng, 6) * rng.uniform(20, 80)
    grain = 0.5 + 0.5 * np.sin((u + warp) * rng.uniform(0.05, 0.25))
    base = np.array([rng.uniform(20, 90), rng.uniform(50, 120), rng.uniform(90, 200)], np.float32)
    img = base[None, None, :] * (0.75 + 0.35 * grain[..., None])
    img *= (0.85 + 0.3 * smooth_noise(h, w, rng, 12))[..., None]
    return np.clip(img, 0, 255).astype(np.uint8)


def cloth(h: int, w: int, rng: Rng) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    f = rng.uniform(0.6, 1.6)
    weave = 0.5 + 0.25 * (np.sin(xx * f) + np.sin(yy * f))
    img = _colour(rng, 10, 200)[None, None, :] * (0.8 + 0.2 * weave[..., None])
    img *= (0.8 + 0.4 * smooth_noise(h, w, rng, 8))[..., None]
    img += rng.normal(0, 6, (h, w, 1)).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def playmat(h: int, w: int, rng: Rng, art: np.ndarray | None) -> np.ndarray:
    """Blown-up, blurred artwork (a card's art stands in for a playmat's print)."""
    if art is None:
        img = np.stack([smooth_noise(h, w, rng, 5) * 255 for _ in range(3)], -1)
    else:
        ah, aw = art.shape[:2]
        y0, x0 = int(rng.uniform(0.1, 0.3) * ah), int(rng.uniform(0.05, 0.3) * aw)
        crop = art[y0 : y0 + ah // 3, x0 : x0 + aw // 2]
        img = cv2.resize(crop, (w, h), interpolation=cv2.INTER_CUBIC).astype(np.float32)
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(1, 6))
    img = img * rng.uniform(0.4, 0.9)
    if rng.random() < 0.3:  # the printed zone lines of a playmat
        c = _colour(rng, 120, 255)
        x = int(rng.uniform(0.2, 0.8) * w)
        cv2.line(img, (x, 0), (x, h), c.tolist(), int(rng.integers(1, 4)))
    return np.clip(img, 0, 255).astype(np.uint8)


def paper(h: int, w: int, rng: Rng) -> np.ndarray:
    img = np.full((h, w, 3), rng.uniform(200, 250), np.float32) + rng.uniform(-10, 10, 3)
    img += rng.normal(0, 3, (h, w, 1)).astype(np.float32)
    if rng.random() < 0.5:  # ruled paper
        step = int(rng.uniform(0.03, 0.07) * h) + 2
        for y in range(int(rng.integers(0, step)), h, step):
            cv2.line(img, (0, y), (w, y), (200, 160, 120), 1)
    return np.clip(img, 0, 255).astype(np.uint8)


def table(h: int, w: int, rng: Rng) -> np.ndarray:
    """Plain surfaces: grey tables, white scanner boxes, dark desks."""
    grey = rng.uniform(20, 245)
    base = np.full(3, grey, np.float32) + rng.uniform(-25, 25, 3)
    img = np.empty((h, w, 3), np.float32)
    img[:] = base
    img *= (0.9 + 0.2 * smooth_noise(h, w, rng, 4))[..., None]
    img += rng.normal(0, rng.uniform(1, 8), (h, w, 1)).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def background(h: int, w: int, rng: Rng, art: np.ndarray | None = None) -> np.ndarray:
    """One random procedural background with lighting."""
    kind = rng.choice(["wood", "cloth", "playmat", "paper", "table"], p=[0.2, 0.2, 0.2, 0.1, 0.3])
    if kind == "wood":
        img = wood(h, w, rng)
    elif kind == "cloth":
        img = cloth(h, w, rng)
    elif kind == "playmat":
        img = playmat(h, w, rng, art)
    elif kind == "paper":
        img = paper(h, w, rng)
    else:
        img = table(h, w, rng)
    return _lighting(img, rng)


def rounded_mask(w: int, h: int, radius: int) -> np.ndarray:
    """uint8 mask (h, w) of a rounded rectangle, 255 inside."""
    m = np.zeros((h, w), np.uint8)
    r = max(1, min(radius, w // 2 - 1, h // 2 - 1))
    cv2.rectangle(m, (r, 0), (w - 1 - r, h - 1), 255, -1)
    cv2.rectangle(m, (0, r), (w - 1, h - 1 - r), 255, -1)
    for cx, cy in ((r, r), (w - 1 - r, r), (w - 1 - r, h - 1 - r), (r, h - 1 - r)):
        cv2.circle(m, (cx, cy), r, 255, -1, cv2.LINE_AA)
    return m


def distractor(rng: Rng) -> tuple[np.ndarray, np.ndarray]:
    """A flat object that is not a card: (BGR image, uint8 mask). Phone, book, note, coaster."""
    kind = rng.choice(["phone", "book", "plain", "box"])
    if kind == "phone":
        w, h = 300, int(300 * rng.uniform(1.9, 2.2))
        img = np.full((h, w, 3), rng.uniform(10, 60), np.uint8)
        screen = (np.linspace(0, 1, h)[:, None, None] * _colour(rng, 40, 255)).astype(np.uint8)
        img[20 : h - 20, 12 : w - 12] = screen[20 : h - 20]
        return img, rounded_mask(w, h, 40)
    if kind == "book":
        w, h = 400, int(400 * rng.uniform(1.25, 1.6))
        img = np.empty((h, w, 3), np.uint8)
        img[:] = _colour(rng).astype(np.uint8)
        for i in range(int(rng.integers(1, 5))):
            text = "".join(rng.choice(list(string.ascii_uppercase), int(rng.integers(4, 10))))
            cv2.putText(
                img,
                text,
                (20, 80 + 70 * i),
                cv2.FONT_HERSHEY_SIMPLEX,
                rng.uniform(1, 2),
                _colour(rng).tolist(),
                3,
            )
        return img, np.full((h, w), 255, np.uint8)
    if kind == "box":
        w, h = 300, int(300 * rng.uniform(0.5, 1.0))
        img = np.empty((h, w, 3), np.uint8)
        img[:] = _colour(rng).astype(np.uint8)
        cv2.rectangle(img, (10, 10), (w - 10, h - 10), _colour(rng).tolist(), 6)
        return img, np.full((h, w), 255, np.uint8)
    # A plain rectangle of card proportions: paper note, blank card, coaster.
    w, h = 300, int(300 * rng.uniform(1.25, 1.5))
    img = np.empty((h, w, 3), np.uint8)
    img[:] = _colour(rng, 60, 255).astype(np.uint8)
    img = (img.astype(np.float32) * (0.9 + 0.2 * smooth_noise(h, w, rng, 3))[..., None]).astype(
        np.uint8
    )
    return img, rounded_mask(w, h, int(rng.integers(0, 20)))


def draw_finger(
    img: np.ndarray, occ: np.ndarray, rng: Rng, tip: tuple[float, float], scale: float
) -> None:
    """A finger or thumb ending at `tip`, coming in from a random direction; marks `occ`."""
    a = rng.uniform(0, 2 * np.pi)
    length = scale * rng.uniform(1.0, 3.0)
    end = (tip[0] + np.cos(a) * length, tip[1] + np.sin(a) * length)
    width = max(3, int(scale * rng.uniform(0.25, 0.45)))
    skin = np.array([rng.uniform(60, 170), rng.uniform(100, 190), rng.uniform(150, 240)])
    p0 = (int(tip[0]), int(tip[1]))
    p1 = (int(end[0]), int(end[1]))
    cv2.line(img, p0, p1, skin.tolist(), width, cv2.LINE_AA)
    cv2.line(img, p0, p1, (skin * 1.08).clip(0, 255).tolist(), max(1, width // 3), cv2.LINE_AA)
    cv2.line(occ, p0, p1, 1, width)


def draw_die(
    img: np.ndarray, occ: np.ndarray, rng: Rng, center: tuple[float, float], size: float
) -> None:
    """A die-like blob (rounded square with pips) or a coin."""
    s = max(4, int(size))
    cx, cy = int(center[0]), int(center[1])
    colour = _colour(rng).tolist()
    if rng.random() < 0.3:
        cv2.circle(img, (cx, cy), s // 2, colour, -1, cv2.LINE_AA)
        cv2.circle(occ, (cx, cy), s // 2, 1, -1)
        return
    box = cv2.boxPoints(((cx, cy), (s, s), rng.uniform(0, 90))).astype(np.int32)
    cv2.fillConvexPoly(img, box, colour, cv2.LINE_AA)
    cv2.fillConvexPoly(occ, box, 1)
    pip = (255 - np.array(colour)).tolist()
    for _ in range(int(rng.integers(1, 7))):
        off = rng.uniform(-0.3, 0.3, 2) * s
        cv2.circle(img, (int(cx + off[0]), int(cy + off[1])), max(1, s // 10), pip, -1)
