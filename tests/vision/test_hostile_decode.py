"""The decode path against the hostile corpus, and a bounded fuzz of it."""

import contextlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.hostile import EITHER, OK, REJECT, corpus
from vision.decode import decode_image, sniff_image
from vision.errors import ScanError

MAX_PIXELS = 50_000_000
CORPUS = corpus()


def test_corpus_is_large_enough():
    assert len(CORPUS) >= 50


@pytest.mark.parametrize("name,data,expect", CORPUS, ids=[c[0] for c in CORPUS])
def test_decode_answers_every_file_with_an_image_or_a_scan_error(name, data, expect):
    try:
        sniff_image(data, max_pixels=MAX_PIXELS)
        image = decode_image(data, max_pixels=MAX_PIXELS)
    except ScanError as exc:
        assert expect in (REJECT, EITHER), f"{name} refused: {exc.code}: {exc.detail}"
        assert exc.detail and 400 <= exc.status_code < 500
        return
    assert expect in (OK, EITHER), f"{name} was accepted"
    assert image.ndim == 3 and image.shape[2] == 3 and image.dtype.name == "uint8"


def test_exif_orientation_is_applied():
    data = next(d for n, d, _ in CORPUS if n == "exif_rotated.jpg")
    assert decode_image(data, max_pixels=MAX_PIXELS).shape[:2] == (80, 40)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.binary(max_size=4096),
    st.sampled_from([b"", b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"RIFF\x00\x00\x00\x00WEBP"]),
)
def test_fuzzed_bytes_never_escape_the_scan_error_family(payload, prefix):
    with contextlib.suppress(ScanError):
        decode_image(prefix + payload, max_pixels=MAX_PIXELS)


SEEDS = [
    d for n, d, _ in CORPUS if n in {"plain.jpg", "plain.png", "plain.webp", "progressive.jpg"}
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(range(len(SEEDS))),
    st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), max_size=40),
    st.floats(0.05, 1.0),
)
def test_mutated_real_images_never_escape_the_scan_error_family(seed, mutations, keep):
    """Byte flips and truncation of valid files reach the decoders' inner paths."""
    data = bytearray(SEEDS[seed])
    for where, value in mutations:
        data[int(where * len(data))] = value
    with contextlib.suppress(ScanError):
        decode_image(bytes(data[: max(12, int(len(data) * keep))]), max_pixels=MAX_PIXELS)
