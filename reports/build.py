"""``eeg2img report RUNS_DIR --out DIR``: leaderboard, per-subject table, cross-subject gap, significance,
plots, reconstruction grids, published numbers and provenance — as CSV, Markdown, PNG and one
self-contained HTML page (``index.html``, written last).
"""

from __future__ import annotations

import datetime as _dt
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from eeg2img.atomic import write_csv, write_json, write_text, write_with
from eeg2img.errors import UserError
from metrics.stats import PERMUTATION_MAX_PAIRS
from metrics.vocabulary import STATUS_OK
from reports import plots
from reports.claims import demo_claims
from reports.grids import grid_for_dataset
from reports.load import Runs, load_merged, load_runs
from reports.metric_info import SUBSTITUTE_NOTE, is_substitute
from reports.published import REPORTED_KIND
from reports.render import (
    SUBSTITUTE_HTML,
    Figure,
    Section,
    columns_present,
    definition_table,
    esc,
    figure_html,
    frame_html,
    html_table,
    leaderboard_html,
    leaderboard_markdown,
    method_cell,
    page,
)
from reports.tables import (
    ALPHA,
    CI_POOLED,
    CI_TRIALS,
    CI_UNITS,
    Column,
    ablation_table,
    columns_of,
    cross_subject_gap,
    declared_substitutes,
    fmt,
    leaderboard,
    leaderboard_wide,
    per_subject,
    per_subject_wide,
    power_notes,
    published_rows,
    significance,
    sort_rows,
    unit_scores,
)

TITLE = "eeg2img-bench report"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "dataset"


def _write_png(path: Path, png: bytes) -> Path:
    return write_with(path, lambda p: p.write_bytes(png))


def _prepare_out(out_dir: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"{out_dir}: exists and is not a directory; pass a folder for --out")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"{out_dir}: cannot create the output folder ({err.strerror}); pass a writable --out") from None


def _notes(board: pd.DataFrame, columns: list[Column], runs: Runs, n_boot: int, sig: pd.DataFrame) -> list[str]:
    bases = Counter(b for b in board["ci_basis"] if b)
    basis_text = "; ".join(f"{b}: {n} entries" for b, n in bases.most_common())
    notes = [
        "Per-sample metrics: mean over subject×fold units (seeds averaged first) and its 95% percentile-bootstrap "
        f"CI ({n_boot} resamples). CI resampled over — {esc(basis_text)}. "
        f"'{CI_UNITS}' resamples the units; '{CI_TRIALS}' resamples trials from samples.parquet within each unit.",
        "Set-level metrics (FID, KID, IS): one value over the pooled test trials of all folds — the whole test set, "
        f"N given in the cell — with a 95% bootstrap CI over those trials ('{CI_POOLED}'). Below a metric's minimum "
        "N (IS 20: two splits of at least 10 images; KID 20; FID 50) the cell reads “N &lt; min” and holds no "
        "number. They have no per-trial values, so no paired test and no “best” mark.",
        "<strong>Bold</strong>: the best non-oracle, non-floor method of its column (per dataset and protocol), "
        "shown only when it is unique and differs from the runner-up at p &lt; "
        f'{ALPHA} after Holm. <span class="dagger">†</span>: differs from that best method at p &lt; {ALPHA} — a '
        "two-sided sign-flip permutation test of the mean paired difference over the matched test trials, "
        "Holm-adjusted across the methods of the column. The significance table gives the effect (mean paired "
        "difference, 95% CI) and, beside it, the test over subject×fold units (exact sign-flip below "
        f"{PERMUTATION_MAX_PAIRS} units, Wilcoxon from {PERMUTATION_MAX_PAIRS}, as MOABB). Hover a value for its "
        "adjusted p-value.",
        '<span class="badge oracle">oracle</span> rows are upper bounds that saw the stimulus or label; '
        '<span class="badge floor">floor</span> rows are chance-level references.',
        f'<span class="badge reported">{REPORTED_KIND}</span> rows are numbers published by papers, shown only '
        "for the matching dataset and protocol (never for synthetic data), in columns with a matching backbone.",
    ]
    if any(c.substitute for c in columns):
        notes.append(f"Columns marked “(substitute)” use a {esc(SUBSTITUTE_NOTE)}.")
    notes += [esc(n) for n in power_notes(sig)]
    warned = board[board["warning"].fillna("") != ""] if "warning" in board else board.iloc[:0]
    for (dataset, protocol, metric), g in warned.groupby(["dataset", "protocol", "metric"]):
        notes.append(esc(f"{dataset} / {protocol} / {metric.upper()}: {g['warning'].iloc[0]}"))
    notes += [esc(n) for n in runs.notes]
    return notes


def _per_subject_section(subj_wide: pd.DataFrame, columns: list[Column]) -> str:
    parts = ['<p class="note">Mean over folds and seeds per subject (cf. NeuroImagen Table 2). '
             "Published per-subject numbers appear as italic rows where dataset and protocol match.</p>"]
    for n, ((dataset, protocol), d) in enumerate(subj_wide.groupby(["dataset", "protocol"], sort=False)):
        cols = columns_present(d, columns)
        frame = d[["method", "kind", "subject", *[c.label for c in cols]]]
        parts.append(f"<h3>{esc(dataset)} — {esc(protocol)}</h3>")
        parts.append(frame_html(f"per-subject-{n}", frame))
    return "".join(parts)


def _gap_section(gap: pd.DataFrame, columns: list[Column]) -> str:
    if gap.empty:
        return ('<p class="note">No method has both within-subject and leave-one-subject-out results on the same '
                "folds (per-subject and LOSO, or zero-shot and zero-shot-loso).</p>")
    labels = {(c.metric, c.backbone, c.protocol): c.label for c in columns}
    header = ["dataset", "method", "protocols", "metric", "within", "across", "gap [95% CI]", "p", "test", "trials",
              "units", "p (units)", "min p (units)"]
    rows, classes = [], []

    def p_cell(p: float) -> tuple[str, str]:
        return (f"{p:.3g}", repr(float(p))) if pd.notna(p) else ("", "")

    for r in sort_rows(gap.assign(protocol=gap["protocols"].str.split(" − ").str[0])).itertuples(index=False):
        ci = f' <span class="ci">[{fmt(r.ci_low)}, {fmt(r.ci_high)}]</span>' if pd.notna(r.ci_low) else ""
        column = labels.get((r.metric, r.backbone, r.label), r.metric)
        rows.append([
            (esc(r.dataset), r.dataset), (method_cell(r.method, r.kind), r.method), (esc(r.protocols), r.protocols),
            (esc(column), column), (fmt(r.within), repr(float(r.within))), (fmt(r.across), repr(float(r.across))),
            (fmt(r.gap) + ci, repr(float(r.gap))), p_cell(r.p_value), (esc(r.test), r.test),
            (str(r.n_trials), str(r.n_trials)), (str(r.n_units), str(r.n_units)), p_cell(r.p_units),
            p_cell(r.units_min_p),
        ])
        classes.append({"oracle": "oracle", "floor": "floor"}.get(r.kind, ""))
    note = ('<p class="note">Within-subject minus leave-one-subject-out score on the same test trials (per-subject '
            "minus LOSO; zero-shot minus zero-shot-loso: fold s of both protocols tests subject s's trials), paired "
            "over those trials: gap = mean paired difference, CI = "
            "percentile bootstrap over trials, p = two-sided sign-flip permutation test over trials. Beside it the "
            "test over subject×fold units and the smallest p the units could give at all (0.5 for 2 subjects, "
            "0.25 for 3). For ↓ metrics a negative gap means the within-subject model is better.</p>")
    return note + html_table("cross-subject-gap", header, rows, classes)


def _significance_section(sig: pd.DataFrame, columns: list[Column]) -> str:
    if sig.empty:
        return '<p class="note">No paired comparisons (need at least one non-oracle, non-floor method).</p>'
    labels = {(c.metric, c.backbone, c.protocol): c.label for c in columns}
    frame = sig[~sig["is_best"]]
    frame = frame.assign(column=[labels.get(k, k[0]) for k in zip(frame["metric"], frame["backbone"], frame["label"])])
    frame = frame[["dataset", "protocol", "column", "method", "best", "diff", "diff_ci_low", "diff_ci_high",
                   "n_trials", "p_value", "p_holm", "test", "significant", "n_units", "p_units", "test_units",
                   "units_min_p", "units_can_reach"]]
    note = ('<p class="note">Each method against the best method of its column: diff = mean paired difference over '
            "the matched test trials (method − best) with its 95% bootstrap CI; p = two-sided sign-flip "
            "permutation test over those trials; p_holm = Holm-adjusted across the methods of the column "
            f"(significant: p_holm &lt; {ALPHA}). p_units: MOABB's test over subject×fold units; units_min_p: the "
            "smallest p those units could give; units_can_reach: whether that is below 0.05.</p>")
    return (note + "<details><summary>Every paired comparison with the best method of its column</summary>"
            + frame_html("significance", frame, kind_column=None) + "</details>")


def _claims_section(claims: pd.DataFrame) -> str:
    note = ('<p class="note">What the embedded benchmark is built to show (see <code>reports/claims.py</code>): '
            "each claim is a paired comparison over the matched test trials — Δ = mean difference (better − worse) "
            "with its 95% bootstrap CI, sign-flip p, Holm-adjusted over all claims of this report. "
            f"holds: Δ &gt; 0 and p_holm &lt; {ALPHA}; holds_on_means: Δ &gt; 0.</p>")
    return note + frame_html("claims", claims, kind_column=None)


def _ablation_section(ablation: pd.DataFrame) -> str:
    note = ('<p class="note">NeuroImagen\'s variants as this run measured them, beside Table 3 of the paper '
            f"(<em>{REPORTED_KIND}</em>: EEG-CVPR40, Inception/pixel metrics on real images). The datasets, "
            "backbones and models differ, so compare the pattern across variants — in the paper the label caption "
            "carries ACC (saliency only 4.5 %) and the saliency map adds SSIM — never the values. Whether the "
            "pattern holds here, paired over trials, is in the ablation rows of the claims.</p>")
    return note + frame_html("ablation", ablation, kind_column=None)


def benchmark_line(runs: Runs) -> str:
    """The benchmark these numbers belong to: compare two reports' ids before comparing their numbers."""
    if runs.benchmark is None:
        return "Benchmark id: unknown (the run store predates benchmark ids; rerun `eeg2img run`)"
    merged = f"; {len(runs.stores)} run stores merged" if len(runs.stores) > 1 else ""
    return f"Benchmark id: {runs.benchmark['benchmark_id']} ({len(runs.benchmark['folds'])} folds{merged})"


def leaderboard_document(runs: Runs, board: pd.DataFrame, sig: pd.DataFrame) -> dict:
    """``leaderboard.json``: the whole leaderboard machine-readably, one entry per method × column.

    ``value`` is null where the column reads "N < min"; ``p_vs_best`` is the Holm-adjusted paired test
    against the column's best method (null for the best itself and where no test ran).
    """
    keys = ["dataset", "protocol", "metric", "backbone", "label", "method"]
    tests = {tuple(r[k] for k in keys): r for r in sig.to_dict("records")} if len(sig) else {}
    entries = []
    for r in board.to_dict("records"):
        t = tests.get(tuple(r[k] for k in keys), {})
        ok = r.get("status") == STATUS_OK
        entries.append({
            **{k: r[k] for k in ("dataset", "protocol", "method", "kind", "metric", "backbone", "label")},
            "value": _num(r["mean"]) if ok else None, "ci_low": _num(r["ci_low"]) if ok else None,
            "ci_high": _num(r["ci_high"]) if ok else None, "status": r.get("status"),
            "n_units": _int(r.get("n_units")), "n_trials": _int(r.get("n_trials")), "min_n": _int(r.get("min_n")),
            "best": bool(t.get("best_marked", False)), "p_vs_best": _num(t.get("p_holm")),
            "test": t.get("test") if isinstance(t.get("test"), str) else None,
        })
    methods = {}
    for c in runs.cells:
        methods.setdefault(c.method, {"kind": c.kind, "submission": c.submission, "stores": set()})
        methods[c.method]["stores"].add(str(next((s for s in runs.stores if c.path.is_relative_to(s)), runs.root)))
    return {"benchmark_id": runs.benchmark["benchmark_id"] if runs.benchmark else None,
            "stores": [str(s) for s in runs.stores],
            "methods": {m: {**v, "stores": sorted(v["stores"])} for m, v in sorted(methods.items())},
            "entries": entries}


def _num(x) -> float | None:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    return x if np.isfinite(x) else None


def _int(x) -> int | None:
    v = _num(x)
    return None if v is None else int(v)


def _provenance_section(runs: Runs, substitutes: frozenset[str]) -> str:
    cells = runs.cells
    parts = [f'<p class="note">{len(cells)} finished cells in <code>{esc(runs.root)}</code>.</p>']

    def counted(values) -> str:
        c = Counter(v for v in values if v not in (None, ""))
        if not c:
            return "unknown"
        text = "; ".join(f"{v} ({n} cells)" if len(c) > 1 else str(v) for v, n in c.most_common())
        return text + (" — MIXED" if len(c) > 1 else "")

    created = sorted(str(c.provenance["created"]) for c in cells if c.provenance.get("created"))
    summary = [
        ("git commit", counted(c.provenance.get("git_commit") for c in cells)),
        ("device", counted(c.provenance.get("device") for c in cells)),
        ("created", (created[0] if created[0] == created[-1] else f"{created[0]} … {created[-1]}") if created
         else "unknown"),
    ]
    packages: dict[str, list] = {}
    for c in cells:
        for name, version in (c.provenance.get("packages") or {}).items():
            packages.setdefault(name, []).append(version)
    summary += [(f"package {name}", counted(v)) for name, v in sorted(packages.items())]
    parts.append("<h3>Software and hardware</h3>" + definition_table("provenance-software", summary))

    datasets = sorted({(c.dataset, str(c.provenance.get("dataset_fingerprint", "")),
                        str(c.provenance.get("dataset_path", ""))) for c in cells})
    parts.append("<h3>Datasets</h3>" + html_table(
        "provenance-datasets", ["dataset", "fingerprint", "path"],
        [[(esc(d), d), (f"<code>{esc(f)}</code>", f), (f"<code>{esc(p)}</code>", p)] for d, f, p in datasets]))

    splits = sorted({(c.dataset, c.protocol, c.fold, str(c.provenance.get("split_fingerprint", ""))) for c in cells})
    parts.append("<h3>Split fingerprints</h3>" + html_table(
        "provenance-splits", ["dataset", "protocol", "fold", "split fingerprint"],
        [[(esc(d), d), (esc(p), p), (esc(f), f), (f"<code>{esc(s)}</code>", s)] for d, p, f, s in splits]))

    weights: dict[tuple[str, str], int] = Counter()
    for c in cells:
        for name, digest in (c.provenance.get("weights") or {}).items():
            weights[(str(name), str(digest))] += 1
    rows = []
    for (name, digest), n in sorted(weights.items()):
        label = esc(name) + (' <span class="badge">substitute</span>' if is_substitute(name, substitutes) else "")
        rows.append([(label, name), (f"<code>{esc(digest)}</code>", digest), (str(n), str(n))])
    parts.append("<h3>Weights (sha256)</h3>" + (html_table("provenance-weights", ["weights", "sha256", "cells"], rows)
                                                  if rows else '<p class="note">No weights recorded.</p>'))
    if any(is_substitute(n, substitutes) for n, _ in weights):
        parts.append(f'<p class="note">{SUBSTITUTE_HTML}</p>')

    configs = sorted({(c.dataset, c.method, c.config_hash[:12]) for c in cells})
    parts.append("<details><summary>Configuration hashes</summary>" + html_table(
        "provenance-configs", ["dataset", "method", "config hash"],
        [[(esc(d), d), (esc(m), m), (f"<code>{esc(h)}</code>", h)] for d, m, h in configs]) + "</details>")
    return "".join(parts)


def build_report(runs_dir: str | Path | Sequence[str | Path], out_dir: str | Path, *, ci: str = "units",
                 n_boot: int = 2000, seed: int = 0, grid_trials: int = 8) -> Path:
    """Write the report of one run store, or of several of the same benchmark merged, into ``out_dir``.

    Everything is computed in memory first, so bad input stops the build before any file is written;
    each file is then written atomically, ``index.html`` last.
    """
    runs = load_merged(list(runs_dir)) if isinstance(runs_dir, list | tuple) else load_runs(runs_dir)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: exists and is not a directory; pass a folder for --out")
    substitutes = declared_substitutes(runs)
    columns = columns_of(runs.results, substitutes, runs.set_level)
    board = leaderboard(runs, ci=ci, n_boot=n_boot, seed=seed)
    sig = significance(runs, substitutes, seed=seed)
    published = published_rows(board, columns, substitutes)
    wide = leaderboard_wide(board, sig, columns, published)
    sources = {}
    if len(published):
        for r in published.itertuples(index=False):
            sources[(r.dataset, r.protocol, r.method)] = r.source + (f" — {r.note}" if r.note else "")
    units = unit_scores(runs.results)
    subj = per_subject(runs)
    pairs = sorted(set(map(tuple, runs.results[["dataset", "protocol"]].drop_duplicates().to_numpy())))
    subj_wide = per_subject_wide(subj, columns, pairs, substitutes)
    gap = cross_subject_gap(runs, n_boot=n_boot, seed=seed)
    claims = demo_claims(runs, seed=seed)
    ablation = ablation_table(board, columns)
    method_order = list(dict.fromkeys(wide["method"]))

    board_csv = wide.copy()
    board_csv.insert(4, "source", [sources.get((d, p, m), "") for d, p, m in
                                   zip(board_csv["dataset"], board_csv["protocol"], board_csv["method"])])
    for col in columns:
        basis = board[col.mask(board)].set_index(
            ["dataset", "protocol", "method"])["ci_basis"]
        key = pd.MultiIndex.from_frame(board_csv[["dataset", "protocol", "method"]])
        board_csv[f"{col.label} ci_basis"] = basis.reindex(key).fillna("").to_numpy()
    notes = _notes(board, columns, runs, n_boot, sig)
    plain_notes = [re.sub(r"<[^>]+>", "", n).replace("&lt;", "<").replace("&amp;", "&") for n in notes]

    figures: dict[str, list[Figure]] = {"plots": [], "grids": []}
    for dataset in sorted(runs.results["dataset"].unique()):
        slug = _slug(dataset)
        made = [
            ("per-subject-scores", "Per-subject scores per method", plots.per_subject_scores(subj, columns, dataset)),
            ("subject-vs-loso", "Per-subject vs LOSO (paired)", plots.subject_vs_loso(units, columns, dataset)),
            ("metric-correlations", "Metric correlations", plots.metric_correlations(units, columns, dataset)),
        ]
        for stem, title, png in made:
            if png is not None:
                figures["plots"].append(Figure(f"{stem}-{slug}", f"{dataset}: {title}", png, "", f"{stem}_{slug}.png"))
        grid = grid_for_dataset(runs, dataset, method_order, n_trials=grid_trials)
        if grid is not None:
            figures["grids"].append(Figure(f"reconstructions-{slug}", f"{dataset}: reconstructions", grid[0], grid[1],
                                           f"reconstructions_{slug}.png"))

    published_note = ""
    if sources:
        items = "".join(f"<li>{esc(m)}: {esc(s)}</li>" for (_, _, m), s in sorted(sources.items()))
        published_note = (f'<p class="note">Published numbers are <em>{REPORTED_KIND}</em>; they come from '
                          f"<code>reports/published.json</code>:</p><ul class=\"notes\">{items}</ul>")
    sections = [
        Section("leaderboard", "Leaderboard", leaderboard_html(wide, columns, sources) + published_note),
        Section("per-subject", "Per-subject results", _per_subject_section(subj_wide, columns)),
        Section("gap", "Cross-subject gap (per-subject − LOSO)", _gap_section(gap, columns)),
        Section("significance", "Significance", _significance_section(sig, columns)),
        *([Section("claims", "Benchmark claims", _claims_section(claims))] if len(claims) else []),
        *([Section("ablation", "Ablation beside NeuroImagen Table 3", _ablation_section(ablation))]
          if len(ablation) else []),
        Section("plots", "Plots", "".join(figure_html(f) for f in figures["plots"])
                or '<p class="note">Not enough data for plots.</p>'),
        Section("reconstructions", "Reconstructions", "".join(figure_html(f) for f in figures["grids"])
                or '<p class="note">No reconstructions or trial tables found.</p>'),
    ]
    now = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    datasets = ", ".join(sorted(runs.results["dataset"].unique()))
    meta = (f"Generated {esc(now)} from {len(runs.cells)} finished cells; datasets: {esc(datasets)}; "
            f"protocols: {esc(', '.join(sorted(runs.results['protocol'].unique())))}. {esc(benchmark_line(runs))}.")
    html = page(TITLE, meta, notes, sections, _provenance_section(runs, substitutes))

    _prepare_out(out)
    write_csv(out / "leaderboard.csv", board_csv)
    write_json(out / "leaderboard.json", leaderboard_document(runs, board, sig))
    write_text(out / "leaderboard.md", leaderboard_markdown(wide, columns, [benchmark_line(runs), *plain_notes], TITLE))
    write_csv(out / "per_subject.csv", subj_wide)
    write_csv(out / "cross_subject_gap.csv", gap)
    write_csv(out / "significance.csv", sig)
    if len(claims):
        write_csv(out / "claims.csv", claims)
    if len(ablation):
        write_csv(out / "ablation.csv", ablation)
    for fig in figures["plots"] + figures["grids"]:
        _write_png(out / fig.filename, fig.png)
    write_text(out / "index.html", html)
    return out
