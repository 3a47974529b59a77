"""Card detector: output decoding with a fake ONNX session; the committed model on a scene."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from models.detector import (
    TURNED_MIN_CERTAINTY,
    TURNED_MIN_SCORE,
    UNSURE_MIN_CERTAINTY,
    CardDetector,
    default_model_path,
    fuse,
    letterbox,
    quad_nms,
    turned,
)
from models.refiner import Refined
from vision import geometry
from vision.synth import SceneGenerator, load_catalog, split_catalog

MODEL_DIR = Path(__file__).resolve().parents[2] / "models" / "detector"


class FakeSession:
    """Returns fixed rows (N, 17) in letterbox pixels, as the exported model does, transposed."""

    def __init__(self, rows: np.ndarray) -> None:
        self.rows = rows
        self.inputs = []

    def run(self, _outputs, feeds: dict) -> list[np.ndarray]:  # noqa: ANN001
        self.inputs.append(next(iter(feeds.values())))
        return [self.rows.T[None].astype(np.float32)]


def _row(quad: np.ndarray, score: float) -> np.ndarray:
    lo, hi = quad.min(0), quad.max(0)
    return np.concatenate(
        [(lo + hi) / 2, hi - lo, [score], np.concatenate([quad, np.ones((4, 1))], 1).ravel()]
    )


def _fake_detector(rows: np.ndarray, imgsz: int = 320) -> CardDetector:
    det = CardDetector(Path("fake.onnx"), refine=False, turn=False)
    det._session, det._input, det.imgsz, det._loaded = FakeSession(rows), "images", imgsz, True
    return det


def test_letterbox_keeps_aspect_and_pads_grey() -> None:
    canvas, scale, pad = letterbox(np.zeros((300, 600, 3), np.uint8), 320)
    assert canvas.shape == (320, 320, 3)
    assert scale == pytest.approx(320 / 600) and pad == (0.0, 80.0)
    assert canvas[10, 160].tolist() == [114, 114, 114] and canvas[160, 160].tolist() == [0, 0, 0]


def test_turned_canvas_holds_the_whole_photo_where_its_matrix_says() -> None:
    image = np.zeros((600, 800, 3), np.uint8)
    spots = [(30, 40), (770, 20), (400, 300), (60, 560)]  # (x, y), near the photo's corners too
    for x, y in spots:
        cv2.circle(image, (x, y), 12, (0, 0, 255), -1)
    canvas, to_canvas = turned(image, 320)
    assert canvas.shape == (320, 320, 3) and canvas[2, 160].tolist() == [114, 114, 114]
    for x, y in spots:
        cx, cy = geometry.map_points(np.float32([[x, y]]), to_canvas)[0]
        assert 0 <= cx < 320 and 0 <= cy < 320
        assert canvas[round(cy), round(cx)].tolist() == [0, 0, 255]
    # Turned by 45 degrees: the photo's top edge now runs up and to the right.
    top = geometry.map_points(np.float32([[0, 0], [800, 0]]), to_canvas)
    assert top[1, 0] > top[0, 0] and top[1, 1] < top[0, 1]


def test_turned_look_finds_a_card_only_it_sees_and_maps_it_back() -> None:
    photo_quad = np.float32([[400, 300], [700, 320], [680, 760], [380, 740]])
    image = np.zeros((1000, 1600, 3), np.uint8)
    _, to_canvas = turned(image, 320)
    seen_turned = geometry.map_points(photo_quad, to_canvas)
    doubtful = geometry.map_points(photo_quad + [700, 0], to_canvas)  # scores under the floor
    det = _fake_detector(np.zeros((0, 17)))
    det.turn = True
    rows = np.stack([_row(seen_turned, 0.9), _row(doubtful, TURNED_MIN_SCORE - 0.05)])
    det._session.run = _sequence(det._session, [np.zeros((0, 17)), rows])
    (found,) = det.predict(image)
    assert found.score == pytest.approx(0.9)
    np.testing.assert_allclose(found.quad, photo_quad, atol=0.05)  # TL first, as printed
    assert len(det._session.inputs) == 2  # the upright look, then the turned one


def test_corners_map_back_to_photo_pixels() -> None:
    photo_quad = np.float32([[400, 300], [700, 320], [680, 760], [380, 740]])
    image = np.zeros((1000, 1600, 3), np.uint8)
    scale, pad = 320 / 1600, (0.0, 60.0)
    rows = np.stack([_row(photo_quad * scale + pad, 0.9)])
    dets = _fake_detector(rows).predict(image)
    assert len(dets) == 1 and dets[0].score == pytest.approx(0.9)
    np.testing.assert_allclose(dets[0].quad, photo_quad, atol=0.01)


def test_input_is_rgb_scaled_nchw() -> None:
    det = _fake_detector(np.zeros((0, 17)))
    image = np.zeros((320, 320, 3), np.uint8)
    image[..., 2] = 255  # red in BGR
    assert det.predict(image) == []
    blob = det._session.inputs[0]
    assert blob.shape == (1, 3, 320, 320) and blob.dtype == np.float32
    assert blob[0, 0].max() == pytest.approx(1.0) and blob[0, 2].max() == 0.0


def test_low_scores_and_duplicates_are_dropped() -> None:
    q = np.float32([[100, 100], [160, 100], [160, 184], [100, 184]])
    rows = np.stack([_row(q, 0.9), _row(q + 1, 0.8), _row(q + 120, 0.7), _row(q + 200, 0.1)])
    det = _fake_detector(rows)
    det.conf = 0.7
    dets = det.predict(np.zeros((320, 320, 3), np.uint8))
    assert [round(d.score, 1) for d in dets] == [0.9, 0.7]


def test_a_kept_card_is_the_mean_of_the_candidates_merged_into_it() -> None:
    """The best-scored candidate is a rough one (its top edge 20 px low); two others a little
    behind it lie on the card, one of them with its corners listed from another start."""
    card = np.float32([[100, 100], [163, 100], [163, 188], [100, 188]])
    rough = card + np.float32([[0, 20], [0, 20], [0, 0], [0, 0]])
    other = np.float32([[400, 100], [463, 100], [463, 188], [400, 188]])
    quads = np.stack([rough, card + 1, np.roll(card - 1, 2, 0), other])
    scores = np.float32([0.83, 0.81, 0.81, 0.9])
    boxes = np.concatenate([quads.min(1), quads.max(1)], 1)
    keep = quad_nms(quads, boxes, scores, 0.5, 10)
    assert sorted(keep) == [0, 3]
    fused = fuse(quads, boxes, scores, keep, 0.5)
    assert geometry.corner_error(fused[0], card) < geometry.corner_error(rough, card) / 2
    np.testing.assert_allclose(fused[0][2:], card[2:], atol=0.01)  # in the kept quad's order
    np.testing.assert_allclose(fused[3], other)  # alone: unchanged


def test_fused_corners_are_what_the_detector_returns() -> None:
    card = np.float32([[100, 100], [160, 100], [160, 184], [100, 184]])
    rough = card + np.float32([[0, 16], [0, 16], [0, 0], [0, 0]])
    rows = np.stack([_row(rough, 0.85), _row(card, 0.84), _row(card, 0.84)])
    det = _fake_detector(rows)
    det.fuse = False
    (alone,) = det.predict(np.zeros((320, 320, 3), np.uint8))
    np.testing.assert_allclose(alone.quad, rough, atol=0.01)
    det.fuse = True
    (fused,) = det.predict(np.zeros((320, 320, 3), np.uint8))
    assert geometry.corner_error(fused.quad, card) < 6  # a third of the 16 px error is left


def test_quad_nms_keeps_overlapping_cards_at_different_angles() -> None:
    a = np.float32([[100, 100], [163, 100], [163, 188], [100, 188]])
    centre = a.mean(0)
    rot = np.array([[np.cos(0.5), -np.sin(0.5)], [np.sin(0.5), np.cos(0.5)]], np.float32)
    b = (
        (a - centre) @ rot.T + centre + [25, 0]
    )  # a fanned card: big box overlap, small quad overlap
    quads = np.stack([a, b])
    boxes = np.concatenate([quads.min(1), quads.max(1)], 1)
    assert geometry.quad_iou(a, b) < 0.5
    assert quad_nms(quads, boxes, np.array([0.9, 0.8]), 0.5, 10) == [0, 1]


def test_quad_nms_keeps_a_deck_spreads_cards_apart() -> None:
    """Cards laid a fifth of a card below each other overlap at IoU 0.67: one card to plain NMS,
    two with `apart`; two looks at one card that agree on a side stay one either way."""
    card = np.float32([[100, 100], [163, 100], [163, 188], [100, 188]])
    below = card + [0, 0.2 * 88]
    looser = card.copy()
    looser[2:] += [0, 12]  # the same card, its hidden bottom corners guessed lower
    quads = np.stack([card, below, looser])
    boxes = np.concatenate([quads.min(1), quads.max(1)], 1)
    scores = np.array([0.9, 0.8, 0.7])
    assert geometry.quad_iou(card, below) > 0.5
    assert quad_nms(quads, boxes, scores, 0.5, 10) == [0]
    assert quad_nms(quads, boxes, scores, 0.5, 10, apart=0.1) == [0, 1]


def test_side_agreement_ignores_where_a_quad_starts() -> None:
    card = np.float32([[100, 100], [163, 100], [163, 188], [100, 188]])
    assert geometry.side_agreement(np.roll(card, 2, 0), card) == pytest.approx(0.0)
    assert geometry.side_agreement(card + [0, 22], card) == pytest.approx(0.25)


def test_a_card_like_box_inside_a_card_is_dropped() -> None:
    card = np.float32([[100, 100], [163, 100], [163, 188], [100, 188]])
    art = np.float32([[108, 112], [155, 112], [155, 150], [108, 150]])  # the art box
    quads = np.stack([card, art])
    boxes = np.concatenate([quads.min(1), quads.max(1)], 1)
    assert quad_nms(quads, boxes, np.array([0.9, 0.8]), 0.5, 10, contain=0.9) == [0]
    assert quad_nms(quads, boxes, np.array([0.9, 0.8]), 0.5, 10, contain=1.0) == [0, 1]


def test_second_look_finds_a_card_that_fills_the_frame() -> None:
    """Nothing found at first: the retry sees the photo inside a grey margin; corners map back."""
    image = np.zeros((400, 300, 3), np.uint8)
    margin = int(0.15 * 400)
    card = np.float32([[0, 0], [300, 0], [300, 400], [0, 400]])
    scale = 320 / (400 + 2 * margin)
    pad = ((320 - (300 + 2 * margin) * scale) / 2, 0.0)
    det = _fake_detector(np.zeros((0, 17)))
    rows = np.stack([_row((card + margin) * scale + pad, 0.9)])
    det._session.run = _sequence(det._session, [np.zeros((0, 17)), rows])
    dets = det.predict(image)
    assert len(dets) == 1
    np.testing.assert_allclose(dets[0].quad, card, atol=1.0)


def _sequence(session: FakeSession, outputs: list[np.ndarray]):  # noqa: ANN202
    calls = iter(outputs)

    def run(_outputs, feeds: dict) -> list[np.ndarray]:  # noqa: ANN001
        session.inputs.append(next(iter(feeds.values())))
        return [next(calls).T[None].astype(np.float32)]

    return run


def test_slivers_are_not_cards() -> None:
    sliver = np.float32([[10, 300], [300, 300], [300, 310], [10, 310]])
    dets = _fake_detector(np.stack([_row(sliver, 0.9)])).predict(np.zeros((320, 320, 3), np.uint8))
    assert dets == []


def test_a_quad_too_small_to_be_a_card_does_not_hide_the_card_around_it() -> None:
    """The art box scored above its card: were it in the NMS, it would hold the card (nested)
    and then be dropped itself as too small, and the card would be lost."""
    card = np.float32([[100, 60], [200, 60], [200, 200], [100, 200]])
    art = np.float32([[120, 80], [180, 80], [180, 100], [120, 100]])  # 20 px: under 8 % of 320
    rows = np.stack([_row(art, 0.95), _row(card, 0.85)])
    dets = _fake_detector(rows).predict(np.zeros((320, 320, 3), np.uint8))
    assert len(dets) == 1
    np.testing.assert_allclose(dets[0].quad, card, atol=0.01)


def test_upside_down_prediction_keeps_its_order() -> None:
    q = np.float32([[160, 184], [100, 184], [100, 100], [160, 100]])  # TL at the bottom right
    dets = _fake_detector(np.stack([_row(q, 0.9)])).predict(np.zeros((320, 320, 3), np.uint8))
    np.testing.assert_allclose(dets[0].quad, q, atol=0.01)


class FakeRefiner:
    """Moves every quad by one pixel, certain of each; records how many quads each call got."""

    version = "fake-refiner"

    def __init__(self) -> None:
        self.calls: list[int] = []

    def load(self) -> None: ...

    def predict(self, _image: np.ndarray, quads: list[np.ndarray]) -> list[Refined]:
        self.calls.append(len(quads))
        return [Refined(q + 1, 0.9) for q in quads]


def test_the_refiner_gets_all_kept_cards_of_a_photo_in_one_call() -> None:
    q = np.float32([[100, 100], [160, 100], [160, 184], [100, 184]])
    rows = np.stack([_row(q, 0.9), _row(q + 1, 0.8), _row(q + 120, 0.7)])  # one duplicate
    det = _fake_detector(rows)
    det.refine, det.refiner = True, FakeRefiner()
    det.fuse = False  # else the duplicate moves the card by half a pixel first
    dets = det.predict(np.zeros((320, 320, 3), np.uint8))
    assert det.refiner.calls == [2]
    np.testing.assert_allclose(dets[0].quad, q + 1, atol=0.01)
    assert det.version == "fake+fake-refiner"
    det.refine = False
    assert det.version == "fake"


def test_a_quad_the_refiner_is_unsure_of_is_dropped_and_suppresses_no_card() -> None:
    """A rough quad between two cards is refined onto one of them with diffuse corners: it is
    dropped before the second NMS, where its higher score would have suppressed that card."""
    card = np.float32([[100, 100], [160, 100], [160, 184], [100, 184]])
    between = card + [45, 0]  # IoU 0.14 with the card: both pass the first NMS

    class Collapsing(FakeRefiner):
        def predict(self, _image: np.ndarray, quads: list[np.ndarray]) -> list[Refined]:
            return [Refined(card.copy(), 0.3 if q[0, 0] > 120 else 0.9) for q in quads]

    det = _fake_detector(np.stack([_row(between, 0.95), _row(card, 0.9)]))
    det.refine, det.refiner, det.min_certainty = True, Collapsing(), 0.65
    image = np.zeros((320, 320, 3), np.uint8)
    dets = det.predict(image)
    assert len(dets) == 1 and dets[0].score == pytest.approx(0.9)
    det.min_certainty = 0.0  # off: the two answers are one card, the higher score stays
    dets = det.predict(image)
    assert len(dets) == 1 and dets[0].score == pytest.approx(0.95)


def test_a_card_scoring_under_conf_is_kept_only_when_the_refiner_is_sure_of_it() -> None:
    sure, doubtful, weak = (
        np.float32([[x, 100], [x + 60, 100], [x + 60, 184], [x, 184]]) for x in (20, 120, 220)
    )
    plain = np.float32([[120, 200], [180, 200], [180, 284], [120, 284]])

    class ByPlace(FakeRefiner):  # sure of the card at x=20 and of the plain one only
        def predict(self, _image: np.ndarray, quads: list[np.ndarray]) -> list[Refined]:
            self.calls.append(len(quads))
            return [
                Refined(q, UNSURE_MIN_CERTAINTY + (0.05 if q[0, 0] < 60 else -0.2)) for q in quads
            ]

    rows = np.stack([_row(sure, 0.5), _row(doubtful, 0.5), _row(weak, 0.3), _row(plain, 0.9)])
    det = _fake_detector(rows)
    det.refine, det.refiner, det.conf, det.unsure_conf = True, ByPlace(), 0.7, 0.4
    dets = det.predict(np.zeros((320, 320, 3), np.uint8))
    assert det.refiner.calls == [3]  # the 0.3 candidate never reaches the refiner
    # the doubtful card is dropped; the plain one (0.9) needs no certainty
    assert sorted(round(d.score, 1) for d in dets) == [0.5, 0.9]
    assert any(np.allclose(d.quad, sure) for d in dets)
    det.unsure_conf = 0.7  # off: only the model's own word counts
    assert [round(d.score, 1) for d in det.predict(np.zeros((320, 320, 3), np.uint8))] == [0.9]


def test_a_card_whose_far_corners_the_refiner_doubts_is_completed_to_its_shape() -> None:
    """Its top edge runs under another card: the refiner finds the bottom corners sharp and the
    top ones where the edges vanish, too low. They move up to the card's aspect."""
    card = np.float32([[100, 40], [163, 40], [163, 128], [100, 128]])  # 63 x 88
    cut_short = card + np.float32([[0, 30], [0, 30], [0, 0], [0, 0]])

    class TopUnsure(FakeRefiner):
        def predict(self, _image: np.ndarray, quads: list[np.ndarray]) -> list[Refined]:
            return [Refined(q, 0.5, np.float32([0.5, 0.6, 0.95, 0.97])) for q in quads]

    det = _fake_detector(np.stack([_row(cut_short, 0.9)]))
    det.refine, det.refiner = True, TopUnsure()
    (found,) = det.predict(np.zeros((320, 320, 3), np.uint8))
    np.testing.assert_allclose(found.quad, card, atol=0.01)
    det.refiner = FakeRefiner()  # sure of every corner: the quad stays as found (moved by 1)
    (found,) = det.predict(np.zeros((320, 320, 3), np.uint8))
    np.testing.assert_allclose(found.quad, cut_short + 1, atol=0.01)


def test_a_card_only_the_turned_look_finds_needs_a_sure_refiner() -> None:
    image = np.zeros((1000, 1600, 3), np.uint8)
    upright_card = np.float32([[100, 100], [400, 100], [400, 520], [100, 520]])
    turned_card = np.float32([[900, 300], [1200, 320], [1180, 760], [880, 740]])
    scale, pad = 320 / 1600, (0.0, 60.0)
    _, to_canvas = turned(image, 320)

    class Unsure(FakeRefiner):  # equally unsure of both cards
        def predict(self, _image: np.ndarray, quads: list[np.ndarray]) -> list[Refined]:
            return [Refined(q, TURNED_MIN_CERTAINTY - 0.1) for q in quads]

    det = _fake_detector(np.zeros((0, 17)))
    det.turn, det.refine, det.refiner = True, True, Unsure()
    looks = [
        np.stack([_row(upright_card * scale + pad, 0.9)]),
        np.stack([_row(geometry.map_points(turned_card, to_canvas), 0.9)]),
    ]
    det._session.run = _sequence(det._session, looks)
    (kept,) = det.predict(image)  # the upright look's card stays: no floor is set for it
    np.testing.assert_allclose(kept.quad, upright_card, atol=0.05)


class FakeOrienter:
    """Finds the card at x < 150 upside down (0.95), the others upright (0.3)."""

    version = "fake-orienter"

    def __init__(self) -> None:
        self.calls: list[int] = []

    def predict(self, _image: np.ndarray, quads: list[np.ndarray]) -> np.ndarray:
        self.calls.append(len(quads))
        return np.float32([0.95 if q[:, 0].min() < 150 else 0.3 for q in quads])


def test_a_card_the_orienter_finds_upside_down_has_its_corners_turned() -> None:
    left, right = (
        np.float32([[x, 100], [x + 60, 100], [x + 60, 184], [x, 184]]) for x in (20, 200)
    )
    det = _fake_detector(np.stack([_row(left, 0.9), _row(right, 0.85)]))
    det.orienter, det.upside_down = FakeOrienter(), 0.9
    image = np.zeros((320, 320, 3), np.uint8)
    first, second = det.predict(image)
    assert det.orienter.calls == [2]  # all cards of a photo in one call
    np.testing.assert_allclose(first.quad, left[[2, 3, 0, 1]], atol=0.01)  # TL now bottom right
    np.testing.assert_allclose(second.quad, right, atol=0.01)
    assert det.version == "fake+fake-orienter"
    det.upside_down = 0.99  # the orienter is not that sure: the corners stay as the model said
    np.testing.assert_allclose(det.predict(image)[0].quad, left, atol=0.01)
    det.upside_down = 1.0  # off: the orienter is not asked
    det.predict(image)
    assert det.orienter.calls == [2, 2] and det.version == "fake"


def test_committed_model_finds_the_cards_of_a_synthetic_scene() -> None:
    """Held-out printings on a table: each card found, its corners in the card's own order."""
    _, held = split_catalog(load_catalog())
    gen = SceneGenerator(held, 960)
    det = CardDetector()
    det.warmup()
    found = total = upright = 0
    for seed in (11, 12, 13):
        scene = gen.generate(seed, layout="grid")
        truth = [c.quad for c in scene.cards if c.should_detect]
        pred = [d.quad for d in det.predict(scene.image)]
        for i, j, _ in geometry.match_quads(pred, truth, 0.5):
            found += 1
            errors = [geometry.corner_error(np.roll(pred[i], k, 0), truth[j]) for k in range(4)]
            upright += int(np.argmin(errors) == 0)
        total += len(truth)
    assert total > 0 and found / total >= 0.8
    assert upright / found >= 0.8


def test_plausible_cards_are_card_sized_and_mostly_in_the_photo() -> None:
    from models.detector import _plausible

    card = np.float32([[100, 100], [172, 100], [172, 200], [100, 200]])
    assert _plausible(card, 640, 480)
    assert not _plausible(card * 0.25, 640, 480)  # 25 px tall in a 480 px photo: a letter
    assert _plausible(card - [0, 40], 640, 480)  # cut by the frame, 60 % inside
    assert not _plausible(card - [0, 170], 640, 480)  # 30 % inside: mostly above the photo
    assert not _plausible(card[[0, 2, 1, 3]], 640, 480)  # a bow tie is no card


def test_committed_int8_copy_places_the_corners_of_its_float_model_on_this_cpu(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The int8 copy the CPU serves must agree with its float model on this machine's kernels.

    x86 CPUs without VNNI multiply uint8 by int8 in 16-bit sums that saturate unless the weights
    keep to 7 bits (`scripts.quantize_models`): there the full-range copy moved the corners about
    2 px of the 416 px canvas (the 7-bit one 0.6) and lost 2 points of recall.
    """
    from models.base import INT8, onnx_session
    from models.settings import settings

    monkeypatch.setattr(settings, "int8", False)
    float_path = default_model_path()
    assert float_path is not None and float_path.with_suffix(INT8).exists()
    _, held = split_catalog(load_catalog())
    gen = SceneGenerator(held, 1280)
    blobs = [
        cv2.dnn.blobFromImage(letterbox(gen.generate(seed).image, 416)[0], 1 / 255.0, swapRB=True)
        for seed in range(31, 39)
    ]
    rows = []
    for path in (float_path, float_path.with_suffix(INT8)):
        session = onnx_session(path)
        name = session.get_inputs()[0].name
        rows.append([session.run(None, {name: b})[0][0].T for b in blobs])
    score_drift, corner_drift = [], []
    for ref, got in zip(*rows, strict=True):
        sure = ref[:, 4] >= 0.5
        score_drift.append(np.abs(ref[sure, 4] - got[sure, 4]))
        corners = [r[sure, 5:].reshape(-1, 4, 3)[..., :2] for r in (ref, got)]
        corner_drift.append(np.abs(corners[0] - corners[1]).ravel())
    assert sum(map(len, score_drift)) >= 100
    assert np.mean(np.concatenate(corner_drift)) < 1.0  # px of the canvas
    assert np.mean(np.concatenate(score_drift)) < 0.035
