"""The grid on Ray: a local instance with 2 CPUs inside the suite (loopback only).

Same bytes as the inline run; a worker killed mid-grid is retried without lost or duplicated rows; a run
store the workers cannot see, a missing ray package and a CUDA method on a GPU-less cluster are one line.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import slow_method  # noqa: F401 - registers test-slow-mean

from eeg2img.cli import main
from eeg2img.errors import UserError
from eeg2img.grid.config import parse_config
from eeg2img.grid.ray_executor import RayExecutor, check_shared_store, job_resources
from eeg2img.grid.runner import MethodSpec, make_executor, run_grid
from eeg2img.runstore import RESULT_COLUMNS

TESTS = Path(__file__).parent
ray = pytest.importorskip("ray", reason="ray is part of the dev extra; install it with pip install -e '.[dev]'")


def _grid(dataset_dir, methods=None):
    return parse_config({
        "datasets": [{"path": str(dataset_dir / "eeg_synth.pth")}],
        "protocols": ["per-subject", "loso"],
        "metrics": ["ssim", "pixcorr"],
        "methods": methods or {"floor-mean": {}, "floor-random": {}, "retrieval-ridge": {}},
    })


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray instance (2 CPUs) for the module; the workers import the test's own methods from tests/."""
    if ray.is_initialized():
        ray.shutdown()
    path = os.pathsep.join(p for p in (str(TESTS), os.environ.get("PYTHONPATH", "")) if p)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False,
             runtime_env={"env_vars": {"PYTHONPATH": path, "EEG2IMG_OFFLINE": "1", "PYTHONHASHSEED": "0"}})
    yield ray
    ray.shutdown()


def test_a_grid_on_a_local_ray_instance_equals_the_inline_run_byte_for_byte(tmp_path, tiny_synth_dir):
    config = _grid(tiny_synth_dir)
    inline = run_grid(config, tmp_path / "inline", progress=False)
    if ray.is_initialized():
        ray.shutdown()
    executor = RayExecutor(num_cpus=2, threads=1)  # starts its own local instance, and stops it
    on_ray = run_grid(config, tmp_path / "ray", executor=executor, progress=False)
    assert not ray.is_initialized()
    assert len(inline) == 2 * 3 * 2 * 3 and not inline.duplicated(RESULT_COLUMNS[:-1]).any()
    for name in ("results.csv", "set_level.csv"):
        assert (tmp_path / "ray" / name).read_bytes() == (tmp_path / "inline" / name).read_bytes(), name
    pd.testing.assert_frame_equal(on_ray, inline)


def test_a_worker_killed_mid_grid_is_retried_and_the_results_equal_the_inline_run(tmp_path, tiny_synth_dir, local_ray):
    pids = tmp_path / "pids.txt"
    config = _grid(tiny_synth_dir, {"test-slow-mean": {"delay": 1.5, "pid_file": str(pids)}, "floor-mean": {}})
    run_grid(config, tmp_path / "inline", progress=False)
    pids.unlink()
    errors: list[BaseException] = []

    def drive():
        try:
            run_grid(config, tmp_path / "ray", executor=RayExecutor(threads=1), progress=False)
        except BaseException as err:  # noqa: BLE001 - reported by the assertion below
            errors.append(err)

    driver = threading.Thread(target=drive)
    driver.start()
    deadline = time.monotonic() + 120
    while not (pids.is_file() and pids.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.05)
    victim = int(pids.read_text().split()[0])
    assert victim != os.getpid()  # a Ray worker process, not the driver
    os.kill(victim, signal.SIGKILL)
    driver.join(300)
    assert not driver.is_alive() and not errors, errors
    seen = [int(p) for p in pids.read_text().split()]
    assert victim in seen and len(seen) == 2 * 3 + 1  # six cells, and the killed one once more (the retry)
    table = pd.read_csv(tmp_path / "ray" / "results.csv")
    assert not table.duplicated(RESULT_COLUMNS[:-1]).any()
    assert (tmp_path / "ray" / "results.csv").read_bytes() == (tmp_path / "inline" / "results.csv").read_bytes()
    assert not list((tmp_path / "ray").rglob(".*.tmp"))


def test_a_run_store_the_workers_cannot_see_is_one_line_and_leaves_no_token(tmp_path):
    reads = []

    def other_filesystem(path):
        reads.append(path)
        return [("10.0.0.2", None), ("10.0.0.3", "another token")]

    with pytest.raises(UserError, match=r"do not see this run store") as err:
        check_shared_store(tmp_path, other_filesystem)
    assert "10.0.0.2, 10.0.0.3" in str(err.value) and str(tmp_path) in str(err.value) and "\n" not in str(err.value)
    assert reads and not list(tmp_path.iterdir())  # the token is removed again

    def same_filesystem(path):
        return [("head", Path(path).read_text())]

    check_shared_store(tmp_path, same_filesystem)
    assert not list(tmp_path.iterdir())


def test_the_store_check_reads_the_token_on_every_alive_node(tmp_path, local_ray):
    executor = RayExecutor()
    on_nodes = executor._read_on_nodes(ray)
    check_shared_store(tmp_path, on_nodes)  # the local node sees the store: no error
    (tmp_path / "probe").write_text("x")
    assert [seen for _, seen in on_nodes(str(tmp_path / "probe"))] == ["x"] * len([n for n in ray.nodes() if n["Alive"]])


def test_without_the_ray_package_the_ray_executor_is_one_line_with_the_install_hint(tmp_path, tiny_synth_dir, capsys,
                                                                                    monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray → ImportError
    config = tmp_path / "grid.toml"
    config.write_text(f'executor = "ray"\n[[datasets]]\npath = "{tiny_synth_dir / "eeg_synth.pth"}"\n'
                      '[methods."floor-mean"]\n')
    runs = tmp_path / "runs"
    assert main(["run", "--config", str(config), "--out", str(runs)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and 'pip install "eeg2img-bench[ray]"' in err[0], err
    assert not runs.exists()
    with pytest.raises(UserError, match="eeg2img-bench\\[ray\\]"):
        make_executor("ray")


def test_address_belongs_to_the_ray_executor(tmp_path, tiny_synth_dir, capsys):
    base = {"datasets": [{"path": str(tiny_synth_dir / "eeg_synth.pth")}], "methods": {"floor-mean": {}}}
    with pytest.raises(UserError, match='address is for executor = "ray"'):
        parse_config({**base, "address": "auto"})
    assert parse_config({**base, "executor": "ray", "address": "auto"}).address == "auto"
    config = tmp_path / "grid.toml"
    config.write_text(f'[[datasets]]\npath = "{tiny_synth_dir / "eeg_synth.pth"}"\n[methods."floor-mean"]\n')
    assert main(["run", "--config", str(config), "--out", str(tmp_path / "r"), "--address", "auto"]) == 2
    assert "--address is for --executor ray" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_a_job_asks_for_a_gpu_only_when_a_method_would_use_cuda_and_the_cluster_has_one():
    def job(*specs):
        return SimpleNamespace(seed=0, methods=tuple(MethodSpec(n, p) for n, p in specs))

    diffusion = job(("neuroimagen", {}), ("oracle-caption", {}))
    assert job_resources(diffusion, gpus_available=True) == {"num_cpus": 1, "num_gpus": 1}
    assert job_resources(diffusion, gpus_available=False) == {"num_cpus": 1, "num_gpus": 0}
    floors = job(("floor-mean", {}), ("retrieval-ridge", {}), ("brain2image-gan", {}))  # brain2image: device "cpu"
    assert job_resources(floors, gpus_available=True) == {"num_cpus": 1, "num_gpus": 0}
    assert job_resources(job(("neuroimagen", {"device": "cpu"})), gpus_available=True)["num_gpus"] == 0
    with pytest.raises(UserError, match="methods.latent-ridge: device = 'cuda' but the Ray cluster has no GPU"):
        job_resources(SimpleNamespace(seed=0, methods=(MethodSpec("latent-ridge", {"device": "cuda"}),)), False)


def test_ctrl_c_cancels_the_tasks_leaves_no_temp_files_and_a_rerun_completes(tmp_path, tiny_synth_dir):
    """The driver in its own process (it starts its own local Ray): SIGINT while a task reconstructs."""
    import subprocess

    pids = tmp_path / "pids.txt"
    config = tmp_path / "grid.toml"
    config.write_text(f'executor = "ray"\nprotocols = ["per-subject", "loso"]\nmetrics = ["ssim"]\n'
                      f'[[datasets]]\npath = "{tiny_synth_dir / "eeg_synth.pth"}"\n'
                      f'[methods."test-slow-mean"]\ndelay = 3.0\npid_file = "{pids}"\n')
    runs = tmp_path / "runs"
    script = ("import sys, slow_method; from eeg2img.cli import main; "
              f"sys.exit(main(['run', '--config', {str(config)!r}, '--out', {str(runs)!r}]))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(TESTS), os.environ.get("PYTHONPATH", "")) if p)}
    driver = subprocess.Popen([sys.executable, "-c", script], env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (pids.is_file() and pids.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pids.is_file(), driver.communicate(timeout=60)[1]
    driver.send_signal(signal.SIGINT)
    _, err = driver.communicate(timeout=120)
    assert driver.returncode == 130 and "interrupted; rerun the same command to resume" in err, err
    assert not list(runs.rglob(".*.tmp"))
    for pid in (int(p) for p in pids.read_text().split()):  # the cancelled tasks' workers are gone
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    pids.unlink()
    config.write_text(config.read_text().replace('executor = "ray"', 'executor = "inline"'))  # not in a cell's key
    assert main(["run", "--config", str(config), "--out", str(runs)]) == 0
    table = pd.read_csv(runs / "results.csv")
    assert len(table) == 2 * 3 and not table.duplicated(RESULT_COLUMNS[:-1]).any()
