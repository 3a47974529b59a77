"""Card orienter: is a found card upside down? Served by ONNX Runtime; optional.

The detector gives a card's corners in their printed order (TL, TR, BR, BL), read from the card's
face; now and then it reads a card upside down, and its crop then shows it so. The orienter looks
at a small upright window of each found card (`vision.warp.card_window`, WINDOW pixels, MARGIN of
the card on each side) and gives the probability that it is upside down; the detector turns the
corner order of the cards it is sure of (`CardDetector`). Model input (N, 3, 88, 64) float32 RGB
0-1, output `upside_down` (N,). Trained by `scripts/train_orienter.py`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from models.base import Model, newest_model, onnx_session
from models.refiner import window_blob
from models.settings import settings
from vision.warp import card_window

WINDOW = (64, 88)  # (w, h): the card's 63 x 88 mm at one pixel a millimetre
MARGIN = 0.04  # of the card's width / height on each side: a few % off still shows the whole card


def windows(image: np.ndarray, quads: list[np.ndarray]) -> list[np.ndarray]:
    """The orienter's upright windows of `quads` in one BGR photo (sharing its shrunk copies)."""
    shrunk: dict[int, np.ndarray] = {}
    return [card_window(image, q, WINDOW, MARGIN, shrunk)[0] for q in quads]


def model_path(model_dir: Path | None = None) -> Path | None:
    """The newest model under <model_dir>/orienter (`models.base.newest_model`), or None."""
    return newest_model((model_dir or settings.model_dir) / "orienter")


class CardOrienter(Model):
    """P(upside down) of each quad (TL, TR, BR, BL) of a BGR photo, all cards in one batch."""

    name = "orienter"
    folder = "orienter"

    def __init__(self, path: Path | None = None) -> None:
        super().__init__(path)
        self._session: Any = None  # onnxruntime.InferenceSession once loaded

    def _load(self) -> None:
        assert self.path is not None
        self._session = onnx_session(self.path, settings.providers, settings.onnx_threads)

    def warmup(self) -> None:
        self.load()
        w, h = WINDOW
        self._session.run(None, {"windows": np.zeros((1, 3, h, w), np.float32)})

    def _predict(self, image: np.ndarray, quads: list[np.ndarray]) -> np.ndarray:
        if not quads:
            return np.zeros(0, np.float32)
        return self._session.run(None, {"windows": window_blob(windows(image, quads))})[0]
