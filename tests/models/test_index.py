"""CatalogIndex: versioned artefact round trip, flat vs IVF, read-only copies without some cards."""

from __future__ import annotations

import json

import numpy as np
import pytest

import models.index as index_mod
from models.index import CatalogEntry, CatalogIndex, build_index, latest_version
from vision.errors import ModelNotReadyError


def _entries(n: int) -> list[CatalogEntry]:
    return [
        CatalogEntry(f"set-{i}", f"Card {i % (n // 2)}", "SET", str(i), "mtg", "", f"/x/{i}.jpg")
        for i in range(n)
    ]


def _vectors(n: int, dim: int = 16, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_build_then_load_finds_each_vector_first(tmp_path):
    vectors, entries = _vectors(200), _entries(200)
    out = build_index(vectors, entries, embedder_version="emb-test", index_dir=tmp_path)
    assert latest_version(tmp_path) == out
    meta = json.loads((out / "meta.json").read_text())
    assert meta["kind"] == "flat" and meta["count"] == 200 and meta["embedder"] == "emb-test"
    index = CatalogIndex(out)
    hits = index.search(vectors[[3, 150]], k=5)
    assert [h[0].entry.card_key for h in hits] == ["set-3", "set-150"]
    assert hits[0][0].score == pytest.approx(1.0, abs=1e-5)
    assert index.version == out.name


def test_same_name_lists_every_printing():
    index = CatalogIndex.from_arrays(_vectors(20), _entries(20))
    assert {e.card_key for e in index.same_name("card 3")} == {"set-3", "set-13"}


def test_without_forgets_cards(tmp_path):
    vectors = _vectors(50)
    index = CatalogIndex.from_arrays(vectors, _entries(50))
    smaller = index.without({"set-7"})
    assert len(smaller) == 49 and smaller.entry("set-7") is None
    assert smaller.search(vectors[7:8], k=1)[0][0].entry.card_key != "set-7"


def test_large_catalogs_use_ivf(monkeypatch, tmp_path):
    monkeypatch.setattr(index_mod, "FLAT_MAX", 1000)
    vectors = _vectors(3000, dim=32, seed=1)
    out = build_index(vectors, _entries(3000), embedder_version="e", index_dir=tmp_path)
    assert json.loads((out / "meta.json").read_text())["kind"] == "ivf"
    hits = CatalogIndex(out).search(vectors[:50], k=1)
    recall = np.mean([h[0].row == i for i, h in enumerate(hits)])
    assert recall >= 0.95


def test_missing_index_is_not_ready(tmp_path):
    with pytest.raises(ModelNotReadyError):
        latest_version(tmp_path / "nothing")


def test_vector_count_must_match_ids(tmp_path):
    with pytest.raises(ValueError):
        build_index(_vectors(3), _entries(4), embedder_version="e", index_dir=tmp_path)
