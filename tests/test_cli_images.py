"""`audit run` on an image folder through the CLI: the planted corner watermark gates the exit code, and the
heatmaps and the report land next to audit.json."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from typer.testing import CliRunner

from audit.cli.main import app
from tests.image_toys import make_toy_images, toy_model, write_image_folder

TOYS = str(Path(__file__).parent / "image_toys.py")


def test_image_folder_audit_end_to_end(tmp_path):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small convolutions on a shared 2-core machine run faster on one thread
    try:
        model = toy_model(True, 1)
        ckpt = tmp_path / "leaky.pt"
        torch.save(model.state_dict(), ckpt)
        x, y = make_toy_images(16, leak=True, seed=7)
        write_image_folder(tmp_path / "images", x, y, ("a", "b"))
        out = tmp_path / "out"
        res = CliRunner().invoke(app, [
            "run", "--model", str(ckpt), "--arch", f"{TOYS}:SmallCNN", "--data", str(tmp_path / "images"),
            "--image-size", "32", "--resize", "0", "--normalize", "none", "--n-steps", "32", "--n-boot", "20",
            "--crosscheck-rows", "2", "--format", "json,html", "--out", str(out), "--quiet",
        ])
    finally:
        torch.set_num_threads(threads)
    run = json.loads((out / "audit.json").read_text())
    codes = {f["code"]: f for f in run["findings"]}
    assert run["task"] == "image_classification"
    assert "spatial_leakage" in codes and "top-left" in codes["spatial_leakage"]["message"]
    assert res.exit_code == (1 if run["verdict"] == "fail" else 0)
    assert run["verdict"] != "pass"
    maps = np.load(out / "heatmaps.npz")
    assert maps["heatmaps"].shape == (16, 32, 32)
    assert run["artifacts"]["heatmaps"] == "heatmaps.npz"
    html = (out / "report.html").read_text()
    assert "spatial_leakage" in html and "data:image/png;base64," in html
