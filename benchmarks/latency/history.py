"""``eeg2img report latency``: the saved pytest-benchmark history as a table and a plot over commits.

pytest-benchmark (``--benchmark-autosave --benchmark-storage=DIR``) writes one JSON file per run
under ``DIR/<machine id>/NNNN_<commit>_<date>[_uncommitted-changes].json`` holding ``commit_info``,
``machine_info``, ``datetime`` and a ``benchmarks`` list (``fullname``, ``stats`` in seconds,
``extra_info``). A series is one benchmark on one machine (folder, CPU and GPU); within a series each
run is compared with the run before it and flagged as a regression when its median grew by more
than the threshold (25% by default: see benchmarks/README.md for why).
"""

from __future__ import annotations

import datetime as _dt
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.latency.rule import DEFAULT_THRESHOLD, STATS
from eeg2img.atomic import write_csv, write_text, write_with
from eeg2img.errors import UserError

SERIES = ["machine", "cpu", "gpu", "benchmark"]


def _run_record(path: Path, root: Path) -> list[dict] | None:
    try:
        doc = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(f"{path}: unreadable benchmark JSON ({err.__class__.__name__}); delete the file or rerun "
                        "the benchmarks with --benchmark-autosave") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("benchmarks"), list):
        return None  # not a pytest-benchmark run file
    commit = doc.get("commit_info") or {}
    machine_info = doc.get("machine_info") or {}
    rel = path.relative_to(root)
    machine = rel.parts[0] if len(rel.parts) > 1 else str(machine_info.get("machine") or "unknown")
    cpu = (machine_info.get("cpu") or {}).get("brand_raw") or machine_info.get("processor") or ""
    commit_id = str(commit.get("id") or "unknown")
    rows = []
    for b in doc["benchmarks"]:
        stats = b.get("stats") or {}
        if not isinstance(stats, dict) or stats.get("median") is None:
            raise UserError(f"{path}: benchmark {b.get('fullname', '?')!r} has no stats.median; the file is "
                            "truncated or not from pytest-benchmark — delete it")
        extra = b.get("extra_info") or {}
        rows.append({
            "file": str(rel), "machine": machine, "cpu": cpu, "run_time": str(doc.get("datetime") or ""),
            "commit": commit_id, "commit_short": commit_id[:8] + ("+dirty" if commit.get("dirty") else ""),
            "branch": commit.get("branch") or "", "benchmark": b.get("fullname") or b.get("name"),
            "name": b.get("name"), "group": b.get("group") or "",
            **{s: float(stats[s]) for s in STATS if stats.get(s) is not None},
            "stddev": float(stats.get("stddev") or 0.0), "rounds": int(stats.get("rounds") or 0),
            "p50_ms": extra.get("p50_ms"), "p95_ms": extra.get("p95_ms"),
            "images_per_s": extra.get("images_per_s"), "peak_mem_mb": extra.get("peak_mem_mb"),
            "device": extra.get("device", ""), "gpu": extra.get("gpu", ""),
        })
    return rows


def load_history(history_dir: str | Path) -> pd.DataFrame:
    """Every benchmark of every saved run, ordered by run time; one row per (run, benchmark)."""
    root = Path(history_dir)
    if not root.is_dir():
        raise UserError(f"{root}: no such benchmark history folder; run `pytest benchmarks --benchmark-autosave "
                        f"--benchmark-storage={root}` first")
    rows: list[dict] = []
    n_files = 0
    for path in sorted(root.rglob("*.json")):
        record = _run_record(path, root)
        if record is not None:
            n_files += 1
            rows.extend(record)
    if not rows:
        raise UserError(f"{root}: no pytest-benchmark results (JSON files with a 'benchmarks' list); run the "
                        "benchmarks with --benchmark-autosave")
    frame = pd.DataFrame(rows)
    frame = frame.sort_values(["run_time", "file", "benchmark"], kind="stable").reset_index(drop=True)
    order = {f: i for i, f in enumerate(dict.fromkeys(frame["file"]))}
    frame["run"] = frame["file"].map(order)
    return frame


def flag_regressions(history: pd.DataFrame, threshold: float = DEFAULT_THRESHOLD, stat: str = "median") -> pd.DataFrame:
    """Add ``previous``, ``change`` (relative, vs the series' previous run) and ``status``.

    ``status`` is ``regression`` when the statistic grew by more than ``threshold``, ``faster``
    when it fell by more than ``threshold``, ``ok`` otherwise and ``new`` for a series' first run.
    """
    if stat not in STATS:
        raise UserError(f"--stat {stat}: unknown statistic; use one of {', '.join(STATS)}")
    if not threshold > 0:
        raise UserError(f"--threshold {threshold}: must be a positive fraction such as 0.25")
    h = history.sort_values(["run", "benchmark"], kind="stable").copy()
    h["previous"] = h.groupby(SERIES, sort=False)[stat].shift(1)
    h["previous_commit"] = h.groupby(SERIES, sort=False)["commit_short"].shift(1)
    h["change"] = h[stat] / h["previous"] - 1.0
    h["status"] = np.select(
        [h["previous"].isna(), h["change"] > threshold, h["change"] < -threshold], ["new", "regression", "faster"], "ok"
    )
    return h.reset_index(drop=True)


def latest(flagged: pd.DataFrame) -> pd.DataFrame:
    """The last run of every series (its status says whether that run regressed)."""
    return flagged.groupby(SERIES, sort=False).tail(1).sort_values(["benchmark", "machine"]).reset_index(drop=True)


def _ms(seconds: float) -> str:
    if seconds is None or not np.isfinite(seconds):
        return "–"
    ms = seconds * 1e3
    return f"{ms:.3g} ms" if ms < 1000 else f"{seconds:.3g} s"


def _change(c: float) -> str:
    return "" if c is None or not np.isfinite(c) else f"{c:+.1%}"


def latency_markdown(flagged: pd.DataFrame, threshold: float, stat: str) -> str:
    last = latest(flagged)
    runs = flagged.drop_duplicates("file")[["run", "run_time", "commit_short", "machine", "file"]]
    lines = [
        "# Latency history",
        "",
        f"{len(runs)} saved run(s), {flagged['benchmark'].nunique()} benchmark(s). Each run is compared with the "
        f"previous run of the same benchmark on the same machine; **REGRESSION** = {stat} latency up by more "
        f"than {threshold:.0%}.",
        "",
        "| benchmark | machine | previous | latest | change | status |",
        "|---|---|---|---|---|---|",
    ]
    for r in last.itertuples(index=False):
        prev = f"{_ms(r.previous)} ({r.previous_commit})" if pd.notna(r.previous) else "–"
        status = "**REGRESSION**" if r.status == "regression" else r.status
        lines.append(f"| {r.benchmark} | {r.machine} | {prev} | {_ms(getattr(r, stat))} ({r.commit_short}) | "
                     f"{_change(r.change)} | {status} |")
    past = flagged[flagged["status"] == "regression"]
    lines += ["", "## Every regression in the history", ""]
    if past.empty:
        lines.append("None.")
    else:
        lines += ["| benchmark | machine | before | after | change |", "|---|---|---|---|---|"]
        lines += [f"| {r.benchmark} | {r.machine} | {_ms(r.previous)} ({r.previous_commit}) | "
                  f"{_ms(getattr(r, stat))} ({r.commit_short}) | {_change(r.change)} |" for r in past.itertuples()]
    lines += ["", "## Runs", "", "| # | time | commit | machine | file |", "|---|---|---|---|---|"]
    lines += [f"| {r.run} | {r.run_time} | {r.commit_short} | {r.machine} | {r.file} |" for r in runs.itertuples()]
    return "\n".join(lines) + "\n"


def latency_plot(flagged: pd.DataFrame, stat: str) -> bytes:
    """Each series' statistic relative to its first run, over runs (labelled by commit); regressions marked."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    runs = flagged.drop_duplicates("run").sort_values("run")
    fig = Figure(figsize=(max(6.0, 1.1 * len(runs) + 3), 4.6), dpi=110, layout="tight")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    for (*_, bench), g in flagged.groupby(SERIES, sort=True):
        rel = g[stat] / g[stat].iloc[0]
        (line,) = ax.plot(g["run"], rel, marker="o", ms=4, lw=1.3, label=str(bench).split("::")[-1][:48])
        bad = g["status"] == "regression"
        if bad.any():
            ax.scatter(g.loc[bad, "run"], rel[bad], s=110, marker="x", color="#b3261e", zorder=5, linewidths=2.5)
    ax.set_xticks(runs["run"], [f"{c}\n{t[:10]}" for c, t in zip(runs["commit_short"], runs["run_time"])], fontsize=7)
    ax.set_ylabel(f"{stat} latency / first run")
    ax.axhline(1.0, color="grey", lw=0.8, ls=":")
    ax.set_title("Benchmark latency over commits (red × = regression)", fontsize=10)
    if flagged["benchmark"].nunique() <= 15:
        ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def latency_html(flagged: pd.DataFrame, png: bytes, threshold: float, stat: str) -> str:
    from reports.render import Section, data_uri, esc, html_table, page

    last = latest(flagged)
    rows, classes = [], []
    for r in last.itertuples(index=False):
        value = getattr(r, stat)
        rows.append([
            (esc(r.benchmark), r.benchmark), (esc(r.machine), r.machine),
            (esc(f"{_ms(r.previous)} ({r.previous_commit})") if pd.notna(r.previous) else "–",
             "" if pd.isna(r.previous) else repr(float(r.previous))),
            (esc(f"{_ms(value)} ({r.commit_short})"), repr(float(value))),
            (_change(r.change), "" if pd.isna(r.change) else repr(float(r.change))),
            (f"<strong>{esc(r.status)}</strong>" if r.status == "regression" else esc(r.status), r.status),
            (esc("" if pd.isna(r.p95_ms) else f"{r.p95_ms:.3g} ms"), "" if pd.isna(r.p95_ms) else repr(float(r.p95_ms))),
            (esc("" if pd.isna(r.peak_mem_mb) else f"{r.peak_mem_mb:.0f} MB"),
             "" if pd.isna(r.peak_mem_mb) else repr(float(r.peak_mem_mb))),
        ])
        classes.append("regression" if r.status == "regression" else "")
    table = html_table("latency", ["benchmark", "machine", f"previous {stat}", f"latest {stat}", "change", "status",
                                   "p95", "peak memory"], rows, classes)
    past = flagged[flagged["status"] == "regression"]
    history_rows = [[(esc(r.benchmark), r.benchmark), (esc(r.machine), r.machine),
                     (esc(f"{_ms(r.previous)} ({r.previous_commit})"), repr(float(r.previous))),
                     (esc(f"{_ms(getattr(r, stat))} ({r.commit_short})"), repr(float(getattr(r, stat)))),
                     (_change(r.change), repr(float(r.change)))] for r in past.itertuples(index=False)]
    history = (html_table("latency-history", ["benchmark", "machine", "before", "after", "change"], history_rows)
               if history_rows else '<p class="note">None.</p>')
    n_bad = int((last["status"] == "regression").sum())
    body = (f'<p class="note">{n_bad} regression(s) in the latest runs: {stat} latency up by more than '
            f"{threshold:.0%} against the previous run of the same benchmark on the same machine.</p>{table}"
            f'<figure><img src="{data_uri(png)}" alt="latency over commits"></figure>'
            f"<h3>Every regression in the history</h3>{history}")
    meta = f"Generated {esc(_dt.datetime.now(_dt.UTC).strftime('%Y-%m-%d %H:%M UTC'))}"
    style_extra = "<style>tr.regression td{background:#fde7e7}</style>"
    return page("eeg2img-bench latency", meta, [], [Section("latency", "Latest runs", style_extra + body)],
                '<p class="note">Source: pytest-benchmark JSON files (commit_info, machine_info).</p>')


def build_latency_report(history_dir: str | Path, out_dir: str | Path, *, threshold: float = DEFAULT_THRESHOLD,
                         stat: str = "median") -> tuple[dict[str, Path], pd.DataFrame]:
    """Write latency.csv/.md/.png/.html; returns the files and the latest runs that regressed."""
    flagged = flag_regressions(load_history(history_dir), threshold, stat)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: exists and is not a directory; pass a folder for --out")
    png = latency_plot(flagged, stat)
    written = {
        "latency.csv": write_csv(out / "latency.csv", flagged),
        "latency.md": write_text(out / "latency.md", latency_markdown(flagged, threshold, stat)),
        "latency.png": write_with(out / "latency.png", lambda p: p.write_bytes(png)),
        "latency.html": write_text(out / "latency.html", latency_html(flagged, png, threshold, stat)),
    }
    last = latest(flagged)
    return written, last[last["status"] == "regression"].reset_index(drop=True)
