"""A notebook without ipywidgets: importing audit's Captum adapter (which imports tqdm.auto) shows no red
TqdmWarning "IProgress not found" in the first output."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_NOTEBOOK = """
import sys, types, warnings
warnings.simplefilter("default")
sys.modules["ipykernel.zmqshell"] = types.ModuleType("ipykernel.zmqshell")  # what tqdm reads as a Jupyter kernel
ip = types.ModuleType("IPython")
class ZMQInteractiveShell: pass
ip.get_ipython = lambda: ZMQInteractiveShell()
sys.modules["IPython"] = ip
sys.modules["ipywidgets"] = None  # not installed
{body}
print("done")
"""


def _stderr(body: str) -> str:
    proc = subprocess.run([sys.executable, "-c", _NOTEBOOK.format(body=body)], capture_output=True, text=True,
                          cwd=ROOT, timeout=300, check=True)  # fmt: skip
    assert proc.stdout.strip() == "done"
    return proc.stderr


def test_the_simulated_kernel_does_trigger_tqdms_warning():
    assert "IProgress not found" in _stderr("import tqdm.auto")  # so the next test can fail


def test_importing_captum_through_audit_is_quiet():
    assert "IProgress not found" not in _stderr("import audit.attribution.captum_ig")
