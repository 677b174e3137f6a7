"""`eeg2img report latency`: pytest-benchmark history → table and plot over commits, regressions flagged."""

import copy
import json
import subprocess
import sys

import pandas as pd
import pytest
from PIL import Image

from benchmarks.latency import build_latency_report, flag_regressions, load_history
from eeg2img.cli import main
from eeg2img.errors import UserError

MACHINE = "Linux-CPython-3.11-64bit"


def benchmark_entry(fullname: str, median: float, extra: dict | None = None) -> dict:
    # The shape pytest-benchmark 4/5 writes (see its Metadata.as_dict); times in seconds.
    return {
        "group": None, "name": fullname.split("::")[-1], "fullname": fullname, "params": None, "param": None,
        "extra_info": extra or {},
        "options": {"disable_gc": False, "timer": "perf_counter", "min_rounds": 5, "max_time": 1.0,
                    "min_time": 5e-06, "precision": None, "confidence": None, "warmup": False},
        "stats": {"min": median * 0.9, "max": median * 1.3, "mean": median * 1.05, "stddev": median * 0.05,
                  "rounds": 10, "median": median, "iqr": median * 0.1, "q1": median * 0.95, "q3": median * 1.05,
                  "iqr_outliers": 0, "stddev_outliers": 1, "outliers": "1;0", "ld15iqr": median * 0.9,
                  "hd15iqr": median * 1.3, "ops": 1 / (median * 1.05), "total": median * 10.5, "iterations": 1},
    }


def write_run(store, number: int, commit: str, when: str, medians: dict, machine=MACHINE, dirty=False):
    doc = {
        "machine_info": {"node": "ci", "processor": "", "machine": "x86_64", "python_implementation": "CPython",
                         "python_version": "3.11.7", "system": "Linux",
                         "cpu": {"brand_raw": "Test CPU @ 2.0GHz", "arch": "X86_64", "bits": 64}},
        "commit_info": {"id": commit, "time": when, "author_time": when, "dirty": dirty, "project": "eeg2img-bench",
                        "branch": "main"},
        "benchmarks": [benchmark_entry(name, m, {"p95_ms": m * 1.2e3, "peak_mem_mb": 100.0})
                       for name, m in medians.items()],
        "datetime": when,
        "version": "5.3.1",
    }
    path = store / machine / f"{number:04d}_{commit}_{when[:10].replace('-', '')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    return path


ENC = "benchmarks/bench_latency.py::test_encoder_cpu"
GAN = "benchmarks/bench_latency.py::test_saliency_gan_cpu"
SSIM = "benchmarks/bench_latency.py::test_metrics_per_100_images_cpu"


@pytest.fixture
def history(tmp_path):
    store = tmp_path / "store"
    write_run(store, 1, "a" * 40, "2025-01-01T10:00:00.000000+00:00", {ENC: 0.010, GAN: 0.020, SSIM: 0.50})
    # Injected regression: the encoder is 60% slower; the GAN within noise; the metrics 40% faster.
    write_run(store, 2, "b" * 40, "2025-01-02T10:00:00.000000+00:00", {ENC: 0.016, GAN: 0.022, SSIM: 0.30})
    return store


def test_two_runs_flag_the_injected_regression(history):
    flagged = flag_regressions(load_history(history), threshold=0.25)
    second = flagged[flagged["commit"] == "b" * 40].set_index("benchmark")
    assert second.loc[ENC, "status"] == "regression"
    assert second.loc[ENC, "change"] == pytest.approx(0.6)
    assert second.loc[GAN, "status"] == "ok" and second.loc[SSIM, "status"] == "faster"
    assert set(flagged.loc[flagged["commit"] == "a" * 40, "status"]) == {"new"}
    assert second.loc[ENC, "previous_commit"] == "aaaaaaaa"
    # A looser threshold lets the same slow-down through.
    loose = flag_regressions(load_history(history), threshold=0.75)
    assert "regression" not in set(loose["status"])


def test_machines_are_compared_only_with_themselves(history):
    write_run(history, 3, "c" * 40, "2025-01-03T10:00:00.000000+00:00", {ENC: 0.100}, machine="Linux-gpu-box")
    flagged = flag_regressions(load_history(history))
    other = flagged[flagged["machine"] == "Linux-gpu-box"]
    assert other["status"].tolist() == ["new"]


def test_report_files_and_cli_exit_codes(history, tmp_path, capsys):
    out = tmp_path / "latency"
    assert main(["report", "latency", "--history", str(history), "--out", str(out)]) == 0
    stdout = capsys.readouterr().out
    assert "REGRESSION" in stdout and "test_encoder_cpu" in stdout and "+60%" in stdout
    assert {p.name for p in out.iterdir()} == {"latency.csv", "latency.md", "latency.png", "latency.html"}
    md = (out / "latency.md").read_text()
    enc_line = next(line for line in md.splitlines() if line.startswith(f"| {ENC} "))
    assert "**REGRESSION**" in enc_line and "10 ms (aaaaaaaa)" in enc_line and "16 ms (bbbbbbbb)" in enc_line
    assert "+60.0%" in enc_line
    table = pd.read_csv(out / "latency.csv")
    assert len(table) == 6 and table["status"].value_counts()["regression"] == 1
    html = (out / "latency.html").read_text()
    assert "http://" not in html and "https://" not in html and "data:image/png;base64," in html
    with Image.open(out / "latency.png") as im:
        assert im.size[0] > 300
    assert main(["report", "latency", "--history", str(history), "--out", str(out), "--fail-on-regression"]) == 1


def test_report_latency_is_its_own_subcommand_and_a_runs_dir_named_latency_stays_reachable(history, tmp_path):
    assert main(["report", "latency", "--history", str(history), "--out", str(tmp_path / "o"),
                 "--threshold", "0.9", "--fail-on-regression"]) == 0  # 60% is under a 90% threshold
    assert (tmp_path / "o" / "latency.html").is_file()


def test_a_runs_directory_named_latency_is_reached_through_report_runs(tmp_path, monkeypatch, capsys):
    from fake_runs import write_fake_runs

    write_fake_runs(tmp_path / "latency", protocols=("per-subject",))
    monkeypatch.chdir(tmp_path)
    assert main(["report", "runs", "latency", "--out", "out", "--n-boot", "200", "--grid-trials", "2"]) == 0
    assert (tmp_path / "out" / "index.html").is_file() and "report:" in capsys.readouterr().out
    # The bare word still selects the latency report, which says what it wanted.
    assert main(["report", "latency", "--out", "o2"]) == 2
    assert "benchmark history" in capsys.readouterr().err


def test_bad_history_inputs(tmp_path, capsys):
    with pytest.raises(UserError, match="no such benchmark history folder"):
        load_history(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no pytest-benchmark results"):
        load_history(tmp_path / "empty")
    bad = tmp_path / "bad" / MACHINE
    bad.mkdir(parents=True)
    (bad / "0001_x.json").write_text('{"benchmarks": [')
    with pytest.raises(UserError, match="0001_x.json: unreadable benchmark JSON"):
        load_history(tmp_path / "bad")
    (bad / "0001_x.json").write_text(json.dumps({"benchmarks": [{"fullname": "x", "stats": {}}]}))
    with pytest.raises(UserError, match="has no stats.median"):
        load_history(tmp_path / "bad")
    assert main(["report", "latency", "--history", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    ok = tmp_path / "ok"
    write_run(ok, 1, "a" * 40, "2025-01-01T10:00:00+00:00", {ENC: 0.01})
    with pytest.raises(UserError, match="threshold"):
        build_latency_report(ok, tmp_path / "o2", threshold=0)


def test_reads_what_pytest_benchmark_really_writes(tmp_path):
    bench = tmp_path / "bench_tiny.py"
    bench.write_text("def test_sum(benchmark):\n"
                     "    benchmark.extra_info['p95_ms'] = 1.0\n"
                     "    benchmark.pedantic(sum, args=(range(100),), rounds=5, iterations=1)\n")
    store = tmp_path / "store"
    cmd = [sys.executable, "-m", "pytest", str(bench), "-q", "-p", "no:cacheprovider", "-o", "addopts=",
           "-o", "python_files=bench_*.py", "--rootdir", str(tmp_path), "--benchmark-autosave",
           f"--benchmark-storage={store}"]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    (saved,) = list(store.rglob("*.json"))
    slower = copy.deepcopy(json.loads(saved.read_text()))
    for b in slower["benchmarks"]:
        b["stats"] = {k: v * 2 if isinstance(v, float) and k not in ("ops",) else v for k, v in b["stats"].items()}
    slower["datetime"] = "2999-01-01T00:00:00+00:00"
    slower["commit_info"]["id"] = "f" * 40
    (saved.parent / "0002_ffff_29990101.json").write_text(json.dumps(slower))
    flagged = flag_regressions(load_history(store))
    assert flagged["benchmark"].str.endswith("test_sum").all()
    assert flagged["status"].tolist() == ["new", "regression"]
    assert flagged["change"].iloc[1] == pytest.approx(1.0)
    assert flagged["p95_ms"].iloc[0] == 1.0
