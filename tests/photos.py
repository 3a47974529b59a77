"""Synthetic photos and hostile files for scan tests (no card art is copied into the repo)."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

DSK_PHOTOS = (
    Path(__file__).resolve().parent.parent.parent
    / "shared"
    / "data"
    / "photos"
    / "images"
    / "dsk_nextdoorpsycho"
)


def photo(seed: int = 0, *, size: tuple[int, int] = (320, 240), fmt: str = "JPEG") -> bytes:
    """A small deterministic image (a light card-shaped rectangle on noise); `seed` varies it."""
    rng = np.random.default_rng(seed)
    w, h = size
    pixels = rng.integers(0, 120, size=(h, w, 3), dtype=np.uint8)
    pixels[h // 6 : h - h // 6, w // 4 : w - w // 4] = rng.integers(150, 255, size=3)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format=fmt)
    return buf.getvalue()


def corrupt_jpeg(seed: int = 0) -> bytes:
    """A JPEG whose header is intact and whose entropy-coded data is cut short and garbled."""
    data = photo(seed, size=(400, 300))
    return data[: len(data) // 3] + bytes(range(256)) * 4


def truncated_png(seed: int = 0) -> bytes:
    data = photo(seed, size=(400, 300), fmt="PNG")
    return data[: len(data) // 2]


def bomb_png(width: int = 30_000, height: int = 30_000) -> bytes:
    """A small PNG whose header claims width x height pixels (a decompression bomb)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body))
            + kind
            + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    # One row of zeros per scanline would be huge; a few compressed rows are enough to parse.
    rows = zlib.compress(b"\x00" * (width * 3 + 1) * 4, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def text_as_jpg() -> bytes:
    return b"this is not a photo of a card, whatever its name says\n" * 20


def dsk_photo() -> bytes:
    """A real Duskmourn photo from the shared data (read in place, never copied)."""
    return sorted(DSK_PHOTOS.glob("*.jpg"))[0].read_bytes()
