"""Card orienter: the committed model tells upright cards from upside-down ones on scenes of
printings it never saw."""

from __future__ import annotations

import numpy as np

from models.orienter import CardOrienter
from vision.synth import SceneGenerator, load_catalog, split_catalog


def test_committed_model_tells_upside_down_cards_on_held_out_scenes() -> None:
    _, held = split_catalog(load_catalog())
    gen = SceneGenerator(held, 960)
    orienter = CardOrienter()
    orienter.warmup()
    upright, turned = [], []
    for seed in (21, 22, 23, 24):
        scene = gen.generate(seed)
        quads = [c.quad for c in scene.cards if c.should_detect]
        upright += list(orienter.predict(scene.image, quads))
        turned += list(orienter.predict(scene.image, [q[[2, 3, 0, 1]] for q in quads]))
    assert len(upright) >= 8
    assert np.mean(np.asarray(upright) < 0.5) >= 0.9
    assert np.mean(np.asarray(turned) >= 0.5) >= 0.9


def test_no_cards_no_answers() -> None:
    orienter = CardOrienter()
    assert orienter.predict(np.zeros((100, 100, 3), np.uint8), []).shape == (0,)
