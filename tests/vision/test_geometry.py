"""Quad geometry: ordering, IoU, corner error, letterbox mapping, matching."""

from __future__ import annotations

import numpy as np
import pytest

from vision import geometry

SQUARE = np.float32([[0, 0], [10, 0], [10, 10], [0, 10]])


def test_order_clockwise_from_any_shuffle() -> None:
    quad = np.float32([[12, 5], [40, 8], [38, 50], [10, 47]])
    rng = np.random.default_rng(0)
    for _ in range(10):
        shuffled = quad[rng.permutation(4)]
        np.testing.assert_allclose(geometry.order_clockwise(shuffled), quad)


def test_signed_area_is_positive_for_clockwise_on_screen() -> None:
    assert geometry.signed_area(SQUARE) == pytest.approx(100)
    assert geometry.signed_area(SQUARE[::-1]) == pytest.approx(-100)


def test_make_clockwise_keeps_the_first_corner() -> None:
    anti = SQUARE[[2, 1, 0, 3]]  # starts at BR, runs anticlockwise
    out = geometry.make_clockwise(anti)
    np.testing.assert_allclose(out[0], SQUARE[2])
    assert geometry.signed_area(out) > 0


def test_portrait_start_rolls_a_landscape_start_but_keeps_the_near_end() -> None:
    card = np.float32([[0, 0], [63, 0], [63, 88], [0, 88]])
    long_first = card[[3, 0, 1, 2]]  # starts at BL: first edge BL->TL is a long side
    out = geometry.portrait_start(long_first)
    assert np.linalg.norm(out[1] - out[0]) == pytest.approx(63)
    np.testing.assert_allclose(out[0], card[2])  # of TL and BR, BR is nearer to BL
    np.testing.assert_allclose(geometry.portrait_start(card), card)


def test_quad_iou() -> None:
    assert geometry.quad_iou(SQUARE, SQUARE) == pytest.approx(1.0)
    assert geometry.quad_iou(SQUARE, SQUARE + 20) == 0.0
    assert geometry.quad_iou(SQUARE, SQUARE + [5, 0]) == pytest.approx(50 / 150)
    assert geometry.quad_iou(SQUARE, np.roll(SQUARE, 2, 0)) == pytest.approx(1.0)  # order-free


def test_corner_error_depends_on_order() -> None:
    assert geometry.corner_error(SQUARE, SQUARE + [3, 4]) == pytest.approx(5.0)
    card = np.float32([[0, 0], [63, 0], [63, 88], [0, 88]])
    assert geometry.relative_corner_error(card + [0, 8.8], card) == pytest.approx(0.1)
    upside_down = np.roll(card, 2, 0)
    assert geometry.relative_corner_error(upside_down, card) > 0.5


def test_unletterbox_inverts_scale_and_pad() -> None:
    pts = np.float32([[100, 50], [400, 300]])
    scale, pad = 0.08, (0.0, 40.0)
    boxed = pts * scale + pad
    np.testing.assert_allclose(geometry.unletterbox(boxed, scale, pad), pts, atol=1e-3)


def test_match_quads_is_one_to_one() -> None:
    truth = [SQUARE, SQUARE + 100]
    pred = [SQUARE + [0.5, 0], SQUARE + [0.2, 0], SQUARE + 300]
    matched = geometry.match_quads(pred, truth, 0.8)
    assert [(i, j) for i, j, _ in matched] == [(1, 0)]


def test_is_convex() -> None:
    assert geometry.is_convex(SQUARE)
    assert not geometry.is_convex(SQUARE[[0, 2, 1, 3]])  # a bow tie


def test_near_frame_flags_corners_past_or_at_the_photos_edge() -> None:
    quad = np.array([[100, 120], [352, 120], [352, 299], [100, 420]], np.float32)
    assert geometry.near_frame(quad, 400, 300).tolist() == [False, False, True, True]
    assert not geometry.near_frame(quad, 400, 500).any()


def test_extend_to_aspect_moves_doubtful_corners_out_to_the_cards_shape() -> None:
    # A 63 x 88 card (scaled by 4), upright, its bottom half below a 400 x 300 photo; the
    # model's far corners sit on the frame's bottom edge.
    card = np.array([[100, 120], [352, 120], [352, 472], [100, 472]], np.float32)
    pulled_in = card.copy()
    pulled_in[2:, 1] = 299
    extended = geometry.extend_to_aspect(pulled_in, geometry.near_frame(pulled_in, 400, 300))
    np.testing.assert_allclose(extended, card, atol=0.5)
    # Lying on its side (the sure corners span a long side): the short sides grow instead.
    turned = np.array([[120, 100], [120, 352], [-232, 352], [-232, 100]], np.float32)
    pulled = turned.copy()
    pulled[2:, 0] = 30
    doubtful = np.array([False, False, True, True])
    np.testing.assert_allclose(geometry.extend_to_aspect(pulled, doubtful), turned, atol=0.5)


def test_extend_to_aspect_leaves_other_quads_alone() -> None:
    card = np.array([[100, 120], [352, 120], [352, 600], [100, 600]], np.float32)
    for doubtful in ([0, 0, 0, 0], [0, 0, 1, 0], [0, 1, 1, 1], [1, 0, 1, 0]):  # not a side
        assert geometry.extend_to_aspect(card, np.array(doubtful, bool)) is card
    # Sides already longer than the aspect's length (perspective does that) are not shortened.
    longer = geometry.extend_to_aspect(card, np.array([0, 0, 1, 1], bool))
    np.testing.assert_array_equal(longer, card)
    # Sides converging so fast that, lengthened, they would cross: no bow tie comes back.
    kite = np.array([[0, 0], [100, 0], [70, 40], [30, 40]], np.float32)
    assert geometry.extend_to_aspect(kite, np.array([0, 0, 1, 1], bool)) is kite
