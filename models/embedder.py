"""Card embedder: a 626x448 card crop -> a unit vector whose neighbours are the same printing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from models.base import Model, newest_model, onnx_session
from models.settings import settings

INPUT_HW = (224, 160)  # network input (H, W); the crop's aspect (626x448) is kept


def default_embedder_path() -> Path:
    """The newest model under models/embedder/ (`models.base.newest_model`)."""
    folder = settings.model_dir / "embedder"
    return newest_model(folder) or folder / "card-embedder-v1.onnx"


def preprocess(crops: list[np.ndarray]) -> np.ndarray:
    """BGR uint8 (626, 448, 3) crops -> float32 (N, 3, 224, 160) RGB 0..255 (scaled in-graph)."""
    batch = np.empty((len(crops), 3, *INPUT_HW), np.float32)
    for i, crop in enumerate(crops):
        small = cv2.resize(crop, INPUT_HW[::-1], interpolation=cv2.INTER_AREA)  # (224, 160, 3) BGR
        batch[i] = small[:, :, ::-1].transpose(2, 0, 1)  # -> (3, 224, 160) RGB
    return batch


class CardEmbedder(Model):
    """EfficientNet-Lite0 fine-tuned on catalog crops, run by ONNX Runtime; one batch per photo."""

    name = "embedder"
    path: Path  # never None: the default model when none is given

    def __init__(self, path: Path | None = None) -> None:
        super().__init__(path or default_embedder_path())
        self._session: Any = None  # onnxruntime.InferenceSession once loaded
        self.dim = 0

    def _load(self) -> None:
        self._session = onnx_session(self.path, settings.providers, settings.onnx_threads)
        self._input = self._session.get_inputs()[0].name
        self.dim = int(self._session.get_outputs()[0].shape[1])

    def warmup(self) -> None:
        self.load()
        self.predict([np.zeros((626, 448, 3), np.uint8)])

    def _predict(self, crops: list[np.ndarray]) -> np.ndarray:
        """(N, D) float32 L2-normalised embeddings, all crops of a photo in one run."""
        if not crops:
            return np.zeros((0, self.dim), np.float32)
        out = self._session.run(None, {self._input: preprocess(crops)})[0]
        # Normalised in-graph already; renormalise so float error never leaks into scores.
        return (out / np.linalg.norm(out, axis=1, keepdims=True).clip(1e-12)).astype(np.float32)
