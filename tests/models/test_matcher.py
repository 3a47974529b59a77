"""Matcher decisions with a deterministic FakeEmbedder and FakeReader (not the models)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from models.calibration import FEATURES, Calibration
from models.index import CatalogEntry, CatalogIndex
from models.matcher import Decision, Matcher
from models.reader import TextReading

CROP = (626, 448)


def texture(seed: int) -> np.ndarray:
    """A 626x448 BGR image of random shapes: plenty of corners for ORB, unique per seed."""
    rng = np.random.default_rng(seed)
    img = np.full((*CROP, 3), rng.integers(0, 255, 3), np.uint8)
    for _ in range(80):
        color = tuple(int(c) for c in rng.integers(0, 255, 3))
        x, y = int(rng.integers(0, CROP[1])), int(rng.integers(0, CROP[0]))
        if rng.random() < 0.5:
            cv2.rectangle(
                img,
                (x, y),
                (x + int(rng.integers(10, 80)), y + int(rng.integers(10, 80))),
                color,
                -1,
            )
        else:
            cv2.circle(img, (x, y), int(rng.integers(5, 40)), color, -1)
    return img


class FakeEmbedder:
    """8x8 grey thumbnail, mean-removed, unit norm: same image -> same vector. Counts batches."""

    version = "fake-embedder"
    path = None

    def __init__(self) -> None:
        self.calls = 0

    def load(self) -> None: ...

    def warmup(self) -> None: ...

    def predict(self, crops: list[np.ndarray]) -> np.ndarray:
        self.calls += 1
        out = []
        for c in crops:
            v = cv2.resize(
                cv2.cvtColor(c, cv2.COLOR_BGR2GRAY), (8, 8), interpolation=cv2.INTER_AREA
            )
            v = v.astype(np.float32).ravel() - v.mean()
            out.append(v / max(np.linalg.norm(v), 1e-6))
        return np.stack(out)


class FakeReader:
    """Returns whatever reading the test sets."""

    def __init__(self) -> None:
        self.reading = TextReading()
        self.calls: list[dict] = []
        self.lines: list = []

    def load(self) -> None: ...

    def warmup(self) -> None: ...

    def predict(self, crop, game, numbers=True, source=None, title=True, line=None):  # noqa: ANN001, ANN201
        self.calls.append({"numbers": numbers, "title": title})
        self.lines.append(line)
        r = self.reading
        return r if title else TextReading(numbers=r.numbers if numbers else [])


# Weights that trust geometry and text the way a fitted calibration does (fitted=True enables
# auto-accept); the real parameters come from `cardscan index calibrate`.
CAL = Calibration([4.0, 10.0, 4.0, 4.0, 3.0, 3.0, 3.0, 3.0, -1.5], -10.0, fitted=True)


@pytest.fixture
def catalog():
    images = {f"tst-{i}": texture(i) for i in range(12)}
    # tst-11 is a second printing of tst-10: same art, another collector number.
    images["tst-11"] = images["tst-10"].copy()
    entries = [
        CatalogEntry(
            k,
            "Twin Card" if k in ("tst-10", "tst-11") else f"Card {k}",
            "LEA" if k == "tst-7" else "TST",  # Alpha prints no collector number
            "" if k == "tst-8" else k.split("-")[1],  # a promo without a printed number
            "mtg",
            "",
            k,
        )
        for k in images
    ]
    images["ygo-46986414"] = texture(12)  # Yu-Gi-Oh! cards are keyed by their passcode
    entries.append(CatalogEntry("ygo-46986414", "Dark Card", "", "46986414", "yugioh", "", ""))
    emb = FakeEmbedder()
    index = CatalogIndex.from_arrays(
        emb.predict(list(images.values())), entries, {"embedder": emb.version}
    )
    reader = FakeReader()
    matcher = Matcher(emb, index, reader, CAL, reference_loader=lambda e: images[e.card_key])
    return matcher, images, reader


def photographed(img: np.ndarray, seed: int = 0) -> np.ndarray:
    """A slightly mis-cropped, blurred, colour-shifted view of the image."""
    rng = np.random.default_rng(seed)
    h, w = img.shape[:2]
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    dst = (src + rng.uniform(-0.015, 0.015, (4, 2)) * [w, h]).astype(np.float32)
    out = cv2.warpPerspective(
        img, cv2.getPerspectiveTransform(src, dst), (w, h), borderMode=cv2.BORDER_REPLICATE
    )
    out = cv2.GaussianBlur(out, (0, 0), 0.8).astype(np.float32) * 0.9 + 12
    return np.clip(out, 0, 255).astype(np.uint8)


def test_conclusive_picture_skips_the_title_but_not_the_number(catalog):
    matcher, images, reader = catalog
    reader.reading = TextReading(title="Completely Different", title_conf=0.95, numbers=["3"])
    [m] = matcher.predict([images["tst-3"]])
    assert reader.calls == [{"numbers": True, "title": False}] and m.evidence["title_read"] == ""
    assert m.card_key == "tst-3" and m.decision == Decision.AUTO_ACCEPTED


def test_conclusive_picture_of_a_frame_without_numbers_needs_no_ocr(catalog):
    matcher, images, reader = catalog
    [m] = matcher.predict([images["tst-8"]])
    assert reader.calls == []
    assert m.card_key == "tst-8" and m.decision == Decision.AUTO_ACCEPTED


def test_alpha_is_never_auto_accepted_a_beta_card_looks_the_same(catalog):
    matcher, images, reader = catalog
    [m] = matcher.predict([images["tst-7"]])
    assert reader.calls == [] and m.card_key == "tst-7"
    assert m.decision == Decision.NEEDS_REVIEW and m.evidence["gates"] == ["printing_unprovable"]


def test_a_passcode_names_the_card_not_the_printing_so_the_picture_suffices(catalog):
    matcher, images, reader = catalog
    [m] = matcher.predict([images["ygo-46986414"]])
    assert reader.calls == [] and m.evidence["gates"] == []
    assert m.card_key == "ygo-46986414" and m.decision == Decision.AUTO_ACCEPTED


def test_doubtful_picture_reads_the_title_too(catalog, monkeypatch):
    monkeypatch.setattr("models.matcher.SURE_INLIERS", 10_000)  # geometry never conclusive here
    matcher, images, reader = catalog
    reader.reading = TextReading(title="Card tst-3", title_conf=0.95, numbers=["3"])
    [m] = matcher.predict([photographed(images["tst-3"])])
    assert reader.calls == [{"numbers": True, "title": True}]
    assert m.card_key == "tst-3" and m.decision == Decision.AUTO_ACCEPTED


def test_unread_number_keeps_a_printing_out_of_auto_accept(catalog):
    # Another printing of this card, missing from the catalog, would look just the same.
    matcher, images, reader = catalog
    reader.reading = TextReading(title="Card tst-3", title_conf=0.95)
    [m] = matcher.predict([photographed(images["tst-3"])])
    assert m.card_key == "tst-3" and m.decision == Decision.NEEDS_REVIEW
    assert "number_unread" in m.evidence["gates"]
    reader.reading = TextReading(title="Card tst-3", title_conf=0.95, numbers=["464"])
    [m] = matcher.predict([photographed(images["tst-3"])])
    assert "number_mismatch" in m.evidence["gates"]


def test_same_art_with_another_text_box_is_not_auto_accepted(catalog):
    # A reprint outside the catalog: the art matches, the rest of the card does not.
    matcher, images, reader = catalog
    reprint = images["tst-4"].copy()
    reprint[313:] = texture(4000)[313:]
    reader.reading = TextReading(title="Card tst-4", title_conf=0.95)
    [m] = matcher.predict([photographed(reprint)])
    assert m.candidates[0]["card_key"] == "tst-4" and m.decision != Decision.AUTO_ACCEPTED
    assert "looks_different" in m.evidence["gates"]


def test_known_card_is_auto_accepted_with_its_metadata(catalog):
    matcher, images, reader = catalog
    reader.reading = TextReading(title="Card tst-3", title_conf=0.95, numbers=["3"])
    [m] = matcher.predict([photographed(images["tst-3"])])
    assert m.card_key == "tst-3" and m.decision == Decision.AUTO_ACCEPTED
    assert m.name == "Card tst-3" and m.number == "3" and m.candidates[0]["card_key"] == "tst-3"
    assert m.evidence["inliers"]["tst-3"] >= 15 and not m.evidence["gates"]


def test_all_crops_of_a_photo_go_through_one_embedder_batch(catalog):
    matcher, images, _ = catalog
    matcher.embedder.calls = 0
    matches = matcher.predict(
        [photographed(images[k], i) for i, k in enumerate(["tst-1", "tst-2", "tst-4"])]
    )
    assert matcher.embedder.calls == 1
    assert [m.candidates[0]["card_key"] for m in matches] == ["tst-1", "tst-2", "tst-4"]
    assert set(matcher.timings_ms) == {"embed", "search", "text", "verify", "match"}


@pytest.mark.parametrize("threads", [2, 4])
def test_crops_matched_side_by_side_decide_as_one_at_a_time(catalog, monkeypatch, threads):
    matcher, images, reader = catalog
    keys = ["tst-1", "tst-2", "tst-10", "tst-7", "tst-4", "tst-11"]
    crops = [photographed(images[k], i) for i, k in enumerate(keys)]
    crops.append(photographed(texture(99)))  # not in the catalog

    def matched(n: int) -> tuple[Matcher, list]:
        monkeypatch.setattr("models.matcher.settings.match_threads", n)
        m = Matcher(matcher.embedder, matcher.index, reader, CAL, matcher.reference_loader)
        return m, m.predict(crops)

    one, serial = matched(1)
    many, side_by_side = matched(threads)
    assert one._pool is None and many._pool is not None
    assert [(m.card_key, m.decision, m.confidence) for m in side_by_side] == [
        (m.card_key, m.decision, m.confidence) for m in serial
    ]
    assert [m.evidence["inliers"] for m in side_by_side] == [m.evidence["inliers"] for m in serial]
    assert len({m.card_key for m in serial}) >= 4  # the crops are told apart, not all one
    assert many.timings_ms["match"] > 0


def test_card_not_in_catalog_is_never_auto_accepted(catalog):
    matcher, _, reader = catalog
    reader.reading = TextReading(title="Liliana of the Veil", title_conf=0.95)
    matches = matcher.predict([photographed(texture(1000 + s), s) for s in range(6)])
    assert all(m.decision != Decision.AUTO_ACCEPTED for m in matches)


def test_sibling_printings_need_the_printed_number(catalog):
    matcher, images, reader = catalog
    crop = photographed(images["tst-11"])
    reader.reading = TextReading(title="Twin Card", title_conf=0.95)
    [m] = matcher.predict([crop])
    assert m.decision != Decision.AUTO_ACCEPTED
    assert "sibling_printing" in m.evidence["gates"] or m.confidence < 0.97
    assert reader.calls[-1]["numbers"]  # the picture cannot tell them apart: read the number
    reader.reading = TextReading(title="Twin Card", title_conf=0.95, numbers=["11"])
    [m] = matcher.predict([crop])
    assert m.card_key == "tst-11" and m.decision == Decision.AUTO_ACCEPTED
    reader.reading = TextReading(title="Twin Card", title_conf=0.95, numbers=["464"])
    [m] = matcher.predict([crop])
    assert m.decision != Decision.AUTO_ACCEPTED and "number_mismatch" in m.evidence["gates"]


def test_a_title_naming_another_card_blocks_auto_accept(catalog, monkeypatch):
    monkeypatch.setattr("models.matcher.SURE_INLIERS", 10_000)  # geometry never skips the OCR here
    matcher, images, reader = catalog
    reader.reading = TextReading(title="Completely Different", title_conf=0.95)
    [m] = matcher.predict([photographed(images["tst-5"])])
    assert m.decision != Decision.AUTO_ACCEPTED and "title_mismatch" in m.evidence["gates"]


def test_uncalibrated_matcher_never_auto_accepts(catalog):
    matcher, images, reader = catalog
    matcher.calibration = Calibration.default()
    reader.reading = TextReading(title="Card tst-3", title_conf=0.95)
    [m] = matcher.predict([photographed(images["tst-3"])])
    assert m.decision != Decision.AUTO_ACCEPTED and "uncalibrated" in m.evidence["gates"]


def test_calibration_fit_separates_and_round_trips(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, len(FEATURES)))
    y = (x[:, 0] + 0.5 * x[:, 2] + rng.normal(0, 0.3, 400) > 0).astype(float)
    cal = Calibration.fit(x, y)
    assert cal.weights[0] > 1.0 and cal.fitted
    p = cal.prob(x)
    assert ((p > 0.5) == (y > 0.5)).mean() > 0.9
    cal.write(tmp_path / "c.json")
    again = Calibration.read(tmp_path / "c.json")
    assert np.allclose(again.prob(x), p)


def test_another_frame_around_the_same_art_is_not_auto_accepted(catalog):
    # A reprint outside the catalog: same art and name, white border instead of a dark one.
    matcher, images, reader = catalog
    ref = images["tst-3"]
    ref[:30], ref[-30:], ref[:, :22], ref[:, -22:] = 20, 20, 20, 20
    matcher._ref_cache.clear()
    reprint = ref.copy()
    reprint[:30], reprint[-30:], reprint[:, :22], reprint[:, -22:] = 245, 245, 245, 245
    reader.reading = TextReading(title="Card tst-3", title_conf=0.95, numbers=["3"])
    [m] = matcher.predict([photographed(reprint)])
    assert m.card_key == "tst-3" and "frame_mismatch" in m.evidence["gates"]
    [m] = matcher.predict([photographed(ref)])
    assert m.decision == Decision.AUTO_ACCEPTED


def test_the_card_behind_in_a_deck_spread_is_not_auto_accepted_as_the_one_in_front(catalog):
    """The crop of a card showing only its title strip holds, below that strip, most of the card
    laid over it: that card's reference fits with many inliers, a whole step off the frame."""
    matcher, images, reader = catalog
    step = 150  # of 626 px: the spread's offset from one card to the next
    behind = images["tst-5"].copy()
    behind[step:] = images["tst-3"][: 626 - step]
    reader.reading = TextReading(title="Card tst-3", title_conf=0.95, numbers=["3"])
    [m] = matcher.predict([photographed(behind)])
    assert m.evidence["frame_shift"]["tst-3"] > 0.2
    assert m.decision != Decision.AUTO_ACCEPTED and "misaligned" in m.evidence["gates"]
    [m] = matcher.predict([photographed(images["tst-3"])])
    assert m.evidence["frame_shift"]["tst-3"] < 0.03 and m.decision == Decision.AUTO_ACCEPTED
