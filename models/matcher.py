"""Matcher: card crops -> the exact printing with a calibrated confidence, or an honest "not sure".

Embedding shortlist (FAISS top-k) -> local-feature verification (ORB + RANSAC homography inliers
against the candidates' reference images) -> text evidence (title, collector number) -> one
logistic model over those features per candidate (fitted on synthetic crops kept apart) -> decision.
Hard gates keep two failures out of auto-accept whatever the score: printings that share a name
(reprints, borderless / showcase / extended versions) without printed or clear visual evidence,
and crops whose title reads as some other name.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import cv2
import numpy as np

from models.embedder import CardEmbedder
from models.index import CatalogEntry, CatalogIndex, Hit
from models.reader import TextReader, TextReading, prints_number
from models.settings import settings
from vision.errors import ModelNotReadyError

CROP_HW = (626, 448)
VERIFY_TOP = 3  # candidates verified by homography; ~2 ms each
MAX_SIBLINGS = 4  # same-name printings also verified when the best candidate has them
# Verification runs at half the crop size: cards photographed small are blurry when warped up to
# 626x448, and at half size they match their references better (inliers median 110 vs 95 on
# synthetic scenes) for 30 % less CPU.
VERIFY_HW = (313, 224)
ORB_FEATURES = 500  # per 626x448 crop; the index's stored reference features use the same
MIN_INLIERS = 15  # below this the homography is noise, never an auto-accept
MAX_BORDER_DELTA = 85  # grey levels; see border_contrast
SURE_INLIERS = 60  # a homography this well supported needs no OCR (no same-name printings)
FEATURES = ("cos", "cos_gap", "inliers", "inlier_gap", "name", "number", "siblings")


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
        return cls([4.0, 8.0, 2.0, 2.0, 3.0, 2.0, -1.0], -9.0, fitted=False)

    @classmethod
    def read(cls, path: Path) -> Calibration:
        d = json.loads(path.read_text())
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
    return np.float32([k.pt for k in kps]).reshape(-1, 2), desc


def homography_inliers(q: tuple, r: tuple, matcher: cv2.BFMatcher) -> tuple[int, np.ndarray | None]:
    """RANSAC inliers among ratio-tested ORB matches and the query->reference homography."""
    (qp, qd), (rp, rd) = q, r
    if qd is None or rd is None or len(qd) < 8 or len(rd) < 8:
        return 0, None
    pairs = matcher.knnMatch(qd, rd, k=2)
    good = [m for m, *n in pairs if n and m.distance < 0.8 * n[0].distance]
    if len(good) < 8:
        return 0, None
    src = qp[[m.queryIdx for m in good]]
    dst = rp[[m.trainIdx for m in good]]
    hom, mask = cv2.findHomography(src, dst, cv2.RANSAC, 6.0)
    return (int(mask.sum()), hom) if mask is not None else (0, None)


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


def aligned_border_contrast(crop: np.ndarray, hom: np.ndarray | None) -> float | None:
    """border_contrast of the crop warped onto its reference by the verification homography,
    so a detector's over- or under-crop does not put table or art into the border band."""
    if hom is None:
        return None
    small = cv2.resize(crop, VERIFY_HW[::-1], interpolation=cv2.INTER_AREA)
    aligned = cv2.warpPerspective(small, hom, VERIFY_HW[::-1])
    valid = cv2.warpPerspective(np.full(VERIFY_HW, 255, np.uint8), hom, VERIFY_HW[::-1]) > 0
    return border_contrast(aligned, valid)


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
        self._orb = cv2.ORB_create(nfeatures=ORB_FEATURES)
        self._bf = cv2.BFMatcher(cv2.NORM_HAMMING)
        self._ref_cache: dict[str, tuple] = {}
        self._border_cache: dict[str, float] = {}
        self._homographies: dict[str, np.ndarray | None] = {}
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

    def _border(self, entry: CatalogEntry) -> float:
        value = self._border_cache.get(entry.card_key)
        if value is None:
            value = self._border_cache[entry.card_key] = border_contrast(
                self.reference_loader(entry)
            )
        return value

    def predict(self, crops: list[np.ndarray], sources: list[tuple] | None = None) -> list[Match]:
        """All crops of a photo in one embedder batch; per-stage times in `timings_ms`."""
        self.load()
        t = {"embed": 0.0, "search": 0.0, "text": 0.0, "verify": 0.0}
        if not crops:
            self.timings_ms = t
            return []
        t0 = time.perf_counter()
        vectors = self.embedder.predict(crops)
        t1 = time.perf_counter()
        shortlists = self.index.search(vectors, settings.top_k)
        t["embed"], t["search"] = (t1 - t0) * 1000, (time.perf_counter() - t1) * 1000
        sources = sources or [None] * len(crops)
        matches = [
            self._match(crop, hits, t, src)
            for crop, hits, src in zip(crops, shortlists, sources, strict=True)
        ]
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
        siblings = [e for e in self.index.same_name(top.name) if e.card_key != top.card_key]
        for e in siblings[:MAX_SIBLINGS]:
            if e.card_key not in cos:
                cands.append(e)
                cos[e.card_key] = 0.0  # outside the shortlist: no embedding support
        t0 = time.perf_counter()
        q = orb_features(crop, self._orb)
        verify = {e.card_key for e in cands[:VERIFY_TOP]} | {
            e.card_key for e in siblings[:MAX_SIBLINGS]
        }
        fits = {
            e.card_key: homography_inliers(q, self._reference(e), self._bf)
            for e in cands
            if e.card_key in verify
        }
        inliers = {e.card_key: fits.get(e.card_key, (0, None))[0] for e in cands}
        self._homographies = {k: h for k, (_, h) in fits.items()}
        t1 = time.perf_counter()
        others = max((v for k, v in inliers.items() if k != top.card_key), default=0)
        # Geometry alone settles the card (wrong references stay under ~10 inliers), not the
        # printing: another printing missing from the catalog shares art and name, so the
        # number is read wherever the frame prints one, and the title only when in doubt.
        sure = not siblings and inliers[top.card_key] >= SURE_INLIERS and others < MIN_INLIERS
        numbers = bool(siblings) or prints_number(top.game, top.set_code, top.number)
        if sure and not numbers:
            reading = TextReading()
        else:
            reading = self.reader.predict(
                crop, top.game, numbers=numbers, source=source, title=not sure
            )
        t["verify"] += (t1 - t0) * 1000
        t["text"] += (time.perf_counter() - t1) * 1000
        feats = features(cands, cos, inliers, reading)
        info = {
            "title_read": reading.title,
            "title_conf": round(reading.title_conf, 3),
            "numbers_read": reading.numbers,
            "siblings": [e.card_key for e in siblings],
            "inliers": {k: v for k, v in inliers.items() if k in verify},
        }
        return cands, feats, info

    def _match(self, crop: np.ndarray, hits: list[Hit], t: dict, source: tuple | None) -> Match:
        if not hits:
            return Match(None, 0.0, Decision.NO_MATCH, evidence={"reason": "empty index"})
        cands, feats, info = self.evidence_table(crop, hits, t, source)
        probs = self.calibration.prob(feats)
        order = np.argsort(-probs, kind="stable")
        best = cands[order[0]]
        conf = float(probs[order[0]])
        f = dict(zip(FEATURES, feats[order[0]].tolist(), strict=True))
        gates = gate_reasons(best, f, cands, feats, self.calibration)
        seen = aligned_border_contrast(crop, self._homographies.get(best.card_key))
        border_delta = abs((border_contrast(crop) if seen is None else seen) - self._border(best))
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
    cands: list[CatalogEntry], cos: dict[str, float], inliers: dict[str, int], reading: TextReading
) -> np.ndarray:
    """(C, F) per-candidate evidence, each column relative to the other candidates where useful."""
    c = np.array([cos[e.card_key] for e in cands], np.float64)
    li = np.log1p([inliers[e.card_key] for e in cands]) / 4.0  # ~1.0 at 50 inliers
    out = np.zeros((len(cands), len(FEATURES)))
    names = [e.name.casefold() for e in cands]
    for i, e in enumerate(cands):
        # Gaps against the best candidate of another name: sibling printings share the art,
        # so they should not cancel each other's evidence here (the number column splits them).
        other = [j for j in range(len(cands)) if names[j] != names[i]]
        same = [j for j in range(len(cands)) if j != i and names[j] == names[i]]
        out[i, 0] = c[i]
        out[i, 1] = c[i] - max((c[j] for j in other), default=0.0)
        out[i, 2] = li[i]
        out[i, 3] = li[i] - max((li[j] for j in other), default=0.0)
        out[i, 4] = reading.name_score(e.name)
        has = reading.has_number(e.number) if e.number else None
        out[i, 5] = 0.0 if has is None else (1.0 if has else -1.0)
        out[i, 6] = 1.0 if same else 0.0
    return out


def gate_reasons(
    best: CatalogEntry,
    f: dict,
    cands: list[CatalogEntry],
    feats: np.ndarray,
    calibration: Calibration,
) -> list[str]:
    """Why the best candidate may not be auto-accepted whatever its score (empty: it may)."""
    reasons = []
    if not calibration.fitted:
        reasons.append("uncalibrated")
    if f["inliers"] < np.log1p(MIN_INLIERS) / 4.0:
        reasons.append("weak_geometry")
    if f["name"] and f["name"] < 0.6:
        reasons.append("title_mismatch")
    if f["number"] < 0:
        reasons.append("number_mismatch")
    elif f["number"] == 0 and prints_number(best.game, best.set_code, best.number):
        reasons.append("number_unread")  # the printing is unconfirmed: maybe one not in the catalog
    if f["siblings"]:
        sib = [
            i
            for i, e in enumerate(cands)
            if e.name.casefold() == best.name.casefold() and e.card_key != best.card_key
        ]
        best_sib = max(feats[i, 2] for i in sib)
        # Printed number settles it; otherwise the homography must clearly prefer this frame.
        visual = np.expm1(f["inliers"] * 4) >= 2 * np.expm1(best_sib * 4) + 10
        if f["number"] <= 0 and not visual:
            reasons.append("sibling_printing")
    return reasons
