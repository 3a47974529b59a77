"""Perspective warp to the canonical crop, and corner refinement on image edges."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from vision.geometry import corner_error
from vision.refine import refine_quad
from vision.warp import CARD_SIZE, warp_card


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


def test_refine_snaps_a_shifted_quad_to_the_card_edges() -> None:
    scene = _scene(QUAD)
    rng = np.random.default_rng(0)
    guess = QUAD + rng.uniform(-6, 6, (4, 2)).astype(np.float32)
    refined = refine_quad(scene, guess)
    assert corner_error(refined, QUAD) < 1.5 < corner_error(guess, QUAD)


def test_refine_keeps_the_quad_when_there_is_no_edge() -> None:
    flat = np.full((700, 900, 3), 128, np.uint8)
    guess = QUAD + 3
    np.testing.assert_allclose(refine_quad(flat, guess), guess)


def test_refine_keeps_the_corner_order() -> None:
    upside_down = np.roll(QUAD, 2, 0)
    refined = refine_quad(_scene(upside_down), upside_down + 2)
    assert corner_error(refined, upside_down) < 1.5
