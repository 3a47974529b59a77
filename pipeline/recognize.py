"""One photo: decode -> detect -> warp -> match. Shared by `cardscan scan` and the worker."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from pipeline.settings import settings
from vision.warp import warp_card

if TYPE_CHECKING:
    from models.matcher import Matcher


@dataclass
class RecognizedCard:
    quad: list[list[float]]  # 4 corners [x, y] in original-photo pixels, clockwise from card TL
    crop: np.ndarray  # (626, 448, 3) BGR upright crop
    card_key: str | None
    name: str | None
    set_code: str | None
    number: str | None
    confidence: float
    decision: str
    candidates: list[dict]
    evidence: dict = field(default_factory=dict)
    detection_score: float = 0.0


@dataclass
class PhotoResult:
    cards: list[RecognizedCard]
    timings_ms: dict[str, float]
    versions: dict[str, str]
    width: int
    height: int


class Recognizer:
    """Detector + matcher, loaded once per process (after fork) and warmed up before serving."""

    def __init__(self, detector=None, matcher: Matcher | None = None) -> None:  # noqa: ANN001
        if detector is None:
            from models.detector import CardDetector

            detector = CardDetector()
        self.detector = detector
        if matcher is None:
            # Imported here so the result types above load without ONNX Runtime or FAISS.
            from models.matcher import Matcher

            matcher = Matcher()
        self.matcher = matcher
        self._lock = threading.Lock()
        self._loaded = False

    def load(self) -> None:
        with self._lock:
            if not self._loaded:
                self.detector.load()
                self.matcher.load()
                self._loaded = True

    def warmup(self) -> None:
        self.load()
        self.detector.warmup()
        self.matcher.warmup()

    @property
    def versions(self) -> dict[str, str]:
        return {"detector": self.detector.version, **self.matcher.versions}

    def recognize(self, data: bytes) -> PhotoResult:
        """Photo bytes -> every card found, identified; raises only ScanErrors for bad input."""
        from vision.decode import decode_image

        t0 = time.perf_counter()
        image = decode_image(data, max_pixels=settings.max_pixels)
        decode_ms = (time.perf_counter() - t0) * 1000
        result = self.recognize_image(image)
        result.timings_ms = {"decode": round(decode_ms, 2), **result.timings_ms}
        return result

    def recognize_image(self, image: np.ndarray) -> PhotoResult:
        """HxWx3 BGR photo -> PhotoResult (no decode timing)."""
        self.load()
        t0 = time.perf_counter()
        detections = self.detector.predict(image)
        t1 = time.perf_counter()
        crops = [warp_card(image, d.quad) for d in detections]
        t2 = time.perf_counter()
        # The photo rides along so small print (collector numbers) is read at its own resolution.
        matches = self.matcher.predict(crops, [(image, d.quad) for d in detections])
        timings = {"detect": round((t1 - t0) * 1000, 2), "warp": round((t2 - t1) * 1000, 2)}
        timings |= dict(self.matcher.timings_ms)
        cards = [
            RecognizedCard(
                quad=np.asarray(d.quad, float).round(1).tolist(),
                crop=crop,
                card_key=m.card_key,
                name=m.name,
                set_code=m.set_code,
                number=m.number,
                confidence=m.confidence,
                decision=str(m.decision),
                candidates=m.candidates,
                evidence=m.evidence,
                detection_score=round(float(d.score), 4),
            )
            for d, crop, m in zip(detections, crops, matches, strict=True)
        ]
        h, w = image.shape[:2]
        return PhotoResult(cards, timings, self.versions, w, h)
