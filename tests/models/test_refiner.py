"""Corner refiner: batching and safety rules with fake runners; the committed model on scenes."""

from __future__ import annotations

import numpy as np
import pytest

from models.refiner import CornerRefiner, model_path, refine_quads
from vision import geometry
from vision.synth import SceneGenerator, load_catalog, split_catalog
from vision.warp import WINDOW_MARGIN, WINDOW_SIZE

QUAD = np.float32([[300, 120], [560, 150], [540, 520], [270, 490]])
PRIOR = WINDOW_MARGIN / (1 + 2 * WINDOW_MARGIN)


class FakeRunner:
    """Answers every window with fixed corners (window units); records the batch shapes."""

    def __init__(self, corners: np.ndarray) -> None:
        self.corners = np.asarray(corners, np.float32).reshape(8)
        self.shapes: list[tuple[int, ...]] = []

    def __call__(self, blob: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.shapes.append(blob.shape)
        return np.tile(self.corners, (len(blob), 1)), np.ones((len(blob), 4), np.float32)


def _unmoved() -> np.ndarray:
    """Corners where the rough quad itself lies in its window: a refiner that changes nothing."""
    m = PRIOR
    return np.float32([[m, m], [1 - m, m], [1 - m, 1 - m], [m, 1 - m]])


def test_all_cards_go_in_one_batch_per_pass() -> None:
    run = FakeRunner(_unmoved())
    quads = [QUAD, QUAD + 300, QUAD + [600, 0]]
    out = [r.quad for r in refine_quads(np.zeros((1200, 1400, 3), np.uint8), quads, run, 2)]
    w, h = WINDOW_SIZE
    assert run.shapes == [(3, 3, h, w), (3, 3, h, w)]
    for got, want in zip(out, quads, strict=True):
        np.testing.assert_allclose(got, want, atol=0.05)


def test_only_cards_that_still_move_get_further_passes() -> None:
    """A card in the bright half keeps moving (3 % of its window a pass); the other settles."""
    image = np.zeros((1200, 1400, 3), np.uint8)
    image[:, 700:] = 255

    def run(blob: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        shapes.append(blob.shape[0])
        bright = blob.mean(axis=(1, 2, 3)) > 0.5
        corners = np.tile(_unmoved(), (len(blob), 1, 1))
        corners[bright] += [0, 0.03]
        return corners.reshape(len(blob), 8), np.ones((len(blob), 4), np.float32)

    shapes: list[int] = []
    still, moving = QUAD + [0, 200], QUAD + [800, 200]
    out = [r.quad for r in refine_quads(image, [still, moving], run, iterations=4, max_move=1.0)]
    assert shapes == [2, 2, 1, 1]  # two passes for both, then only the moving card
    np.testing.assert_allclose(out[0], still, atol=0.05)
    assert (out[1][:, 1] > moving[:, 1] + 0.1 * geometry.card_height(QUAD)).all()


def test_corners_map_back_through_the_window_and_keep_their_order() -> None:
    """Corners the runner finds 2 % of the window to the right come back shifted in the photo."""
    upside_down = np.roll(QUAD, 2, 0)  # TL at the photo's bottom right
    run = FakeRunner(_unmoved() + [0.02, 0])
    (answer,) = refine_quads(np.zeros((700, 900, 3), np.uint8), [upside_down], run, 1)
    got = answer.quad
    # The window's x axis runs along the card's TL -> TR, which points left in the photo.
    assert (got[:, 0] < upside_down[:, 0]).all()
    assert geometry.corner_error(got, upside_down) < 0.05 * geometry.card_height(QUAD)


def test_a_wild_answer_keeps_the_input_quad() -> None:
    image = np.zeros((700, 900, 3), np.uint8)
    bow_tie = _unmoved()[[0, 2, 1, 3]]
    far = _unmoved() + [0.6, 0]
    for corners in (bow_tie, far, np.full((4, 2), np.nan)):
        (answer,) = refine_quads(image, [QUAD], FakeRunner(corners), iterations=1)
        got = answer.quad
        np.testing.assert_array_equal(got, QUAD)


def test_a_cards_certainty_is_its_second_least_certain_corner_in_its_last_window() -> None:
    """One hidden corner (under another card, cut by the frame) is normal; two are not."""
    passes: list[np.ndarray] = [np.float32([0.9, 0.1, 0.95, 0.97]), np.float32([0.9, 0.2, 0.8, 1])]

    def run(blob: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.tile(_unmoved(), (len(blob), 1, 1)).reshape(-1, 8), passes.pop(0)[None]

    (answer,) = refine_quads(np.zeros((700, 900, 3), np.uint8), [QUAD], run, iterations=2)
    assert answer.certainty == pytest.approx(0.8) and passes == []
    # each corner's own certainty, from that last window (the detector completes doubtful ones)
    np.testing.assert_allclose(answer.corners, [0.9, 0.2, 0.8, 1])


def test_no_cards_give_no_quads() -> None:
    run = FakeRunner(_unmoved())
    assert refine_quads(np.zeros((64, 64, 3), np.uint8), [], run) == []
    assert run.shapes == []


@pytest.fixture(scope="module")
def refiner() -> CornerRefiner:
    path = model_path()
    assert path is not None, "no committed refiner under models/refiner"
    model = CornerRefiner(path)
    model.warmup()
    return model


def test_committed_refiner_halves_the_corner_error_on_held_out_scenes(
    refiner: CornerRefiner,
) -> None:
    """Held-out printings, true quads jittered like the detector's: refined ones are far closer."""
    _, held = split_catalog(load_catalog())
    gen = SceneGenerator(held, 960)
    rng = np.random.default_rng(5)
    before, after = [], []
    for seed in (21, 22, 23):
        scene = gen.generate(seed, layout="scatter")
        truth = [c.quad for c in scene.cards if c.should_detect]
        rough = [
            q + rng.normal(0, 0.035 * geometry.card_height(q), (4, 2)).astype(np.float32)
            for q in truth
        ]
        refined = [r.quad for r in refiner.predict(scene.image, rough)]
        assert len(refined) == len(rough)
        before += [geometry.relative_corner_error(q, t) for q, t in zip(rough, truth, strict=True)]
        after += [geometry.relative_corner_error(q, t) for q, t in zip(refined, truth, strict=True)]
    assert len(before) >= 5
    assert np.mean(after) < 0.5 * np.mean(before)


def test_committed_refiner_with_no_cards_returns_nothing(refiner: CornerRefiner) -> None:
    assert refiner.predict(np.zeros((480, 640, 3), np.uint8), []) == []


def test_committed_int8_copy_refines_as_its_float_model_on_this_cpu(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On x86 CPUs without VNNI, a copy quantized with full-range weights put the corners 0.7 %
    of a card's height off its float model's (saturated 16-bit sums); 7-bit weights 0.08 %."""
    from models.base import INT8
    from models.settings import settings

    monkeypatch.setattr(settings, "int8", False)
    float_path = model_path()
    assert float_path is not None and float_path.with_suffix(INT8).exists()
    models = [CornerRefiner(p) for p in (float_path, float_path.with_suffix(INT8))]
    _, held = split_catalog(load_catalog())
    gen = SceneGenerator(held, 960)
    rng = np.random.default_rng(6)
    drift = []
    for seed in (24, 25, 26):
        scene = gen.generate(seed, layout="scatter")
        rough = [
            c.quad + rng.normal(0, 0.035 * geometry.card_height(c.quad), (4, 2)).astype(np.float32)
            for c in scene.cards
            if c.should_detect
        ]
        ref, got = ([r.quad for r in m.predict(scene.image, rough)] for m in models)
        drift += [geometry.relative_corner_error(a, b) for a, b in zip(got, ref, strict=True)]
    assert len(drift) >= 5
    assert np.mean(drift) < 0.003
