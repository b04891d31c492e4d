"""Provenance of a run: hashes, library versions, configuration, seed, command line, time."""

from __future__ import annotations

import datetime as _dt
import platform
import time

import numpy as np
import torch

from audit import __version__
from audit.config import AuditConfig
from audit.io.model import LoadedModel
from audit.results import Provenance

__all__ = ["versions", "make_provenance"]


def versions() -> dict[str, str]:
    """Versions of the libraries that shape the numbers."""
    import captum
    import pandas
    import torchvision

    return {
        "audit": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "captum": captum.__version__,
        "numpy": np.__version__,
        "pandas": pandas.__version__,
    }


def make_provenance(config: AuditConfig, model: LoadedModel, data_sha256: str, started: float) -> Provenance:
    """The provenance record shared by the tabular and image flows; ``started`` is a ``perf_counter`` time."""
    return Provenance(
        model_sha256=model.sha256,
        data_sha256=data_sha256,
        versions=versions(),
        command=config.command,
        seed=config.seed,
        created_at=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        model_form=model.form,
        model_path=str(config.model),
        data_path=str(config.data),
        config=config.to_dict(),
        device=config.device,
        duration_s=round(time.perf_counter() - started, 3),
    )
