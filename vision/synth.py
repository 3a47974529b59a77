"""Synthetic card scenes with exact ground truth, composed from catalog images.

A scene is a pure function of (catalog, seed, size). Each card's ground truth is its four corners
in the card's own order (TL, TR, BR, BL as printed: an upside-down card has its TL at the photo's
bottom right), its card_key, and how much of it is visible. A card counts as "should be detected"
when at least half of it is visible (`SHOULD_DETECT_VISIBLE`); slivers below `IGNORE_VISIBLE` are
background; cards in between are neither required nor penalised by the evaluation. So is a card
whose title strip shows whole (`TITLE_BAND`) however little of the rest does: a deck spread's
cards show only that, and a person counts them.
"""

from __future__ import annotations

import csv
import json
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from vision import degrade, scenery
from vision.layouts import (
    CARD_PX,
    LAYOUTS,
    card_quad,
    check_layouts,
    place_cards,
    polygon_area,
)

DEFAULT_CATALOG = Path(__file__).resolve().parents[2] / "shared" / "data" / "catalog" / "cards.csv"
SHOULD_DETECT_VISIBLE = 0.5
IGNORE_VISIBLE = 0.2
TRAIN_MIN_VISIBLE = 0.35  # labelled for training: partly hidden cards still teach the shape
TITLE_BAND = 0.12  # of the card's height from its top edge: the title bar of every game's frame
TITLE_SHOWN = 0.9  # of the title band visible: the card can be told (and is labelled for training)
FLIP_IDX = [1, 0, 3, 2]  # a mirrored card swaps TL<->TR and BR<->BL

Rng = np.random.Generator


@dataclass(frozen=True)
class CatalogCard:
    card_key: str
    path: Path


@dataclass
class SceneCard:
    card_key: str
    quad: np.ndarray  # (4, 2) float32, TL TR BR BL of the card as printed, photo pixels
    visible: float  # fraction of the card's area visible in the frame and not covered
    corner_vis: np.ndarray = field(
        default_factory=lambda: np.zeros(4, np.int8)
    )  # 0 out, 1 hidden, 2 seen
    title_visible: float = 0.0  # fraction of the card's title band visible (`TITLE_BAND`)

    @property
    def should_detect(self) -> bool:
        return self.visible >= SHOULD_DETECT_VISIBLE

    @property
    def ignored(self) -> bool:
        return not self.should_detect and (
            self.visible >= IGNORE_VISIBLE or self.title_visible >= TITLE_SHOWN
        )


@dataclass
class Scene:
    image: np.ndarray  # HxWx3 BGR uint8
    cards: list[SceneCard]
    seed: int
    layout: str


def load_catalog(csv_path: Path = DEFAULT_CATALOG) -> list[CatalogCard]:
    """Catalog rows whose image exists, in file order."""
    root = csv_path.parent
    with csv_path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    return [
        CatalogCard(r["card_key"], root / r["image"]) for r in rows if (root / r["image"]).exists()
    ]


def split_catalog(cards: list[CatalogCard], test_fraction: float = 0.1) -> tuple[list, list]:
    """Stable split by key hash, so test scenes can show printings the detector never saw."""
    held = [c for c in cards if zlib.crc32(c.card_key.encode()) % 1000 < test_fraction * 1000]
    held_keys = {c.card_key for c in held}
    return [c for c in cards if c.card_key not in held_keys], held


class SceneGenerator:
    """Composes scenes from a list of catalog cards; `generate(seed)` is deterministic."""

    def __init__(self, cards: list[CatalogCard], size: int = 640) -> None:
        if not cards:
            raise ValueError("no catalog cards to compose scenes from")
        self.cards = cards
        self.size = size
        self._cache: dict[str, np.ndarray] = {}

    def _image(self, card: CatalogCard) -> np.ndarray:
        img = self._cache.get(card.card_key)
        if img is None:
            img = cv2.imread(str(card.path), cv2.IMREAD_COLOR)
            if img is None:
                raise FileNotFoundError(card.path)
            if img.shape[:2] != (CARD_PX[1], CARD_PX[0]):
                img = cv2.resize(img, CARD_PX, interpolation=cv2.INTER_AREA)
            if len(self._cache) > 400:
                self._cache.clear()
            self._cache[card.card_key] = img
        return img

    def generate(self, seed: int, layout: str | None = None) -> Scene:
        """One scene; `layout` forces one of LAYOUTS or EXTRA_LAYOUTS (else one of LAYOUTS is
        drawn at random)."""
        rng = np.random.default_rng(seed)
        aspect = float(
            rng.choice([4 / 3, 3 / 4, 16 / 9, 9 / 16, 1.0], p=[0.3, 0.3, 0.15, 0.15, 0.1])
        )
        w, h = (
            (self.size, round(self.size / aspect))
            if aspect >= 1
            else (round(self.size * aspect), self.size)
        )
        picks = [self.cards[i] for i in rng.integers(0, len(self.cards), 12)]
        img = scenery.background(
            h, w, rng, art=self._image(picks[0]) if rng.random() < 0.5 else None
        )

        drawn = str(
            rng.choice(
                list(LAYOUTS),
                p=[0.14, 0.32, 0.16, 0.12, 0.1, 0.1, 0.06],
            )
        )
        layout = layout or drawn
        plane = place_cards(layout, w, h, rng)

        # Camera tilt: one homography for the whole table plane.
        tilt = rng.uniform(0, 0.18) if layout not in ("closeup", "zoom") else rng.uniform(0, 0.08)
        src = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
        cam = cv2.getPerspectiveTransform(
            src, (src + rng.uniform(-tilt, tilt, (4, 2)) * [w, h]).astype(np.float32)
        )
        quads = [cv2.perspectiveTransform(q[None].astype(np.float32), cam)[0] for q in plane]
        if layout == "fan":  # hand-held cards bend a little out of the plane
            quads = [
                q + rng.normal(0, 0.006, (4, 2)).astype(np.float32) * polygon_area(q) ** 0.5
                for q in quads
            ]

        ids = np.full((h, w), -1, np.int16)
        if layout == "binder" and quads:
            self._draw_page(img, ids, quads, rng)
        for _ in range(int(rng.poisson(0.5 if layout != "empty" else 1.5))):
            self._draw_distractor(img, ids, w, h, rng)
        for k, q in enumerate(quads):
            self._draw_card(img, ids, self._image(picks[k]), q, k, rng, sleeve=layout == "binder")
        if rng.random() < 0.08:
            self._draw_distractor(img, ids, w, h, rng)  # something lying on top of the cards
        occ = np.zeros((h, w), np.uint8)
        short = min(w, h)
        for _ in range(int(rng.poisson(0.5))):
            tip = (
                quads[int(rng.integers(len(quads)))][int(rng.integers(4))]
                if quads
                else rng.uniform(0, 1, 2) * [w, h]
            )
            scenery.draw_finger(
                img,
                occ,
                rng,
                (tip[0] + rng.normal(0, 10), tip[1] + rng.normal(0, 10)),
                short * rng.uniform(0.06, 0.15),
            )
        for _ in range(int(rng.poisson(0.3))):
            scenery.draw_die(
                img, occ, rng, tuple(rng.uniform(0, 1, 2) * [w, h]), short * rng.uniform(0.03, 0.09)
            )
        ids[occ > 0] = -1

        img = degrade.random_degrade(img, rng, strength=rng.uniform(0.5, 1.2))
        cards = [self._truth(picks[k].card_key, q, k, ids) for k, q in enumerate(quads)]
        return Scene(img, cards, seed, layout)

    @staticmethod
    def _truth(key: str, quad: np.ndarray, k: int, ids: np.ndarray) -> SceneCard:
        h, w = ids.shape
        area = max(polygon_area(quad), 1.0)
        visible = float(np.count_nonzero(ids == k)) / area
        band = quad.astype(np.float32).copy()  # TL, TR, and the sides' points TITLE_BAND down
        band[2] = quad[1] + (quad[2] - quad[1]) * TITLE_BAND
        band[3] = quad[0] + (quad[3] - quad[0]) * TITLE_BAND
        inside = np.zeros((h, w), np.uint8)
        cv2.fillConvexPoly(inside, np.round(band * 16).astype(np.int32), 1, cv2.LINE_8, 4)
        title = float(np.count_nonzero(inside & (ids == k))) / max(polygon_area(band), 1.0)
        centre = quad.mean(0)
        cv_ = np.zeros(4, np.int8)
        for i, p in enumerate(quad):
            inner = p + (centre - p) * 0.03  # just inside the rounded corner
            x, y = int(inner[0]), int(inner[1])
            if 0 <= p[0] < w and 0 <= p[1] < h:
                cv_[i] = 2 if 0 <= x < w and 0 <= y < h and ids[y, x] == k else 1
        return SceneCard(key, quad.astype(np.float32), min(visible, 1.0), cv_, min(title, 1.0))

    @staticmethod
    def _paste(img: np.ndarray, src: np.ndarray, alpha: np.ndarray, hom: np.ndarray) -> np.ndarray:
        """Warp `src` by `hom` onto `img`, blending by `alpha` (uint8); returns the warped alpha."""
        h, w = img.shape[:2]
        sh, sw = src.shape[:2]
        corners = cv2.perspectiveTransform(
            np.array([[[0, 0], [sw, 0], [sw, sh], [0, sh]]], np.float32), hom
        )[0]
        x0, y0 = np.floor(corners.min(0)).astype(int).clip(0, [w, h])
        x1, y1 = np.ceil(corners.max(0)).astype(int).clip(0, [w, h])
        full = np.zeros((h, w), np.float32)
        if x1 <= x0 or y1 <= y0:
            return full
        shift = np.array([[1, 0, -x0], [0, 1, -y0], [0, 0, 1]], np.float64) @ hom
        size = (int(x1 - x0), int(y1 - y0))
        warped = cv2.warpPerspective(
            src, shift, size, flags=cv2.INTER_AREA if sw > size[0] else cv2.INTER_LINEAR
        )
        a = (
            cv2.warpPerspective(alpha, shift, size, flags=cv2.INTER_LINEAR).astype(np.float32)[
                ..., None
            ]
            / 255
        )
        roi = img[y0:y1, x0:x1].astype(np.float32)
        img[y0:y1, x0:x1] = (roi * (1 - a) + warped.astype(np.float32) * a).astype(np.uint8)
        full[y0:y1, x0:x1] = a[..., 0]
        return full

    def _draw_card(
        self,
        img: np.ndarray,
        ids: np.ndarray,
        card: np.ndarray,
        quad: np.ndarray,
        k: int,
        rng: Rng,
        sleeve: bool,
    ) -> None:
        # Compose at about the size the card will have in the scene (never upscaled): 10x cheaper
        # for small cards than working on the 448x626 catalog image.
        side = float(np.linalg.norm(quad[3] - quad[0]))
        s = min(1.0, 1.3 * side / CARD_PX[1])
        cw, ch = max(16, round(CARD_PX[0] * s)), max(22, round(CARD_PX[1] * s))
        card = cv2.resize(card, (cw, ch), interpolation=cv2.INTER_AREA) if s < 1 else card.copy()
        if rng.random() < 0.15:
            card = degrade.glare(card, rng)
        mask = scenery.rounded_mask(cw, ch, int(cw * rng.uniform(0.03, 0.05)))
        kind = (
            "sleeve"
            if sleeve or rng.random() < 0.3
            else ("toploader" if rng.random() < 0.1 else "bare")
        )
        m = (
            0
            if kind == "bare"
            else int(
                cw * (rng.uniform(0.012, 0.04) if kind == "sleeve" else rng.uniform(0.06, 0.1))
            )
        )
        canvas = np.empty((ch + 2 * m, cw + 2 * m, 3), np.uint8)
        canvas[:] = (
            rng.uniform(0, 255, 3)
            if kind == "sleeve" and rng.random() < 0.5
            else rng.uniform(200, 255)
        )
        alpha = np.zeros(canvas.shape[:2], np.uint8)
        if kind == "sleeve":
            card = degrade.sleeve_tint(card, rng)
            alpha[:] = (
                scenery.rounded_mask(cw + 2 * m, ch + 2 * m, m + 2)
                // 255
                * int(rng.uniform(60, 230))
            )
        elif kind == "toploader":
            alpha[:] = int(rng.uniform(30, 90))
            cv2.rectangle(alpha, (0, 0), (cw + 2 * m - 1, ch + 2 * m - 1), 220, max(2, m // 6))
        canvas[m : m + ch, m : m + cw][mask > 0] = card[mask > 0]
        alpha[m : m + ch, m : m + cw] = np.maximum(alpha[m : m + ch, m : m + cw], mask)
        src = np.array([[m, m], [m + cw, m], [m + cw, m + ch], [m, m + ch]], np.float32)
        hom = cv2.getPerspectiveTransform(src, quad.astype(np.float32))
        if rng.random() < 0.5:  # drop shadow beneath the card
            off = rng.normal(0, 0.02, 2) * (polygon_area(quad) ** 0.5)
            sigma = max(1.0, 0.02 * polygon_area(quad) ** 0.5)
            poly = quad + off
            x0, y0 = np.floor(poly.min(0) - 3 * sigma).astype(int).clip(0)
            x1, y1 = np.ceil(poly.max(0) + 3 * sigma).astype(int)
            roi = img[y0:y1, x0:x1]
            if roi.size:  # only the neighbourhood of the card: full-frame blurs are slow
                shade = np.zeros(roi.shape[:2], np.float32)
                cv2.fillConvexPoly(shade, (poly - [x0, y0]).astype(np.int32), 1.0)
                blurred = cv2.GaussianBlur(shade, (0, 0), sigma)[..., None]
                dark = 1 - rng.uniform(0.2, 0.5) * blurred
                roi[:] = (roi.astype(np.float32) * dark).astype(np.uint8)
        self._paste(img, canvas, alpha, hom)
        card_alpha = np.zeros_like(alpha)
        card_alpha[m : m + ch, m : m + cw] = mask
        own = cv2.warpPerspective(
            card_alpha, hom, (ids.shape[1], ids.shape[0]), flags=cv2.INTER_NEAREST
        )
        ids[own > 127] = k

    def _draw_distractor(self, img: np.ndarray, ids: np.ndarray, w: int, h: int, rng: Rng) -> None:
        obj, mask = scenery.distractor(rng)
        oh, ow = obj.shape[:2]
        size = min(w, h) * rng.uniform(0.2, 0.6)
        q = card_quad(rng.uniform(0, w), rng.uniform(0, h), size, rng.uniform(0, 360), ow / oh)
        hom = cv2.getPerspectiveTransform(
            np.array([[0, 0], [ow, 0], [ow, oh], [0, oh]], np.float32), q
        )
        a = self._paste(img, obj, mask, hom)
        ids[a > 0.5] = -1

    def _draw_page(
        self, img: np.ndarray, ids: np.ndarray, quads: list[np.ndarray], rng: Rng
    ) -> None:
        """A binder page behind the pockets: a dark or coloured sheet larger than the grid."""
        pts = np.concatenate(quads)
        hull = cv2.convexHull(pts.astype(np.float32))
        centre = pts.mean(0)
        grown = (centre + (hull[:, 0] - centre) * rng.uniform(1.05, 1.2)).astype(np.int32)
        cv2.fillConvexPoly(img, grown, rng.uniform(0, 120, 3).tolist(), cv2.LINE_AA)


def yolo_pose_label(card: SceneCard, w: int, h: int) -> str | None:
    """One ultralytics pose label line (class, box, 4 x (x, y, v)) normalised, or None."""
    if card.visible < TRAIN_MIN_VISIBLE and card.title_visible < TITLE_SHOWN:
        return None
    q = card.quad
    x0, y0 = np.clip(q.min(0), 0, [w, h])
    x1, y1 = np.clip(q.max(0), 0, [w, h])
    if x1 - x0 < 4 or y1 - y0 < 4:
        return None
    parts = [0, (x0 + x1) / 2 / w, (y0 + y1) / 2 / h, (x1 - x0) / w, (y1 - y0) / h]
    for (x, y), v in zip(q, card.corner_vis, strict=True):
        # Out-of-frame corners: v=0 (no loss), coordinates clipped because the loader rejects > 1.
        parts += [min(max(x / w, 0.0), 1.0), min(max(y / h, 0.0), 1.0), int(v)]
    return " ".join(f"{p:.6f}" if isinstance(p, float) else str(p) for p in parts)


def extra_layout(seed: int, shares: dict[str, float]) -> str | None:
    """The layout a training scene is forced to, by `shares` (e.g. {"zoom": 0.06}); None: drawn
    as usual. A stream of its own, so that a share of 0 leaves every scene as it was."""
    u = np.random.default_rng([seed, 1]).random()
    for layout, share in shares.items():
        if u < share:
            return layout
        u -= share
    return None


def write_pose_dataset(
    out: Path,
    cards: list[CatalogCard],
    *,
    n_train: int,
    n_val: int,
    seed: int = 0,
    size: int = 640,
    extra: dict[str, float] | None = None,
) -> Path:
    """Write an ultralytics pose dataset (images/, labels/, data.yaml); existing scenes are kept.
    `extra` gives the shares of scenes forced to a layout (EXTRA_LAYOUTS' or more of LAYOUTS')."""
    check_layouts(extra or {})
    gen = SceneGenerator(cards, size)
    for split, n, base in (("train", n_train, seed), ("val", n_val, seed + 5_000_000)):
        (out / "images" / split).mkdir(parents=True, exist_ok=True)
        (out / "labels" / split).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            img_path = out / "images" / split / f"{i:06d}.jpg"
            lbl_path = out / "labels" / split / f"{i:06d}.txt"
            if img_path.exists() and lbl_path.exists():
                continue
            scene = gen.generate(base + i, extra_layout(base + i, extra or {}))
            h, w = scene.image.shape[:2]
            lines = [line for c in scene.cards if (line := yolo_pose_label(c, w, h))]
            cv2.imwrite(str(img_path), scene.image, [cv2.IMWRITE_JPEG_QUALITY, 92])
            lbl_path.write_text("\n".join(lines) + ("\n" if lines else ""))
    yaml = out / "data.yaml"
    yaml.write_text(
        f"path: {out.resolve()}\ntrain: images/train\nval: images/val\n"
        f"kpt_shape: [4, 3]\nflip_idx: {FLIP_IDX}\nnames:\n  0: card\n"
    )
    return yaml


def write_test_set(
    out: Path,
    cards: list[CatalogCard],
    *,
    n: int,
    seed: int = 10_000_000,
    size: int = 1280,
    layout: str | None = None,
) -> Path:
    """Write evaluation scenes: images/<layout>/, scenes.jsonl (quads, keys, visibility), and a
    labels.csv in EVAL.md's format, so `cardscan eval` scores them per layout. `layout` forces
    one (else each scene draws its own)."""
    check_layouts([layout] if layout else [])
    gen = SceneGenerator(cards, size)
    records, rows = [], []
    for i in range(n):
        scene = gen.generate(seed + i, layout)
        name = f"images/{scene.layout}/{i:05d}.jpg"
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(out / name), scene.image, [cv2.IMWRITE_JPEG_QUALITY, 92])
        h, w = scene.image.shape[:2]
        records.append(
            {
                "photo": name,
                "seed": scene.seed,
                "layout": scene.layout,
                "width": w,
                "height": h,
                "cards": [
                    {
                        "card_key": c.card_key,
                        "quad": np.round(c.quad, 2).tolist(),
                        "visible": round(c.visible, 3),
                        "title_visible": round(c.title_visible, 3),
                        "should_detect": c.should_detect,
                        "ignored": c.ignored,
                    }
                    for c in scene.cards
                ],
            }
        )
        shown = [c.card_key for c in scene.cards if c.should_detect]
        exact = int(not any(c.ignored for c in scene.cards))
        rows.append(
            [
                name,
                len(shown),
                exact,
                ";".join(shown),
                "synthetic",
                f"seed {scene.seed}, {scene.layout}",
            ]
        )
    with (out / "scenes.jsonl").open("w") as f:
        f.writelines(json.dumps(r) + "\n" for r in records)
    with (out / "labels.csv").open("w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(["photo", "n_cards", "count_exact", "cards", "source_repo", "notes"])
        wr.writerows(rows)
    return out / "scenes.jsonl"


def read_test_set(path: Path) -> list[dict]:
    """Records of `scenes.jsonl` with quads as (4, 2) float32 arrays."""
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    for r in records:
        for c in r["cards"]:
            c["quad"] = np.asarray(c["quad"], np.float32)
    return records
