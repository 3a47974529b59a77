"""Quadrilateral geometry of cards in photos: corner order, overlap, corner error, point mapping.

A quad is a (4, 2) float32 array of (x, y) pixel coordinates, clockwise on screen (y points down),
starting from the card's top-left corner as printed.
"""

from __future__ import annotations

import cv2
import numpy as np


def _points(quad: np.ndarray) -> list[list[float]]:
    """A polygon's corners as Python floats: a detector's NMS asks about a few hundred quads a
    photo, and numpy's per-call overhead on 4 points is most of the work."""
    return np.asarray(quad, np.float64).reshape(-1, 2).tolist()


def signed_area(quad: np.ndarray) -> float:
    """Shoelace area; positive when the corners run clockwise on screen (y down)."""
    p = _points(quad)
    return sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(p, p[1:] + p[:1], strict=True)) / 2


def area(quad: np.ndarray) -> float:
    return abs(signed_area(quad))


def is_convex(quad: np.ndarray) -> bool:
    p = _points(quad)
    edges = [(x1 - x0, y1 - y0) for (x0, y0), (x1, y1) in zip(p, p[1:] + p[:1], strict=True)]
    cross = [a[0] * b[1] - a[1] * b[0] for a, b in zip(edges, edges[1:] + edges[:1], strict=True)]
    return all(c > 0 for c in cross) or all(c < 0 for c in cross)


def order_clockwise(points: np.ndarray) -> np.ndarray:
    """Four points in clockwise order, starting from the one nearest the image's top-left."""
    p = np.asarray(points, np.float32).reshape(4, 2)
    centre = p.mean(0)
    ang = np.arctan2(
        p[:, 1] - centre[1], p[:, 0] - centre[0]
    )  # y down: increasing angle is clockwise
    p = p[np.argsort(ang)]
    start = int(np.argmin(p.sum(1)))
    return np.roll(p, -start, 0)


def make_clockwise(quad: np.ndarray) -> np.ndarray:
    """Keep the first corner, reverse the others if the quad runs anticlockwise."""
    q = np.asarray(quad, np.float32).reshape(4, 2)
    return q if signed_area(q) >= 0 else q[[0, 3, 2, 1]]


def portrait_start(quad: np.ndarray, margin: float = 1.0) -> np.ndarray:
    """Roll a clockwise quad so that its first edge (TL->TR) is a short edge, as on a portrait card.

    Of the two short-edge starts, keep the one nearest the given first corner, so a detector's
    judgement of which end is up survives. The quad is rolled only when its first edge pair is
    longer than the other by more than `margin` (strong perspective can shorten a long side).
    """
    q = np.asarray(quad, np.float32)
    e0 = np.linalg.norm(q[1] - q[0]) + np.linalg.norm(q[3] - q[2])
    e1 = np.linalg.norm(q[2] - q[1]) + np.linalg.norm(q[0] - q[3])
    if e0 <= e1 * margin:
        return q
    # First edge is long: start at corner 1 or corner 3, whichever is nearer the old start.
    d1, d3 = np.linalg.norm(q[1] - q[0]), np.linalg.norm(q[3] - q[0])
    return np.roll(q, -1 if d1 <= d3 else -3, 0)


def convex_hull(quad: np.ndarray) -> np.ndarray:
    """A quad's convex hull as OpenCV wants it; it also copes with a raw prediction whose
    corners cross (a bow tie)."""
    return cv2.convexHull(np.ascontiguousarray(quad, np.float32).reshape(-1, 1, 2))


def intersection_area(a: np.ndarray, b: np.ndarray) -> float:
    """Area shared by two quads' convex hulls (corner order does not matter)."""
    inter, _ = cv2.intersectConvexConvex(convex_hull(a), convex_hull(b))
    return float(inter)


def hull_iou(a: tuple[np.ndarray, float], b: tuple[np.ndarray, float]) -> float:
    """`quad_iou` from each quad's (convex_hull, area), for callers that compare one quad
    with many."""
    inter = float(cv2.intersectConvexConvex(a[0], b[0])[0])
    union = a[1] + b[1] - inter
    return inter / union if union > 0 else 0.0


def quad_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two convex quads (corner order does not matter)."""
    return hull_iou((convex_hull(a), area(a)), (convex_hull(b), area(b)))


def card_height(quad: np.ndarray) -> float:
    """Mean length of the card's long sides (TR-BR and BL-TL)."""
    q = np.asarray(quad, np.float64)
    return float((np.linalg.norm(q[2] - q[1]) + np.linalg.norm(q[0] - q[3])) / 2)


def corner_error(pred: np.ndarray, true: np.ndarray) -> float:
    """Mean distance between corresponding corners, in pixels (order matters)."""
    return float(
        np.linalg.norm(np.asarray(pred, np.float64) - np.asarray(true, np.float64), axis=1).mean()
    )


def relative_corner_error(pred: np.ndarray, true: np.ndarray) -> float:
    """Corner error as a fraction of the true card's height."""
    return corner_error(pred, true) / max(card_height(true), 1e-6)


def side_agreement(a: np.ndarray, b: np.ndarray) -> float:
    """How near two quads come along their best-matching side, whatever corner each starts at:
    the smallest mean distance of one side's two corners to a side of the other, over `b`'s card
    height. Two looks at one card agree on at least the side they both see; two cards of a deck
    spread are apart on every side by the step between them."""
    a, b = np.asarray(a, np.float64).reshape(4, 2), np.asarray(b, np.float64).reshape(4, 2)
    best = np.inf
    for k in range(4):
        d = np.linalg.norm(np.roll(a, k, 0) - b, axis=1)  # corner to corner, for this start
        best = min(best, float((d + np.roll(d, -1)).min()) / 2)
    return best / max(card_height(b), 1e-6)


CARD_ASPECT = 88 / 63  # height / width of a 63 x 88 mm card


def near_frame(quad: np.ndarray, w: int, h: int, margin: float = 0.02) -> np.ndarray:
    """(4,) bool: corners past the edge of a w x h photo or within `margin` of the card's
    height of it."""
    q = np.asarray(quad, np.float64).reshape(4, 2)
    inside = np.minimum.reduce([q[:, 0], q[:, 1], w - q[:, 0], h - q[:, 1]])
    return inside < margin * card_height(q)


def extend_to_aspect(quad: np.ndarray, doubtful: np.ndarray) -> np.ndarray:
    """The quad with its two doubtful corners moved out along their sides to where the card's
    aspect puts them, measured from the whole side between the two sure ones.

    Meant for corners a detector pulls in: corners outside the photo (their training labels
    carry no position), or corners it cannot see (a refiner's unsure ones). A side is only
    lengthened, never shortened (perspective can make it longer than the aspect). Unless exactly
    two adjacent corners are doubtful, the quad comes back as it is.
    """
    sure = ~np.asarray(doubtful, bool)
    whole = np.flatnonzero(sure & np.roll(sure, -1))  # side a -> a + 1 has both ends sure
    if sure.sum() != 2 or len(whole) != 1:
        return quad
    q = np.asarray(quad, np.float64).reshape(4, 2).copy()
    a = int(whole[0])
    b = (a + 1) % 4
    # Edges 0 (TL-TR) and 2 (BR-BL) are the short ones.
    length = np.linalg.norm(q[b] - q[a]) * (CARD_ASPECT if a % 2 == 0 else 1 / CARD_ASPECT)
    for near, far in ((a, (a - 1) % 4), (b, (b + 1) % 4)):
        side = q[far] - q[near]
        seen = np.linalg.norm(side)
        if length > seen > 0:
            q[far] = q[near] + side * (length / seen)
    # Sides that converge (strong perspective) can cross when lengthened: keep the quad then.
    return q.astype(np.float32) if is_convex(q) else quad


def map_points(points: np.ndarray, homography: np.ndarray) -> np.ndarray:
    """Apply a 3x3 homography to (N, 2) points."""
    p = np.asarray(points, np.float32).reshape(-1, 1, 2)
    return cv2.perspectiveTransform(p, np.asarray(homography, np.float64)).reshape(-1, 2)


def unletterbox(points: np.ndarray, scale: float, pad: tuple[float, float]) -> np.ndarray:
    """Map points from a letterboxed model input back to the original image's pixels."""
    return ((np.asarray(points, np.float32) - np.asarray(pad, np.float32)) / scale).astype(
        np.float32
    )


def match_quads(
    pred: list[np.ndarray], true: list[np.ndarray], min_iou: float
) -> list[tuple[int, int, float]]:
    """Greedy one-to-one matching by IoU (predictions in the given order): (pred_i, true_j, iou)."""
    pairs = sorted(
        ((quad_iou(p, t), i, j) for i, p in enumerate(pred) for j, t in enumerate(true)),
        reverse=True,
    )
    used_p: set[int] = set()
    used_t: set[int] = set()
    out = []
    for iou, i, j in pairs:
        if iou < min_iou:
            break
        if i in used_p or j in used_t:
            continue
        used_p.add(i)
        used_t.add(j)
        out.append((i, j, iou))
    return out
