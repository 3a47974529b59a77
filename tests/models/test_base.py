"""What every model shares: its ONNX Runtime session and which committed file serves it."""

from __future__ import annotations

from pathlib import Path

import onnxruntime
import pytest

from models.base import newest_model, onnx_session
from models.detector import default_model_path
from models.settings import settings


def test_sessions_do_not_spin_between_runs() -> None:
    """The stages of a photo run one after another on 2 cores: a pool spinning after its run
    would take the CPU from the next stage."""
    options = onnx_session(default_model_path(), threads=2).get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert options.intra_op_num_threads == 2


def _models(folder: Path, *names: str) -> Path:
    for name in names:
        (folder / name).write_bytes(b"")
    return folder


def test_the_cpu_serves_the_newest_models_int8_copy(tmp_path: Path) -> None:
    folder = _models(tmp_path, "m-v1.onnx", "m-v1.int8.onnx", "m-v2.onnx", "m-v2.int8.onnx")
    assert newest_model(folder) == folder / "m-v2.int8.onnx"


def test_versions_sort_as_numbers(tmp_path: Path) -> None:
    folder = _models(tmp_path, "m-v9.onnx", "m-v10.onnx", "m-v2.onnx")
    assert newest_model(folder) == folder / "m-v10.onnx"


def test_an_older_versions_int8_copy_never_serves_a_newer_model(tmp_path: Path) -> None:
    folder = _models(tmp_path, "m-v1.onnx", "m-v1.int8.onnx", "m-v2.onnx")
    assert newest_model(folder) == folder / "m-v2.onnx"
    (tmp_path / "none").mkdir()
    assert newest_model(tmp_path / "none") is None


def test_int8_off_or_a_gpu_serves_the_float_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _models(tmp_path, "m-v2.onnx", "m-v2.int8.onnx")
    monkeypatch.setattr(settings, "int8", False)
    assert newest_model(folder) == folder / "m-v2.onnx"
    monkeypatch.setattr(settings, "int8", True)
    monkeypatch.setattr(settings, "providers", ["CUDAExecutionProvider", "CPUExecutionProvider"])
    monkeypatch.setattr(
        onnxruntime,
        "get_available_providers",
        lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"],
    )
    assert newest_model(folder) == folder / "m-v2.onnx"
    # The GPU image on a machine without one runs on the CPU, and the int8 copy serves it.
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: ["CPUExecutionProvider"])
    assert newest_model(folder) == folder / "m-v2.int8.onnx"


@pytest.mark.parametrize("kind", ["detector", "refiner", "orienter"])
def test_a_model_given_no_path_loads_its_folders_newest_file_or_says_none_is_there(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from models.detector import CardDetector
    from models.orienter import CardOrienter
    from models.refiner import CornerRefiner
    from vision.errors import ModelNotReadyError

    model_class = {"detector": CardDetector, "refiner": CornerRefiner, "orienter": CardOrienter}
    monkeypatch.setattr(settings, "model_dir", tmp_path)
    (tmp_path / kind).mkdir()
    with pytest.raises(ModelNotReadyError, match=f"{kind}: no .onnx file in"):
        model_class[kind]().load()
    committed = newest_model(Path(__file__).resolve().parents[2] / "models" / kind)
    assert committed is not None
    float_file = committed.with_name(committed.name.replace(".int8", ""))
    for source in {committed, float_file}:  # an int8 copy serves only beside its float file
        (tmp_path / kind / source.name).write_bytes(source.read_bytes())
    model = model_class[kind]()
    model.load()
    assert model.path == tmp_path / kind / committed.name
