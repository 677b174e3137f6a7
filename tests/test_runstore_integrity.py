"""The run store never serves a stale number: cell keys cover every input, one writer, configs checked first."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import slow_method  # noqa: F401 - registers test-slow-mean

from eeg2img.atomic import remove_stale_temps, write_text
from eeg2img.cli import main
from eeg2img.errors import UserError
from eeg2img.grid.config import parse_config
from eeg2img.grid.runner import run_grid
from eeg2img.runstore import RESULT_COLUMNS, RunStore

TESTS = Path(__file__).parent
REPO = TESTS.parent


def _synth(folder: Path, seed: int) -> Path:
    from eeg2img.datasets.synthetic import generate_synthetic

    generate_synthetic(folder, subjects=2, classes=3, images_per_class=5, seed=seed, image_size=16, progress=False)
    return folder


def _config(data: Path, **extra) -> dict:
    return {"datasets": [{"path": str(data / "eeg_synth.pth")}], "protocols": ["per-subject", "loso"],
            "metrics": ["ssim", "pixcorr"], "methods": {"floor-mean": {}, "retrieval-ridge": {}}, **extra}


def _tree_digest(*folders: Path) -> dict[str, str]:
    """Every file under the folders with its content hash and mode: what 'nothing changed' means."""
    out = {}
    for folder in folders:
        for p in sorted(Path(folder).rglob("*")):
            if p.is_file():
                out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest() + oct(p.stat().st_mode)
    return out


def _toml(raw: dict) -> str:
    import json

    def value(v):
        return json.dumps(v) if not isinstance(v, bool) else ("true" if v else "false")

    tables = {k: raw[k] for k in ("datasets", "methods") if isinstance(raw.get(k), (list, dict))}
    lines = [f"{k} = {value(v)}" for k, v in raw.items() if k not in tables]
    for d in tables.get("datasets", []):
        lines += ["[[datasets]]", *(f"{k} = {value(v)}" for k, v in d.items())]
    for name, params in tables.get("methods", {}).items():
        lines += [f'[methods."{name}"]', *(f"{k} = {value(v)}" for k, v in params.items())]
    return "\n".join(lines) + "\n"


# --- 1. the key covers every input ---------------------------------------------------------------------------
def test_a_dataset_regenerated_in_place_is_recomputed_and_equals_a_fresh_store(tmp_path):
    data = _synth(tmp_path / "data", seed=0)
    runs = tmp_path / "runs"
    first = run_grid(parse_config(_config(data)), runs, progress=False)
    _synth(data, seed=1)  # same layout, same file names, other EEG and stimuli
    again = run_grid(parse_config(_config(data)), runs, progress=False)
    fresh = run_grid(parse_config(_config(data)), tmp_path / "fresh", progress=False)
    pd.testing.assert_frame_equal(again, fresh)
    assert not np.allclose(first.value.to_numpy(), again.value.to_numpy())
    assert set(first.config_hash).isdisjoint(again.config_hash)
    # the old cells stay on disk, but neither the results table nor the report reads them
    assert len(RunStore(runs).finished_cells()) == 2 * len(RunStore(tmp_path / "fresh").finished_cells())
    pd.testing.assert_frame_equal(pd.read_csv(runs / "results.csv"), pd.read_csv(tmp_path / "fresh" / "results.csv"))
    from reports.load import load_runs

    loaded = load_runs(runs)
    assert set(loaded.results.config_hash) == set(fresh.config_hash)
    assert any("other configurations" in n for n in loaded.notes)


def test_a_split_option_makes_new_cells(tmp_path):
    data = _synth(tmp_path / "data", seed=0)
    runs = tmp_path / "runs"
    run_grid(parse_config(_config(data)), runs, progress=False)
    allowed = parse_config(_config(data, allow_test_images_in_train=True))
    again = run_grid(allowed, runs, progress=False)
    fresh = run_grid(allowed, tmp_path / "fresh", progress=False)
    pd.testing.assert_frame_equal(again, fresh)
    # per-subject folds do not depend on the option, so those cells are reused; LOSO cells are new
    store = RunStore(runs)
    cells = store.finished_cells()
    assert sum("/loso/" in str(c) for c in cells) == 2 * sum("/per-subject/" in str(c) for c in cells)


def test_other_parameters_never_give_two_rows_for_one_key_and_prune_removes_the_old_cells(tmp_path, capsys):
    data = _synth(tmp_path / "data", seed=0)
    runs = tmp_path / "runs"
    run_grid(parse_config(_config(data)), runs, progress=False)
    changed = _config(data, methods={"floor-mean": {}, "retrieval-ridge": {"alpha": 1000.0}})
    table = run_grid(parse_config(changed), runs, progress=False)
    keys = [c for c in RESULT_COLUMNS if c not in ("value", "config_hash")]
    assert not table.duplicated(keys).any()
    on_disk = pd.read_csv(runs / "results.csv")
    assert list(on_disk.columns) == RESULT_COLUMNS and not on_disk.duplicated(keys).any()
    assert len(RunStore(runs).all_cells()) == 12  # 8 cells of the new config + 4 old retrieval-ridge cells
    config = tmp_path / "grid.toml"
    config.write_text(_toml(changed))
    assert main(["run", "--config", str(config), "--out", str(runs), "--prune"]) == 0
    assert "pruned 4 cell(s)" in capsys.readouterr().out
    assert len(RunStore(runs).all_cells()) == 8
    pd.testing.assert_frame_equal(pd.read_csv(runs / "results.csv"), on_disk)


def test_the_metric_specification_is_part_of_the_key(tmp_path):
    data = _synth(tmp_path / "data", seed=0)
    a = run_grid(parse_config(_config(data, metrics=["ssim"])), tmp_path / "runs", progress=False)
    b = run_grid(parse_config(_config(data, metrics=["ssim", "pixcorr"])), tmp_path / "runs", progress=False)
    assert set(a.config_hash).isdisjoint(b.config_hash)
    assert set(b.metric) == {"ssim", "pixcorr"}


def test_the_key_covers_every_parameter_value_and_the_method_version(monkeypatch):
    """A default changed in the code, or a bumped Method.version, gives new cells; writing a default out does not."""
    from baselines.retrieval import RidgeRetrieval
    from eeg2img.grid.runner import MethodSpec
    from eeg2img.methods import _REGISTRY

    inputs = {"dataset": "d", "split": "s"}
    base = MethodSpec("retrieval-ridge", {}).config_hash(0, inputs)
    assert MethodSpec("retrieval-ridge", {"n_bins": 10}).config_hash(0, inputs) == base  # the default, written out
    assert MethodSpec("retrieval-ridge", {"n_bins": 12}).config_hash(0, inputs) != base

    class NewDefault(RidgeRetrieval):
        def __init__(self, seed: int = 0, image_size: int | None = None, n_bins: int = 12, alpha: float | None = None,
                     feature_size: int = 16):
            super().__init__(seed, image_size, n_bins, alpha, feature_size)

    class NewBehaviour(RidgeRetrieval):
        version = "2"

    for changed in (NewDefault, NewBehaviour):
        monkeypatch.setitem(_REGISTRY, "retrieval-ridge", changed)
        assert MethodSpec("retrieval-ridge", {}).config_hash(0, inputs) != base, changed.__name__


# --- 2. one writer per store --------------------------------------------------------------------------------
def test_a_second_run_on_a_held_store_fails_in_one_line_naming_the_holder(tmp_path, capsys):
    data = _synth(tmp_path / "data", seed=0)
    runs = tmp_path / "runs"
    config = tmp_path / "grid.toml"
    config.write_text(_toml(_config(data)))
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            from eeg2img.runstore import RunStore
            with RunStore({str(runs)!r}).lock():
                print("held", flush=True)
                time.sleep(60)
        """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        code = main(["run", "--config", str(config), "--out", str(runs)])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1
        assert f"pid {holder.pid}" in err[0] and "another --out" in err[0]
        assert not list(runs.glob("*/*")), "the refused run wrote cells"
    finally:
        holder.kill()
        holder.wait()
    assert main(["run", "--config", str(config), "--out", str(runs)]) == 0  # released when its holder died


def test_two_concurrent_runs_on_one_store_end_with_the_table_of_a_single_run(tmp_path):
    data = _synth(tmp_path / "data", seed=0)
    raw = _config(data, methods={"test-slow-mean": {"delay": 0.5}, "floor-mean": {}})
    config = tmp_path / "grid.toml"
    config.write_text(_toml(raw))
    runs = tmp_path / "runs"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    script = "import slow_method, sys; from eeg2img.cli import main; sys.exit(main(sys.argv[1:]))"
    cmd = [sys.executable, "-c", script, "run", "--config", str(config), "--out", str(runs)]
    procs = [subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)]
    time.sleep(0.3)
    procs.append(subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True))
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes in ([0, 0], [0, 2]), results
    for code, err in results:
        if code == 2:
            assert "in use by another process (pid" in err and "Traceback" not in err
    single = run_grid(parse_config(raw), tmp_path / "single", progress=False)
    pd.testing.assert_frame_equal(pd.read_csv(runs / "results.csv"), pd.read_csv(tmp_path / "single" / "results.csv"))
    assert len(single) == len(pd.read_csv(runs / "results.csv"))


def test_temp_cleanup_touches_only_files_of_writers_that_are_gone(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    mine = tmp_path / f".x.png.{os.getpid()}.abc.tmp"
    gone = tmp_path / f".x.png.{int(dead.stdout)}.abc.tmp"
    for p in (mine, gone):
        p.write_bytes(b"partial")
    assert remove_stale_temps(tmp_path) == 1
    assert mine.exists() and not gone.exists()


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640)])
def test_written_files_get_the_mode_of_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        path = write_text(tmp_path / "results.csv", "a\n")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == mode


# --- 3. the config is checked completely before any work ----------------------------------------------------
BAD_VALUES = [
    ({"allow_test_images_in_train": "no"}, "allow_test_images_in_train must be true or false"),
    ({"seeds": 5}, "seeds must be a non-empty list of integers"),
    ({"seeds": [-1]}, "seeds entry must be an integer in [0, 4294967296)"),
    ({"seeds": [2**32]}, "seeds entry must be an integer in [0, 4294967296)"),
    ({"seeds": [True]}, "seeds entry must be an integer"),
    ({"protocols": "loso"}, "protocols must be a non-empty list of strings"),
    ({"metrics": 5}, "metrics must be a non-empty list of strings"),
    ({"methods": 5}, "no methods given"),
    ({"runs_dir": 5}, "runs_dir must be a non-empty string"),
    ({"workers": 0}, "workers must be an integer ≥ 1"),
    ({"backbone": "nonsense"}, "unknown backbone 'nonsense'"),
    ({"datasets": [{"path": 5}]}, "datasets.path must be a non-empty string"),
    ({"methods": {"retrieval-ridge": {"bogus": 1}}}, "methods.retrieval-ridge: unknown parameter 'bogus'"),
    ({"methods": {"retrieval-ridge": {"n_bins": "ten"}}}, "methods.retrieval-ridge.n_bins must be an integer"),
    ({"methods": {"floor-mean": {"seed": 3}}}, "set by the runner from the top-level seeds"),
    # a value of the right type that the method cannot use: its check_params, still before any work
    ({"methods": {"latent-ridge": {"strength": 1.5}}}, "methods.latent-ridge: latent-ridge: strength=1.5 is invalid"),
    ({"methods": {"neuroimagen": {"caption": "gpt"}}}, "methods.neuroimagen: neuroimagen: caption='gpt' is invalid"),
]


@pytest.mark.parametrize("bad, message", BAD_VALUES, ids=[next(iter(b)) + "-" + str(i) for i, (b, _) in enumerate(BAD_VALUES)])
def test_a_bad_config_value_is_one_line_naming_the_key_and_nothing_is_written(tmp_path, tiny_synth_dir, capsys, bad, message):
    raw = {**_config(tiny_synth_dir), **bad}
    with pytest.raises(UserError, match=None) as err:
        parse_config(raw, where="grid.toml")
    assert message in str(err.value), str(err.value)
    config = tmp_path / "grid.toml"
    config.write_text(_toml(raw))
    runs = tmp_path / "runs"
    before = _tree_digest(tiny_synth_dir)
    code = main(["run", "--config", str(config), "--out", str(runs)])
    err_lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err_lines) == 1 and message in err_lines[0], err_lines
    assert not runs.exists() and _tree_digest(tiny_synth_dir) == before


def test_subjects_are_checked_for_their_type_and_against_the_dataset_before_work(tmp_path, tiny_synth_dir, capsys):
    for subjects, message in ((3, "datasets.subjects must be a non-empty list"), (["a"], "datasets.subjects entry"),
                              ([9], "unknown subject 9")):
        raw = _config(tiny_synth_dir)
        raw["datasets"][0]["subjects"] = subjects
        config = tmp_path / "grid.toml"
        config.write_text(_toml(raw))
        code = main(["run", "--config", str(config), "--out", str(tmp_path / "runs")])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and message in err[0], err
        assert not (tmp_path / "runs").exists()


def test_an_offline_official_backbone_without_weights_fails_before_any_work(tmp_path, tiny_synth_dir, capsys, monkeypatch):
    monkeypatch.setenv("EEG2IMG_OFFLINE", "1")
    monkeypatch.setenv("EEG2IMG_WEIGHTS", str(tmp_path / "no-weights"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    config = tmp_path / "grid.toml"
    config.write_text(_toml(_config(tiny_synth_dir, metrics=["ssim", "fid"], backbone="inception-tf")))
    code = main(["run", "--config", str(config), "--out", str(tmp_path / "runs")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert "backbone_weights" in err[0] and "--inception-weights" not in err[0]
    assert not (tmp_path / "runs").exists()


# --- 4. operating-system problems are one line ---------------------------------------------------------------
def test_path_problems_of_run_are_one_line(tmp_path, tiny_synth_dir, capsys):
    config = tmp_path / "grid.toml"
    config.write_text(_toml(_config(tiny_synth_dir)))
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    cases = [
        (["run", "--config", str(tmp_path)], "is a folder"),
        (["run", "--config", str(config), "--out", str(a_file)], "is a file, not a folder; pass another --out"),
        (["run", "--config", str(config), "--out", str(a_file / "runs")], "is a file, so"),
    ]
    for argv, message in cases:
        code = main(argv)
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and message in err[0], (argv, err)
    assert a_file.read_text() == "x"


# --- 7. loaders never write into the data folder; permissions as an unprivileged process sees them ----------
_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH, _PR_CAPBSET_DROP = 1, 2, 24


def _drop_permission_overrides() -> None:
    """In the child, before exec: drop the capabilities that let root ignore file modes.

    Root's capabilities after exec are its bounding set, so without these two it reads and writes only
    what the file modes allow — an unprivileged process's view, with no second user needed (the tox
    environment is not readable by another user).
    """
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH):
        if libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "EEG2IMG_CACHE": str(tmp_path / "cache"), "EEG2IMG_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "eeg2img.cli", *args], env=env, capture_output=True, text=True,
                          timeout=300, preexec_fn=_drop_permission_overrides if os.geteuid() == 0 else None)


def test_the_child_process_really_cannot_override_file_modes(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        done = subprocess.run([sys.executable, "-c", f"open({str(locked / 'x')!r}, 'w')"], capture_output=True,
                              text=True, preexec_fn=_drop_permission_overrides if os.geteuid() == 0 else None)
    finally:
        locked.chmod(0o755)
    assert done.returncode == 1 and "PermissionError" in done.stderr


def _chmod_tree(root: Path, dirs: int, files: int) -> None:
    for p in [root, *root.rglob("*")]:
        p.chmod(dirs if p.is_dir() else files)


def test_a_read_only_dataset_folder_works_and_stays_untouched(tmp_path):
    data = _synth(tmp_path / "data", seed=0)
    config = tmp_path / "grid.toml"
    config.write_text(_toml({**_config(data), "protocols": ["per-subject", "official"]}))
    _chmod_tree(data, 0o555, 0o444)
    try:
        before = _tree_digest(data)
        run = _cli(tmp_path, "run", "--config", str(config), "--out", str(tmp_path / "runs"))
        assert run.returncode == 0, run.stderr
        info = _cli(tmp_path, "data", "info", str(data))
        assert info.returncode == 0, info.stderr
        assert _tree_digest(data) == before  # no digest sidecar, no cache, nothing
    finally:
        _chmod_tree(data, 0o755, 0o644)
    assert len(pd.read_csv(tmp_path / "runs" / "results.csv"))


def test_an_unreadable_dataset_or_runs_folder_is_one_line(tmp_path):
    data = _synth(tmp_path / "data", seed=0)
    config = tmp_path / "grid.toml"
    config.write_text(_toml(_config(data)))
    read_only = tmp_path / "read-only"
    read_only.mkdir(mode=0o555)
    read_only.chmod(0o555)
    run = _cli(tmp_path, "run", "--config", str(config), "--out", str(read_only / "runs"))
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr
    assert run.stderr.strip().splitlines()[-1].startswith("eeg2img: error:") and "permission denied" in run.stderr and "pass another --out" in run.stderr
    data.chmod(0o000)
    try:
        run = _cli(tmp_path, "run", "--config", str(config), "--out", str(tmp_path / "runs"))
    finally:
        data.chmod(0o755)
    lines = run.stderr.strip().splitlines()
    assert run.returncode == 2 and len(lines) == 1 and "permission denied" in lines[0], run.stderr
    assert not (tmp_path / "runs").exists()


def test_unreadable_inputs_and_unwritable_outputs_of_the_other_commands_are_one_line(tmp_path):
    from test_loaders_things import write_things

    things = write_things(tmp_path / "things", images=False)
    (things / "sub-01").chmod(0o000)
    pred = tmp_path / "pred"
    pred.mkdir()
    Image = pytest.importorskip("PIL.Image")
    for folder in (pred, tmp_path / "ref"):
        folder.mkdir(exist_ok=True)
        for i in range(2):
            Image.fromarray(np.full((16, 16, 3), 40 * i, np.uint8)).save(folder / f"s{i}.png")
    (pred / "s1.png").chmod(0o000)
    read_only = tmp_path / "read-only"
    read_only.mkdir()
    read_only.chmod(0o555)
    cases = [
        (["data", "info", str(things)], "permission denied"),
        (["evaluate", "--pred", str(pred), "--ref", str(tmp_path / "ref"), "--metrics", "ssim"], "s1.png: permission denied"),
        (["evaluate", "--pred", str(tmp_path / "ref"), "--ref", str(tmp_path / "ref"), "--metrics", "ssim",
          "--json", str(read_only / "scores.json")], "not writable"),
        (["data", "synth", "--out", str(read_only / "data"), "--subjects", "1", "--classes", "2",
          "--images-per-class", "3", "--no-progress"], "permission denied"),
    ]
    try:
        for argv, message in cases:
            done = _cli(tmp_path, *argv)
            lines = [line for line in done.stderr.splitlines() if line.strip()]
            assert done.returncode == 2 and len(lines) == 1 and message in lines[0], (argv, done.stderr)
    finally:
        (things / "sub-01").chmod(0o755)
        (pred / "s1.png").chmod(0o644)
        read_only.chmod(0o755)
    assert not any(read_only.iterdir())
