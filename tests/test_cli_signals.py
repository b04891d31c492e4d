"""SIGTERM and SIGINT stop a real `audit run` subprocess mid-run cleanly; the summary's time is the run's wall time."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from report_fixtures import make_pass_run
from typer.testing import CliRunner

import audit.cli._execute
from audit.cli.main import app

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def _slow_case(tmp_path: Path) -> tuple[Path, Path]:
    """A table large enough that attribution runs for many seconds on a loaded CPU, and an MLP to explain."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400_000, 8)).astype(np.float32)
    df = pd.DataFrame(X, columns=[f"x{j}" for j in range(8)])
    df["target"] = X[:, 0] + X[:, 1]
    data = tmp_path / "big.parquet"
    df.to_parquet(data)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(8, 256), torch.nn.ReLU(), torch.nn.Linear(256, 256), torch.nn.ReLU(),
                              torch.nn.Linear(256, 1))
    model = tmp_path / "model.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.script(net.eval()), str(model))
    return model, data


def _run_and_signal(tmp_path: Path, sig: int) -> tuple[int, str, Path]:
    model, data = _slow_case(tmp_path)
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cmd = [sys.executable, "-m", "audit", "run", "--model", str(model), "--data", str(data), "--target-col", "target",
           "--out", str(out), "--format", "json", "--n-steps", "64"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    try:
        deadline = time.monotonic() + 240
        for line in proc.stderr:  # progress lines: signal once attribution has begun (the staging folder exists)
            lines.append(line)
            if "attribution:" in line or time.monotonic() > deadline:
                break
        assert any(list(tmp_path.glob(".out.staging-*"))), "the run had no staging folder when signalled"
        proc.send_signal(sig)
        _out, rest = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, rest, out


@pytest.mark.parametrize(("sig", "code", "line"), [
    (signal.SIGTERM, 143, "audit: terminated (SIGTERM); no results were written"),
    (signal.SIGINT, 130, "audit: interrupted"),
])
def test_a_signal_mid_run_exits_with_its_code_one_line_and_leaves_nothing(tmp_path, sig, code, line):
    rc, rest, out = _run_and_signal(tmp_path, sig)
    tail = [ln for ln in rest.splitlines() if ln.strip() and not ln.startswith("audit: attribution")]
    assert rc == code, (rc, rest)
    assert tail == [line], rest  # one line, no traceback
    assert not list(tmp_path.glob(".out.staging-*")), "the staging folder was left behind"
    assert not (out / "audit.json").exists()
    assert not out.exists() or not any(out.iterdir())


def test_sigterm_handler_is_only_set_during_a_run_and_restored():
    before = signal.getsignal(signal.SIGTERM)
    with audit.cli._execute.on_sigterm():
        assert signal.getsignal(signal.SIGTERM) is not before
    assert signal.getsignal(signal.SIGTERM) is before


def test_summary_time_is_the_runs_wall_time(tmp_path, monkeypatch):
    run = make_pass_run()  # its provenance says the audit took 12.84 s; the summary must not repeat that
    assert run.provenance.duration_s > 5

    def slow_audit(config, progress=None, outputs=None):
        time.sleep(1.5)
        return run

    monkeypatch.setattr(audit.cli._execute, "run_audit", slow_audit)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.pt").write_bytes(b"")
    (tmp_path / "d.csv").write_text("a\n1\n")
    t0 = time.perf_counter()
    res = runner.invoke(app, ["run", "--model", "m.pt", "--data", "d.csv", "--out", str(tmp_path / "out"),
                              "--format", "json"])
    wall = time.perf_counter() - t0
    assert res.exit_code in (0, 1), res.output
    said = float(re.search(r"verdict: \w+ +\(.*, ([\d.]+) s\)", res.stdout).group(1))
    # the summary covers the run and the writing of its files: at least the 1.5 s of work, at most the call
    assert said >= 1.5
    assert said <= wall + 0.05
    assert said >= wall - 0.5  # only option parsing happens outside it


def test_summary_time_of_the_audit_command_is_its_process_wall_time(tmp_path):
    # the summary used to say about 3 s for a run that took 13 s: it timed the audit's middle stages only
    X = np.random.default_rng(0).normal(size=(50, 3))
    df = pd.DataFrame(X, columns=["a", "b", "c"])
    df["target"] = X[:, 0]
    df.to_csv(tmp_path / "d.csv", index=False)
    lin = torch.nn.Linear(3, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.script(lin.eval()), str(tmp_path / "m.pt"))
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "audit", "run", "--model", "m.pt", "--data", "d.csv",
                             "--target-col", "target", "--out", "out", "--format", "json", "--format", "html"],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    said = shown_at = None
    for line in proc.stdout:
        found = re.search(r"verdict: \w+ +\(.*, ([\d.]+) s\)", line)
        if found:
            said, shown_at = float(found.group(1)), time.perf_counter() - t0
    assert proc.wait(timeout=300) in (0, 1)
    assert said is not None
    # the time covers the whole process up to the summary (interpreter start-up, imports, the report), which
    # appears at once; only the interpreter's exit comes after it
    assert shown_at - 0.5 <= said <= shown_at + 0.05, (said, shown_at)
