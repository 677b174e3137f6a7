"""Run store: layout, atomic writes, tidy aggregation, corrupt files."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from eeg2img.atomic import atomic_path, write_json
from eeg2img.errors import UserError
from eeg2img.provenance import config_hash, provenance
from eeg2img.runstore import RESULT_COLUMNS, CellKey, RunStore


def _finish_cell(store, key, subject=1, value=0.5):
    store.start(key, {"alpha": 1}, False, provenance(config_hash=key.config_hash))
    store.save_reconstruction(key, "00001", np.full((4, 4, 3), 7, np.uint8))
    trials = pd.DataFrame({"trial_id": ["00001"], "subject": [subject], "image_id": ["c00_0001"], "label": [0]})
    samples = pd.DataFrame({"trial_id": ["00001"], "subject": [subject], "metric": ["ssim"], "backbone": ["pixels"], "value": [value]})
    rows = samples.groupby(["subject", "metric", "backbone"], as_index=False)["value"].mean()
    rows["label"] = "RGB mean"
    for k in ("dataset", "protocol", "fold", "method", "seed"):
        rows[k] = getattr(key, k)
    store.finish(key, trials, samples, rows, provenance(config_hash=key.config_hash))


def test_cell_layout_and_results(tmp_path):
    store = RunStore(tmp_path)
    a = CellKey("synth", "per-subject", "sub-01", "floor-mean", 0, config_hash({"x": 1}))
    b = CellKey("synth", "loso", "sub-01", "floor-mean", 0, config_hash({"x": 1}))
    assert not store.is_done(a)
    _finish_cell(store, a, value=0.25)
    _finish_cell(store, b, value=0.75)
    d = store.cell_dir(a)
    assert d.relative_to(tmp_path).parts[:5] == ("synth", "per-subject", "sub-01", "floor-mean", "seed-0")
    assert store.is_done(a) and store.is_done(b)
    assert json.loads((d / "cell.json").read_text())["params"] == {"alpha": 1}
    assert store.finished_reconstructions(a) == {"00001"}
    np.testing.assert_array_equal(store.load_reconstructions(a, ["00001"])[0], np.full((4, 4, 3), 7))
    table = store.write_results()
    assert list(table.columns) == RESULT_COLUMNS
    assert table.set_index("protocol").value.to_dict() == {"loso": 0.75, "per-subject": 0.25}
    assert pd.read_csv(tmp_path / "results.csv").shape == (2, len(RESULT_COLUMNS))
    samples = store.samples()
    assert set(samples.protocol) == {"loso", "per-subject"} and len(samples) == 2


def test_unfinished_cells_are_not_results(tmp_path):
    store = RunStore(tmp_path)
    key = CellKey("synth", "per-subject", "sub-01", "floor-mean", 0, "ab" * 32)
    store.start(key, {}, False, {})
    store.save_reconstruction(key, "00001", np.zeros((4, 4, 3), np.uint8))
    assert store.results().empty
    assert not any(p.name.endswith(".tmp") for p in tmp_path.rglob("*"))


def test_atomic_path_leaves_target_untouched_on_failure(tmp_path):
    target = tmp_path / "x.json"
    write_json(target, {"v": 1})
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert json.loads(target.read_text()) == {"v": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.json"]


def test_corrupt_metrics_file_is_a_one_line_error(tmp_path):
    store = RunStore(tmp_path)
    key = CellKey("synth", "pooled", "pooled", "floor-mean", 0, "cd" * 32)
    _finish_cell(store, key)
    (store.cell_dir(key) / "metrics.parquet").write_bytes(b"not parquet")
    with pytest.raises(UserError, match="metrics.parquet: unreadable"):
        store.results()


def test_missing_runs_dir_and_bad_names(tmp_path):
    with pytest.raises(UserError, match="no such runs directory"):
        RunStore(tmp_path / "nope").results()
    with pytest.raises(UserError, match="invalid name"):
        RunStore(tmp_path).cell_dir(CellKey("a/b", "loso", "f", "m", 0, "00" * 32))


def test_config_hash_ignores_key_order_and_sees_values():
    assert config_hash({"a": 1, "b": [1, 2]}) == config_hash({"b": [1, 2], "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})


def test_provenance_records_versions_device_commit():
    record = provenance(config_hash="x")
    assert record["config_hash"] == "x"
    assert "torch" in record["packages"] and "numpy" in record["packages"]
    assert record["device"].startswith(("cpu", "cuda"))
    assert "created" in record
