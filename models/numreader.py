"""Collector-number reader: the digits of a card's number line, read by a small CTC network.

rapidocr's general recogniser reads a number line well when its digits are 10 px or more high;
in a photo of a table of cards they are 4-7 px high, and it reads few of them. This network is
trained on nothing but number lines (`scripts/train_number_reader.py`): catalog references
shrunk to the sizes cards have in photos, blurred and compressed, cut with the placement errors
of the matcher's homography. It reads only the characters that matter ("0-9", "/" and a space
between groups): "R 0148" reads "0148", "169/281 U" reads "169/281".

Model input (N, 1, 32, 144) float32 grey 0-1, output `logits` (N, T, len(CHARSET) + 1), class 0
the CTC blank. Greedy decoding; a read's confidence is its least sure character's probability.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from models.base import Model, onnx_session
from models.settings import settings

CHARSET = "0123456789/ "
INPUT_HW = (32, 144)


@dataclass(frozen=True)
class LineRead:
    text: str  # "" when nothing was read
    conf: float  # the least sure emitted character's probability (0 when nothing was read)


def line_blob(lines: list[np.ndarray]) -> np.ndarray:
    """(N, 1, 32, 144) float32 grey 0-1 of BGR (or grey) line images of any size."""
    h, w = INPUT_HW
    out = np.empty((len(lines), 1, h, w), np.float32)
    for i, line in enumerate(lines):
        grey = cv2.cvtColor(line, cv2.COLOR_BGR2GRAY) if line.ndim == 3 else line
        out[i, 0] = cv2.resize(grey, (w, h), interpolation=cv2.INTER_AREA) / 255.0
    return out


def decode(logits: np.ndarray) -> list[LineRead]:
    """Greedy CTC decoding of (N, T, C) logits."""
    z = logits - logits.max(-1, keepdims=True)
    probs = np.exp(z) / np.exp(z).sum(-1, keepdims=True)
    best = probs.argmax(-1)
    reads = []
    for path, p in zip(best, probs.max(-1), strict=True):
        chars, confs, prev = [], [], 0
        for cls, conf in zip(path, p, strict=True):
            if cls and cls != prev:
                chars.append(CHARSET[cls - 1])
                confs.append(float(conf))
            elif cls and cls == prev:
                confs[-1] = max(confs[-1], float(conf))
            prev = cls
        text = " ".join("".join(chars).split())
        reads.append(LineRead(text, min(confs) if text else 0.0))
    return reads


class NumberReader(Model):
    """Reads number lines (BGR images, any size) in one batch; thread-safe once loaded."""

    name = "numreader"
    folder = "numreader"

    def __init__(self, path: Path | None = None) -> None:
        super().__init__(path)
        self._session: Any = None  # onnxruntime.InferenceSession once loaded

    def _load(self) -> None:
        assert self.path is not None
        # One thread: the matcher reads its crops' lines from several threads at once.
        self._session = onnx_session(self.path, settings.providers, 1)

    def warmup(self) -> None:
        self.predict([np.zeros((*INPUT_HW, 3), np.uint8)])

    def _predict(self, lines: list[np.ndarray]) -> list[LineRead]:
        if not lines:
            return []
        return decode(self._session.run(None, {"lines": line_blob(lines)})[0])
