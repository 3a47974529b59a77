"""A deterministic stand-in for `pipeline.recognize.Recognizer` (CARDSCAN_RECOGNIZER=fake).

Honest where it matters to the service: it decodes the photo for real, so corrupt, truncated
and oversized files fail exactly as they would; then it reports one card covering the middle
of the photo, chosen from the photo's SHA-256."""

from __future__ import annotations

import hashlib
import time

import numpy as np

from pipeline.recognize import PhotoResult, RecognizedCard
from pipeline.settings import settings

# (card_key, name, set_code, number): real Duskmourn printings from the catalog.
CARDS = [
    ("dsk-194", "Overlord of the Hauntwoods", "DSK", "194"),
    ("dsk-349", "Hauntwoods Shrieker", "DSK", "349"),
    ("dsk-1", "Acrobatic Cheerleader", "DSK", "1"),
]
CROP_H, CROP_W = 626, 448


class FakeRecognizer:
    """Same public surface as Recognizer: load(), warmup(), recognize(data)."""

    versions = {
        "detector": "fake-detector-1",
        "embedder": "fake-embedder-1",
        "index": "fake-index-1",
    }

    def __init__(self, delay_s: float | None = None) -> None:
        self.delay_s = settings.fake_recognizer_delay_s if delay_s is None else delay_s
        self.loaded = False

    def load(self) -> None:
        self.loaded = True

    def warmup(self) -> None:
        self.load()

    def recognize(self, data: bytes) -> PhotoResult:
        from vision.decode import decode_image

        start = time.perf_counter()
        image = decode_image(data, max_pixels=settings.max_pixels)
        decoded = time.perf_counter()
        if self.delay_s:
            time.sleep(self.delay_s)  # stands for model time (the SIGKILL test needs a window)
        h, w = image.shape[:2]
        x0, y0, x1, y1 = w * 0.1, h * 0.1, w * 0.9, h * 0.9
        region = image[int(y0) : max(int(y1), int(y0) + 1), int(x0) : max(int(x1), int(x0) + 1)]
        # Nearest-neighbour resize by index arrays: deterministic and needs no OpenCV call.
        rows = np.linspace(0, region.shape[0] - 1, CROP_H).astype(int)
        cols = np.linspace(0, region.shape[1] - 1, CROP_W).astype(int)
        crop = np.ascontiguousarray(region[rows][:, cols])
        pick = int.from_bytes(hashlib.sha256(data).digest()[:4], "big") % len(CARDS)
        key, name, set_code, number = CARDS[pick]
        runner_up = CARDS[(pick + 1) % len(CARDS)]
        card = RecognizedCard(
            quad=[[x0, y0], [x1, y0], [x1, y1], [x0, y1]],
            crop=crop,
            card_key=key,
            name=name,
            set_code=set_code,
            number=number,
            confidence=0.97,
            decision="auto_accepted",
            candidates=[
                {
                    "card_key": key,
                    "score": 0.97,
                    "name": name,
                    "set_code": set_code,
                    "number": number,
                },
                {
                    "card_key": runner_up[0],
                    "score": 0.41,
                    "name": runner_up[1],
                    "set_code": runner_up[2],
                    "number": runner_up[3],
                },
            ],
            evidence={"fake": True},
        )
        done = time.perf_counter()
        return PhotoResult(
            cards=[card],
            timings_ms={"decode": (decoded - start) * 1e3, "recognize": (done - decoded) * 1e3},
            versions=dict(self.versions),
            width=w,
            height=h,
        )
