"""The Ray executor (``--executor ray``): a modality's units of work attributed on Ray actors.

The driver (this process) opens the modality once: options, the probe, the task, the baseline and the
completeness floor are decided here, exactly as in a local run. It then ships a picklable worker state
(:meth:`~audit.modalities.base.Modality.worker_state`) and runs

``ray.data.from_items(unit indices).map_batches(_UnitWorker, concurrency=N, num_cpus=C, batch_size=1)``

where ``_UnitWorker`` is a callable class: each actor rebuilds the opened modality and loads the model once
(Ray Data's batch-inference pattern), then turns each unit into a unit result: it reads the unit's rows, attributes
them with the same ``attribute``/``merge`` as the local loop, writes the unit's per-row attributions as one
Parquet part file into the run's staging folder, and returns only the unit's partial accumulators. The driver
merges the partials as they stream in (exact, order-free merges: :mod:`audit.analysis.accumulate`), so its
memory stays bounded by the row sample whatever the row count, and ``finish``, the cross-check, the findings and
the report run as today.

Why units planned on the driver instead of ``ray.data.read_parquet``/``read_csv``/``read_images``: the row sample
is keyed by a hash of (seed, global row id), and Ray's readers do not expose a row's position in its file, nor
keep the order of rows across read tasks; a unit (a row range of one part file, from the Parquet metadata, or a
whole CSV part; a batch of images with its batch number, which seeds the noise baseline) carries its global row
offset, so every row gets the id it gets locally. The actor reads its unit with pyarrow (or the image loader),
through the same validation as the local reader, so a bad value is the same one-line error naming the row.

Results do not depend on the executor: a unit's partial is the same whichever actor computes it and however
often (a unit retried after its actor died is recomputed from scratch and counted once), and the merges are
exact, so ``audit.json`` equals the local run's but for timings and float rounding of the engine (the actors run
their own BLAS threads).

Faults: Ray Data's actor pools restart dead actors and retry their tasks (``max_restarts=-1``,
``max_task_retries=-1`` by default, see ``ActorPoolMapOperator._apply_default_remote_args``); a part file is
written under a temporary name and renamed when its unit is done, so a retried unit replaces its part. An
:class:`~audit.errors.AuditError` on a worker (a model that cannot load there, a bad value in a unit) is not
retried: it comes back as a record and is raised here with its message, one line, exit 3. A cluster that cannot
be reached is one line (:class:`~audit.errors.ExecutorError`, exit 3) after a 3-second TCP check; ``auto`` is
resolved first, as Ray resolves it (the cluster file ``ray start`` wrote, ``/tmp/ray/ray_current_cluster``, else
a Ray process on this machine), and checked the same way, and ``ray.init`` on an address that answers TCP is
bounded (:data:`CONNECT_WAIT_S`).

Sizing: on a 2-core machine two actors of one CPU each and any 1-CPU task wait forever for a third CPU; so by
default the actors share the cluster's CPUs minus a reserve (``min(1, CPUs / 4)``), in fractions (two actors of
0.75 CPU on two cores), and each actor sets torch to ``max(1, int(C))`` threads. Asking for more than the cluster
has (``--workers`` x ``--cpus-per-worker``) is an error, never a hang. This executor starts no read tasks.

Assumptions: the data, the model file and the output folder are visible at the same paths on every node (a
shared filesystem; workers start in the driver's working directory). A part file missing on the driver after the
run (written on a node that does not share the folder) is an error that says so.

Connection: a process already connected (``ray.init()`` in a notebook or a test) is used as it is and left
running; otherwise ``--ray-address`` (or ``RAY_ADDRESS``) names the cluster, and without either a private local
instance is started and shut down at the end (``address="local"``: never a ``ray start`` cluster found by chance).

Quiet: a local instance is started on 127.0.0.1 with ``RAY_AUTH_MODE=disabled`` unless set (a private instance of
this process; Ray 2.60 otherwise writes a token and warns), no dashboard, worker logs not forwarded, Ray's loggers
at ERROR, Ray Data's progress bars off; progress goes through the run's own progress callback (rows done).
"""

from __future__ import annotations

import logging
import os
import pickle
import socket
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, redirect_stdout, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audit import errors
from audit.config import AuditConfig
from audit.errors import AuditError, ExecutorError, UsageError
from audit.modalities.base import Modality, OutputSink

__all__ = ["RayExecutor", "run_ray", "RayRunStats", "last_run", "plan_resources"]

CONNECT_TIMEOUT_S = 3.0  # the TCP check of an address before ray.init
CONNECT_WAIT_S = 60.0  # ray.init on a reachable address: how long before giving up


@dataclass
class RayRunStats:
    """What the latest Ray run in this process did, filled in as it goes (:data:`last_run`; read by tests and
    benchmarks, not part of the results)."""

    units: int = 0
    workers: int = 0
    cpus_per_worker: float = 0.0
    gpus_per_worker: float = 0.0
    threads: int = 1
    pids: list[int] = field(default_factory=list)  # the actor process of each unit result, in arrival order
    nodes: set[str] = field(default_factory=set)
    started_cluster: bool = False
    seconds: float = 0.0


last_run = RayRunStats()


class RayExecutor:
    """Connected to the cluster ``config`` names (or a local instance it starts) from construction to :meth:`close`.

    Raises
    ------
    ExecutorError
        Ray is not installed, or the cluster cannot be reached.
    """

    def __init__(self, config: AuditConfig) -> None:
        self.config = config
        self.ray = _import_ray()
        # Ray prints the raylet's messages (a task retried after its actor died) on sys.stdout, which belongs to
        # `audit run --json`: while connected they go to stderr
        self._stdout = ExitStack()
        self._stdout.enter_context(redirect_stdout(sys.stderr))
        try:
            self.started = _connect(self.ray, config)
        except BaseException:
            self._stdout.close()
            raise

    def run(self, modality: Modality, outputs: OutputSink | None) -> None:
        """Attribute every unit of the opened ``modality`` on Ray actors and absorb their partials."""
        last_run.__init__(started_cluster=self.started)  # the same object, filled in while the run goes on
        t0 = time.perf_counter()
        try:
            _run(self.ray, modality, self.config, outputs, last_run)
        finally:
            last_run.seconds = time.perf_counter() - t0

    def close(self) -> None:
        try:
            if self.started and self.ray.is_initialized():
                self.ray.shutdown()
        finally:
            self.started = False
            self._stdout.close()


def run_ray(modality: Modality, config: AuditConfig, outputs: OutputSink | None) -> None:
    """:class:`RayExecutor` opened, run and closed on an opened ``modality``."""
    executor = RayExecutor(config)
    try:
        executor.run(modality, outputs)
    finally:
        executor.close()


def _import_ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise ExecutorError("--executor ray needs Ray Data; install it with pip install 'ray[data]'") from None
    return ray


def _quiet(ray: Any) -> None:
    for name in ("ray", "ray.data", "ray.train", "ray.tune"):
        logging.getLogger(name).setLevel(logging.ERROR)
    with warnings.catch_warnings():  # the first DataContext sets its deprecated fields, which warn
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.enable_operator_progress_bars = False
    ctx.print_on_execution_start = False
    ctx.verbose_stats_logs = False


def _connect(ray: Any, config: AuditConfig) -> bool:
    """Join the cluster the config names (or start a local instance); True when this call started Ray."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if ray.is_initialized():  # a notebook or test that called ray.init() itself: use it, leave it running
        _quiet(ray)
        return False
    flag = "--ray-address" if config.ray_address else "RAY_ADDRESS"
    address = config.ray_address or os.environ.get("RAY_ADDRESS") or None
    if address == "auto":
        address = resolve_auto(ray, f"{flag} auto" if flag == "--ray-address" else "RAY_ADDRESS=auto")
    common = {"log_to_driver": False, "logging_level": logging.ERROR, "configure_logging": True}
    # Ray Data's actor pools make Ray's C++ core log an error-level line per actor ("constructor arguments in the
    # object store and max_restarts > 0"): a harmless consequence of the restarts that give fault tolerance
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    try:
        if address is None:
            os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a private instance on 127.0.0.1 (see notes)
            with _stderr_silenced():  # the C++ core says which log level it read from the environment
                ray.init(address="local", include_dashboard=False, _node_ip_address="127.0.0.1", **common)
        else:
            if not address.startswith("ray://"):
                _check_reachable(address)
            with _stderr_silenced():
                _init_bounded(ray, CONNECT_WAIT_S, address=address, **common)
    except ExecutorError:
        raise
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as e:
        where = f"at '{address}'" if address else "(a local instance)"
        reason = " ".join(str(e).split())[:200] or type(e).__name__
        raise ExecutorError(
            f"cannot connect to the Ray cluster {where} ({reason}); start one with 'ray start --head', or fix "
            "--ray-address"
        ) from None
    _quiet(ray)
    return True


@contextmanager
def _stderr_silenced() -> Iterator[None]:
    """File descriptor 2 to /dev/null for the duration (native code writes there directly); failures still raise."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _cluster_file(ray: Any) -> Path:
    """Where ``ray start`` records the last cluster's address (``/tmp/ray/ray_current_cluster`` by default)."""
    try:
        from ray._common.utils import get_ray_address_file

        return Path(get_ray_address_file(None))
    except Exception:  # a Ray that moved its private helper: its documented default
        return Path("/tmp/ray/ray_current_cluster")


def _ray_processes(ray: Any) -> list[str]:
    """GCS addresses of Ray processes on this machine (Ray's own ``ps`` scan), [] when it cannot tell."""
    try:
        from ray._private.services import find_gcs_addresses

        return sorted(find_gcs_addresses())
    except Exception:
        return []


def resolve_auto(ray: Any, asked: str) -> str:
    """The address ``auto`` means, found as Ray finds it (``services.get_ray_address_from_environment``): the
    cluster file ``ray start`` wrote, else a Ray process running on this machine; checked like any address, so a
    stale file from an earlier session is one line in seconds instead of ``ray.init`` retrying for minutes.

    Parameters
    ----------
    asked : str
        How the user asked (``--ray-address auto`` or ``RAY_ADDRESS=auto``), for the message.

    Raises
    ------
    ExecutorError
        Nothing found, or nothing answers at the address found.
    """
    path = _cluster_file(ray)
    found = path.read_text().strip() if path.is_file() else ""
    if found:  # if nothing answers there, the file outlived the cluster that wrote it
        source = f"a cluster file ({path}) naming {found} from an earlier session"
    else:
        procs = _ray_processes(ray)
        if not procs:
            raise ExecutorError(
                f"{asked} found no Ray cluster (no cluster file at {path}, no Ray process on this machine); start "
                "one with 'ray start --head', or pass --ray-address host:port"
            )
        found, source = procs[0], f"a Ray process on this machine at {procs[0]}"
    try:
        _check_reachable(found)
    except (ExecutorError, UsageError) as e:
        reason = str(e).partition("(")[2].partition(")")[0] or "not host:port"
        raise ExecutorError(
            f"{asked} found {source}, and nothing answers there ({reason}); start a cluster with 'ray start "
            "--head', or pass --ray-address host:port"
        ) from None
    return found


def _init_bounded(ray: Any, wait_s: float, **kwargs: Any) -> None:
    """``ray.init(**kwargs)`` that gives up after ``wait_s`` seconds: a port that accepts connections but is no
    Ray cluster (or a cluster that stopped answering) makes Ray retry for minutes without a word."""
    import threading

    box: dict[str, BaseException] = {}

    def connect() -> None:
        try:
            ray.init(**kwargs)
        except BaseException as e:  # handed to the caller's thread
            box["error"] = e

    worker = threading.Thread(target=connect, name="audit-ray-connect", daemon=True)
    worker.start()
    worker.join(wait_s)
    if worker.is_alive():
        raise ExecutorError(
            f"the Ray cluster at {kwargs.get('address')} accepts connections but did not answer as a Ray cluster "
            f"within {wait_s:g} s; check that it is a running Ray head ('ray status'), or fix --ray-address"
        )
    if "error" in box:
        raise box["error"]
    if threading.current_thread() is threading.main_thread():  # what ray.init sets when run on the main thread
        with suppress(Exception):  # a Ray without the helper: its default SIGTERM behaviour stays
            ray._private.utils.set_sigterm_handler(lambda signum, _frame: sys.exit(signum))


def _check_reachable(address: str) -> None:
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise UsageError(f"--ray-address '{address}' is not host:port or 'auto'; pass e.g. 127.0.0.1:6379")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as e:
        reason = e.strerror or type(e).__name__
        raise ExecutorError(
            f"cannot reach the Ray cluster at {address} ({reason}); start it with 'ray start --head', or fix "
            "--ray-address"
        ) from None


def plan_resources(
    total_cpu: float, total_gpu: float, workers: int | None, cpus: float | None, gpus: float, n_units: int
) -> tuple[int, float, int]:
    """Actors, CPUs per actor and torch threads per actor for a cluster with ``total_cpu`` CPUs (see the notes).

    Raises
    ------
    ExecutorError
        The request needs more CPUs or GPUs than the cluster has.
    """
    reserve = min(1.0, total_cpu / 4)
    if gpus > 0 and total_gpu < gpus:
        raise ExecutorError(
            f"--gpus-per-worker {gpus:g} asks for more GPUs than the Ray cluster has ({total_gpu:g}); lower it"
        )
    if workers is None:
        workers = max(1, int(total_cpu // cpus)) if cpus else max(1, int(total_cpu))
        if gpus > 0:
            workers = min(workers, max(1, int(total_gpu // gpus)))
    workers = max(1, min(workers, n_units))  # an actor without a unit would only load the model
    if cpus is None:
        cpus = round(max(0.01, (total_cpu - reserve) / workers), 4)
    if workers * cpus > total_cpu + 1e-9:
        raise ExecutorError(
            f"{workers} workers of {cpus:g} CPUs need {workers * cpus:g} CPUs but the Ray cluster has {total_cpu:g}; "
            "pass fewer --workers or a smaller --cpus-per-worker (fractions are allowed)"
        )
    if gpus > 0 and workers * gpus > total_gpu + 1e-9:
        raise ExecutorError(
            f"{workers} workers of {gpus:g} GPUs need {workers * gpus:g} GPUs but the Ray cluster has {total_gpu:g}; "
            "pass fewer --workers or a smaller --gpus-per-worker"
        )
    return workers, float(cpus), max(1, int(cpus))


def _run(ray: Any, modality: Modality, config: AuditConfig, outputs: OutputSink | None, stats: RayRunStats) -> None:
    res = ray.cluster_resources()
    total_cpu, total_gpu = float(res.get("CPU", 0.0)), float(res.get("GPU", 0.0))
    gpus = float(config.gpus_per_worker or 0.0)
    guess, _, _ = plan_resources(total_cpu, total_gpu, config.workers, config.cpus_per_worker, gpus, 1 << 30)
    units = modality.units(guess)
    workers, cpus, threads = plan_resources(
        total_cpu, total_gpu, config.workers, config.cpus_per_worker, gpus, len(units)
    )
    stats.units, stats.workers, stats.cpus_per_worker, stats.gpus_per_worker, stats.threads = (
        len(units), workers, cpus, gpus, threads
    )
    if config.workers is not None and workers > total_cpu:  # runs, but the reader should know it cannot help
        modality.notes.append(
            f"--workers {config.workers} on a Ray cluster with {total_cpu:g} CPUs: {workers} actors share them "
            f"({cpus:g} CPU and one torch thread each) and each loads the model; more actors than CPUs are no "
            f"faster, pass --workers {max(1, int(total_cpu))} or fewer"
        )
    parts = _parts_folder(outputs)
    state = modality.worker_state()
    state.update(units=units, modality=type(modality))
    ref = ray.put(state)
    sizes = [modality.unit_size(u) for u in units]
    total = None if any(s is None for s in sizes) else int(sum(sizes))
    ds = ray.data.from_items([{"i": i} for i in range(len(units))], override_num_blocks=len(units))
    ds = ds.map_batches(
        _UnitWorker, batch_size=1, batch_format="numpy", concurrency=workers, num_cpus=cpus,
        num_gpus=gpus if gpus > 0 else None,
        fn_constructor_kwargs={"state_ref": [ref], "parts": None if parts is None else str(parts),
                               "cwd": os.getcwd(), "threads": threads},
    )  # fmt: skip
    per = {} if total is not None else {"unit": "units"}  # rows when every unit's size is known
    modality.progress("attribution", 0, total if total is not None else len(units), **per)
    done: set[int] = set()
    wrote: list[int] = []
    rows = 0
    for row in ds.iter_rows():
        i = int(row["i"])
        if row["error"]:
            kind, _, message = str(row["error"]).partition("\t")
            cls = getattr(errors, kind, AuditError)
            cls = cls if isinstance(cls, type) and issubclass(cls, AuditError) else AuditError
            raise cls(f"{message} (on a Ray worker, node {str(row['node'])[:8]})")
        if i in done:
            continue  # cannot happen with Ray Data's exactly-once outputs; never count a unit twice
        done.add(i)
        modality.absorb(pickle.loads(row["partial"]))
        if row["wrote"]:
            wrote.append(i)
        stats.pids.append(int(row["pid"]))
        stats.nodes.add(str(row["node"]))
        rows += sizes[i] or 0
        if total is not None:
            modality.progress("attribution", rows, total)
        else:
            modality.progress("attribution", len(done), len(units), **per)
    if len(done) != len(units):
        raise ExecutorError(f"Ray returned {len(done)} of {len(units)} units of work; run the audit again")
    if parts is not None:
        _check_parts(parts, wrote)


def _parts_folder(outputs: OutputSink | None) -> Path | None:
    if outputs is None:
        return None
    folder = getattr(outputs, "parts_folder", None)
    if folder is None:
        raise UsageError("the Ray executor writes per-row outputs as part files: pass an audit.outputs.Staging sink")
    return Path(folder())


def _check_parts(parts: Path, wrote: list[int]) -> None:
    """Every part the workers wrote is in the driver's staging folder; leftovers of killed workers go."""
    missing = [i for i in wrote if not (parts / f"part-{i:06d}.parquet").is_file()]
    if missing:
        raise ExecutorError(
            f"{len(missing)} per-row attribution part file(s) written by Ray workers are not in '{parts}' (written "
            "on nodes that do not share that folder); pass an --out folder on a filesystem every node shares"
        )
    if parts.is_dir():
        for name in os.listdir(parts):
            if not (name.startswith("part-") and name.endswith(".parquet")):
                (parts / name).unlink(missing_ok=True)


class _UnitWorker:
    """One Ray actor: rebuilds the opened modality and loads the model once, then turns units into partials."""

    def __init__(self, state_ref: list, parts: str | None, cwd: str, threads: int) -> None:
        import ray
        import torch

        self.pid = os.getpid()
        self.node = ray.get_runtime_context().get_node_id()
        self.parts = None if parts is None else Path(parts)
        self.error = ""
        if os.path.isdir(cwd):
            os.chdir(cwd)  # relative data and model paths mean what they mean on the driver
        torch.set_num_threads(threads)
        try:
            state = dict(ray.get(state_ref[0]))
            self.units = state.pop("units")
            self.modality = state.pop("modality").from_worker_state(state)
        except AuditError as e:  # reported with the first unit, not retried: it would fail the same way again
            self.error = f"{type(e).__name__}\t{e}"

    def __call__(self, batch: dict) -> dict:
        import numpy as np

        out: dict[str, list] = {"i": [], "partial": [], "error": [], "wrote": [], "pid": [], "node": []}
        for i in np.asarray(batch["i"]).tolist():
            partial, error, wrote = b"", self.error, False
            if not error:
                try:
                    partial, wrote = self._unit(int(i))
                except AuditError as e:
                    error = f"{type(e).__name__}\t{e}"
            out["i"].append(int(i))
            out["partial"].append(partial)
            out["error"].append(error)
            out["wrote"].append(wrote)
            out["pid"].append(self.pid)
            out["node"].append(self.node)
        return {k: np.array(v, dtype=object if k == "partial" else None) for k, v in out.items()}

    def _unit(self, i: int) -> tuple[bytes, bool]:
        from audit.outputs import PartWriter

        m = self.modality
        sink = None if self.parts is None else PartWriter(self.parts, i)
        try:
            for block in m.unit_blocks(self.units[i]):
                m.merge(m.attribute(block), sink)
        except BaseException:
            m.partial()  # drop what this unit had merged
            if sink is not None:
                sink.abort()
            raise
        wrote = sink.close() if sink is not None else False
        return pickle.dumps(m.partial(), protocol=5), wrote
