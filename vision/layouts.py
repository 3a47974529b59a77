"""Where cards lie in a synthetic scene, before the camera tilt: each layout returns card quads
(TL, TR, BR, BL of each card as printed) in the pixels of a w x h frame."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

CARD_PX = (448, 626)  # catalog image size (w, h), 63 x 88 mm
LAYOUTS = ("closeup", "scatter", "grid", "binder", "fan", "pile", "empty")
# Drawn only when asked for (the training mix's extra shares), so that the seeds of LAYOUTS'
# scenes, and the test sets made from them, stay as they were.
EXTRA_LAYOUTS = ("zoom", "tossed", "stack")

Rng = np.random.Generator


def rotation(angle_deg: float) -> np.ndarray:
    """2x2 matrix turning points clockwise on screen (y down) by `angle_deg`."""
    a = np.deg2rad(angle_deg)
    return np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])


def card_quad(
    cx: float, cy: float, height: float, angle_deg: float, aspect: float = CARD_PX[0] / CARD_PX[1]
) -> np.ndarray:
    """Corners TL TR BR BL of a card (w/h = aspect) turned clockwise by `angle_deg`."""
    w = height * aspect
    pts = np.array(
        [[-w / 2, -height / 2], [w / 2, -height / 2], [w / 2, height / 2], [-w / 2, height / 2]]
    )
    return (pts @ rotation(angle_deg).T + [cx, cy]).astype(np.float32)


def polygon_area(quad: np.ndarray) -> float:
    x, y = quad[:, 0], quad[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2)


def _angle(rng: Rng, free: float = 0.4) -> float:
    """Mostly near a right angle (people square their cards), sometimes anything."""
    if rng.random() < free:
        return float(rng.uniform(0, 360))
    return float(rng.choice([0, 0, 0, 90, 180, 270]) + rng.normal(0, 4))


def _closeup(w: int, h: int, rng: Rng) -> list[np.ndarray]:
    fit = min(h, w / 0.716)
    height = fit * rng.uniform(0.7, 1.08)
    ang = (
        float(rng.choice([0, 0, 0, 90, 180, 270]) + rng.normal(0, 3))
        if rng.random() < 0.9
        else rng.uniform(0, 360)
    )
    if ang % 180 > 45 and ang % 180 < 135:  # landscape: fit the card's height into the width
        height = min(w, h / 0.716) * rng.uniform(0.7, 1.08)
    c = np.array([w, h]) / 2 + rng.normal(0, 0.04, 2) * [w, h]
    return [card_quad(c[0], c[1], height, ang)]


def _zoom(w: int, h: int, rng: Rng) -> list[np.ndarray]:
    """A card larger than the frame: a photo of its text box or art, whose letters, symbols and
    inner frames are not cards (a detector must learn to say nothing here)."""
    height = min(h, w / 0.716) * rng.uniform(1.6, 4.0)
    ang = float(rng.choice([0, 0, 90, 180, 270]) + rng.normal(0, 4))
    q = card_quad(0, 0, height, ang)
    # Any point of the card's inner 80 % may fall at the frame's centre.
    inner = q.mean(0) + (q - q.mean(0)) * 0.8
    a, b = rng.uniform(0, 1, 2)
    spot = inner[0] + a * (inner[1] - inner[0]) + b * (inner[3] - inner[0])
    return [q + (np.array([w, h]) / 2 - spot).astype(np.float32)]


def _scatter(w: int, h: int, rng: Rng, free: float = 0.4) -> list[np.ndarray]:
    """Cards lying anywhere, some overlapping or cut by the frame; `free` of them at any angle."""
    n = int(rng.choice(np.arange(1, 13), p=np.array([6, 6, 5, 5, 4, 4, 3, 3, 3, 2, 2, 2]) / 45))
    short = min(w, h)
    height = short * rng.uniform(0.3, 0.75) / max(1.0, np.sqrt(n) / 1.3)
    overlap_ok = rng.random() < 0.35
    quads: list[np.ndarray] = []
    boxes: list[np.ndarray] = []
    for _ in range(n * 15):
        if len(quads) == n:
            break
        margin = -0.2 * height if rng.random() < 0.15 else 0.4 * height
        cx, cy = rng.uniform(margin, w - margin), rng.uniform(margin, h - margin)
        q = card_quad(cx, cy, height * rng.uniform(0.92, 1.08), _angle(rng, free))
        box = np.concatenate([q.min(0), q.max(0)])
        if not overlap_ok and any(_box_overlap(box, b) > 0.02 for b in boxes):
            continue
        quads.append(q)
        boxes.append(box)
    return quads


def _box_overlap(a: np.ndarray, b: np.ndarray) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    return iw * ih / max(1e-6, min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1])))


def _grid(
    w: int, h: int, rng: Rng, rows: int, cols: int, gap: float, fill: float
) -> list[np.ndarray]:
    """Cards in rows and columns, the whole grid turned by a random angle; a card may be missing."""
    cw_ratio = CARD_PX[0] / CARD_PX[1]
    turn = float(rng.choice([0, 0, 90, 180, 270]) + rng.normal(0, 5))
    sideways = 45 < turn % 180 < 135
    gw, gh = (h, w) if sideways else (w, h)
    height = min(gh / (rows + (rows - 1) * gap), gw / (cols * cw_ratio + (cols - 1) * gap)) * fill
    step_x, step_y = height * (cw_ratio + gap), height * (1 + gap)
    rot = rotation(turn)
    centre = np.array([w, h]) / 2 + rng.normal(0, 0.03, 2) * [w, h]
    quads = []
    for r in range(rows):
        for c in range(cols):
            if rng.random() < 0.08:
                continue
            off = np.array([(c - (cols - 1) / 2) * step_x, (r - (rows - 1) / 2) * step_y]) @ rot.T
            own = turn + (180 if rng.random() < 0.05 else 0) + rng.normal(0, 2)
            x, y = centre + off
            quads.append(card_quad(x, y, height * rng.uniform(0.97, 1.03), own))
    return quads


def _fan(w: int, h: int, rng: Rng) -> list[np.ndarray]:
    n = int(rng.integers(3, 8))
    height = min(w, h) * rng.uniform(0.35, 0.6)
    spread = rng.uniform(7, 16)
    base = rng.uniform(0, 360) if rng.random() < 0.3 else rng.normal(0, 10)
    pivot = np.array([w / 2, h / 2]) + rng.normal(0, 0.05, 2) * [w, h]
    radius = height * rng.uniform(0.3, 0.6)
    quads = []
    for i in range(n):
        t = base + (i - (n - 1) / 2) * spread
        a = np.deg2rad(t)
        c = pivot + radius * np.array([np.sin(a), -np.cos(a)])
        quads.append(card_quad(c[0], c[1], height, t))
    return quads


def _pile(w: int, h: int, rng: Rng) -> list[np.ndarray]:
    n = int(rng.integers(2, 7))
    height = min(w, h) * rng.uniform(0.3, 0.55)
    ang = _angle(rng, 0.3)
    step = (
        rng.uniform(0.3, 0.7)
        * height
        * np.array([np.cos(rng.uniform(0, 2 * np.pi)), np.sin(rng.uniform(0, 2 * np.pi))])
    )
    start = np.array([w, h]) / 2 - step * (n - 1) / 2
    centres = [start + i * step for i in range(n)]
    return [card_quad(c[0], c[1], height, ang + rng.normal(0, 3)) for c in centres]


def _stack(w: int, h: int, rng: Rng) -> list[np.ndarray]:
    """Columns of cards each laid a little below the last, as decks are spread for a photo: every
    card but a column's last shows only its top strip (its title bar), and sometimes a side."""
    cols = int(rng.integers(1, 5))
    rows = int(rng.integers(2, 8))
    offset = rng.uniform(0.1, 0.3)  # of the card's height, from one card to the next
    # of the card's width, sideways from one card to the next (a little, when columns stand near)
    side = rng.uniform(-0.05, 0.2) if cols == 1 else rng.uniform(-0.03, 0.03)
    gap = rng.uniform(1.02, 1.3)  # between columns, in card widths
    ang = _angle(rng, 0.25)
    # The spread's size in card heights (upright), fitted into the frame's short side.
    span_x = ((cols - 1) * gap + 1 + abs(side) * (rows - 1)) * CARD_PX[0] / CARD_PX[1]
    span_y = 1 + offset * (rows - 1)
    height = min(w, h) / max(span_x, span_y) * rng.uniform(0.6, 1.0)
    width = height * CARD_PX[0] / CARD_PX[1]
    rot = rotation(ang)
    centre = np.array([w, h]) / 2 + rng.normal(0, 0.04, 2) * [w, h]
    quads = []
    for c in range(cols):
        for r in range(rows):
            # In the spread's own frame (upright, centred), then turned and moved to the frame.
            x = (c - (cols - 1) / 2) * gap * width + (r - (rows - 1) / 2) * side * width
            y = (r - (rows - 1) / 2) * offset * height
            cx, cy = rot @ np.array([x, y]) + centre
            quads.append(card_quad(cx, cy, height, ang + rng.normal(0, 1.5)))
    return quads


def check_layouts(names: Iterable[str]) -> None:
    """ValueError naming any of `names` that is not one of LAYOUTS or EXTRA_LAYOUTS."""
    unknown = sorted(set(names) - set(LAYOUTS) - set(EXTRA_LAYOUTS))
    if unknown:
        known = ", ".join(LAYOUTS + EXTRA_LAYOUTS)
        raise ValueError(f"unknown layouts {unknown} (known: {known})")


def place_cards(layout: str, w: int, h: int, rng: Rng) -> list[np.ndarray]:
    """Card quads for one of LAYOUTS or EXTRA_LAYOUTS (at most 12)."""
    check_layouts([layout])
    if layout == "closeup":
        plane = _closeup(w, h, rng)
    elif layout == "zoom":
        plane = _zoom(w, h, rng)
    elif layout == "scatter":
        plane = _scatter(w, h, rng)
    elif layout == "tossed":  # a scatter whose every card lies at any angle
        plane = _scatter(w, h, rng, free=1.0)
    elif layout == "grid":
        plane = _grid(
            w,
            h,
            rng,
            int(rng.integers(1, 4)),
            int(rng.integers(1, 5)),
            rng.uniform(0.03, 0.2),
            rng.uniform(0.6, 0.98),
        )
    elif layout == "binder":
        k = 3 if rng.random() < 0.75 else 2
        plane = _grid(w, h, rng, k, k, rng.uniform(0.04, 0.09), rng.uniform(0.8, 1.05))
    elif layout == "fan":
        plane = _fan(w, h, rng)
    elif layout == "pile":
        plane = _pile(w, h, rng)
    elif layout == "stack":
        plane = _stack(w, h, rng)
    else:
        plane = []
    return plane[:12]
