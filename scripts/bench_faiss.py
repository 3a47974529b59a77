"""FAISS at catalog scale: search latency and recall@1 against exact search, build time, memory.

Vectors are synthetic but shaped like card embeddings: L2-normalised, in tight clusters (the
printings of one card and its reprints sit close together), queried with a noisy copy of a
stored vector (a photo of a catalogued card).
"""

from __future__ import annotations

import gc
import statistics
import time
from dataclasses import dataclass

import numpy as np


def clustered_vectors(n: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    """n unit vectors in n/4 clusters (4 printings per card, like reprints sharing art)."""
    centers = rng.standard_normal((max(1, n // 4), dim), dtype=np.float32)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    out = np.empty((n, dim), np.float32)
    step = 200_000  # bounded temporaries at 1M
    for start in range(0, n, step):
        idx = rng.integers(0, len(centers), min(step, n - start))
        # Per-dimension noise scaled by 1/sqrt(dim): a printing sits at cosine ~0.94 from its card.
        spread = 0.35 / np.sqrt(dim)
        block = centers[idx] + spread * rng.standard_normal((len(idx), dim), dtype=np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[start : start + len(idx)] = block
    return out


@dataclass
class FaissResult:
    n: int
    kind: str
    build_s: float
    memory_mb: float
    p50_ms: float
    p95_ms: float
    recall_at_1: float


def bench_faiss(n: int, *, dim: int = 256, queries: int = 500, seed: int = 0) -> FaissResult:
    """Build the index `cardscan index build` would choose for n vectors and measure it."""
    import faiss

    from models.index import make_faiss_index

    rng = np.random.default_rng(seed)
    base = clustered_vectors(n, dim, rng)
    picks = rng.integers(0, n, queries)
    # A photo of a catalogued printing: cosine ~0.99 to its stored vector.
    q = base[picks] + (0.15 / np.sqrt(dim)) * rng.standard_normal((queries, dim), dtype=np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)

    gc.collect()
    t0 = time.perf_counter()
    index = make_faiss_index(base)
    build_s = time.perf_counter() - t0
    # The serialised size is what the index holds in memory (vectors, lists, centroids).
    memory_mb = faiss.serialize_index(index).nbytes / 2**20

    exact = faiss.IndexFlatIP(dim)
    exact.add(base)
    _, truth = exact.search(q, 1)
    del exact

    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)  # one query at a time, as the matcher asks
    times, hits = [], 0
    for i in range(queries):
        t = time.perf_counter()
        _, ids = index.search(q[i : i + 1], 1)
        times.append((time.perf_counter() - t) * 1000)
        hits += int(ids[0, 0] == truth[i, 0])
    faiss.omp_set_num_threads(threads)
    kind = type(index).__name__
    return FaissResult(
        n=n,
        kind=kind,
        build_s=build_s,
        memory_mb=memory_mb,
        p50_ms=statistics.median(times),
        p95_ms=float(np.percentile(times, 95)),
        recall_at_1=hits / queries,
    )
