"""Text reader: OCR on fixed regions of a 626x448 card crop (title line, collector number).

Never the whole photo or card: recognition on a known title strip costs ~12 ms, a whole card
~350 ms (DESIGN.md). The regions depend on the game's frame, so the caller names the game of its
best candidate. rapidocr 1.x remembers `use_det/use_cls/use_rec` between calls, so every call
passes all three.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
from rapidfuzz import fuzz

from models.base import Model, newest_model
from models.numreader import NumberReader
from models.settings import settings
from vision.geometry import is_convex
from vision.warp import CARD_SIZE, card_homography, warp_card

# (y0, y1, x0, x1) as fractions of the 626x448 crop; generous because detected corners are
# a few % off. Title: one text line, recognised without detection. Number: a small block where
# several short lines sit (MTG "M 0194 / DSK • EN", Pokémon "MEW EN 025/165"),
# so text detection runs on it, scaled down so detection stays cheap. Yu-Gi-Oh!'s passcode is never
# read: it names the card, not the printing (`prints_number`).
TITLE = {
    "mtg": (0.02, 0.11, 0.03, 0.78),
    "pokemon": (0.015, 0.10, 0.04, 0.70),
    "yugioh": (0.04, 0.13, 0.05, 0.82),
}
NUMBER = {
    "mtg": (0.915, 1.0, 0.0, 0.5),
    "pokemon": (0.92, 1.0, 0.0, 0.5),
}
# The collector-number line as printed, (y0, y1, x0, x1) of the card: the matcher maps it through
# its verification homography, so it lands on the line whatever the detector's crop, and the
# line is recognised without text detection (~10x cheaper than detecting in NUMBER). Measured
# on 120 catalog references: M15 frames 75/75, Pokémon 13/13 (Yu-Gi-Oh! passcodes, no longer
# read: 22/25).
NUMBER_LINE = {
    "mtg": (0.927, 0.959, 0.035, 0.215),  # M15 frame (2015-): "R 0148" / "169/281 U"
    "pokemon": (0.944, 0.973, 0.14, 0.31),  # "025/165"
}
# MTG frames of 2003-2014 print "35/274" at the end of the copyright line. Within a set the line
# starts with the same words ("TM & (c) 2012 Wizards of the Coast 141/274"), so the number starts
# at one place: on 80 RTR references this line read 62 numbers in 37 ms each, where detection in
# NUMBER read 39 in 181 ms. The other sets of that era are read by detection.
SET_NUMBER_LINE = {("mtg", "RTR"): (0.94, 0.968, 0.415, 0.6)}
PRE_M15_SETS = {"M12", "DPA", "ROE", "DD2", "PD2", "DDJ", "7ED"}  # no fixed line known: detection
LINE_HEIGHT = 48  # px: the recogniser's input height
LINE_SHIFTS = (0.0, -0.4, 0.4)  # fractions of the line's height, tried in turn
MIN_TITLE_CONF = 0.6
MIN_LINE_CONF = 0.5  # a number line's read is kept from this recogniser confidence
MIN_NUMBER_CONF = 0.85  # the number reader's: its least sure character's probability


@dataclass
class TextReading:
    """What was read on one crop; `numbers` are digit groups with leading zeros stripped."""

    title: str = ""
    title_conf: float = 0.0
    numbers: list[str] = field(default_factory=list)
    raw: list[str] = field(default_factory=list)

    @property
    def has_title(self) -> bool:
        """A title was read with enough confidence to count as evidence."""
        return self.title_conf >= MIN_TITLE_CONF and len(self.title) >= 3

    def name_score(self, name: str) -> float:
        """0..1: how well the title read matches a catalog name (0 when nothing was read)."""
        if not self.has_title:
            return 0.0
        a, b = _norm(self.title), _norm(name)
        # Split cards ("A // B") print only one half on some frames: score the better half.
        halves = [b, *(_norm(h) for h in name.split("//"))] if "//" in name else [b]
        best = 0.0
        for h in halves:
            score = fuzz.ratio(a, h)
            if len(h) >= 5:  # the strip may also hold a mana cost or a "BASIC" stage label
                score = max(
                    score, fuzz.partial_ratio(h, a) * min(1.0, len(h) / max(1, len(a))) ** 0.25
                )
            best = max(best, score)
        return best / 100.0

    def has_number(self, number: str) -> bool | None:
        """True/False when a collector number was read; None when nothing numeric was read."""
        if not self.numbers:
            return None
        return any(shows_number(t, number) for t in self.raw or self.numbers)


def shows_number(text: str, number: str) -> bool:
    """Whether recognised text shows this collector number, as the frames print it.

    A digit group equal to it ("169/281 U"); its zero-padded form inside the digits ("R 0148",
    a passcode "00218704" with the edition mark read as a trailing digit); or "N/TOTAL" with
    the slash read as a 1 or 7 ("31274" for 31/274).
    """
    want = number.strip().lower().lstrip("0") or "0"
    if not want.isdigit():
        return want in _norm(text)
    if any(g.lstrip("0") == want for g in re.findall(r"\d+", text)):
        return True
    digits = re.sub(r"\D", "", text)
    padded = want.zfill(8 if len(want) > 4 else 4)
    if padded in digits:
        return True
    return re.search(rf"(?<!\d){want}[17]?\d{{3}}(?!\d)", text) is not None


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.casefold())


def numbers_in(texts: list[str]) -> list[str]:
    """Digit groups of 1-8 digits ("M0194" -> "194", "025/165" -> "25", "165")."""
    out: list[str] = []
    for t in texts:
        out.extend(g.lstrip("0") for g in re.findall(r"\d{1,8}", t) if g.strip("0"))
    return out


def number_line(game: str, set_code: str) -> tuple[float, float, float, float] | None:
    """Where this printing's frame prints its collector number on one line (None: no fixed line)."""
    if (game, set_code.upper()) in SET_NUMBER_LINE:
        return SET_NUMBER_LINE[game, set_code.upper()]
    if game == "mtg" and set_code.upper() in PRE_M15_SETS:
        return None
    return NUMBER_LINE.get(game)


def prints_number(game: str, set_code: str, number: str) -> bool:
    """Whether the frame prints a number that tells this printing from others of the card.

    Alpha prints none. A Yu-Gi-Oh! passcode names the card, not the printing: the catalog keys
    Yu-Gi-Oh! cards by it, so every copy with this art is this entry, and the picture that
    proved the card has proved everything the passcode could.
    """
    if game == "yugioh" or (game == "mtg" and set_code.upper() == "LEA"):
        return False
    return number.strip().isdigit()


def region(crop: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    h, w = crop.shape[:2]
    y0, y1, x0, x1 = box
    return crop[int(y0 * h) : int(y1 * h), int(x0 * w) : int(x1 * w)]


def source_region(
    photo: np.ndarray, quad: np.ndarray, box: tuple[float, float, float, float]
) -> np.ndarray | None:
    """A region of the card warped from the photo at 2-3x crop scale (photo resolution allowing)."""
    w, h = CARD_SIZE
    to_photo = np.linalg.inv(card_homography(quad))
    y0, y1, x0, x1 = box
    corners = np.array(
        [[x0 * w, y0 * h], [x1 * w, y0 * h], [x1 * w, y1 * h], [x0 * w, y1 * h]], np.float32
    )
    region_quad = cv2.perspectiveTransform(corners[None], to_photo)[0]
    native = float(np.linalg.norm(np.asarray(quad[3]) - np.asarray(quad[0]))) / h
    scale = min(3.0, max(2.0, native))
    size = (round((x1 - x0) * w * scale), round((y1 - y0) * h * scale))
    try:
        return warp_card(photo, region_quad, size)
    except ValueError:
        return None


def plausible_line(line: np.ndarray, crop_hw: tuple[int, int]) -> bool:
    """A printed line lies inside the card, runs along it and is a few pixels to a few % high;
    anything else comes from a homography fitted to noise (and could ask for a giant warp)."""
    h, w = crop_hw
    if not np.isfinite(line).all() or not is_convex(line):
        return False
    inside = (line[:, 0] > -0.1 * w).all() and (line[:, 0] < 1.1 * w).all()
    inside = inside and (line[:, 1] > -0.1 * h).all() and (line[:, 1] < 1.1 * h).all()
    height = float(np.linalg.norm(line[3] - line[0]))
    width = float(np.linalg.norm(line[1] - line[0]))
    return bool(inside) and 3.0 <= height <= 0.15 * h and width <= 25 * height


def line_image(crop: np.ndarray, line: np.ndarray, source: tuple | None = None) -> np.ndarray:
    """A printed line (corners in crop pixels, `plausible_line`) straightened to LINE_HEIGHT px,
    from the photo when there is one (its own resolution), else from the crop."""
    line = np.asarray(line, np.float32).reshape(4, 2)
    height = float(np.linalg.norm(line[3] - line[0]))
    width = float(np.linalg.norm(line[1] - line[0]))
    size = (max(8, round(LINE_HEIGHT * width / max(height, 1e-3))), LINE_HEIGHT)
    if source is not None:
        photo, quad = source
        on_photo = cv2.perspectiveTransform(line[None], np.linalg.inv(card_homography(quad)))[0]
        return warp_card(photo, on_photo, size)
    return warp_card(crop, line, size)


class TextReader(Model):
    """rapidocr (PP-OCRv4 det/rec from its wheel) over the title and number regions of a crop.

    The matcher's threads share one reader. Recognition keeps no state between calls; rapidocr's
    text detector sets its preprocessing on itself per call, so detection runs under a lock.
    """

    name = "reader"

    def __init__(self) -> None:
        super().__init__(None)
        self._engine: Any = None  # RapidOCR once loaded
        self._detect_lock = threading.Lock()
        # The newest models/numreader/*.onnx reads number lines, when one is committed.
        self._numbers: NumberReader | None = None

    def _load(self) -> None:
        from rapidocr_onnxruntime import RapidOCR

        # "max" never upscales a small region before detection (the default "min" blows a
        # 230x60 strip up to 736 px on its short side and takes seconds).
        # One thread per session: the worker runs one model at a time and oversubscribed
        # cores make ONNX Runtime's spinning threads many times slower.
        threads = {f"{p}_intra_op_num_threads": 1 for p in ("det", "cls", "rec")}
        self._engine = RapidOCR(
            det_limit_type="max", det_limit_side_len=480, print_verbose=False, **threads
        )
        found = newest_model(settings.model_dir / NumberReader.folder)
        if settings.number_reader and found is not None:
            self._numbers = NumberReader(found)
            self._numbers.load()

    @property
    def version(self) -> str:
        """rapidocr, plus the number reader's file stem once one is loaded."""
        return "+".join(["rapidocr", *([self._numbers.version] if self._numbers else [])])

    def warmup(self) -> None:
        self.load()
        self.predict(np.full((626, 448, 3), 200, np.uint8), "mtg")
        if self._numbers is not None:
            self._numbers.warmup()

    def _read_line(self, crop: np.ndarray, line: np.ndarray, source: tuple | None) -> list[str]:
        """The number line, recognised where it was placed, then a little above and below.

        A homography fitted on the art can be a few pixels off at the card's foot, which puts
        the window half over the line under it; every frame prints 3+ digits in a row there
        (0148, 169/281, 025/165, a passcode), so a read without them is retried shifted.
        With a number reader (`models.numreader`), the three windows are read in one batch
        and the surest read with 3+ digits is kept.
        """
        down = line[3] - line[0]
        texts: list[str] = []
        if not plausible_line(line, crop.shape[:2]):
            return texts
        if self._numbers is not None:
            windows = [line_image(crop, line + shift * down, source) for shift in LINE_SHIFTS]
            reads = [
                r
                for r in self._numbers.predict(windows)
                if r.conf >= MIN_NUMBER_CONF and re.search(r"\d{3}", r.text)
            ]
            return [max(reads, key=lambda r: r.conf).text] if reads else texts
        for shift in LINE_SHIFTS:
            res, _ = self._engine(
                line_image(crop, line + shift * down, source),
                use_det=False,
                use_cls=False,
                use_rec=True,
            )
            if res and float(res[0][1]) >= MIN_LINE_CONF:
                texts = [str(res[0][0])]
                if re.search(r"\d{3}", texts[0]):
                    break
        return texts

    def _predict(
        self,
        crop: np.ndarray,
        game: str,
        numbers: bool = True,
        source: tuple[np.ndarray, np.ndarray] | None = None,
        title: bool = True,
        line: np.ndarray | None = None,
    ) -> TextReading:
        """Read the title (recognition only) and, if asked, the collector number of one crop.

        `line`: the (4, 2) corners (TL, TR, BR, BL, crop pixels) of the number's printed line,
        recognised directly; without it, text detection runs on the NUMBER block. `source` =
        (photo, quad): the number is then warped from the photo itself, at up to 3x the crop's
        scale, because the crop has already thrown away the small print.
        """
        reading = TextReading()
        if title:
            strip = region(crop, TITLE.get(game, TITLE["mtg"]))
            res, _ = self._engine(strip, use_det=False, use_cls=False, use_rec=True)
            if res:
                reading.title, reading.title_conf = str(res[0][0]), float(res[0][1])
        if numbers and line is not None:
            texts = self._read_line(crop, np.asarray(line, np.float32).reshape(4, 2), source)
            reading.raw = texts
            reading.numbers = numbers_in(texts)
        elif numbers:
            box = NUMBER.get(game, NUMBER["mtg"])
            block = source_region(*source, box) if source is not None else None
            if block is None:
                # Small print (~8 px tall in the crop): twice the size lets the recogniser see it.
                block = cv2.resize(
                    region(crop, box), None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC
                )
            with self._detect_lock:
                res, _ = self._engine(block, use_det=True, use_cls=False, use_rec=True)
            texts = [str(r[1]) for r in res or [] if float(r[2]) >= 0.5]
            reading.raw = texts
            reading.numbers = numbers_in(texts)
        return reading
