"""Published numbers (``published.json``), shown beside ours as *reported, not reproduced*.

They appear only where the dataset family and the protocol match ours (EEG-CVPR40 ``eeg_*``
datasets with the ``pooled`` protocol; THINGS-EEG2 per subject), never for synthetic data, and only
in a column whose metric matches and whose backbone matches the paper's (never a substitute).
"""

from __future__ import annotations

import json
from fnmatch import fnmatch
from functools import cache
from importlib import resources

import pandas as pd

from reports.metric_info import is_substitute

REPORTED_KIND = "reported, not reproduced"


@cache
def _document() -> dict:
    return json.loads(resources.files("reports").joinpath("published.json").read_text(encoding="utf-8"))


def dataset_family(dataset: str) -> str | None:
    """The published dataset a dataset name belongs to, or None (synthetic data never belongs to one)."""
    name = dataset.lower()
    for family, rule in _document()["dataset_families"].items():
        if any(fnmatch(name, p) for p in rule.get("exclude", [])):
            continue
        if any(fnmatch(name, p) for p in rule["include"]):
            return family
    return None


def published_entries(dataset: str, protocol: str) -> pd.DataFrame:
    """Entries for this dataset and protocol: model, ours, subject, metric, backbone, value, source, note."""
    cols = ["model", "ours", "subject", "metric", "backbone", "value", "source", "note"]
    family = dataset_family(dataset)
    if family is None:
        return pd.DataFrame(columns=cols)
    rows = [e for e in _document()["entries"] if e["dataset_family"] == family and e["protocol"] == protocol]
    frame = pd.DataFrame(rows, columns=[*cols, "dataset_family", "protocol"])
    frame["note"] = frame["note"].fillna("")
    frame["subject"] = [None if pd.isna(s) else str(int(s)) for s in frame["subject"]]
    return frame[cols]


def matches_column(entry_backbone: str | None, metric: str, column_metric: str, column_backbone: str,
                   substitutes: frozenset[str] | set[str] = frozenset()) -> bool:
    """A published value goes into our column only if the metric and the (non-substitute) backbone match."""
    if metric != column_metric or is_substitute(column_backbone, substitutes):
        return False
    return entry_backbone is None or fnmatch(column_backbone.lower(), str(entry_backbone).lower())


def table3_ablation() -> pd.DataFrame:
    """NeuroImagen Table 3 (EEG-CVPR40, pooled): variant, metric, value, source — the published ablation."""
    rows = [{"variant": e["model"][len("NeuroImagen ("):-1], "metric": e["metric"], "value": e["value"],
             "source": e["source"]}
            for e in _document()["entries"]
            if "Table 3" in e["source"] and e["model"].startswith("NeuroImagen (")]
    return pd.DataFrame(rows, columns=["variant", "metric", "value", "source"])
