"""The photos the benchmarks run on: a real single-card photo and a synthetic 12 MP binder page."""

from __future__ import annotations

import cv2

from pipeline.settings import settings

SINGLE_CARD = "photos/images/dsk_nextdoorpsycho/IMG_5985.jpg"  # DSK 194, sleeved, upright


def single_card_photo() -> bytes:
    return (settings.data_dir / SINGLE_CARD).read_bytes()


def binder_page_photo(seed: int = 0, size: int = 4000) -> bytes:
    """A 3x3 binder page, 4000 px on the long side (12 MP at 4:3), all nine cards visible."""
    from vision.synth import SceneGenerator, load_catalog

    generator = SceneGenerator(load_catalog(settings.data_dir / "catalog" / "cards.csv"), size=size)
    for attempt in range(seed * 1000, seed * 1000 + 1000):
        scene = generator.generate(attempt, layout="binder")
        if len(scene.cards) == 9 and all(c.should_detect for c in scene.cards):
            ok, buf = cv2.imencode(".jpg", scene.image, [cv2.IMWRITE_JPEG_QUALITY, 90])
            return buf.tobytes()
    raise RuntimeError("no 9-card binder page among 1000 scenes")
