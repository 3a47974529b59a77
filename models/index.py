"""Catalog index: a versioned FAISS artefact of catalog embeddings plus its id map, read-only.

Layout of one version under `settings.index_dir`:
    <version>/index.faiss   inner-product index over L2-normalised embeddings
    <version>/ids.json      row i -> {card_key, name, set_code, number, game, variant, image}
    <version>/meta.json     embedder version, count, kind (flat / ivf), build time
    <version>/features.npz  local features of each reference image (optional, for verification)
    LATEST                  the version a worker loads when none is named
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from models.base import Model
from models.settings import settings
from vision.errors import ModelNotReadyError

FLAT_MAX = 20_000  # flat search stays near 1 ms per query below this (8 ms at 100k)


@dataclass(frozen=True)
class CatalogEntry:
    """One printing as the index knows it; `image` is the reference image (path or storage key)."""

    card_key: str
    name: str
    set_code: str
    number: str
    game: str
    variant: str
    image: str


@dataclass(frozen=True)
class Hit:
    row: int
    score: float  # cosine similarity, -1..1
    entry: CatalogEntry


def _faiss():  # noqa: ANN202
    import faiss

    # https://github.com/facebookresearch/faiss/wiki/Threads-and-asynchronous-calls: the default
    # threshold sends small batches through a slow path; 16 keeps batched flat search fast.
    faiss.cvar.distance_compute_blas_threshold = 16
    return faiss


def latest_version(index_dir: Path | None = None) -> Path:
    """Directory of the version named in LATEST (or the newest one)."""
    root = index_dir or settings.index_dir
    pointer = root / "LATEST"
    if pointer.exists():
        return root / pointer.read_text().strip()
    versions = (
        sorted(p for p in root.glob("*") if (p / "index.faiss").exists()) if root.exists() else []
    )
    if not versions:
        raise ModelNotReadyError(f"no catalog index under {root}; run `cardscan index build`")
    return versions[-1]


class CatalogIndex(Model):
    """Nearest catalog printings of embeddings; loaded once, never mutated in a worker."""

    name = "index"

    def __init__(self, path: Path | None = None) -> None:
        super().__init__(path)
        self._index: Any = None  # faiss.Index once loaded
        self.entries: list[CatalogEntry] = []
        self.meta: dict = {}
        self._by_key: dict[str, int] = {}
        self._by_name: dict[str, list[int]] = {}
        self._features: dict | None = None

    @property
    def version(self) -> str:
        return self.path.name if self.path is not None else "unloaded"

    def load(self) -> None:
        if self.path is None:
            self.path = latest_version()
        super().load()

    def _load(self) -> None:
        assert self.path is not None  # set by load()
        faiss = _faiss()
        index = faiss.read_index(str(self.path / "index.faiss"), faiss.IO_FLAG_READ_ONLY)
        entries = [CatalogEntry(**e) for e in json.loads((self.path / "ids.json").read_text())]
        meta = json.loads((self.path / "meta.json").read_text())
        self._set(index, entries, meta)

    def _set(self, index, entries: list[CatalogEntry], meta: dict) -> None:  # noqa: ANN001
        if index.ntotal != len(entries):
            raise ModelNotReadyError(
                f"index {self.path}: {index.ntotal} vectors, {len(entries)} ids"
            )
        if hasattr(index, "nprobe"):
            index.nprobe = 16
        self._index, self.entries, self.meta = index, entries, meta
        self._by_key = {e.card_key: i for i, e in enumerate(entries)}
        self._by_name = {}
        for i, e in enumerate(entries):
            self._by_name.setdefault(e.name.casefold(), []).append(i)

    @classmethod
    def from_arrays(
        cls,
        vectors: np.ndarray,
        entries: list[CatalogEntry],
        meta: dict | None = None,
    ) -> CatalogIndex:
        """An in-memory index (tests, calibration runs with cards left out)."""
        self = cls()
        self.path = Path("memory")
        self._set(make_faiss_index(vectors), entries, meta or {})
        self._loaded = True
        return self

    def without(self, card_keys: set[str]) -> CatalogIndex:
        """A copy that does not know these printings (to test cards missing from the catalog)."""
        self.load()
        keep = [i for i, e in enumerate(self.entries) if e.card_key not in card_keys]
        vectors = np.stack([self._index.reconstruct(i) for i in keep])
        return CatalogIndex.from_arrays(vectors, [self.entries[i] for i in keep], dict(self.meta))

    def reference_features(self, card_key: str) -> tuple[np.ndarray, np.ndarray] | None:
        """Precomputed (points (K, 2) float32, descriptors (K, 32) uint8) of a reference image."""
        self.load()
        if self._features is None:
            path = self.path / "features.npz" if self.path is not None else None
            self._features = {}
            if path is not None and path.exists():
                data = np.load(path)
                offsets, points, desc = data["offsets"], data["points"], data["descriptors"]
                for i, e in enumerate(self.entries):
                    a, b = offsets[i], offsets[i + 1]
                    self._features[e.card_key] = (points[a:b].astype(np.float32), desc[a:b])
        return self._features.get(card_key)

    def __len__(self) -> int:
        self.load()
        return len(self.entries)

    def entry(self, card_key: str) -> CatalogEntry | None:
        self.load()
        i = self._by_key.get(card_key)
        return None if i is None else self.entries[i]

    def same_name(self, name: str) -> list[CatalogEntry]:
        """Every printing with this name (reprints, borderless and showcase versions)."""
        self.load()
        return [self.entries[i] for i in self._by_name.get(name.casefold(), [])]

    def _predict(self, queries: np.ndarray, k: int | None = None) -> list[list[Hit]]:
        """(N, D) float32 unit vectors -> N lists of the k most similar printings, best first."""
        faiss = _faiss()
        queries = np.ascontiguousarray(queries, np.float32)
        # One query gains nothing from OpenMP threads and pays their start-up on every call.
        # A photo's few crops gain nothing from OpenMP threads and pay their spin-up (badly so on
        # shared cores); only big batches (index builds, benchmarks) use every core.
        faiss.omp_set_num_threads(1 if len(queries) < 64 else max(1, os.cpu_count() or 1))
        scores, rows = self._index.search(queries, min(k or settings.top_k, len(self.entries)))
        return [
            [
                Hit(int(r), float(s), self.entries[r])
                for s, r in zip(srow, rrow, strict=True)
                if r >= 0
            ]
            for srow, rrow in zip(scores, rows, strict=True)
        ]

    def search(self, queries: np.ndarray, k: int | None = None) -> list[list[Hit]]:
        return self.predict(queries, k)


def make_faiss_index(vectors: np.ndarray):  # noqa: ANN201
    """Flat inner product below FLAT_MAX vectors, IVF (nlist ~ 4 sqrt(n), max 1024) above."""
    faiss = _faiss()
    vectors = np.ascontiguousarray(vectors, np.float32)
    n, dim = vectors.shape
    if n <= FLAT_MAX:
        index = faiss.IndexFlatIP(dim)
    else:
        nlist = min(1024, int(4 * np.sqrt(n)))
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.train(vectors)
        index.nprobe = 16
    index.add(vectors)
    return index


def build_index(
    vectors: np.ndarray,
    entries: list[CatalogEntry],
    *,
    embedder_version: str,
    index_dir: Path | None = None,
    source: str = "",
    version: str | None = None,
) -> Path:
    """Write a new index version and point LATEST at it; returns the version directory."""
    faiss = _faiss()
    if len(vectors) != len(entries):
        raise ValueError(f"{len(vectors)} vectors for {len(entries)} entries")
    root = index_dir or settings.index_dir
    version = version or f"{embedder_version}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"
    out = root / version
    out.mkdir(parents=True, exist_ok=True)
    index = make_faiss_index(vectors)
    faiss.write_index(index, str(out / "index.faiss"))
    (out / "ids.json").write_text(json.dumps([asdict(e) for e in entries]), encoding="utf-8")
    meta = {
        "version": version,
        "embedder": embedder_version,
        "count": len(entries),
        "dim": int(vectors.shape[1]),
        "kind": "flat" if len(entries) <= FLAT_MAX else "ivf",
        "source": source,
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    tmp = root / "LATEST.tmp"
    tmp.write_text(version)
    os.replace(tmp, root / "LATEST")
    return out


def save_reference_features(
    out: Path, features: list[tuple[np.ndarray, np.ndarray | None]]
) -> None:
    """Store per-entry (points (K, 2), ORB descriptors (K, 32)) in row order as features.npz."""
    counts = [0 if d is None else len(d) for _, d in features]
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    points = np.concatenate(
        [p[: len(d)] for p, d in features if d is not None] or [np.zeros((0, 2))]
    )
    desc = np.concatenate(
        [d for _, d in features if d is not None] or [np.zeros((0, 32), np.uint8)]
    )
    np.savez(
        out / "features.npz",
        offsets=offsets,
        points=points.astype(np.float16),
        descriptors=desc.astype(np.uint8),
    )
