"""Matcher: card crops -> the exact printing with a calibrated confidence, or an honest "not sure".

Embedding shortlist (FAISS top-k) -> local-feature verification (ORB + RANSAC homography inliers
against the candidates' reference images) -> aligned appearance (the crop warped onto each verified
reference by that homography, compared pixel by pixel, so a frame, border or text box that differs
shows even where the art is shared) -> text evidence: the collector number wherever the frame
prints one, found through the homography and read as one line; the title only when the picture
leaves a doubt -> one logistic model over those features per candidate (fitted on synthetic crops
kept apart) -> decision. Hard gates keep failures out of auto-accept whatever the score:
printings that share a name (reprints, borderless / showcase / extended versions) without printed
or clear visual evidence, crops whose title reads as some other name, and crops that do not look
like their reference once aligned (the same art in another frame: a reprint outside the catalog).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum

import cv2
import numpy as np

from models.calibration import FEATURES, Calibration, calibration_path, features
from models.embedder import CardEmbedder
from models.index import CatalogEntry, CatalogIndex, Hit
from models.reader import TextReader, TextReading, number_line, prints_number
from models.settings import settings
from models.verify import (
    CROP_HW,
    ORB_FEATURES,
    VERIFY_HW,
    aligned_view,
    appearance,
    border_contrast,
    frame_shift,
    homography_inliers,
    lab_thumbnail,
    orb_features,
    read_reference,
    reference_region,
)
from vision.errors import ModelNotReadyError

VERIFY_TOP = 3  # candidates verified by homography; ~2 ms each
VERIFY_DEEP = 10  # ... and this far down the shortlist when none of them fits
MAX_SIBLINGS = 4  # same-name printings also verified when the best candidate has them
MIN_INLIERS = 15  # below this the homography is noise, never an auto-accept
MAX_BORDER_DELTA = 85  # grey levels; see border_contrast
SURE_INLIERS = 60  # a homography this well supported needs no title OCR
# Aligned appearance (models.verify.appearance): on synthetic scenes a right match has median
# 0.84 (5th percentile 0.48), a wrong card ~0.3; the right printing beat every same-name sibling
# on the same crop by 0.03-0.43 (22 of 22).
MIN_APPEARANCE = 0.55  # below: the crop does not look like this printing once aligned
SURE_APPEARANCE = 0.7  # with SURE_INLIERS: the picture alone is conclusive (no title OCR)
SIBLING_APPEAR_GAP = 0.1  # the frame tells a same-name printing apart without its number
# Of the card's height (models.verify.frame_shift): a fit that lands the reference further off
# the crop's frame proves the crop shows much of that card, not that it is that card (the card
# behind it in a fan or a deck spread; a loose quad). On 250 synthetic scenes 94.7 % of the right
# answers' fits land within it, and 2 of the 6 auto-accepts beyond it were a card hidden under
# the one named (docs/IDENTIFICATION.md).
MAX_FRAME_SHIFT = 0.07
# Printings no photo can prove: Beta reprinted Alpha with the same black border, art and frame,
# and neither prints a number, so an Alpha match may be a Beta card (worth a fraction of it).
UNPROVABLE_SETS = {"LEA"}
MIN_NAME_SCORE = 0.6  # a title read that matches the name worse than this names another card


class Decision(StrEnum):
    AUTO_ACCEPTED = "auto_accepted"
    NEEDS_REVIEW = "needs_review"
    NO_MATCH = "no_match"


@dataclass
class Match:
    card_key: str | None
    confidence: float
    decision: Decision
    candidates: list[dict] = field(default_factory=list)
    evidence: dict = field(default_factory=dict)
    name: str | None = None
    set_code: str | None = None
    number: str | None = None


class Matcher:
    """Embedder + index + reader fused into one decision per crop; one instance per process."""

    def __init__(
        self,
        embedder: CardEmbedder | None = None,
        index: CatalogIndex | None = None,
        reader: TextReader | None = None,
        calibration: Calibration | None = None,
        reference_loader: Callable[[CatalogEntry], np.ndarray] = read_reference,
    ) -> None:
        self._default_embedder = embedder is None
        self.embedder = embedder or CardEmbedder()
        self.index = index or CatalogIndex()
        self.reader = reader or TextReader()
        self.calibration = calibration
        self.reference_loader = reference_loader
        self._local = threading.local()  # one ORB per thread: OpenCV does not promise more
        self._pool: ThreadPoolExecutor | None = None
        self._ref_cache: dict[str, tuple] = {}
        self._looks: dict[str, tuple[float, np.ndarray]] = {}
        self.timings_ms: dict[str, float] = {}

    def load(self) -> None:
        self.index.load()
        built_with = self.index.meta.get("embedder")
        if self._default_embedder and built_with and built_with != self.embedder.version:
            # Use the embedder the index was built with, when it is committed.
            path = settings.model_dir / "embedder" / f"{built_with}.onnx"
            if path.exists():
                self.embedder = CardEmbedder(path)
        if built_with and built_with != self.embedder.version:
            raise ModelNotReadyError(
                f"index {self.index.version} was built with {built_with}, the embedder is "
                f"{self.embedder.version}: run `cardscan index build`"
            )
        self.embedder.load()
        self.reader.load()
        threads = settings.match_threads or min(4, os.cpu_count() or 1)
        if threads > 1 and self._pool is None:  # made in the process that predicts (after fork)
            self._pool = ThreadPoolExecutor(threads, thread_name_prefix="match")
        if self.calibration is None:
            path = calibration_path(self.embedder)
            self.calibration = Calibration.read(path) if path.exists() else Calibration.default()

    def warmup(self) -> None:
        self.load()
        self.embedder.warmup()
        self.reader.warmup()
        self.predict([np.full((*CROP_HW, 3), 128, np.uint8)])

    @property
    def versions(self) -> dict[str, str]:
        return {
            "embedder": self.embedder.version,
            "index": self.index.version,
            "reader": self.reader.version,
        }

    @property
    def _orb(self) -> cv2.ORB:  # type: ignore[name-defined]
        orb = getattr(self._local, "orb", None)
        if orb is None:
            orb = self._local.orb = cv2.ORB_create(nfeatures=ORB_FEATURES)  # type: ignore[attr-defined]
        return orb

    def _reference(self, entry: CatalogEntry) -> tuple:
        feats = self._ref_cache.get(entry.card_key) or self.index.reference_features(entry.card_key)
        if feats is None:
            img = self.reference_loader(entry)
            if img.shape[:2] != CROP_HW:
                img = cv2.resize(img, CROP_HW[::-1], interpolation=cv2.INTER_AREA)
            feats = orb_features(img, self._orb)
            if len(self._ref_cache) > 20_000:
                self._ref_cache.clear()
            self._ref_cache[entry.card_key] = feats
        return feats

    def _look(self, entry: CatalogEntry) -> tuple[float, np.ndarray]:
        """(border contrast, Lab thumbnail) of a reference image, read once."""
        look = self._looks.get(entry.card_key)
        if look is None:
            img = self.reference_loader(entry)
            if len(self._looks) > 20_000:
                self._looks.clear()
            look = self._looks[entry.card_key] = (border_contrast(img), lab_thumbnail(img))
        return look

    def predict(
        self, crops: list[np.ndarray], sources: Sequence[tuple | None] | None = None
    ) -> list[Match]:
        """All crops of a photo in one embedder batch, then each crop verified and read, side by
        side on the pool's threads. `timings_ms`: embed and search of the batch, text and verify
        summed over the crops, and match, the wall time of that per-crop phase."""
        self.load()
        t = {"embed": 0.0, "search": 0.0, "text": 0.0, "verify": 0.0, "match": 0.0}
        if not crops:
            self.timings_ms = t
            return []
        t0 = time.perf_counter()
        vectors = self.embedder.predict(crops)
        t1 = time.perf_counter()
        shortlists = self.index.search(vectors, settings.top_k)
        t2 = time.perf_counter()
        t["embed"], t["search"] = (t1 - t0) * 1000, (t2 - t1) * 1000
        sources = sources or [None] * len(crops)
        per_crop = [{"text": 0.0, "verify": 0.0} for _ in crops]

        def match(i: int) -> Match:
            return self._match(crops[i], shortlists[i], per_crop[i], sources[i])

        if self._pool is not None and len(crops) > 1:
            matches = list(self._pool.map(match, range(len(crops))))
        else:
            matches = [match(i) for i in range(len(crops))]
        t["match"] = (time.perf_counter() - t2) * 1000
        for stage in ("text", "verify"):
            t[stage] = sum(c[stage] for c in per_crop)
        self.timings_ms = {k: round(v, 2) for k, v in t.items()}
        return matches

    def evidence_table(
        self,
        crop: np.ndarray,
        hits: list[Hit],
        t: dict | None = None,
        source: tuple | None = None,
    ) -> tuple[list[CatalogEntry], np.ndarray, dict]:
        """Candidates (shortlist + same-name printings of the best) and their (C, F) features."""
        t = t if t is not None else {"text": 0.0, "verify": 0.0}
        cands = [h.entry for h in hits]
        cos = {h.entry.card_key: h.score for h in hits}
        top = cands[0]
        # Same-name printings, the ones the embedding finds closest first (an identical-art
        # printing is always in the shortlist; those outside it look different anyway).
        siblings = sorted(
            (e for e in self.index.same_name(top.name) if e.card_key != top.card_key),
            key=lambda e: -cos.get(e.card_key, -1.0),
        )[:MAX_SIBLINGS]
        for e in siblings:
            if e.card_key not in cos:
                cands.append(e)
                cos[e.card_key] = 0.0  # outside the shortlist: no embedding support
        t0 = time.perf_counter()
        small = cv2.resize(crop, VERIFY_HW[::-1], interpolation=cv2.INTER_AREA)
        q = orb_features(small, self._orb)
        verify = list(cands[:VERIFY_TOP])
        verify += [e for e in siblings if e not in verify]
        inliers = dict.fromkeys((e.card_key for e in cands), 0)
        appear = dict.fromkeys((e.card_key for e in cands), 0.0)
        views: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        homs: dict[str, np.ndarray] = {}
        shift: dict[str, float] = {}  # of each fit: how far it lands the reference off the frame

        def check(entries: list[CatalogEntry]) -> None:
            for e in entries:
                n, hom = homography_inliers(q, self._reference(e))
                inliers[e.card_key] = n
                if hom is not None and n >= MIN_INLIERS:
                    shift[e.card_key] = round(frame_shift(hom), 3)
                    homs[e.card_key] = hom
                    views[e.card_key] = aligned_view(small, hom)
                    appear[e.card_key] = appearance(*views[e.card_key], self._look(e)[1])

        check(verify)
        if not homs:  # the embedding missed: the card is often a little further down the list
            deeper = [e for e in cands[VERIFY_TOP:VERIFY_DEEP] if e not in verify]
            check(deeper)
            verify += deeper
        t1 = time.perf_counter()
        name = top.name.casefold()
        others = max((inliers[e.card_key] for e in cands if e.name.casefold() != name), default=0)
        # The picture settles the card (no title OCR) when the homography is strong and the
        # aligned crop looks like this printing and like no card of another name.
        sure = (
            inliers[top.card_key] >= SURE_INLIERS
            and others * 4 <= inliers[top.card_key]  # wrong references stay under ~10-20
            and appear[top.card_key] >= SURE_APPEARANCE
        )
        # The printed number is the printing's proof wherever the frame prints one: another
        # printing of the card, missing from the catalog, can look just the same. It is read
        # where the best-supported reference prints it; without a homography nothing can be
        # auto-accepted, so the number is not worth reading.
        geo = max(verify, key=lambda e: inliers[e.card_key])
        numbers = geo.card_key in homs and any(
            prints_number(e.game, e.set_code, e.number) for e in [top, *siblings]
        )
        box = number_line(geo.game, geo.set_code) if numbers else None
        line = reference_region(box, homs[geo.card_key]) if box else None
        if sure and not numbers:
            reading = TextReading()
        else:
            reading = self.reader.predict(
                crop, top.game, numbers=numbers, source=source, title=not sure, line=line
            )
        t["verify"] += (t1 - t0) * 1000
        t["text"] += (time.perf_counter() - t1) * 1000
        feats = features(cands, cos, inliers, appear, reading)
        info = {
            "title_read": reading.title,
            "title_conf": round(reading.title_conf, 3),
            "numbers_read": reading.numbers,
            "siblings": [e.card_key for e in siblings],
            "inliers": {e.card_key: inliers[e.card_key] for e in verify},
            "appearance": {k: round(v, 3) for k, v in appear.items() if k in views},
            "frame_shift": shift,
            "views": views,
        }
        return cands, feats, info

    def _match(self, crop: np.ndarray, hits: list[Hit], t: dict, source: tuple | None) -> Match:
        if not hits:
            return Match(None, 0.0, Decision.NO_MATCH, evidence={"reason": "empty index"})
        cands, feats, info = self.evidence_table(crop, hits, t, source)
        views = info.pop("views")
        assert self.calibration is not None  # set by load()
        probs = self.calibration.prob(feats)
        order = np.argsort(-probs, kind="stable")
        best = cands[order[0]]
        conf = float(probs[order[0]])
        f = dict(zip(FEATURES, feats[order[0]].tolist(), strict=True))
        gates = gate_reasons(best, f, self.calibration)
        # The border band of the crop aligned onto the reference (unaligned if unverified).
        view = views.get(best.card_key)
        seen = border_contrast(*view) if view is not None else None
        border_delta = abs((border_contrast(crop) if seen is None else seen) - self._look(best)[0])
        if border_delta > MAX_BORDER_DELTA:
            gates.append("frame_mismatch")
        if info["frame_shift"].get(best.card_key, 0.0) > MAX_FRAME_SHIFT:
            gates.append("misaligned")
        if conf >= settings.auto_accept_threshold and not gates:
            decision = Decision.AUTO_ACCEPTED
        elif conf >= settings.review_threshold:
            decision = Decision.NEEDS_REVIEW
        else:
            decision = Decision.NO_MATCH
        candidates = [
            {
                "card_key": cands[i].card_key,
                "score": round(float(probs[i]), 4),
                "name": cands[i].name,
                "set_code": cands[i].set_code,
                "number": cands[i].number,
            }
            for i in order[: settings.top_k]
        ]
        evidence = info | {
            "features": {k: round(v, 4) for k, v in f.items()},
            "gates": gates,
            "cosine": round(float(hits[0].score), 4),
            "border_delta": round(border_delta, 1),
        }
        identified = decision != Decision.NO_MATCH
        return Match(
            best.card_key if identified else None,
            round(conf, 4),
            decision,
            candidates,
            evidence,
            best.name if identified else None,
            best.set_code if identified else None,
            best.number if identified else None,
        )


def gate_reasons(best: CatalogEntry, f: dict, calibration: Calibration) -> list[str]:
    """Why the best candidate may not be auto-accepted whatever its score (empty: it may)."""
    reasons = []
    if not calibration.fitted:
        reasons.append("uncalibrated")
    if f["inliers"] < np.log1p(MIN_INLIERS) / 4.0:
        reasons.append("weak_geometry")
    elif f["appear"] < MIN_APPEARANCE:
        reasons.append("looks_different")  # same art in another frame, glare, or a bad crop
    if f["name"] and f["name"] < 2 * MIN_NAME_SCORE - 1:
        reasons.append("title_mismatch")
    if f["number"] < 0:
        reasons.append("number_mismatch")
    elif f["number"] == 0 and prints_number(best.game, best.set_code, best.number):
        reasons.append("number_unread")  # unconfirmed: maybe a printing not in the catalog
    elif best.game == "mtg" and best.set_code.upper() in UNPROVABLE_SETS:
        reasons.append("printing_unprovable")
    # A same-name printing: settled by its printed number, or by a frame that clearly differs.
    if f["siblings"] and f["number"] <= 0 and f["appear_gap"] < SIBLING_APPEAR_GAP:
        reasons.append("sibling_printing")
    return reasons
