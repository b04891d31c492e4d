"""The one pipeline: the modality is chosen on unambiguous evidence, and every engine call of a run takes its
arguments from one EngineSettings."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from audit.attribution.settings import EngineSettings
from audit.config import AuditConfig
from audit.errors import UsageError
from audit.modalities.image import ImageModality
from audit.modalities.tabular import TabularModality
from audit.pipeline import choose_modality, run_audit


def _script(model: torch.nn.Module, path: Path) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.save(torch.jit.script(model.eval()), str(path))
    return path


def _cfg(data: Path, **kw) -> AuditConfig:
    return AuditConfig(model=Path("m.pt"), data=data, **kw)


def test_a_table_with_a_numeric_file_column_is_tabular(tmp_path: Path):
    """A feature named 'file' used to send a table to the image audit."""
    df = pd.DataFrame({"file": np.arange(5.0), "size": np.ones(5), "target": np.zeros(5)})
    df.to_csv(tmp_path / "t.csv", index=False)
    assert choose_modality(_cfg(tmp_path / "t.csv")) is TabularModality


def test_a_csv_of_existing_image_paths_and_a_folder_are_images(tmp_path: Path):
    (tmp_path / "img").mkdir()
    for i in range(3):
        Image.new("RGB", (8, 8)).save(tmp_path / "img" / f"{i}.png")
    pd.DataFrame({"path": [f"img/{i}.png" for i in range(3)], "label": [0, 1, 0]}).to_csv(
        tmp_path / "list.csv", index=False
    )
    assert choose_modality(_cfg(tmp_path / "list.csv")) is ImageModality
    assert choose_modality(_cfg(tmp_path / "img")) is ImageModality


def test_an_ambiguous_path_column_asks_for_kind(tmp_path: Path):
    pd.DataFrame({"path": ["a/b", "c/d"], "x": [1.0, 2.0]}).to_csv(tmp_path / "amb.csv", index=False)
    with pytest.raises(UsageError, match="pass --kind image or --kind tabular"):
        choose_modality(_cfg(tmp_path / "amb.csv"))
    assert choose_modality(_cfg(tmp_path / "amb.csv", kind="tabular")) is TabularModality
    with pytest.raises(UsageError, match="unknown --kind"):
        _cfg(tmp_path / "amb.csv", kind="audio")


def test_every_engine_call_of_a_run_uses_the_runs_settings(tmp_path: Path, monkeypatch):
    """--dtype float64, --max-steps, the tolerance and the completeness floor reach the attribution of the blocks,
    the cross-check's native run, --class all and the direction samples. Before, the cross-check dropped dtype and
    bf16 and --class all dropped tolerance, max steps, dtype and bf16."""
    import audit.modalities.tabular_evidence as ev

    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 3)).astype(np.float32)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    df = pd.DataFrame(X, columns=["a", "b", "c"])
    df["y"] = model(torch.from_numpy(X)).argmax(1).numpy()
    df.to_csv(tmp_path / "d.csv", index=False)
    seen: list[dict] = []
    real = ev.integrated_gradients  # every tabular engine call goes through TabularEvidence._ig

    def spy(module, x, **kw):
        seen.append(kw)
        return real(module, x, **kw)

    monkeypatch.setattr(ev, "integrated_gradients", spy)
    cfg = AuditConfig(model=_script(model, tmp_path / "m.pt"), data=tmp_path / "d.csv", target_col="y",
                      dtype="float64", max_steps=64, class_index="all", crosscheck_rows=8, n_boot=0,
                      formats=("json",), quiet=True)  # fmt: skip
    run_audit(cfg)
    want = EngineSettings.from_config(cfg).kwargs()
    assert len(seen) >= 1 + 1 + 3 + 1  # blocks, cross-check, one per class, direction samples
    for kw in seen:
        assert kw["dtype"] is torch.float64 and kw["max_steps"] == 64 and kw["n_steps"] == "auto"
        assert kw["tolerance"] == want["tolerance"] and kw["bf16"] is False
        assert kw["delta_floor"] > 0  # the run's completeness floor, the same everywhere
    assert len({kw["delta_floor"] for kw in seen}) == 1


def test_images_with_auto_steps_stop_at_max_steps(monkeypatch):
    """Images with --n-steps auto used to stop at the engine's default 256 instead of --max-steps."""
    cfg = AuditConfig(model=Path("m"), data=Path("d"), max_steps=2048)
    kw = EngineSettings.from_config(cfg).kwargs()
    assert kw["max_steps"] == 2048 and kw["n_steps"] == "auto"
    assert EngineSettings.from_config(cfg).replace(n_steps=64).kwargs()["n_steps"] == 64


def test_a_sampled_run_does_not_depend_on_how_the_file_is_cut(tmp_path: Path):
    """450 rows, a 100-row analysis sample: the sample is keyed by a hash of (seed, row id), so reading the file
    64 rows at a time or all at once gives the same sample, rankings, intervals and findings."""
    import dataclasses

    rng = np.random.default_rng(1)
    X = rng.standard_normal((450, 4)).astype(np.float32)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    df = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    df["y"] = model(torch.from_numpy(X)).detach().numpy().ravel()
    df.to_csv(tmp_path / "d.csv", index=False)
    base = AuditConfig(model=_script(model, tmp_path / "m.pt"), data=tmp_path / "d.csv", target_col="y",
                       analysis_rows=100, ablation_rows=100, crosscheck_rows=16, n_boot=50, formats=("json",),
                       quiet=True)  # fmt: skip
    small = run_audit(dataclasses.replace(base, chunk_rows=64))
    whole = run_audit(dataclasses.replace(base, chunk_rows=10_000))
    assert any("uniform sample of 100 of the 450 rows" in n for n in small.notes)
    assert small.features == whole.features and small.findings == whole.findings
    assert small.signed == whole.signed
    # completeness errors are float rounding (~1e-6) of sums the engine cuts differently per chunk size
    a, b = small.convergence, whole.convergence
    assert (a.n_not_converged, a.steps_used, a.n_rows) == (b.n_not_converged, b.steps_used, b.n_rows)
    assert a.p95_rel_delta == pytest.approx(b.p95_rel_delta, abs=1e-8)
