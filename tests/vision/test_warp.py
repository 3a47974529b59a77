"""Perspective warp to the canonical crop, and the card window around a rough quad."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from vision.geometry import map_points
from vision.warp import CARD_SIZE, WINDOW_FILL, WINDOW_MARGIN, WINDOW_SIZE, card_window, warp_card


def _card() -> np.ndarray:
    """A 448x626 card whose top-left quarter is red and bottom-right quarter is blue."""
    w, h = CARD_SIZE
    card = np.full((h, w, 3), 200, np.uint8)
    card[: h // 2, : w // 2] = (0, 0, 255)
    card[h // 2 :, w // 2 :] = (255, 0, 0)
    return card


def _scene(quad: np.ndarray, size: tuple[int, int] = (900, 700)) -> np.ndarray:
    w, h = CARD_SIZE
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    hom = cv2.getPerspectiveTransform(src, quad.astype(np.float32))
    bg = np.full((size[1], size[0], 3), 40, np.uint8)
    return cv2.warpPerspective(_card(), hom, size, dst=bg, borderMode=cv2.BORDER_TRANSPARENT)


QUAD = np.float32([[300, 120], [560, 150], [540, 520], [270, 490]])


def test_warp_gives_the_canonical_size() -> None:
    crop = warp_card(_scene(QUAD), QUAD)
    assert crop.shape == (CARD_SIZE[1], CARD_SIZE[0], 3)


def test_warp_recovers_the_card() -> None:
    crop = warp_card(_scene(QUAD), QUAD)
    diff = np.abs(crop.astype(int) - _card().astype(int))[20:-20, 20:-20]
    assert np.median(diff) < 3


def test_warp_turns_an_upside_down_card_upright() -> None:
    upside_down = np.roll(QUAD, 2, 0)  # the card's TL is at the photo's bottom right
    scene = _scene(upside_down)
    crop = warp_card(scene, upside_down)
    h, w = CARD_SIZE[1], CARD_SIZE[0]
    assert crop[h // 4, w // 4, 2] > 200 and crop[h // 4, w // 4, 0] < 60  # red top-left
    assert crop[3 * h // 4, 3 * w // 4, 0] > 200  # blue bottom-right


def test_warp_of_a_large_card_is_not_aliased() -> None:
    big = QUAD * 6
    scene = _scene(big, (4000, 3200))
    crop = warp_card(scene, big)
    diff = np.abs(crop.astype(int) - _card().astype(int))[20:-20, 20:-20]
    assert np.median(diff) < 3


def test_warp_rejects_non_colour_images() -> None:
    with pytest.raises(ValueError):
        warp_card(np.zeros((10, 10), np.uint8), QUAD)


def _window_corners() -> np.ndarray:
    """Where a quad's corners land in its window: the margin in from each side."""
    w, h = WINDOW_SIZE
    m = WINDOW_MARGIN / (1 + 2 * WINDOW_MARGIN)
    return np.float32(
        [[m * w, m * h], [(1 - m) * w, m * h], [(1 - m) * w, (1 - m) * h], [m * w, (1 - m) * h]]
    )


def _white_quad(quad: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    image = np.zeros((size[1], size[0], 3), np.uint8)
    cv2.fillConvexPoly(image, np.round(quad * 16).astype(np.int32), (255, 255, 255), cv2.LINE_AA, 4)
    return image


def test_window_homography_maps_the_quad_inside_the_margin_and_back() -> None:
    crop, hom = card_window(_scene(QUAD), QUAD)
    assert crop.shape == (WINDOW_SIZE[1], WINDOW_SIZE[0], 3)
    np.testing.assert_allclose(map_points(QUAD, hom), _window_corners(), atol=1e-3)
    np.testing.assert_allclose(map_points(_window_corners(), np.linalg.inv(hom)), QUAD, atol=1e-2)


@pytest.mark.parametrize("zoom", [1, 6])  # 6: the card is area-downscaled before the warp
def test_a_drawn_quad_lands_where_the_window_says(zoom: int) -> None:
    """The white card's extent and centre across the window's middle row and column, to subpixel."""
    crop, _ = card_window(_white_quad(QUAD * zoom, (900 * zoom, 700 * zoom)), QUAD * zoom)
    cover = crop[..., 0].astype(np.float64) / 255
    corners = _window_corners()
    w, h = WINDOW_SIZE
    for profile, lo, hi in (
        (cover[h // 2], corners[0, 0], corners[1, 0]),
        (cover[:, w // 2], corners[0, 1], corners[2, 1]),
    ):
        centre = (profile * np.arange(len(profile))).sum() / profile.sum()
        # fillConvexPoly paints its boundary pixels too: about one photo pixel wider.
        assert profile.sum() == pytest.approx(hi - lo, abs=0.75)
        assert centre == pytest.approx((lo + hi) / 2, abs=0.2)  # pixel centres at integers


def test_window_of_a_large_card_matches_the_small_one() -> None:
    """The area-downscaled path puts the card where the plain warp does (no half-pixel shift)."""
    small, _ = card_window(_white_quad(QUAD, (900, 700)), QUAD)
    big, _ = card_window(_white_quad(QUAD * 6, (5400, 4200)), QUAD * 6)
    diff = np.abs(small.astype(int) - big.astype(int))
    assert diff.mean() < 2.0


def test_windows_cut_from_the_shrunk_photo_match_their_own_region() -> None:
    """One shrunk copy of the photo serves cards of similar size, with the same windows."""
    photo = _white_quad(QUAD * 6, (5400, 4200))
    shrunk: dict[int, np.ndarray] = {}
    own, _ = card_window(photo, QUAD * 6)
    shared, _ = card_window(photo, QUAD * 6, shrunk=shrunk)
    assert np.abs(own.astype(int) - shared.astype(int)).mean() < 2.0
    smaller, _ = card_window(photo, QUAD * 4.5 + 300, shrunk=shrunk)  # 0.75x: the same copy
    assert len(shrunk) == 1 and smaller.shape == own.shape
    card_window(photo, QUAD * 3, shrunk=shrunk)  # 0.5x: a copy of its own
    assert len(shrunk) == 2


def test_window_of_an_upside_down_card_is_upright() -> None:
    crop, _ = card_window(_scene(np.roll(QUAD, 2, 0)), np.roll(QUAD, 2, 0))
    h, w = WINDOW_SIZE[1], WINDOW_SIZE[0]
    assert crop[h // 3, w // 3, 2] > 200 and crop[h // 3, w // 3, 0] < 60  # red top-left


def test_window_outside_the_photo_is_grey() -> None:
    off = QUAD - [QUAD[:, 0].min() + 60, 0]  # the card's left part lies beyond the photo
    crop, _ = card_window(_scene(QUAD), off)
    assert (crop[:, :5] == WINDOW_FILL).all()


def test_warp_of_fine_detail_much_larger_than_the_crop_does_not_alias() -> None:
    # One-pixel stripes on a card six times the crop's size: sampled without averaging first,
    # every crop row would land on a black or a white stripe at random.
    w, h = CARD_SIZE
    scene = np.zeros((h * 6 + 40, w * 6 + 40, 3), np.uint8)
    scene[::2] = 255
    quad = np.float32([[20, 20], [20 + w * 6, 20], [20 + w * 6, 20 + h * 6], [20, 20 + h * 6]])
    crop = warp_card(scene, quad)[10:-10, 10:-10]
    assert abs(float(crop.mean()) - 127.5) < 8
    assert float(crop.std()) < 10
