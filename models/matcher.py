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

import json
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import overload

import cv2
import faiss
import numpy as np

from models.embedder import CardEmbedder
from models.index import CatalogEntry, CatalogIndex, Hit
from models.reader import TextReader, TextReading, number_line, prints_number
from models.settings import settings
from vision.errors import ModelNotReadyError

CROP_HW = (626, 448)
VERIFY_TOP = 3  # candidates verified by homography; ~2 ms each
VERIFY_DEEP = 10  # ... and this far down the shortlist when none of them fits
MAX_SIBLINGS = 4  # same-name printings also verified when the best candidate has them
# Verification runs at half the crop size: cards photographed small are blurry when warped up to
# 626x448, and at half size they match their references better (inliers median 110 vs 95 on
# synthetic scenes) for 30 % less CPU.
VERIFY_HW = (313, 224)
ORB_FEATURES = 500  # per 626x448 crop; the index's stored reference features use the same
MIN_INLIERS = 15  # below this the homography is noise, never an auto-accept
MAX_BORDER_DELTA = 85  # grey levels; see border_contrast
SURE_INLIERS = 60  # a homography this well supported needs no title OCR
# Aligned appearance: normalised cross-correlation of Lab thumbnails (mean over channels). On
# synthetic scenes a right match has median 0.84 (5th percentile 0.48), a wrong card ~0.3; the
# right printing beat every same-name sibling on the same crop by 0.03-0.43 (22 of 22).
APPEAR_HW = (68, 48)
MIN_APPEARANCE = 0.55  # below: the crop does not look like this printing once aligned
SURE_APPEARANCE = 0.7  # with SURE_INLIERS: the picture alone is conclusive (no title OCR)
SIBLING_APPEAR_GAP = 0.1  # the frame tells a same-name printing apart without its number
# Printings no photo can prove: Beta reprinted Alpha with the same black border, art and frame,
# and neither prints a number, so an Alpha match may be a Beta card (worth a fraction of it).
UNPROVABLE_SETS = {"LEA"}
MIN_NAME_SCORE = 0.6  # a title read that matches the name worse than this names another card
FEATURES = (
    "cos",
    "cos_gap",
    "inliers",
    "inlier_gap",
    "appear",
    "appear_gap",
    "name",
    "number",
    "siblings",
)


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


@dataclass
class Calibration:
    """Logistic model P(candidate is the card | FEATURES); `fitted` False disables auto-accept."""

    weights: list[float]
    bias: float
    fitted: bool = False
    info: dict = field(default_factory=dict)

    @classmethod
    def default(cls) -> Calibration:
        return cls([4.0, 8.0, 2.0, 2.0, 3.0, 3.0, 1.5, 2.0, -1.0], -9.0, fitted=False)

    @classmethod
    def read(cls, path: Path) -> Calibration:
        """The fitted parameters; unfitted defaults when they were fitted for other features."""
        d = json.loads(path.read_text())
        if tuple(d.get("features", ())) != FEATURES:
            stale = cls.default()
            stale.info = {"stale": f"{path.name} was fitted for {d.get('features')}"}
            return stale
        return cls(d["weights"], d["bias"], d.get("fitted", True), d.get("info", {}))

    def write(self, path: Path) -> None:
        d = {
            "features": FEATURES,
            "weights": self.weights,
            "bias": self.bias,
            "fitted": self.fitted,
            "info": self.info,
        }
        path.write_text(json.dumps(d, indent=1), encoding="utf-8")

    def prob(self, x: np.ndarray) -> np.ndarray:
        """(N, F) features -> (N,) probabilities."""
        return 1.0 / (1.0 + np.exp(-(x @ np.asarray(self.weights) + self.bias)))

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray, l2: float = 1e-2, iters: int = 50) -> Calibration:
        """Newton / IRLS logistic regression with a small ridge (no sklearn in the runtime)."""
        a = np.hstack([x, np.ones((len(x), 1))])
        w = np.zeros(a.shape[1])
        for _ in range(iters):
            p = 1.0 / (1.0 + np.exp(-(a @ w)))
            grad = a.T @ (p - y) + l2 * np.r_[w[:-1], 0]
            hess = (a * (p * (1 - p))[:, None]).T @ a + l2 * np.eye(len(w))
            step = np.linalg.solve(hess, grad)
            w -= step
            if np.abs(step).max() < 1e-8:
                break
        return cls([float(v) for v in w[:-1]], float(w[-1]), fitted=True)


def calibration_path(embedder: CardEmbedder) -> Path:
    """Calibration parameters live beside the embedder they were fitted for."""
    return embedder.path.with_suffix(".calibration.json")


def orb_features(img: np.ndarray, orb: cv2.ORB) -> tuple[np.ndarray, np.ndarray | None]:
    """BGR crop -> keypoints (K, 2) float32 at VERIFY_HW scale and ORB descriptors (K, 32)."""
    gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY) if img.ndim == 3 else img
    if gray.shape[:2] != VERIFY_HW:
        gray = cv2.resize(gray, VERIFY_HW[::-1], interpolation=cv2.INTER_AREA)
    kps, desc = orb.detectAndCompute(gray, None)
    return np.array([k.pt for k in kps], np.float32).reshape(-1, 2), desc


def ratio_matches(qd: np.ndarray, rd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(query, reference) indices of the ORB matches that pass Lowe's ratio test (0.8).

    FAISS's binary flat index finds the same two nearest descriptors as OpenCV's brute-force
    Hamming matcher in a quarter of the time (0.6 vs 2.1 ms for 500 x 500), without a Python
    object per match. One OpenMP thread: 500 queries are too few to share.
    """
    faiss.omp_set_num_threads(1)
    index = faiss.IndexBinaryFlat(rd.shape[1] * 8)
    index.add(rd)
    dist, idx = index.search(qd, 2)
    good = np.flatnonzero(dist[:, 0] < 0.8 * dist[:, 1])
    return good, idx[good, 0]


def homography_inliers(q: tuple, r: tuple) -> tuple[int, np.ndarray | None]:
    """RANSAC inliers among ratio-tested ORB matches and the query->reference homography.

    USAC_FAST (SPRT-stopped RANSAC with local optimisation) finds the same inliers as plain RANSAC
    (within 5; 77 % equal over 351 verifications of 1280 px scenes) in 0.07 ms instead of 2.1: a
    wrong candidate no longer runs RANSAC's 2,000 iterations.
    """
    (qp, qd), (rp, rd) = q, r
    if qd is None or rd is None or len(qd) < 8 or len(rd) < 8:
        return 0, None
    qi, ri = ratio_matches(qd, rd)
    if len(qi) < 8:
        return 0, None
    hom, mask = cv2.findHomography(qp[qi], rp[ri], cv2.USAC_FAST, 6.0)
    return (int(mask.sum()), hom) if mask is not None else (0, None)


@overload
def border_contrast(img: np.ndarray, valid: None = None) -> float: ...
@overload
def border_contrast(img: np.ndarray, valid: np.ndarray | None) -> float | None: ...


def border_contrast(img: np.ndarray, valid: np.ndarray | None = None) -> float | None:
    """Median grey of the border band minus that of the middle (black border < 0, white > 0).

    Reprints outside the catalog often share the art and name (Alpha vs Revised Plague Rats) and
    differ in the frame; on synthetic scenes a right match stays within 78 grey levels of its
    reference (unaligned), a black/white border swap moves ~160 (100 on a badly over-cropped
    Revised photo once aligned).
    """
    g = cv2.resize(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), (90, 128), interpolation=cv2.INTER_AREA)
    band = np.zeros(g.shape, bool)
    band[2:6, 2:-2] = band[-6:-2, 2:-2] = band[2:-2, 2:5] = band[2:-2, -5:-2] = True
    if valid is not None:  # only pixels the homography maps from inside the crop
        valid = cv2.resize(valid.astype(np.uint8), (90, 128), interpolation=cv2.INTER_NEAREST) > 0
        if (band & valid).sum() < 0.5 * band.sum():
            return None
        band &= valid
    return float(np.median(g[band]) - np.median(g[20:-20, 15:-15]))


def aligned_view(small: np.ndarray, hom: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A VERIFY_HW crop warped onto its reference by the verification homography, and the mask of
    reference pixels it covers (a detector's over- or under-crop leaves the rest undefined)."""
    size = VERIFY_HW[::-1]
    aligned = cv2.warpPerspective(small, hom, size)
    valid = cv2.warpPerspective(np.full(VERIFY_HW, 255, np.uint8), hom, size) > 0
    return aligned, valid


def reference_region(box: tuple[float, float, float, float], hom: np.ndarray) -> np.ndarray:
    """Corners (TL, TR, BR, BL; 626x448 crop pixels) of a region of the reference, (y0, y1, x0,
    x1) as fractions of the card, found in the crop through the crop->reference homography."""
    h, w = VERIFY_HW
    y0, y1, x0, x1 = box
    ref = np.array(
        [[x0 * w, y0 * h], [x1 * w, y0 * h], [x1 * w, y1 * h], [x0 * w, y1 * h]], np.float32
    )
    small = cv2.perspectiveTransform(ref[None], np.linalg.inv(hom))[0]
    return small * np.array([CROP_HW[1] / w, CROP_HW[0] / h], np.float32)


def lab_thumbnail(img: np.ndarray) -> np.ndarray:
    """BGR image -> (68, 48, 3) float32 Lab thumbnail, the unit of the appearance comparison."""
    small = cv2.resize(img, APPEAR_HW[::-1], interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(small, cv2.COLOR_BGR2LAB).astype(np.float32)


def appearance(aligned: np.ndarray, valid: np.ndarray, reference: np.ndarray) -> float:
    """Normalised cross-correlation of an aligned crop and a reference's Lab thumbnail, per
    channel and averaged, over the pixels the crop covers; 0 when it covers under half the card."""
    a = lab_thumbnail(aligned)
    mask = cv2.resize(valid.astype(np.uint8), APPEAR_HW[::-1], interpolation=cv2.INTER_AREA) > 0
    mask &= cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0  # no warp seams
    if mask.mean() < 0.5:
        return 0.0
    x, y = a[mask], reference[mask]  # (P, 3) each
    x, y = x - x.mean(0), y - y.mean(0)
    ncc = (x * y).sum(0) / np.sqrt((x * x).sum(0) * (y * y).sum(0)).clip(1e-6)
    return float(ncc.mean())


def read_reference(entry: CatalogEntry) -> np.ndarray:
    img = cv2.imread(entry.image, cv2.IMREAD_COLOR)
    if img is None:
        raise FileNotFoundError(entry.image)
    return img


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
        return {"embedder": self.embedder.version, "index": self.index.version}

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

        def check(entries: list[CatalogEntry]) -> None:
            for e in entries:
                n, hom = homography_inliers(q, self._reference(e))
                inliers[e.card_key] = n
                if hom is not None and n >= MIN_INLIERS:
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


def features(
    cands: list[CatalogEntry],
    cos: dict[str, float],
    inliers: dict[str, int],
    appear: dict[str, float],
    reading: TextReading,
) -> np.ndarray:
    """(C, F) per-candidate evidence, each column relative to the other candidates where useful.

    Gaps of cosine and inliers are taken against the best candidate of another name (sibling
    printings share the art, so they must not cancel each other's evidence there); the
    appearance gap is taken against the best same-name printing, the one thing frames split.
    Text columns are 0 when nothing was read, so "not read" never counts against a candidate.
    """
    c = np.array([cos[e.card_key] for e in cands], np.float64)
    li = np.log1p([inliers[e.card_key] for e in cands]) / 4.0  # ~1.0 at 50 inliers
    ap = np.array([appear[e.card_key] for e in cands], np.float64)
    out = np.zeros((len(cands), len(FEATURES)))
    names = [e.name.casefold() for e in cands]
    for i, e in enumerate(cands):
        other = [j for j in range(len(cands)) if names[j] != names[i]]
        same = [j for j in range(len(cands)) if j != i and names[j] == names[i]]
        out[i, 0] = c[i]
        out[i, 1] = c[i] - max((c[j] for j in other), default=0.0)
        out[i, 2] = li[i]
        out[i, 3] = li[i] - max((li[j] for j in other), default=0.0)
        out[i, 4] = ap[i]
        out[i, 5] = ap[i] - max((ap[j] for j in same), default=0.0) if same else 0.0
        out[i, 6] = 2 * reading.name_score(e.name) - 1 if reading.has_title else 0.0
        has = reading.has_number(e.number) if e.number else None
        out[i, 7] = 0.0 if has is None else (1.0 if has else -1.0)
        out[i, 8] = 1.0 if same else 0.0
    return out


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
