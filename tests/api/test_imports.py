"""The API process stays small: importing it loads no model runtime and no OpenCV."""

import subprocess
import sys

from tests.conftest import ROOT

HEAVY = ("onnxruntime", "torch", "faiss", "cv2")


def test_import_api_main_loads_no_model_runtime():
    code = f"import sys, api.main\nprint(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "", f"api.main imported {out.stdout.strip()}"
