"""NumberReader: CTC decoding, and the committed model on number lines of held-out printings."""

from __future__ import annotations

import re

import cv2
import numpy as np
import pytest

from models.numreader import CHARSET, NumberReader, decode
from models.reader import MIN_NUMBER_CONF, line_image, shows_number
from scripts.train_number_reader import box_quad, catalog_lines
from vision.synth import DEFAULT_CATALOG, load_catalog, split_catalog


def logits_for(path: str, sure: float = 0.95) -> np.ndarray:
    """(1, T, C) logits whose best class at each step spells `path` ("-" is the blank)."""
    n = len(CHARSET) + 1
    out = np.full((1, len(path), n), np.log((1 - sure) / (n - 1)), np.float32)
    for t, ch in enumerate(path):
        out[0, t, 0 if ch == "-" else CHARSET.index(ch) + 1] = np.log(sure)
    return out


def test_decoding_collapses_repeats_and_keeps_blank_separated_doubles():
    read = decode(logits_for("--00-0--11--44//-2-88-1--"))[0]
    assert read.text == "0014/281"
    assert read.conf == pytest.approx(0.95, abs=1e-4)


def test_decoding_an_all_blank_line_reads_nothing():
    read = decode(logits_for("-------"))[0]
    assert read.text == "" and read.conf == 0.0


def test_a_reads_confidence_is_its_least_sure_character():
    logits = logits_for("1-2-3")
    logits[0, 2] = 0.0  # the "2" step: every class equally likely but "2" a little ahead
    logits[0, 2, CHARSET.index("2") + 1] = 0.5
    read = decode(logits)[0]
    assert read.text == "123" and read.conf < 0.2


def held_out_lines(height: int, n: int) -> list[tuple[str, np.ndarray]]:
    """(number, line image) of `n` held-out printings shrunk to a card `height` px tall, cut
    where their frame prints the number."""
    held = {c.card_key for c in split_catalog(load_catalog())[1]}
    out = []
    for row in [r for r in catalog_lines() if r["card_key"] in held][:n]:
        ref = cv2.imread(row["image"])
        h, w = ref.shape[:2]
        small = cv2.resize(ref, (round(w * height / h), height), interpolation=cv2.INTER_AREA)
        quad = box_quad(row["box"], w, h).astype(np.float32) * (height / h)
        out.append((row["number"], line_image(small, quad)))
    return out


@pytest.fixture(scope="module")
def reader() -> NumberReader:
    r = NumberReader()
    r.load()
    return r


@pytest.mark.parametrize("height", [300, 600])
def test_reads_held_out_printings_numbers_from_small_cards(reader, height):
    lines = held_out_lines(height, 40)
    reads = reader.predict([line for _, line in lines])
    sure = [
        (n, r.text) for (n, _), r in zip(lines, reads, strict=True) if r.conf >= MIN_NUMBER_CONF
    ]
    right = sum(shows_number(text, n) for n, text in sure)
    # A read naming another number: "/274" (the number missed, the total read) names none.
    wrong = [(n, t) for n, t in sure if not shows_number(t, n) and re.match(r"\d", t)]
    assert len(lines) == 40
    assert right >= 30, sure
    assert not wrong


def test_says_nothing_where_no_number_is_printed(reader):
    rng = np.random.default_rng(0)
    art = cv2.imread(str(DEFAULT_CATALOG.parent / "images" / "dsk-383.jpg"))[120:300, 40:400]
    windows = [
        cv2.resize(art[y : y + 20, x : x + 90], (144, 32))
        for y, x in zip(rng.integers(0, 160, 20), rng.integers(0, 270, 20), strict=True)
    ]
    windows.append(np.full((32, 144, 3), 128, np.uint8))
    assert all(
        r.conf < MIN_NUMBER_CONF or not any(c.isdigit() for c in r.text)
        for r in reader.predict(windows)
    )
