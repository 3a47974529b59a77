"""Corner refinement: snap each edge of a predicted quad to the strongest straight edge nearby.

The detector works on a ~320 px letterboxed image, so its corners are a few original pixels off on
large photos. Each side is re-found in the full-resolution photo: sample intensity profiles across
the side, take the strongest step on each, fit a line robustly, intersect neighbouring lines.
A side keeps its predicted position when its evidence is weak or inconsistent (occlusion, glare,
card over card), so refinement never makes a quad much worse than the prediction.
"""

from __future__ import annotations

import cv2
import numpy as np

from vision.geometry import card_height, is_convex

N_ALONG = 24  # samples along a side (its middle 80 %, away from the rounded corners)


def _line_intersection(
    a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]
) -> np.ndarray | None:
    (p, d), (q, e) = a, b
    den = d[0] * e[1] - d[1] * e[0]
    if abs(den) < 1e-6:
        return None
    t = ((q[0] - p[0]) * e[1] - (q[1] - p[1]) * e[0]) / den
    return p + t * d


def _side_line(
    gray: np.ndarray, p0: np.ndarray, p1: np.ndarray, inward: np.ndarray, reach: float
) -> tuple[np.ndarray, np.ndarray] | None:
    """Refit one side p0->p1 within +-reach pixels along its normal; None when evidence is weak."""
    n_across = max(9, int(3 * reach) | 1)
    t = np.linspace(0.1, 0.9, N_ALONG, dtype=np.float32)
    d = np.linspace(-reach, reach, n_across, dtype=np.float32)
    base = p0[None, :] + t[:, None] * (p1 - p0)[None, :]  # (N_ALONG, 2)
    pts = base[:, None, :] + d[None, :, None] * inward[None, None, :]  # (N_ALONG, n_across, 2)
    prof = cv2.remap(
        gray, pts[..., 0], pts[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    prof = cv2.GaussianBlur(prof, (3, 1), 0)
    grad = np.abs(np.diff(prof, axis=1))  # (N_ALONG, n_across - 1)
    best = grad.argmax(1)
    strength = grad[np.arange(N_ALONG), best]
    # The clearly visible stretches of the side.
    ok = strength > max(8.0, 0.35 * float(strength.max()))
    if ok.sum() < N_ALONG // 3:
        return None
    # Sub-pixel peak: a parabola through the gradient around the best step.
    rows = np.arange(N_ALONG)
    lo, hi = np.clip(best - 1, 0, grad.shape[1] - 1), np.clip(best + 1, 0, grad.shape[1] - 1)
    g0, gl, gh = grad[rows, best], grad[rows, lo], grad[rows, hi]
    den = gl - 2 * g0 + gh
    delta = np.where(np.abs(den) > 1e-6, 0.5 * (gl - gh) / np.where(den == 0, 1, den), 0.0).clip(
        -0.5, 0.5
    )
    step = d[1] - d[0]
    offs = (d[best] + d[best + 1]) / 2 + delta * step
    # The predicted side may be tilted against the true edge, so the offsets drift linearly
    # along it: find the straight line through most peaks (RANSAC), then refit on its inliers.
    pts2 = base + offs[:, None] * inward[None, :]  # (N_ALONG, 2) peak positions
    idx = np.flatnonzero(ok)
    tol = max(1.0, 0.08 * reach)
    rng = np.random.default_rng(0)  # deterministic: the same photo gives the same quad
    best_in: np.ndarray | None = None
    for _ in range(40):
        i, j = rng.choice(idx, 2, replace=False)
        dvec = pts2[j] - pts2[i]
        norm = float(np.hypot(dvec[0], dvec[1]))
        if norm < 1e-6:
            continue
        normal = np.array([-dvec[1], dvec[0]]) / norm
        inl = idx[np.abs((pts2[idx] - pts2[i]) @ normal) <= tol]
        if best_in is None or len(inl) > len(best_in):
            best_in = inl
    if best_in is None or len(best_in) < N_ALONG // 3:
        return None
    found = pts2[best_in]
    vx, vy, x0, y0 = cv2.fitLine(found.astype(np.float32), cv2.DIST_HUBER, 0, 0.01, 0.01).ravel()
    side = (p1 - p0) / max(float(np.linalg.norm(p1 - p0)), 1e-6)
    if abs(vx * side[0] + vy * side[1]) < np.cos(np.deg2rad(12)):  # not along the side
        return None
    return np.array([x0, y0], np.float64), np.array([vx, vy], np.float64)


def refine_quad(image: np.ndarray, quad: np.ndarray, reach_frac: float = 0.03) -> np.ndarray:
    """A refined copy of `quad` (same corner order); the input quad when refinement is doubtful."""
    q = np.asarray(quad, np.float64).reshape(4, 2)
    h, w = image.shape[:2]
    reach = max(3.0, reach_frac * card_height(q))
    centre = q.mean(0)
    lines = []
    for i in range(4):
        p0, p1 = q[i], q[(i + 1) % 4]
        along = (p1 - p0) / max(np.linalg.norm(p1 - p0), 1e-6)
        inward = np.array([-along[1], along[0]])
        if np.dot(centre - p0, inward) < 0:
            inward = -inward
        # Sides outside the photo cannot be seen: keep them.
        inside = all(0 <= p[0] < w and 0 <= p[1] < h for p in (p0, p1))
        line = None
        if inside:
            x0, y0 = np.floor(np.minimum(p0, p1) - reach - 2).astype(int).clip(0)
            x1, y1 = np.ceil(np.maximum(p0, p1) + reach + 3).astype(int)
            roi = image[y0:y1, x0:x1]
            if roi.size:
                gray = cv2.cvtColor(roi, cv2.COLOR_BGR2GRAY).astype(np.float32)
                off = np.array([x0, y0], np.float64)
                found = _side_line(
                    gray,
                    (p0 - off).astype(np.float32),
                    (p1 - off).astype(np.float32),
                    inward.astype(np.float32),
                    reach,
                )
                if found is not None:
                    line = (found[0] + off, found[1])
        lines.append(line if line is not None else (p0, along))
    out = np.empty_like(q)
    for i in range(4):
        corner = _line_intersection(lines[(i - 1) % 4], lines[i])
        if corner is None or np.linalg.norm(corner - q[i]) > 2.5 * reach:
            return np.asarray(quad, np.float32)
        out[i] = corner
    return out.astype(np.float32) if is_convex(out) else np.asarray(quad, np.float32)
