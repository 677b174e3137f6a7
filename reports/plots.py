"""The report's figures as PNG bytes (seaborn on matplotlib's Agg canvas; no pyplot global state).

Every function returns ``None`` when the data cannot support the figure (e.g. no LOSO runs), so
the report simply leaves it out. Titles carry the column label, so a substitute backbone is
labelled on the figure itself.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

from reports.tables import PROTOCOL_ORDER, Column

MAX_PANELS = 6
DPI = 110


def _figure(n_panels: int, width: float = 4.2, height: float = 3.4, ncols: int | None = None):
    from matplotlib.figure import Figure

    ncols = ncols or min(n_panels, 3)
    nrows = int(np.ceil(n_panels / ncols))
    fig = Figure(figsize=(width * ncols, height * nrows), dpi=DPI, layout="tight")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    return fig, axes[:n_panels]


def _png(fig) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _palette(methods: list[str]) -> dict[str, tuple]:
    import seaborn as sns

    return dict(zip(methods, sns.color_palette("tab10" if len(methods) <= 10 else "husl", len(methods))))


def _order_protocols(values) -> list[str]:
    present = list(dict.fromkeys(values))
    return [p for p in PROTOCOL_ORDER if p in present] + sorted(p for p in present if p not in PROTOCOL_ORDER)


def per_subject_scores(subj: pd.DataFrame, columns: list[Column], dataset: str) -> bytes | None:
    """Per column: each subject's score per method (points), protocols side by side, mean marked."""
    import seaborn as sns

    data = subj[(subj["dataset"] == dataset) & (subj["subject"] != "all")]
    cols = [c for c in columns if c.mask(data).any()][:MAX_PANELS]
    if data.empty or not cols:
        return None
    methods = sorted(data["method"].unique())
    protocols = _order_protocols(data["protocol"])
    # Many methods make each panel wide: stack the panels then, so the figure stays readable.
    fig, axes = _figure(len(cols), width=max(4.2, 0.7 * len(methods) + 1.5), ncols=1 if len(methods) > 8 else None)
    # seaborn divides by (number of hue levels − 1) when dodging, so one protocol must not dodge.
    dodge = len(protocols) > 1
    for ax, col in zip(axes, cols):
        d = data[col.mask(data)]
        sns.stripplot(d, x="method", y="value", hue="protocol", order=methods, hue_order=protocols, dodge=dodge,
                      ax=ax, size=5, alpha=0.8, legend=False)
        sns.pointplot(d, x="method", y="value", hue="protocol", order=methods, hue_order=protocols, dodge=0.53 if dodge else False,
                      errorbar=None, markers="_", linestyles="none", ax=ax, legend=ax is axes[0])
        ax.set_title(col.label, fontsize=9)
        ax.set_xlabel("")
        ax.set_ylabel("score per subject")
        ax.tick_params(axis="x", rotation=45, labelsize=8)
    if axes[0].get_legend() is not None:
        axes[0].legend(title="protocol (bar = mean)", fontsize=7, title_fontsize=7)
    fig.suptitle(f"{dataset}: per-subject scores", fontsize=10)
    return _png(fig)


def subject_vs_loso(units: pd.DataFrame, columns: list[Column], dataset: str) -> bytes | None:
    """Paired slope plot: each subject's per-subject score joined to its LOSO score, per method."""
    d = units[units["dataset"] == dataset]
    # the label keeps apart columns of one metric computed under different protocols (5-way vs 10-way)
    keys = ["method", "metric", "backbone", "fold", "subject"] + (["label"] if "label" in d.columns else [])
    within = d[d["protocol"] == "per-subject"].set_index(keys)["value"]
    across = d[d["protocol"] == "loso"].set_index(keys)["value"]
    paired = pd.concat({"per-subject": within, "loso": across}, axis=1).dropna().reset_index()
    if paired.empty:
        return None
    cols = [c for c in columns if c.mask(paired).any()]
    cols = cols[:MAX_PANELS]
    methods = sorted(paired["method"].unique())
    colours = _palette(methods)
    fig, axes = _figure(len(cols), width=4.0)
    for ax, col in zip(axes, cols):
        p = paired[col.mask(paired)]
        for method, g in p.groupby("method"):
            for within_score, loso_score in zip(g["per-subject"], g["loso"]):
                ax.plot([0, 1], [within_score, loso_score], color=colours[method], alpha=0.35, lw=1, marker="o", ms=3)
            ax.plot([0, 1], [g["per-subject"].mean(), g["loso"].mean()], color=colours[method], lw=2.5,
                    marker="o", label=method)
        ax.set_xticks([0, 1], ["per-subject", "LOSO"])
        ax.set_xlim(-0.25, 1.25)
        ax.set_title(col.label, fontsize=9)
        ax.set_ylabel("score (thin: subject, thick: mean)")
    axes[0].legend(fontsize=7)
    fig.suptitle(f"{dataset}: within-subject vs leave-one-subject-out (same test trials)", fontsize=10)
    return _png(fig)


def metric_correlations(units: pd.DataFrame, columns: list[Column], dataset: str) -> bytes | None:
    """Spearman correlation between metric columns over every (protocol, method, fold, subject) unit."""
    import seaborn as sns

    d = units[units["dataset"] == dataset]
    labels = {(c.metric, c.backbone): c.label for c in columns}
    d = d.assign(column=[labels.get((m, b), m) for m, b in zip(d["metric"], d["backbone"])])
    wide = d.pivot_table(index=["protocol", "method", "fold", "subject"], columns="column", values="value")
    wide = wide[[c.label for c in columns if c.label in wide.columns]]
    if wide.shape[1] < 2 or len(wide) < 3:
        return None
    corr = wide.corr(method="spearman")
    n = len(corr)
    fig, axes = _figure(1, width=2.2 + 1.1 * n, height=1.8 + 0.9 * n, ncols=1)
    sns.heatmap(corr, vmin=-1, vmax=1, cmap="vlag", annot=True, fmt=".2f", square=True, ax=axes[0],
                cbar_kws={"shrink": 0.7})
    axes[0].set_xlabel("")
    axes[0].set_ylabel("")
    axes[0].tick_params(labelsize=8)
    axes[0].set_title(f"{dataset}: Spearman correlation of metrics\nover {len(wide)} protocol×method×subject×fold units",
                      fontsize=9)
    return _png(fig)


def reconstruction_grid(stimuli: list[np.ndarray | None], rows: list[tuple[str, list[np.ndarray | None]]],
                        column_titles: list[str], title: str, cell: int = 96) -> bytes:
    """Grid (PIL): first row the stimuli, then one row per method; a missing image is a grey "missing" box."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=11)
    all_rows = [("stimulus", stimuli), *rows]
    draw_probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    label_w = 12 + max(int(draw_probe.textlength(name, font=font)) for name, _ in all_rows)
    pad, title_h, head_h = 4, 24, 30
    width = label_w + len(column_titles) * (cell + pad) + pad
    height = title_h + head_h + len(all_rows) * (cell + pad) + pad
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    draw.text((pad, 4), title.replace("—", "-"), fill="black", font=font)
    for j, text in enumerate(column_titles):
        x = label_w + j * (cell + pad)
        for k, line in enumerate(text.split("\n")[:2]):
            while line and draw.textlength(line, font=font) > cell:
                line = line[:-1]
            draw.text((x, title_h + k * 13), line, fill="#444444", font=font)
    for i, (name, images) in enumerate(all_rows):
        y = title_h + head_h + i * (cell + pad)
        draw.text((pad, y + cell // 2 - 6), name, fill="black", font=font)
        for j, image in enumerate(images):
            x = label_w + j * (cell + pad)
            if image is None:
                draw.rectangle([x, y, x + cell - 1, y + cell - 1], fill="#c8c8c8")
                draw.text((x + 20, y + cell // 2 - 6), "missing", fill="#444444", font=font)
                continue
            im = Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8))
            # Small reconstructions are enlarged without smoothing so their pixels stay visible.
            resample = Image.NEAREST if max(im.size) < cell else Image.BICUBIC
            canvas.paste(im.resize((cell, cell), resample), (x, y))
    buf = io.BytesIO()
    canvas.save(buf, format="PNG", optimize=True)
    return buf.getvalue()
