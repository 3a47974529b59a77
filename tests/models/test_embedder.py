"""The committed embedder: unit-norm vectors; a degraded crop's own printing ranks first."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest

from models.embedder import CardEmbedder, default_embedder_path
from vision import degrade
from vision.augment import imperfect_crop

CATALOG = Path(__file__).resolve().parents[3] / "shared" / "data" / "catalog"
TARGETS = ("dsk-194", "sv3pt5-25", "lea-54", "snc-10")


@pytest.fixture(scope="module")
def embedder() -> CardEmbedder:
    assert default_embedder_path().exists(), "the embedder ONNX is committed under models/"
    e = CardEmbedder()
    e.load()
    return e


@pytest.fixture(scope="module")
def references() -> dict[str, np.ndarray]:
    with (CATALOG / "cards.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    # Every 24th printing plus the targets and their same-name printings (the hard negatives).
    names = {r["name"] for r in rows if r["card_key"] in TARGETS}
    keep = [r for i, r in enumerate(rows) if i % 24 == 0 or r["name"] in names]
    return {
        r["card_key"]: cv2.resize(
            cv2.imread(str(CATALOG / r["image"])), (448, 626), interpolation=cv2.INTER_AREA
        )
        for r in keep
    }


def test_vectors_are_unit_norm_and_batched(embedder):
    crops = [np.full((626, 448, 3), v, np.uint8) for v in (0, 128, 255)]
    out = embedder.predict(crops)
    assert out.shape == (3, embedder.dim) and out.dtype == np.float32
    assert np.allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-4)
    assert embedder.predict([]).shape == (0, embedder.dim)


def test_degraded_crop_ranks_its_own_printing_first(embedder, references):
    keys = list(references)
    refs = embedder.predict([references[k] for k in keys])
    rng = np.random.default_rng(3)
    queries = []
    for key in TARGETS:
        img = imperfect_crop(references[key], rng, max_scale=0.03, max_angle=2.0)
        img = degrade.jpeg(degrade.gaussian_blur(degrade.color_cast(img, rng), rng, 1.2), rng, 60)
        queries.append(img)
    sims = embedder.predict(queries) @ refs.T
    assert [keys[i] for i in sims.argmax(1)] == list(TARGETS)
