"""``--ray-address auto`` / ``RAY_ADDRESS=auto`` with a stale cluster file: resolved and checked like any address,
one line and exit 3 in seconds (it used to hang for 10+ minutes with nothing printed). No cluster is started and
nothing but 127.0.0.1 is contacted: the cluster file names a closed port there."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from ray_toys import import_ray

from audit.errors import ExecutorError
from audit.executors import ray as rx

ray = import_ray()
ROOT = Path(__file__).resolve().parents[1]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed when the socket is: nothing listens there


@pytest.fixture
def stale(tmp_path) -> tuple[Path, str]:
    """RAY_TMPDIR with a ray_current_cluster file from 'an earlier session' naming a closed 127.0.0.1 port."""
    (tmp_path / "ray").mkdir()
    address = f"127.0.0.1:{_closed_port()}"
    (tmp_path / "ray" / "ray_current_cluster").write_text(address + "\n")
    return tmp_path, address


@pytest.fixture(scope="module")
def case(tmp_path_factory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("auto")
    model = torch.nn.Sequential(torch.nn.Linear(3, 2))
    path = tmp / "m.pt"
    torch.jit.save(torch.jit.script(model), str(path))
    rng = np.random.default_rng(0)
    data = tmp / "d.csv"
    pd.DataFrame(rng.standard_normal((20, 3)), columns=["a", "b", "c"]).assign(y=rng.integers(0, 2, 20)).to_csv(
        data, index=False)
    return path, data


@pytest.mark.parametrize("how", ["flag", "env"])
def test_stale_cluster_file_is_one_line_and_exit_3(stale, case, how, tmp_path):
    tmpdir, address = stale
    model, data = case
    env = dict(os.environ, RAY_TMPDIR=str(tmpdir), RAY_ADDRESS="auto" if how == "env" else "")
    args = [sys.executable, "-m", "audit", "run", "--model", str(model), "--data", str(data), "--target-col", "y",
            "--executor", "ray", "--format", "json", "--quiet", "--out", str(tmp_path / "o")]
    if how == "flag":
        args += ["--ray-address", "auto"]
    t0 = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120, env=env, cwd=ROOT)
    took = time.perf_counter() - t0
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 3 and len(lines) == 1, proc.stderr
    asked = "--ray-address auto" if how == "flag" else "RAY_ADDRESS=auto"
    assert lines[0].startswith(f"audit: error: {asked} found a cluster file ("), lines
    assert f"naming {address} from an earlier session, and nothing answers there" in lines[0]
    assert "start a cluster with 'ray start --head', or pass --ray-address" in lines[0]
    assert took < 60 and not (tmp_path / "o" / "audit.json").exists()


def test_auto_without_file_or_process_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path))
    monkeypatch.setattr(rx, "_ray_processes", lambda _ray: [])
    with pytest.raises(ExecutorError, match=r"--ray-address auto found no Ray cluster \(no cluster file at "):
        rx.resolve_auto(ray, "--ray-address auto")


def test_auto_resolves_to_a_live_address(tmp_path, monkeypatch):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        address = f"127.0.0.1:{server.getsockname()[1]}"
        (tmp_path / "ray").mkdir()
        (tmp_path / "ray" / "ray_current_cluster").write_text(address)
        monkeypatch.setenv("RAY_TMPDIR", str(tmp_path))
        assert rx.resolve_auto(ray, "--ray-address auto") == address


def test_connecting_is_bounded():
    class Stuck:  # a ray.init that never returns, as on a port that accepts TCP but is no Ray cluster
        @staticmethod
        def init(**_kw):
            time.sleep(30)

    t0 = time.perf_counter()
    with pytest.raises(ExecutorError, match="did not answer as a Ray cluster within 0.2 s"):
        rx._init_bounded(Stuck, 0.2, address="127.0.0.1:9")
    assert time.perf_counter() - t0 < 5

    class Fails:
        @staticmethod
        def init(**_kw):
            raise ConnectionError("refused")

    with pytest.raises(ConnectionError, match="refused"):  # the caller turns it into its one line
        rx._init_bounded(Fails, 5, address="127.0.0.1:9")
