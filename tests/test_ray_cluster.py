"""A two-node Ray cluster on this machine (``ray start --head`` and a second ``ray start --address``, both on
127.0.0.1, one CPU each), stopped by the test (each ``ray start --block`` runs in its own process group, which the
teardown signals: other Ray instances on the machine are left alone): the audit runs on actors on both nodes and
equals the local run."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from ray_toys import import_ray  # noqa: E402

ray = import_ray()

from audit.results import to_dict  # noqa: E402

RAY = str(Path(sys.executable).with_name("ray"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(*args: str, env: dict) -> subprocess.Popen:
    """``ray start --block ...`` in a session of its own: the node's processes are its children, and the
    teardown stops exactly them (a signal to that process group), never other Ray instances of the machine."""
    return subprocess.Popen([RAY, "start", "--block", *args], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip


def _session(sid: int) -> list[int]:
    """Processes of session ``sid`` (the ``ray start`` we ran leads it; its raylet, GCS, workers inherit it, even
    those that made a process group of their own)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[3]) == sid:
            pids.append(int(stat.parent.name))
    return pids


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM to the node's session (a graceful stop, as ``ray stop`` does), then SIGKILL to what is left."""
    for sig, grace in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 10.0)):
        for pid in _session(proc.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.time() + grace
        while time.time() < deadline and _session(proc.pid):
            proc.poll()
            time.sleep(0.2)
        if not _session(proc.pid):
            break
    proc.wait(timeout=10)


def _wait_port(port: int, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"the Ray head did not open port {port}")


@pytest.fixture()
def two_nodes(tmp_path):
    if not Path(RAY).exists():
        if os.environ.get("CI"):
            raise AssertionError(f"the ray command is not installed at {RAY}")  # CI installs it: never skip
        pytest.skip("the ray command is not installed")
    if ray.is_initialized():
        ray.shutdown()
    port = _free_port()
    env = dict(os.environ, RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0", RAY_ADDRESS="")
    common = ("--num-cpus", "1", "--object-store-memory", str(200 * 1024**2), "--disable-usage-stats")
    procs = []
    try:
        procs.append(_start("--head", "--node-ip-address", "127.0.0.1", "--port", str(port), "--include-dashboard",
                            "false", *common, env=env))  # fmt: skip
        _wait_port(port)
        procs.append(_start("--address", f"127.0.0.1:{port}", "--node-ip-address", "127.0.0.1", *common, env=env))
        yield f"127.0.0.1:{port}"
    finally:
        if ray.is_initialized():
            ray.shutdown()
        for proc in reversed(procs):
            _stop(proc)
        assert not any(_session(p.pid) for p in procs), "Ray processes of the test cluster are still running"


def test_audit_runs_across_two_nodes(two_nodes, tmp_path):
    import audit
    from audit.executors.ray import last_run

    rng = np.random.default_rng(0)
    # enough units (96) that the actor whose node starts it last still gets some: Ray Data hands units to the
    # actors that are up, and an actor loading its model a few seconds late found none left with 12 units
    X = rng.standard_normal((9600, 5)).astype(np.float32)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    df = pd.DataFrame(X, columns=list("abcde"))
    df.to_parquet(tmp_path / "data.parquet", row_group_size=800, index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.script(model.eval()), str(tmp_path / "m.pt"))
    kwargs = {"chunk_rows": 100, "n_boot": 20}
    deadline = time.time() + 30
    while True:  # the second node registers with the head shortly after 'ray start' returns
        ray.init(address=two_nodes, log_to_driver=False, logging_level="ERROR")
        alive = [n for n in ray.nodes() if n["Alive"]]
        ray.shutdown()
        if len(alive) == 2 or time.time() > deadline:
            break
        time.sleep(1)
    assert len(alive) == 2
    got = to_dict(audit.run(tmp_path / "m.pt", tmp_path / "data.parquet", executor="ray", ray_address=two_nodes,
                            workers=2, cpus_per_worker=1, **kwargs))  # fmt: skip
    assert len(last_run.nodes) == 2 and last_run.units == 96 and last_run.started_cluster
    assert not ray.is_initialized()  # the executor disconnected; the cluster is the fixture's to stop
    want = to_dict(audit.run(tmp_path / "m.pt", tmp_path / "data.parquet", **kwargs))
    for run in (got, want):
        for key in ("created_at", "duration_s"):
            run["provenance"].pop(key)
        for key in ("executor", "ray_address", "workers", "cpus_per_worker"):
            run["provenance"]["config"].pop(key)
    assert json.dumps(got, sort_keys=True) == json.dumps(want, sort_keys=True)
