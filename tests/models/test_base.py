"""The ONNX Runtime sessions every model shares (`models.base.onnx_session`)."""

from __future__ import annotations

from models.base import onnx_session
from models.detector import default_model_path


def test_sessions_do_not_spin_between_runs() -> None:
    """The stages of a photo run one after another on 2 cores: a pool spinning after its run
    would take the CPU from the next stage."""
    options = onnx_session(default_model_path(), threads=2).get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert options.intra_op_num_threads == 2
