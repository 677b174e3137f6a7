"""The grid on a Ray cluster: each fold job is a Ray task, placed by the resources its methods ask for.

``eeg2img run --config FILE --executor ray [--address ADDR]``. Without an address a local Ray instance
sized to this machine is started (and stopped at the end); ``--address auto`` or ``ray://host:port``
joins a running cluster. ``ray`` is an optional extra: ``pip install "eeg2img-bench[ray]"``.

What the executor relies on and checks:

- **The run store is on a path every node sees** (NFS or another cluster filesystem, mounted at the same
  path): results land only through the run store, never through Ray's object store. Before any job the
  driver writes a token into the store and a task on every alive node reads it back; a node that does
  not see it ends the run with one line naming the store.
- **The code is importable on every node** (the package installed there, or on the shared path): the
  workers get the driver's ``EEG2IMG_*`` settings, ``PYTHONHASHSEED`` and the folders of the modules that
  registered the grid's methods on their ``PYTHONPATH``.
- **Resources**: a job asks for one CPU (cells run with one torch thread, so numbers do not depend on the
  executor) and for one GPU when one of its methods would use CUDA (``Method.uses_cuda``) and the cluster
  has GPUs; the floors ask for none.
- **Faults**: a task whose worker dies is retried (``max_retries``); the retry skips the cells already
  finished and reconstructs only the trials not yet saved, and every write is atomic, so rows are never
  lost or duplicated. Ctrl-C cancels the pending tasks and removes their temporary files.
"""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from eeg2img.errors import UserError

INSTALL_HINT = 'pip install "eeg2img-bench[ray]"'
MAX_RETRIES = 3
TOKEN_PREFIX = ".ray-store-check-"


def import_ray():
    try:
        import ray
    except ImportError:
        raise UserError(f"--executor ray needs the ray package, which is not installed; {INSTALL_HINT}") from None
    return ray


def worker_env(modules: Iterable[str]) -> dict[str, str]:
    """What a worker needs of the driver's environment: settings, hash seed, and where the methods live."""
    env = {k: v for k, v in os.environ.items() if k.startswith("EEG2IMG_") or k == "PYTHONHASHSEED"}
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    for name in modules:
        module = sys.modules.get(name.split(".")[0])
        file = getattr(module, "__file__", None)
        if file:
            root = Path(file).parent.parent if hasattr(module, "__path__") else Path(file).parent
            if str(root) not in paths:
                paths.append(str(root))
    if paths:
        env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def job_resources(job, gpus_available: bool) -> dict[str, float]:
    """The largest request of a job's methods: one CPU, and one GPU when a method would run on CUDA."""
    from eeg2img.methods import build_method

    wants_gpu = False
    for spec in job.methods:
        method = build_method(spec.name, seed=job.seed, **spec.params)
        device = str(getattr(method, "device", "cpu"))
        if getattr(method, "uses_cuda", False) and (device.startswith("cuda") or device == "auto"):
            if device.startswith("cuda") and not gpus_available:
                raise UserError(f"methods.{spec.name}: device = {device!r} but the Ray cluster has no GPU; "
                                "set device = \"auto\" or \"cpu\", or add a GPU node")
            wants_gpu = wants_gpu or gpus_available
    return {"num_cpus": 1, "num_gpus": 1 if wants_gpu else 0}


def check_shared_store(runs_dir: str | Path, read_on_nodes: Callable[[str], list[tuple[str, str | None]]]) -> None:
    """Write a token into the store; every node must read it back (``read_on_nodes(path)`` → (node, text))."""
    root = Path(runs_dir).resolve()
    token = secrets.token_hex(16)
    path = root / f"{TOKEN_PREFIX}{token}"
    path.write_text(token)
    try:
        blind = [node for node, seen in read_on_nodes(str(path)) if seen != token]
    finally:
        path.unlink(missing_ok=True)
    if blind:
        raise UserError(f"{root}: the Ray worker(s) on {', '.join(blind)} do not see this run store; put it on a "
                        "filesystem every node mounts at the same path (e.g. NFS) and pass that path as --out")


def _read_token(path: str) -> str | None:
    try:
        return Path(path).read_text()
    except OSError:
        return None


def _run_job(fn: Callable, job, threads: int, modules: tuple[str, ...]):
    import importlib

    import torch

    torch.set_num_threads(threads)
    for name in modules:
        importlib.import_module(name)
    return fn(job)


class RayExecutor:
    """Runs fold jobs as Ray tasks (see the module docstring); results arrive as tasks finish (``ray.wait``)."""

    def __init__(self, address: str | None = None, num_cpus: int | None = None, max_retries: int = MAX_RETRIES,
                 threads: int = 1):
        self.address = address
        self.num_cpus = num_cpus
        self.max_retries = max_retries
        self.threads = threads  # torch threads per task (the runner's CELL_THREADS)

    def _connect(self, ray, modules: tuple[str, ...]) -> bool:
        """Start or join Ray unless this process already did; True when this call started the connection."""
        if ray.is_initialized():
            return False
        options: dict[str, Any] = {"runtime_env": {"env_vars": worker_env(modules)}, "log_to_driver": False,
                                   "configure_logging": False}
        if self.address is None:
            # "local": a new instance even when another one runs on this machine (a test's, a colleague's)
            options.update(address="local", num_cpus=self.num_cpus or os.cpu_count() or 1, include_dashboard=False)
        else:
            options["address"] = self.address
        try:
            ray.init(**options)
        except (ConnectionError, RuntimeError, ValueError) as err:
            where = self.address or "a local instance"
            raise UserError(f"--executor ray: cannot start or join Ray at {where} ({str(err).splitlines()[0]}); "
                            "check --address, or start the cluster with `ray start --head`") from None
        return True

    def _read_on_nodes(self, ray):
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        read = ray.remote(num_cpus=0)(_read_token)

        def on_nodes(path: str) -> list[tuple[str, str | None]]:
            nodes = [n for n in ray.nodes() if n.get("Alive")]
            refs = [read.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)).remote(path)
                    for n in nodes]
            return [(n.get("NodeManagerAddress", n["NodeID"]), seen) for n, seen in zip(nodes, ray.get(refs))]

        return on_nodes

    def map(self, fn: Callable, jobs: Iterable, on_cell: Callable | None = None) -> Iterator:
        from eeg2img.methods import defining_module

        jobs = list(jobs)
        if not jobs:
            return
        ray = import_ray()
        modules = tuple(sorted({m for job in jobs for spec in job.methods if (m := defining_module(spec.name))}))
        started = self._connect(ray, modules)
        pending: list = []
        try:
            check_shared_store(jobs[0].runs_dir, self._read_on_nodes(ray))
            gpus = ray.cluster_resources().get("GPU", 0) >= 1
            task = ray.remote(_run_job)
            refs = {}
            for job in jobs:
                ref = task.options(max_retries=self.max_retries, retry_exceptions=False,
                                   **job_resources(job, gpus)).remote(fn, job, self.threads, modules)
                refs[ref] = job
            pending = list(refs)
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                outcomes = _result(ray, done[0])
                for o in outcomes if on_cell else ():
                    on_cell(o)
                yield outcomes
        except BaseException:
            for ref in pending:
                ray.cancel(ref, force=True)
            if pending:
                _wait_cancelled(ray, pending)
                _remove_temps(jobs[0].runs_dir)
            raise
        finally:
            if started:
                ray.shutdown()


def _result(ray, ref):
    """The task's outcomes; a task that raised re-raises its own exception here (a UserError stays one line)."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as err:
        cause = err.as_instanceof_cause()
        if isinstance(cause, UserError) or isinstance(getattr(err, "cause", None), UserError):
            raise UserError(str(getattr(err, "cause", cause))) from None
        raise


def _wait_cancelled(ray, refs) -> None:
    try:
        ray.wait(refs, num_returns=len(refs), timeout=10)
    except Exception:  # noqa: BLE001 - cancelled tasks raise on wait in some Ray versions; nothing to keep
        pass


def _remove_temps(runs_dir: str | Path) -> None:
    """Temporary files of the killed tasks (their writers are gone, so remove_stale_temps takes them)."""
    from eeg2img.atomic import remove_stale_temps

    root = Path(runs_dir)
    for folder in {p.parent for p in root.rglob(".*.tmp")}:
        remove_stale_temps(folder)
