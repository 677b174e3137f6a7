"""The benchmark's identity: what two run stores, or a store and a submission, must share to be ranked together.

A benchmark is its test: every (dataset, protocol, fold) with the dataset's fingerprint and loading
options and the fingerprint of the fold's exact train / validation / test trials, and the metric
specification (each metric and its version, the backbone and its weights; a metric's protocol label,
such as "10-way top-1", follows from these and the dataset). ``benchmark_id`` is the sha256 of that
document (its ``sources``, this machine's paths, left out), so two labs' runs merge into one
leaderboard only when they ran the very same benchmark.
Methods, seeds and executors are not part of it: they are what a leaderboard compares.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from eeg2img.digest import document_digest
from eeg2img.errors import UserError

BENCHMARK_VERSION = 1  # bump when the document's meaning changes: every id changes with it


def benchmark_identity(jobs: Iterable) -> dict:
    """The benchmark document of a planned grid (:func:`eeg2img.grid.runner.plan`), with its ``benchmark_id``."""
    jobs = [j for j in jobs if not j.prefit]
    specs = {j.metric_spec for j in jobs}
    if len(specs) > 1:  # one config has one metric specification; a mixture cannot name one benchmark
        raise UserError("benchmark: the jobs carry different metric specifications; plan them from one config")
    folds = sorted({(j.dataset_name, j.dataset_fingerprint, json.dumps(dict(j.dataset_options), sort_keys=True),
                     j.protocol, j.fold, j.split_fingerprint) for j in jobs})
    doc = {
        "version": BENCHMARK_VERSION,
        "folds": [{"dataset": d, "dataset_fingerprint": fp, "dataset_options": json.loads(opts), "protocol": p,
                   "fold": f, "fingerprint": split} for d, fp, opts, p, f, split in folds],
        "metrics": json.loads(specs.pop()) if specs else {},
    }
    return {"benchmark_id": document_digest(doc, "benchmark_id", "sources"), **doc}


def benchmark_sources(jobs: Iterable) -> list[dict]:
    """Where this machine finds each fold's data and how it evaluates it: the part of a run store's
    benchmark document left out of the id (paths differ between machines), used by ``eeg2img submit``."""
    out, seen = [], set()
    for j in jobs:
        where = (j.dataset_name, j.protocol, j.fold, j.split_fingerprint)
        if j.prefit or where in seen:
            continue
        seen.add(where)
        out.append({"dataset": j.dataset_name, "protocol": j.protocol, "fold": j.fold, "fingerprint": j.split_fingerprint,
                    "dataset_path": j.dataset_path, "dataset_options": [list(p) for p in j.dataset_options],
                    "seed": j.seed, "split_options": [list(p) for p in j.split_options], "metrics": list(j.metrics),
                    "backbone": j.backbone, "backbone_weights": j.backbone_weights, "metric_spec": j.metric_spec})
    return out
