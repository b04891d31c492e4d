"""The local Ray instance the Ray tests share a module at a time (CI: 2 CPUs, no dashboard, 127.0.0.1 only)."""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Iterator

import pytest


def import_ray():
    """Ray, or a skip where the extra is not installed; in CI (which installs it) a missing Ray fails, never
    skips."""
    if os.environ.get("CI"):
        importlib.import_module("ray.data")
        return importlib.import_module("ray")
    pytest.importorskip("ray.data")
    return pytest.importorskip("ray")


def local_ray_instance(ray) -> Iterator[None]:
    """A fresh private Ray instance for the length of a test module (a generator for a pytest fixture)."""
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    if ray.is_initialized():
        ray.shutdown()
    # address="local": a new instance even when a 'ray start' cluster of the machine is found
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR,
             _node_ip_address="127.0.0.1")  # fmt: skip
    yield
    ray.shutdown()
