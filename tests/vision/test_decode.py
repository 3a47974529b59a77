"""Decoding: sniffing, pixel budget before decoding, orientation, colour modes, hostile bytes."""

from __future__ import annotations

import io
import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from vision.decode import decode_image, sniff_image
from vision.errors import (
    DecodeError,
    EmptyUploadError,
    ImageTooLargeError,
    ScanError,
    UnsupportedMediaError,
)


def _encode(img: Image.Image, fmt: str, **kw) -> bytes:  # noqa: ANN003
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _left_white(w: int = 40, h: int = 20) -> Image.Image:
    a = np.zeros((h, w, 3), np.uint8)
    a[:, : w // 2] = 255
    return Image.fromarray(a)


@pytest.mark.parametrize(
    "fmt,media",
    [("JPEG", "image/jpeg"), ("PNG", "image/png"), ("WEBP", "image/webp"), ("HEIF", "image/heic")],
)
def test_sniff_and_decode_each_format(fmt: str, media: str) -> None:
    if fmt == "HEIF":
        from pillow_heif import register_heif_opener

        register_heif_opener()
    data = _encode(Image.new("RGB", (64, 48), (10, 200, 30)), fmt)
    info = sniff_image(data, max_pixels=10_000)
    assert (info.media_type, info.width, info.height) == (media, 64, 48)
    out = decode_image(data, max_pixels=10_000)
    assert out.shape == (48, 64, 3) and out.dtype == np.uint8
    assert np.abs(out[24, 32].astype(int) - [30, 200, 10]).max() < 12  # BGR order


def test_type_is_judged_from_bytes_not_name() -> None:
    with pytest.raises(UnsupportedMediaError):
        sniff_image(b"GIF89a" + b"\x00" * 100, max_pixels=100)
    with pytest.raises(UnsupportedMediaError):
        decode_image(b"%PDF-1.7 not an image", max_pixels=100)


def test_empty_upload() -> None:
    with pytest.raises(EmptyUploadError):
        decode_image(b"", max_pixels=100)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_exif_orientation_is_applied(fmt: str) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise
    out = decode_image(_encode(_left_white(), fmt, exif=exif), max_pixels=10_000)
    assert out.shape == (40, 20, 3)
    assert out[2].mean() > 200 and out[-3].mean() < 50  # the white left half is now on top


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png_bomb(width: int, height: int) -> bytes:
    """A few hundred bytes that claim width x height pixels (a zlib stream of zeros)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 100_000, 9)
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
    )


def test_pixel_bomb_is_refused_from_the_header() -> None:
    bomb = _png_bomb(30_000, 30_000)
    with pytest.raises(ImageTooLargeError):
        sniff_image(bomb, max_pixels=50_000_000)
    with pytest.raises(ImageTooLargeError):
        decode_image(bomb, max_pixels=50_000_000)


def test_cmyk_jpeg_becomes_bgr() -> None:
    data = _encode(Image.new("CMYK", (32, 32), (0, 255, 255, 0)), "JPEG")  # pure red in CMYK
    out = decode_image(data, max_pixels=10_000)
    assert out.shape == (32, 32, 3)
    b, g, r = out[16, 16].astype(int)
    assert r > 200 and g < 60 and b < 60


def test_sixteen_bit_grayscale_png() -> None:
    a = np.full((10, 12), 65535, np.uint16)
    a[:, :6] = 0
    out = decode_image(_encode(Image.fromarray(a), "PNG"), max_pixels=10_000)
    assert out.shape == (10, 12, 3)
    assert out[5, 1].max() < 5 and out[5, 10].min() > 250


def test_palette_and_alpha_pngs() -> None:
    pal = Image.new("RGB", (8, 8), (0, 0, 255)).convert("P")
    assert tuple(decode_image(_encode(pal, "PNG"), max_pixels=1000)[4, 4]) == (255, 0, 0)
    rgba = Image.new("RGBA", (8, 8), (0, 0, 0, 0))  # fully transparent: composited on white
    assert decode_image(_encode(rgba, "PNG"), max_pixels=1000).min() == 255
    gray = Image.new("L", (8, 8), 77)
    assert decode_image(_encode(gray, "PNG"), max_pixels=1000).shape == (8, 8, 3)


def test_animated_webp_gives_first_frame() -> None:
    frames = [Image.new("RGB", (16, 16), c) for c in ((255, 0, 0), (0, 255, 0))]
    buf = io.BytesIO()
    frames[0].save(buf, "WEBP", save_all=True, append_images=frames[1:], lossless=True)
    out = decode_image(buf.getvalue(), max_pixels=1000)
    assert tuple(out[8, 8]) == (0, 0, 255)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_truncated_files_are_decode_errors(fmt: str) -> None:
    rng = np.random.default_rng(0)
    data = _encode(Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)), fmt)
    with pytest.raises(DecodeError):
        decode_image(data[: len(data) // 2], max_pixels=10_000)


def test_jpeg_with_trailing_bytes_still_decodes() -> None:
    data = _encode(Image.new("RGB", (16, 16), (200, 10, 10)), "JPEG") + b"SEFT trailer" * 10
    assert decode_image(data, max_pixels=1000).shape == (16, 16, 3)


def test_corrupted_bytes_raise_only_scan_errors() -> None:
    rng = np.random.default_rng(1)
    ok, buf = cv2.imencode(".jpg", rng.integers(0, 255, (48, 48, 3), dtype=np.uint8))
    sources = [
        buf.tobytes(),
        _encode(Image.new("RGB", (48, 48), (1, 2, 3)), "PNG"),
        _encode(Image.new("RGB", (48, 48), (1, 2, 3)), "WEBP"),
    ]
    for src in sources:
        for _ in range(60):
            data = bytearray(src)
            for pos in rng.integers(0, len(data), int(rng.integers(1, 20))):
                data[pos] = int(rng.integers(0, 256))
            cut = bytes(data[: int(rng.integers(1, len(data) + 1))])
            try:
                out = decode_image(cut, max_pixels=10_000)
            except ScanError:
                continue
            assert out.ndim == 3 and out.shape[2] == 3 and out.dtype == np.uint8


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_turns_a_jpeg_as_pil_does(orientation: int) -> None:
    rng = np.random.default_rng(orientation)
    pixels = np.kron(rng.integers(0, 256, (3, 4, 3), dtype=np.uint8), np.ones((8, 8, 1), np.uint8))
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = _encode(Image.fromarray(pixels), "JPEG", exif=exif, quality=95)
    want = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))))[..., ::-1]
    out = decode_image(data, max_pixels=10_000)
    assert out.shape == want.shape
    assert np.abs(out.astype(int) - want).mean() < 3
