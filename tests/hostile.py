"""A corpus of hostile and awkward upload files, generated (no binary blobs in the repo).

Each entry is (name, bytes, expectation): "ok" must decode, "reject" must be refused with a
ScanError (4xx at upload or a failed scan with a reason), "either" may go either way but must
never crash, hang or 500.
"""

from __future__ import annotations

import io
import zipfile

import numpy as np
from PIL import Image

from tests.photos import bomb_png

OK, REJECT, EITHER = "ok", "reject", "either"


def _img(mode: str = "RGB", size=(64, 48), color=(200, 30, 30)) -> Image.Image:
    if mode in {"RGB", "RGBA", "CMYK"}:
        return Image.new("RGB", size, color[:3]).convert(mode)
    return Image.new("RGB", size, color[:3]).convert(mode)


def _save(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _exif_rotated() -> bytes:
    img = _img(size=(80, 40))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    return _save(img, "JPEG", exif=exif.tobytes())


def corpus() -> list[tuple[str, bytes, str]]:
    """At least 50 files covering what DESIGN.md and issue 8 list."""
    rng = np.random.default_rng(7)
    jpeg = _save(_img(), "JPEG", quality=90)
    png = _save(_img(), "PNG")
    webp = _save(_img(), "WEBP")
    noise = Image.fromarray(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8))
    files: list[tuple[str, bytes, str]] = [
        ("plain.jpg", jpeg, OK),
        ("plain.png", png, OK),
        ("plain.webp", webp, OK),
        ("noise.jpg", _save(noise, "JPEG"), OK),
        ("progressive.jpg", _save(noise, "JPEG", progressive=True), OK),
        ("cmyk.jpg", _save(_img("CMYK"), "JPEG"), OK),
        ("gray.jpg", _save(_img("L"), "JPEG"), OK),
        ("gray.png", _save(_img("L"), "PNG"), OK),
        ("rgba.png", _save(_img("RGBA"), "PNG"), OK),
        ("la.png", _save(_img("LA"), "PNG"), OK),
        ("palette.png", _save(_img("P"), "PNG"), OK),
        ("bilevel.png", _save(_img("1"), "PNG"), OK),
        ("16bit.png", _save(Image.fromarray(np.full((40, 50), 40000, np.uint16)), "PNG"), OK),
        ("rgba.webp", _save(_img("RGBA"), "WEBP"), OK),
        ("lossless.webp", _save(_img(), "WEBP", lossless=True), OK),
        ("exif_rotated.jpg", _exif_rotated(), OK),
        ("one_pixel.png", _save(_img(size=(1, 1)), "PNG"), OK),
        ("wide_strip.png", _save(_img(size=(4000, 2)), "PNG"), OK),
        ("named.txt", jpeg, OK),  # the type comes from the bytes, never the name
        ("empty.jpg", b"", REJECT),
        ("text.jpg", b"hello, I am not a photo\n" * 20, REJECT),
        ("html.png", b"<html><script>alert(1)</script></html>", REJECT),
        ("zip.jpg", _zip_bytes(), REJECT),
        ("pdf.jpg", b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF", REJECT),
        ("gif.jpg", _save(_img("P"), "GIF"), REJECT),
        ("animated.gif", _animated_gif(), REJECT),
        ("bmp.jpg", _save(_img(), "BMP"), REJECT),
        ("tiff.jpg", _save(_img(), "TIFF"), REJECT),
        ("svg.png", b"<?xml version='1.0'?><svg xmlns='http://www.w3.org/2000/svg'/>", REJECT),
        ("elf.jpg", b"\x7fELF" + bytes(200), REJECT),
        ("jpeg_magic_only.jpg", b"\xff\xd8\xff", REJECT),
        ("png_magic_only.png", b"\x89PNG\r\n\x1a\n", REJECT),
        ("riff_not_webp.webp", b"RIFF\x10\x00\x00\x00WAVEfmt " + bytes(16), REJECT),
        ("bomb_png.png", bomb_png(30_000, 30_000), REJECT),
        ("bomb_png_wide.png", bomb_png(1_000_000, 100), REJECT),
        ("zero_dims.png", bomb_png(0, 0), REJECT),
        ("polyglot_jpeg_zip.jpg", jpeg + _zip_bytes(), EITHER),
        ("polyglot_png_html.png", png + b"<script>alert(1)</script>", EITHER),
        ("jpeg_with_trailing_junk.jpg", jpeg + rng.bytes(300), EITHER),
    ]
    for frac in (0.1, 0.3, 0.5, 0.8, 0.95):
        files.append(
            (
                f"truncated_{int(frac * 100)}.jpg",
                _save(noise, "JPEG")[: int(len(jpeg) * frac) + 3],
                EITHER,
            )
        )
        files.append((f"truncated_{int(frac * 100)}.png", png[: int(len(png) * frac) + 8], EITHER))
        files.append(
            (f"truncated_{int(frac * 100)}.webp", webp[: int(len(webp) * frac) + 12], EITHER)
        )
    for i in range(6):
        corrupt = bytearray(_save(noise, "JPEG"))
        for pos in rng.integers(20, len(corrupt), 30 * (i + 1)):
            corrupt[pos] = int(rng.integers(0, 256))
        files.append((f"corrupt_{i}.jpg", bytes(corrupt), EITHER))
    files.append(("random_bytes.jpg", rng.bytes(5000), REJECT))
    files.append(
        ("heic_brand_only.heic", b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", REJECT)
    )
    files.append(("heic_real.heic", _heic_bytes(), OK))
    return files


def _zip_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("payload.txt", "x" * 1000)
    return buf.getvalue()


def _animated_gif() -> bytes:
    frames = [_img("P", color=(i * 40, 0, 0)) for i in range(3)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return buf.getvalue()


def _heic_bytes() -> bytes:
    from pillow_heif import register_heif_opener

    register_heif_opener()
    return _save(_img(size=(64, 64)), "HEIF")
