"""Learned corner refiner: the second stage of the detector cascade, served by ONNX Runtime.

The detector sees a 416 px letterbox, so its corners are a few % of the card off. The refiner cuts
a card window around each rough quad (`vision.warp.card_window`: the card upright with a margin)
and a small CNN finds the four true corners inside it (each the soft-argmax of its own heatmap);
each further pass starts from the last one's answer, for the cards that still moved. Model
input: (N, 3, 176, 128) float32 RGB 0-1 windows; outputs: `corners` (N, 8) float32, the corners
TL, TR, BR, BL of the window's card as (x / window width, y / window height), and `certainty`
(N, 4), each corner's heatmap mass in its best 3x3 cells (1: one sharp peak; a diffuse map means
the window holds no such corner).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from models.base import Model, newest_model, onnx_session
from models.settings import settings
from vision import geometry
from vision.errors import ModelNotReadyError
from vision.warp import WINDOW_SIZE, card_window

ITERATIONS = 4  # passes at most; a far-off rough quad needs several (each moves within a window)
SETTLED = 0.02  # of the card's height: a card whose corners moved less in a pass is done
MAX_MOVE = 0.4  # of the card's height, over all passes: a corner moving further is a failure

# (N, 3, H, W) float32 -> corners (N, 8) float32 and their certainty (N, 4)
Runner = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass
class Refined:
    quad: np.ndarray  # (4, 2) float32, photo pixels, the input's corner order
    certainty: float  # of the card's second least certain corner, in its last window
    corners: np.ndarray | None = None  # (4,) each corner's certainty, in that window


def card_certainty(corners: np.ndarray) -> float:
    """A card's certainty from its four corners': the second lowest. One corner hidden under
    another card or cut by the frame is ordinary for a card; two are what a quad spanning two
    cards, or around something else, looks like."""
    return float(np.sort(corners)[1])


def model_path(model_dir: Path | None = None) -> Path | None:
    """The newest model under <model_dir>/refiner (`models.base.newest_model`), or None (the
    refiner is optional)."""
    return newest_model((model_dir or settings.model_dir) / "refiner")


def window_blob(crops: list[np.ndarray]) -> np.ndarray:
    """BGR uint8 windows (h, w, 3) -> (N, 3, h, w) float32 RGB 0-1, the model's input."""
    batch = np.stack(crops)[..., ::-1].transpose(0, 3, 1, 2)
    return np.ascontiguousarray(batch, np.float32) / 255.0


def refine_quads(
    image: np.ndarray,
    quads: list[np.ndarray],
    run: Runner,
    iterations: int = ITERATIONS,
    max_move: float = MAX_MOVE,
    settled: float = SETTLED,
) -> list[Refined]:
    """Refined copies of `quads` (same corner order, photo pixels); one `run` per pass.

    Every card gets two passes; after that only the cards whose corners still moved more than
    `settled` of their height go round again, up to `iterations` passes. A card whose answer is
    not a convex quad turning the same way, or moves a corner by more than `max_move` of its
    height, keeps its input quad.
    """
    if not quads:
        return []
    start = [np.asarray(q, np.float32).reshape(4, 2) for q in quads]
    current = list(start)
    certainty = [np.zeros(4, np.float32)] * len(start)
    # Largest cards first: the photo shrunk for them serves the smaller ones too (`card_window`).
    moving = sorted(range(len(start)), key=lambda i: -geometry.card_height(start[i]))
    scale = np.array(WINDOW_SIZE, np.float32)  # (w, h)
    shrunk: dict[int, np.ndarray] = {}  # the photo area-averaged by whole factors, for every pass
    for step in range(iterations):
        windows = [card_window(image, current[i], shrunk=shrunk) for i in moving]
        corners, corner_certainty = run(window_blob([crop for crop, _ in windows]))
        corners = corners.reshape(-1, 4, 2) * scale
        still = []
        for i, c, cert, (_, hom) in zip(moving, corners, corner_certainty, windows, strict=True):
            new = geometry.map_points(c, np.linalg.inv(hom))
            moved = float(np.linalg.norm(new - current[i], axis=1).max())
            current[i], certainty[i] = new, np.asarray(cert, np.float32)
            if step == 0 or moved > settled * geometry.card_height(new):
                still.append(i)
        moving = still
        if not moving:
            break
    out = []
    for old, new, corner_cert in zip(start, current, certainty, strict=True):
        moved = float(np.linalg.norm(new - old, axis=1).max())
        sane = (
            np.isfinite(new).all()
            and geometry.is_convex(new)
            and np.sign(geometry.signed_area(new)) == np.sign(geometry.signed_area(old))
            and moved <= max_move * geometry.card_height(old)
        )
        quad = new.astype(np.float32) if sane else old
        out.append(Refined(quad, card_certainty(corner_cert), corner_cert))
    return out


class CornerRefiner(Model):
    """Re-finds the corners of rough card quads in a BGR photo, all cards in one batch."""

    name = "refiner"
    folder = "refiner"

    def __init__(self, path: Path | None = None, *, iterations: int = ITERATIONS) -> None:
        super().__init__(path)
        self.iterations = iterations
        self._session: Any = None  # onnxruntime.InferenceSession once loaded
        self._input = "windows"

    def _load(self) -> None:
        assert self.path is not None
        self._session = onnx_session(self.path, settings.providers, settings.onnx_threads)
        self._input = self._session.get_inputs()[0].name
        if "certainty" not in {o.name for o in self._session.get_outputs()}:
            raise ModelNotReadyError(
                f"refiner {self.path.name} has no certainty output: run "
                f"`python -m scripts.train_refiner --add-certainty {self.path}`"
            )

    def warmup(self) -> None:
        self.load()
        w, h = WINDOW_SIZE
        self._run(np.zeros((1, 3, h, w), np.float32))

    def _run(self, blob: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        corners, certainty = self._session.run(["corners", "certainty"], {self._input: blob})
        return corners, certainty

    def _predict(self, image: np.ndarray, quads: list[np.ndarray]) -> list[Refined]:
        return refine_quads(image, quads, self._run, self.iterations)
