"""TextReader: rapidocr on the title and number regions of real catalog crops; fuzzy matching."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from models.reader import (
    NUMBER_LINE,
    TextReader,
    TextReading,
    number_line,
    numbers_in,
    plausible_line,
    shows_number,
)
from models.settings import settings

CATALOG = Path(__file__).resolve().parents[3] / "shared" / "data" / "catalog" / "images"


@pytest.fixture(scope="module")
def reader() -> TextReader:
    r = TextReader()
    r.load()
    return r


def crop(key: str):  # noqa: ANN201
    img = cv2.imread(str(CATALOG / f"{key}.jpg"))
    assert img is not None, f"catalog image {key} missing from {CATALOG}"
    return cv2.resize(img, (448, 626), interpolation=cv2.INTER_AREA)


def test_reads_mtg_title_and_collector_number(reader):
    r = reader.predict(crop("dsk-383"), "mtg")
    assert r.name_score("Overlord of the Hauntwoods") > 0.9
    assert r.has_number("383") is True and r.has_number("194") is False


def test_reads_pokemon_number(reader):
    r = reader.predict(crop("sv3pt5-25"), "pokemon")
    assert r.name_score("Pikachu") > 0.8 and r.has_number("25")


def test_numbers_are_skipped_when_not_asked(reader):
    r = reader.predict(crop("dsk-194"), "mtg", numbers=False)
    assert r.numbers == [] and r.has_number("194") is None


def test_number_groups_drop_leading_zeros():
    assert numbers_in(["M0194", "DSK·EN", "025/165", "000"]) == ["194", "25", "165"]


def test_name_score_is_fuzzy_and_needs_a_confident_read():
    r = TextReading(title="Overlordof the Haunwoods", title_conf=0.9)
    assert r.name_score("Overlord of the Hauntwoods") > 0.9
    assert r.name_score("Acrobatic Cheerleader") < 0.5
    assert TextReading(title="BASIC Pikachu", title_conf=0.9).name_score("Pikachu") > 0.8
    assert TextReading(title="Overlord", title_conf=0.2).name_score("Overlord") == 0.0
    split = TextReading(title="Funeral Room", title_conf=0.9)
    assert split.name_score("Funeral Room // Awakening Hall") > 0.9


def test_reads_the_number_line_without_detection(reader):
    y0, y1, x0, x1 = NUMBER_LINE["mtg"]
    line = np.float32([[x0 * 448, y0 * 626], [x1 * 448, y0 * 626], [x1 * 448, y1 * 626]])
    line = np.vstack([line, [[x0 * 448, y1 * 626]]])
    r = reader.predict(crop("woe-148"), "mtg", title=False, line=line)
    assert r.has_number("148") is True and r.has_number("352") is False


def test_a_2012_frame_number_is_read_at_the_end_of_its_copyright_line(monkeypatch):
    # rapidocr's reading (CARDSCAN_NUMBER_READER=0): the number reader reads 9 of 22 held-out
    # RTR lines at this size (models/numreader/MODEL_CARD.md)
    monkeypatch.setattr(settings, "number_reader", False)
    reader = TextReader()
    y0, y1, x0, x1 = number_line("mtg", "RTR")
    line = np.float32([[x0, y0], [x1, y0], [x1, y1], [x0, y1]]) * [448, 626]
    r = reader.predict(crop("rtr-141"), "mtg", title=False, line=line)
    assert r.has_number("141") is True
    assert r.has_number("46") is False
    assert number_line("mtg", "M12") is None  # no fixed line known: read by detection


def test_shows_number_knows_how_frames_print_numbers():
    assert shows_number("R 0148", "148") and not shows_number("R 0148", "48")
    assert shows_number("169/281 U", "169") and not shows_number("169/281 U", "16")
    assert shows_number("of heCos31274", "31")  # 31/274, the slash read as a 1
    assert shows_number("917408791", "91740879")  # passcode and the edition mark
    assert not shows_number("26400509", "26400609")


def test_a_line_placed_by_a_wild_homography_is_not_read(reader):
    # Seen on a synthetic closeup: a homography fitted to noise put the number line far outside
    # the card, and straightening it from the photo asked for a warp of ~10^5 px (a hung scan).
    wild = np.float32([[-861, -745], [-1122, -588], [-1352, -691], [-1026, -841]])
    photo = np.full((960, 1280, 3), 90, np.uint8)
    quad = np.float32([[400, 100], [850, 100], [850, 730], [400, 730]])
    r = reader.predict(crop("woe-148"), "mtg", title=False, line=wild, source=(photo, quad))
    assert r.numbers == [] and r.has_number("148") is None
    assert not plausible_line(wild, (626, 448))
