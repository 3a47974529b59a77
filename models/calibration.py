"""The matcher's evidence table and the logistic model that turns it into one confidence."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from models.embedder import CardEmbedder
from models.index import CatalogEntry
from models.reader import TextReading

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
