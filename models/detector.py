"""Card detector: a YOLO pose model (4 keypoints = the card's corners) served by ONNX Runtime.

Output of the exported model: (1, 5 + 12, N) float32 per anchor, in letterboxed input pixels:
cx, cy, w, h, card score, then (x, y, visibility) for TL, TR, BR, BL of the card as printed.
The model sees each photo twice, letterboxed and turned by 45 degrees, and one NMS merges both
looks' cards. When a corner refiner is committed under models/refiner, it re-finds the corners
of every kept card (the cascade's second stage, `models.refiner`), all cards of a photo in one
batch, and its certainty decides the cards the model scored under its floor (`unsure_conf`).
Last, a card whose two far corners were pulled in (past the frame's edge, or unsure to the
refiner) gets them where the card's shape puts them (`vision.geometry.extend_to_aspect`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from models.base import Model, newest_model, onnx_session
from models.orienter import CardOrienter
from models.orienter import model_path as orienter_path
from models.refiner import CornerRefiner
from models.refiner import model_path as refiner_path
from models.settings import settings
from vision import geometry
from vision.errors import ModelNotReadyError

LETTERBOX_FILL = 114  # ultralytics' padding grey; the model was trained with it
MIN_CARD_HEIGHT = 0.08  # of the photo's short side
MIN_INSIDE = 0.4  # of a card's area inside the photo: less is an arm, a box, a table edge
# The turned look's angle, in degrees. The model finds cards lying near a right angle far better
# than cards at 30-45 degrees (recall at IoU 0.8: 0.91 against 0.57), so the photo is also seen
# turned by 45 degrees, where those lie square (models/detector/MODEL_CARD.md).
TURN = 45.0
# A card that the turned look adds lies square in it, where the model scores real cards highly;
# its candidates below this score are mostly the upright look's cards seen askew, or false ones.
TURNED_MIN_SCORE = 0.8
# ... and the refiner must be this sure of it (its second least certain corner): the turned look
# sees the photo smaller, and in a close-up it finds kites inside the card.
TURNED_MIN_CERTAINTY = 0.6
# An upright-look card scoring under `conf` (down to `unsure_conf`) is kept only when the refiner
# is this sure of it: dark scenes, busy backgrounds and small cards give real cards scores of
# 0.4-0.8, while false ones seldom have four sharp corners (models/detector/MODEL_CARD.md).
UNSURE_MIN_CERTAINTY = 0.7
# A corner the refiner is less sure of may lie further out than found: a card's edge that runs
# under another card, or into the photo's border, gives the model no corner to see. Two such
# corners side by side are moved out to the card's aspect (`_complete`); with the corners at the
# frame's edge, that takes recall at IoU 0.8 on the tuning scenes from 0.916 to 0.930
# (models/detector/MODEL_CARD.md).
DOUBTFUL_CORNER = 0.8


@dataclass
class Detection:
    quad: np.ndarray  # (4, 2) float32, original-photo pixels, clockwise from the card's top-left
    score: float


def default_model_path(model_dir: Path | None = None) -> Path:
    """The newest model under <model_dir>/detector (`models.base.newest_model`)."""
    folder = (model_dir or settings.model_dir) / "detector"
    found = newest_model(folder)
    if found is None:
        raise ModelNotReadyError(f"detector: no .onnx file in {folder}")
    return found


def _shrunk_size(w: int, h: int, scale: float) -> tuple[int, int]:
    """(w, h) of an image of w x h pixels resized by `scale` (`_shrink`)."""
    return max(1, round(w * scale)), max(1, round(h * scale))


def _shrink(image: np.ndarray, scale: float) -> np.ndarray:
    """The image resized by `scale`: big photos drop whole pixels first (a strided view costs
    nothing), then area-average."""
    h, w = image.shape[:2]
    nw, nh = _shrunk_size(w, h, scale)
    step = max(1, int(1 / scale) // 2)
    src = image[::step, ::step] if step > 1 else image
    return cv2.resize(
        src, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    )


def letterbox(image: np.ndarray, size: int) -> tuple[np.ndarray, float, tuple[float, float]]:
    """Resize keeping aspect into a size x size grey canvas: (canvas BGR, scale, (pad_x, pad_y))."""
    h, w = image.shape[:2]
    scale = min(size / h, size / w)
    small = _shrink(image, scale)
    nh, nw = small.shape[:2]
    pad_x, pad_y = (size - nw) / 2, (size - nh) / 2
    top, left = round(pad_y - 0.1), round(pad_x - 0.1)
    canvas = np.full((size, size, 3), LETTERBOX_FILL, np.uint8)
    canvas[top : top + nh, left : left + nw] = small
    return canvas, scale, (float(left), float(top))


def turned(image: np.ndarray, size: int, angle: float = TURN) -> tuple[np.ndarray, np.ndarray]:
    """The image turned by `angle` degrees (counter-clockwise) and fitted whole into a size x size
    grey canvas: (canvas BGR, 3x3 matrix from image pixels to canvas pixels)."""
    h, w = image.shape[:2]
    c, s = abs(np.cos(np.deg2rad(angle))), abs(np.sin(np.deg2rad(angle)))
    small = _shrink(image, size / max(w * c + h * s, w * s + h * c))
    nh, nw = small.shape[:2]
    turn = cv2.getRotationMatrix2D((nw / 2, nh / 2), angle, 1.0)
    turn[:, 2] += (size / 2 - nw / 2, size / 2 - nh / 2)
    canvas = cv2.warpAffine(
        small, turn, (size, size), flags=cv2.INTER_LINEAR, borderValue=(LETTERBOX_FILL,) * 3
    )
    return canvas, np.vstack([turn, [0, 0, 1]]) @ np.diag([nw / w, nh / h, 1.0])


def _box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one xyxy box with (N, 4) xyxy boxes."""
    iw = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    ih = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = iw * ih
    union = (
        (box[2] - box[0]) * (box[3] - box[1])
        + (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        - inter
    )
    return inter / np.maximum(union, 1e-6)


def _tidy(quad: np.ndarray) -> np.ndarray:
    """Make a predicted corner set a clockwise, convex quad whose first edge is a short one."""
    if not geometry.is_convex(quad):
        start = quad[0]
        quad = geometry.order_clockwise(quad)
        quad = np.roll(quad, -int(np.argmin(np.linalg.norm(quad - start, axis=1))), 0)
    return geometry.portrait_start(geometry.make_clockwise(quad), margin=1.2)


def _plausible(quad: np.ndarray, w: int, h: int) -> bool:
    """A card may be cut by the frame, but not lie mostly outside it or be a few pixels big."""
    shaped = geometry.is_convex(quad) and _card_sized(quad[None], w, h)[0]
    if not shaped or geometry.area(quad) < 64:
        return False
    frame = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    return geometry.intersection_area(quad, frame) >= MIN_INSIDE * geometry.area(quad)


def _card_sized(quads: np.ndarray, w: int, h: int) -> np.ndarray:
    """Which of the (N, 4, 2) quads are card-sized and card-shaped, in any corner order.

    A card is 0.72 as wide as high; strong perspective squeezes it, but never to a sliver. The
    smallest cards of a 12-card table are ~11 % of the photo's short side; smaller "cards" are
    letters, symbols or mana pips (a photo of rules text found 25 of them).
    """
    sides = np.linalg.norm(np.roll(quads, -1, 1) - quads, axis=2)
    a, b = sides[:, 0] + sides[:, 2], sides[:, 1] + sides[:, 3]
    long, short = np.maximum(a, b), np.minimum(a, b)
    return (short >= 0.35 * long) & (long / 2 >= MIN_CARD_HEIGHT * min(w, h))


def _complete(quad: np.ndarray, certainty: np.ndarray, w: int, h: int) -> np.ndarray:
    """A card's far corners where its shape puts them, when the model pulled them in: two
    adjacent corners past the frame's edge, or that the refiner is unsure of."""
    doubtful = geometry.near_frame(quad, w, h) | (np.asarray(certainty) < DOUBTFUL_CORNER)
    return geometry.extend_to_aspect(quad, doubtful).astype(np.float32)


def quad_nms(
    quads: np.ndarray,
    boxes: np.ndarray,
    scores: np.ndarray,
    iou: float,
    max_det: int,
    contain: float = 1.0,
    apart: float = 0.0,
) -> list[int]:
    """Greedy NMS on quad IoU (cards overlap at angles where box IoU would merge them).

    A candidate nested in a better one (or holding it) for more than `contain` of the smaller
    area is dropped too: a card's art box is card-like, and a box around a card and its margin
    is too, but real cards have one size and never nest. With `apart`, two overlapping quads
    that come no nearer than `apart` of a card's height on any side
    (`vision.geometry.side_agreement`) are two cards, as in a deck spread whose cards show only
    their title strips; 0 turns that off.
    """
    keep: list[int] = []
    areas = [geometry.area(q) for q in quads]
    for i in np.argsort(-scores):
        if keep:
            near = np.asarray(keep)[_box_iou(boxes[i], boxes[keep]) > 0]
            dup = False
            for j in near:
                inter = geometry.intersection_area(quads[i], quads[j])
                a_i, a_j = areas[i], areas[j]
                # Nested either way: a card never lies inside another card, nor contains one.
                nested = inter / max(min(a_i, a_j), 1e-6) > contain
                same = inter / max(a_i + a_j - inter, 1e-6) > iou and not (
                    apart > 0 and geometry.side_agreement(quads[i], quads[j]) > apart
                )
                if same or nested:
                    dup = True
                    break
            if dup:
                continue
        keep.append(int(i))
        if len(keep) >= max_det:
            break
    return keep


# `fuse` averages the candidates lying this close (quad IoU) to their cluster's medoid.
FUSE_CORE_IOU = 0.75


# Row r lists the corners of `np.roll(quad, r, 0)`: the four ways to start a quad's corners.
_ROLLS = np.array([[(i - r) % 4 for i in range(4)] for r in range(4)])


def _in_order_of(quads: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Each quad's corners (..., 4, 2) listed from the one that puts them nearest `ref`'s."""
    rolls = quads[..., _ROLLS, :]  # (..., 4 starts, 4, 2)
    best = np.abs(rolls - ref).sum((-2, -1)).argmin(-1)
    return np.take_along_axis(rolls, best[..., None, None, None], -3)[..., 0, :, :]


def fuse(
    quads: np.ndarray, boxes: np.ndarray, scores: np.ndarray, keep: list[int], iou: float
) -> np.ndarray:
    """`quads` with each kept quad replaced by the consensus of the candidates NMS merged into
    it: those overlapping it at quad IoU above `iou` (each joins the kept quad it overlaps
    most). The consensus is the score-weighted mean of the cluster's core: the candidates
    within FUSE_CORE_IOU of its medoid (the one the others overlap most, weighted by score).
    Corners stay in the kept quad's order. `boxes`: the quads' xyxy boxes, as `quad_nms` takes.

    The model places a card many times over neighbouring anchors, and NMS keeps the best-scored
    one, whose corners are no better than the others': a quad a few hundredths ahead of the
    rest can be a rough one (a card's art box and half its frame), while most of the cluster
    lies on the card (models/detector/MODEL_CARD.md, "Fused corners").
    """
    out = quads.copy()
    if not keep:
        return out
    # Which candidates' boxes overlap each kept quad's at more than `iou` (K, N): the rest are
    # left alone (letting in every touching box measured 2 cards fewer on the tuning scenes).
    touching = np.stack([_box_iou(boxes[i], boxes) > iou for i in keep])
    touching[:, keep] = False
    joining = np.flatnonzero(touching.any(0))
    hulls = {
        int(i): (geometry.convex_hull(quads[i]), geometry.area(quads[i])) for i in [*keep, *joining]
    }
    clusters: list[list[int]] = [[i] for i in keep]
    for j in joining:
        near = np.flatnonzero(touching[:, j])
        overlaps = [geometry.hull_iou(hulls[int(j)], hulls[keep[k]]) for k in near]
        best = int(np.argmax(overlaps))
        if overlaps[best] > iou:
            clusters[int(near[best])].append(int(j))
    for group in clusters:
        if len(group) < 2:
            continue
        ious = np.eye(len(group))
        for a, b in zip(*np.triu_indices(len(group), 1), strict=True):
            ious[a, b] = ious[b, a] = geometry.hull_iou(hulls[group[a]], hulls[group[b]])
        m = int(np.argmax((ious - np.eye(len(group))) @ scores[group]))  # the medoid
        core = [g for g, o in zip(group, ious[m], strict=True) if o > FUSE_CORE_IOU]
        weights = scores[core].astype(np.float64)
        mean = np.tensordot(
            weights / weights.sum(),
            _in_order_of(quads[core], quads[group[m]]),
            1,
        )
        out[group[0]] = _in_order_of(mean, quads[group[0]]).astype(quads.dtype)
    return out


class CardDetector(Model):
    """Finds every card in a BGR photo; corners come back in the photo's own pixels."""

    name = "detector"
    folder = "detector"

    def __init__(
        self,
        path: Path | None = None,
        *,
        conf: float | None = None,
        iou: float = 0.5,
        max_det: int = 64,
        refine: bool = True,
        refiner: CornerRefiner | None = None,
        contain: float = 0.9,
        apart: float | None = None,
        second_look: float = 0.15,
        min_certainty: float | None = None,
        turn: bool | None = None,
        unsure_conf: float | None = None,
        orienter: CardOrienter | None = None,
        upside_down: float | None = None,
        fuse: bool | None = None,
    ) -> None:
        super().__init__(path)
        self.conf = settings.detector_conf if conf is None else conf
        # from this score up to `conf`, a card needs UNSURE_MIN_CERTAINTY (only when refining)
        self.unsure_conf = settings.detector_unsure_conf if unsure_conf is None else unsure_conf
        # of the refiner's certainty (`models.refiner.card_certainty`), when there is a refiner
        self.min_certainty = (
            settings.detector_min_certainty if min_certainty is None else min_certainty
        )
        self.iou = iou
        self.max_det = max_det
        self.refine = refine  # run the learned corner refiner (when one is committed)
        self.refiner = refiner  # None: the newest models/refiner/*.onnx, found at load time
        self.contain = contain
        self.apart = settings.detector_apart if apart is None else apart  # `quad_nms`
        self.second_look = second_look  # margin (fraction of the long side) of the retry; 0: none
        self.turn = settings.detector_turn if turn is None else turn  # also look at it turned
        # A card the orienter (None: the newest models/orienter/*.onnx, when one is committed)
        # finds upside down with this probability or more gets its corners turned; 1 or more: off.
        self.upside_down = settings.detector_upside_down if upside_down is None else upside_down
        self.orienter = orienter
        # Each kept card becomes the mean of the candidates the NMS merged into it (`fuse`).
        self.fuse = settings.detector_fuse if fuse is None else fuse
        self.imgsz = 0
        self._session: Any = None  # onnxruntime.InferenceSession once loaded
        self._input = "images"

    def _load(self) -> None:
        assert self.path is not None  # set by load()
        self._session = onnx_session(self.path, settings.providers, settings.onnx_threads)
        shape = self._session.get_inputs()[0].shape  # [1, 3, S, S], static
        self.imgsz = int(shape[2]) if isinstance(shape[2], int) else 320
        self._input = self._session.get_inputs()[0].name
        if self.refine and self.refiner is None and (found := refiner_path()) is not None:
            self.refiner = CornerRefiner(found)
        if self.refiner is not None:
            self.refiner.load()
        if self.upside_down < 1 and self.orienter is None and (found := orienter_path()):
            self.orienter = CardOrienter(found)
        if self.orienter is not None:
            self.orienter.load()

    @property
    def version(self) -> str:
        """The detector file's stem, plus the refiner's and the orienter's when they run."""
        parts = [super().version]
        if self.refine and self.refiner:
            parts.append(self.refiner.version)
        if self.upside_down < 1 and self.orienter is not None:
            parts.append(self.orienter.version)
        return "+".join(parts)

    def warmup(self) -> None:
        self.load()
        self._predict(np.full((self.imgsz, self.imgsz, 3), LETTERBOX_FILL, np.uint8))
        if self.refiner is not None:
            self.refiner.warmup()
        if self.orienter is not None:
            self.orienter.warmup()

    def _rows(self, canvas: np.ndarray, floor: float) -> np.ndarray:
        """Model rows (N, 17) scoring `floor` or more for one size x size BGR canvas, in its
        pixels."""
        blob = cv2.dnn.blobFromImage(canvas, 1 / 255.0, swapRB=True)  # (1, 3, S, S) RGB 0-1
        out = self._session.run(None, {self._input: blob})[0][0].T  # (N, 17)
        return out[out[:, 4] >= floor]

    @property
    def _refining(self) -> bool:
        return self.refine and self.refiner is not None

    def candidates(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Scores (N,), corners (N, 4, 2) in the image's pixels and which came from the turned
        look (N,) bool, of both looks: the image letterboxed (scoring `unsure_conf` at least when
        refining, else `conf`) and, when `turn` is set, turned by TURN degrees (scoring
        TURNED_MIN_SCORE at least there). A card's corners keep their printed order (TL, TR, BR,
        BL) whichever way the photo was turned."""
        canvas, scale, pad = letterbox(image, self.imgsz)
        rows = self._rows(canvas, min(self.conf, self.unsure_conf) if self._refining else self.conf)
        scores = [rows[:, 4]]
        quads = [geometry.unletterbox(rows[:, 5:].reshape(-1, 4, 3)[..., :2], scale, pad)]
        if self.turn:
            # Turned from the letterbox's shrunk photo, which is larger than the turned look
            # needs: one shrink of a 12 MP photo instead of two.
            h, w = image.shape[:2]
            left, top = int(pad[0]), int(pad[1])
            nw, nh = _shrunk_size(w, h, scale)
            canvas, to_canvas = turned(canvas[top : top + nh, left : left + nw], self.imgsz)
            to_canvas = to_canvas @ np.diag([nw / w, nh / h, 1.0])
            rows = self._rows(canvas, max(self.conf, TURNED_MIN_SCORE))
            if len(rows):
                back = np.linalg.inv(to_canvas)
                scores.append(rows[:, 4])
                corners = geometry.map_points(rows[:, 5:].reshape(-1, 3)[:, :2], back)
                quads.append(corners.reshape(-1, 4, 2))
        from_turned = np.arange(sum(map(len, scores))) >= len(scores[0])
        return (
            np.concatenate(scores),
            np.concatenate(quads).astype(np.float32),
            from_turned,
        )

    def _predict(self, image: np.ndarray) -> list[Detection]:
        found = self._detect(image, image, 0)
        if found or not self.second_look:
            return found
        # Nothing found: the photo may be a crop whose card fills the frame, edges on the border.
        # Look again with a grey margin, so the card lies on a plain background as in training.
        margin = int(self.second_look * max(image.shape[:2]))
        padded = cv2.copyMakeBorder(
            image, margin, margin, margin, margin, cv2.BORDER_CONSTANT, value=(LETTERBOX_FILL,) * 3
        )
        return self._detect(padded, image, margin)

    def _detect(self, seen: np.ndarray, image: np.ndarray, margin: int) -> list[Detection]:
        """Detections in `seen` (the image, or it with a margin), returned in `image` pixels."""
        scores, quads, from_turned = self.candidates(seen)
        # Nothing too small or thin to be a card takes part in the NMS: an art box scored above
        # its card would hold it (`contain`) and then be dropped itself as implausible.
        h, w = image.shape[:2]
        sized = _card_sized(quads, w, h)
        scores, quads, from_turned = scores[sized], quads[sized], from_turned[sized]
        if not len(scores):
            return []
        boxes = np.concatenate([quads.min(1), quads.max(1)], 1)
        keep = quad_nms(quads, boxes, scores, self.iou, self.max_det, self.contain, self.apart)
        if self.fuse:
            quads = fuse(quads, boxes, scores, keep, self.iou)
        found, kept, floors = [], [], []
        for i in keep:
            quad = _tidy(quads[i]) - np.float32(margin)
            if _plausible(quad, w, h):
                found.append(quad)
                kept.append(float(scores[i]))
                turned_floor = TURNED_MIN_CERTAINTY if from_turned[i] else 0.0
                unsure_floor = UNSURE_MIN_CERTAINTY if scores[i] < self.conf else 0.0
                floors.append(max(self.min_certainty, turned_floor, unsure_floor))
        certainty = [np.ones(4, np.float32)] * len(found)  # of each corner; 1: not doubted
        if self._refining and found:
            found, kept, certainty = self._refine(image, found, kept, floors)
        cards = [_complete(q, c, w, h) for q, c in zip(found, certainty, strict=True)]
        if self.upside_down < 1 and self.orienter is not None and cards:
            turned = self.orienter.predict(image, cards) >= self.upside_down
            cards = [q[[2, 3, 0, 1]] if t else q for q, t in zip(cards, turned, strict=True)]
        return [Detection(q, score) for q, score in zip(cards, kept, strict=True)]

    def _refine(
        self,
        image: np.ndarray,
        quads: list[np.ndarray],
        scores: list[float],
        floors: list[float],
    ) -> tuple[list[np.ndarray], list[float], list[np.ndarray]]:
        """The refiner's corners of the quads it is certain of (each to its own floor), then the
        same NMS once more; with each kept quad's certainty of each corner.

        Refined corners can turn two rough guesses into one card (a card and its sleeve, a split
        card's half). Uncertain quads are dropped first, so that none of them suppresses a card
        in that NMS.
        """
        assert self.refiner is not None
        answers = self.refiner.predict(image, quads)
        sure = [
            i
            for i, (a, floor) in enumerate(zip(answers, floors, strict=True))
            if a.certainty >= floor
        ]
        if not sure:
            return [], [], []
        refined = np.stack([answers[i].quad for i in sure])
        corners = [answers[i].corners for i in sure]
        sure_scores = np.asarray([scores[i] for i in sure])
        bounds = np.concatenate([refined.min(1), refined.max(1)], 1)
        again = quad_nms(
            refined, bounds, sure_scores, self.iou, self.max_det, self.contain, self.apart
        )
        h, w = image.shape[:2]
        kept = [i for i in again if _plausible(refined[i], w, h)]
        return (
            [refined[i] for i in kept],
            [float(sure_scores[i]) for i in kept],
            [np.ones(4) if corners[i] is None else corners[i] for i in kept],
        )
