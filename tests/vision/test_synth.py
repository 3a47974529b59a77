"""Synthetic scenes: determinism, ground-truth corners in the card's own order, dataset files."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest

from vision.geometry import signed_area
from vision.layouts import place_cards
from vision.synth import (
    CARD_PX,
    CatalogCard,
    SceneGenerator,
    extra_layout,
    read_test_set,
    write_pose_dataset,
    write_test_set,
    yolo_pose_label,
)
from vision.warp import warp_card


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> list[CatalogCard]:
    """Three fake printings: grey cards with a red top-left quarter and a black border."""
    root = tmp_path_factory.mktemp("catalog")
    cards = []
    for i in range(3):
        w, h = CARD_PX
        img = np.full((h, w, 3), 120 + 40 * i, np.uint8)
        img[: h // 2, : w // 2] = (0, 0, 230)
        cv2.rectangle(img, (0, 0), (w - 1, h - 1), (0, 0, 0), 18)
        path = root / f"c{i}.jpg"
        cv2.imwrite(str(path), img)
        cards.append(CatalogCard(f"tst-{i}", path))
    return cards


def test_scenes_are_deterministic(catalog: list[CatalogCard]) -> None:
    gen = SceneGenerator(catalog, 320)
    a, b = gen.generate(7), SceneGenerator(catalog, 320).generate(7)
    assert np.array_equal(a.image, b.image)
    assert [c.card_key for c in a.cards] == [c.card_key for c in b.cards]
    assert not np.array_equal(a.image, gen.generate(8).image)


def test_ground_truth_corners_follow_the_printed_card(catalog: list[CatalogCard]) -> None:
    """Warping a visible card by its truth quad puts the red quarter at the crop's top-left."""
    gen = SceneGenerator(catalog, 480)
    right = []
    for seed in range(30):
        scene = gen.generate(seed, layout="scatter")
        for card in scene.cards:
            assert card.quad.shape == (4, 2) and signed_area(card.quad) > 0  # clockwise on screen
            if card.visible < 0.97:
                continue
            crop = warp_card(scene.image, card.quad).astype(int)
            tl, br = crop[100:280, 80:200].mean((0, 1)), crop[380:560, 260:380].mean((0, 1))
            right.append(tl[2] - tl[0] > br[2] - br[0] + 10)  # red at the card's own top-left
    # Glare and exposure can wash a card out; the order itself must be right nearly always.
    assert len(right) >= 10 and np.mean(right) >= 0.9


def test_visibility_flags_cards_hidden_or_cut(catalog: list[CatalogCard]) -> None:
    gen = SceneGenerator(catalog, 320)
    cards = [c for s in range(30) for c in gen.generate(s).cards]
    assert any(not c.should_detect for c in cards) and any(c.should_detect for c in cards)
    for c in cards:
        assert 0.0 <= c.visible <= 1.0
        inside = (c.quad >= 0).all(1)
        assert (c.corner_vis[~inside] == 0).all()


def test_a_deck_spreads_title_strips_are_labelled(catalog: list[CatalogCard]) -> None:
    """In a stack only the last card of a column shows whole; the others show their title strip,
    and each of those is labelled for training and ignored (never a false card) by evaluation."""
    gen = SceneGenerator(catalog, 480)
    strips = []
    for seed in range(20):
        scene = gen.generate(seed, layout="stack")
        h, w = scene.image.shape[:2]
        for c in scene.cards:
            if c.visible < 0.35 and c.title_visible >= 0.9:
                strips.append(c)
                assert yolo_pose_label(c, w, h) is not None
                assert c.ignored and not c.should_detect
            assert 0.0 <= c.title_visible <= 1.0
    assert len(strips) >= 10
    # A card whose title is covered, and most of the rest too, stays unlabelled.
    hidden = [
        c
        for seed in range(20)
        for c in gen.generate(seed, layout="pile").cards
        if c.visible < 0.35 and c.title_visible < 0.9
    ]
    assert hidden and all(yolo_pose_label(c, 480, 480) is None for c in hidden)
    with pytest.raises(ValueError, match="unknown layouts"):
        gen.generate(0, layout="heap")


def test_layouts_cover_the_brief(catalog: list[CatalogCard]) -> None:
    gen = SceneGenerator(catalog, 320)
    assert len(gen.generate(1, layout="binder").cards) >= 4
    assert gen.generate(1, layout="empty").cards == []
    counts = [len(gen.generate(s, layout="scatter").cards) for s in range(25)]
    assert min(counts) >= 1 and max(counts) >= 8 and max(counts) <= 12


def test_pose_label_is_normalised_with_clipped_hidden_corners(catalog: list[CatalogCard]) -> None:
    scene = SceneGenerator(catalog, 320).generate(3, layout="closeup")
    card = scene.cards[0]
    h, w = scene.image.shape[:2]
    values = [float(v) for v in yolo_pose_label(card, w, h).split()]
    assert len(values) == 5 + 4 * 3 and values[0] == 0
    coords = values[1:5] + [v for i, v in enumerate(values[5:]) if i % 3 != 2]
    assert all(0.0 <= v <= 1.0 for v in coords)
    assert all(v in (0, 1, 2) for v in values[7::3])


def test_datasets_are_written(catalog: list[CatalogCard], tmp_path: Path) -> None:
    yaml = write_pose_dataset(tmp_path / "pose", catalog, n_train=3, n_val=2, size=256)
    text = yaml.read_text()
    assert "kpt_shape: [4, 3]" in text and "flip_idx: [1, 0, 3, 2]" in text
    assert len(list((tmp_path / "pose" / "images" / "train").glob("*.jpg"))) == 3
    assert len(list((tmp_path / "pose" / "labels" / "val").glob("*.txt"))) == 2
    write_test_set(tmp_path / "test", catalog, n=3, size=256)
    records = read_test_set(tmp_path / "test" / "scenes.jsonl")
    rows = list(csv.DictReader((tmp_path / "test" / "labels.csv").open()))
    assert len(records) == len(rows) == 3
    for rec, row in zip(records, rows, strict=True):
        assert (tmp_path / "test" / row["photo"]).exists()
        shown = [c for c in rec["cards"] if c["should_detect"]]
        assert int(row["n_cards"]) == len(shown)
        assert row["cards"].split(";") == ([c["card_key"] for c in shown] or [""])


def test_zoom_scenes_show_the_inside_of_a_card_too_big_to_label(catalog: list[CatalogCard]) -> None:
    gen = SceneGenerator(catalog, 320)
    for seed in range(8):
        scene = gen.generate(seed, layout="zoom")
        h, w = scene.image.shape[:2]
        (card,) = scene.cards
        assert signed_area(card.quad) > 2 * w * h  # larger than the frame
        centre = np.array([w / 2, h / 2], np.float32)
        assert (
            cv2.pointPolygonTest(card.quad.reshape(-1, 1, 2), tuple(map(float, centre)), False) > 0
        )
    labelled = [
        yolo_pose_label(c, *s.image.shape[1::-1])
        for s in (gen.generate(seed, layout="zoom") for seed in range(20))
        for c in s.cards
    ]
    assert sum(label is None for label in labelled) >= 10  # most are no card to the detector


def test_tossed_cards_lie_at_any_angle_where_a_scatter_mostly_squares_them() -> None:
    def off_square(layout: str) -> float:
        """Share of cards turned 20-70 degrees off a right angle."""
        rng = np.random.default_rng(0)
        quads = [q for _ in range(60) for q in place_cards(layout, 1280, 960, rng)]
        edge = np.array([q[1] - q[0] for q in quads])
        angle = np.degrees(np.arctan2(edge[:, 1], edge[:, 0])) % 90
        return float(np.mean((angle > 20) & (angle < 70)))

    assert off_square("tossed") > 0.45  # uniform angles: 50 / 90 of them
    assert off_square("scatter") < 0.35  # 40 % free: about 0.22


def test_extra_layout_shares_force_some_training_scenes_and_leave_the_rest(
    catalog: list[CatalogCard], tmp_path: Path
) -> None:
    forced = [extra_layout(seed, {"zoom": 0.3, "pile": 0.2}) for seed in range(400)]
    assert 0.22 < forced.count("zoom") / 400 < 0.38 and 0.13 < forced.count("pile") / 400 < 0.27
    assert all(extra_layout(seed, {}) is None for seed in range(50))
    plain = write_pose_dataset(tmp_path / "plain", catalog, n_train=4, n_val=0, size=256)
    mixed = write_pose_dataset(
        tmp_path / "mixed", catalog, n_train=4, n_val=0, size=256, extra={"zoom": 0.5}
    )
    same = [
        (plain.parent / "labels" / "train" / f"{i:06d}.txt").read_text()
        == (mixed.parent / "labels" / "train" / f"{i:06d}.txt").read_text()
        for i in range(4)
    ]
    zoomed = [extra_layout(i, {"zoom": 0.5}) == "zoom" for i in range(4)]
    assert all(s for s, z in zip(same, zoomed, strict=True) if not z)  # unforced scenes unchanged
    with pytest.raises(ValueError, match="unknown layouts"):
        write_pose_dataset(tmp_path / "bad", catalog, n_train=1, n_val=0, extra={"columns": 0.1})
