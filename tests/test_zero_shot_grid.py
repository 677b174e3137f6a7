"""The zero-shot track through the grid: embedding methods, retrieval scored from their saved embeddings (or
from reconstructions), the same space for method and candidates, resumption, and the one-line refusals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from eeg2img.errors import UserError
from eeg2img.grid.config import parse_config
from eeg2img.grid.runner import run_grid
from eeg2img.runstore import RunStore

METRICS = ["ssim", "top1", "top5", "top1-2way", "top1-4way", "top1-50way"]


# torch on one thread for this module; see tests/conftest.py
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def things(tmp_path_factory):
    from eeg2img.datasets.synthetic_things import generate_things_eeg2

    return generate_things_eeg2(tmp_path_factory.mktemp("things") / "set", progress=False, subjects=2,
                                train_concepts=16, test_concepts=12, images_per_concept=4, train_repetitions=2,
                                test_repetitions=10, image_size=32, signal_strength=3.0)


def _config(folder, methods=None, metrics=METRICS):
    return parse_config({"datasets": [{"path": str(folder)}], "protocols": ["zero-shot", "zero-shot-loso"],
                         "metrics": metrics, "methods": methods or {"embedding-ridge": {"decode": "nearest"}, "floor-mean": {}}})


@pytest.fixture(scope="module")
def runs(things, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    return out, run_grid(_config(things), out, progress=False)


def test_retrieval_comes_from_the_saved_embeddings_in_the_methods_space(runs, things):
    from eeg2img.datasets.things_eeg2 import load_things_eeg2
    from eeg2img.splits import make_folds
    from metrics.embedding_spaces import image_embedder
    from metrics.retrieval import retrieval_topk

    out, table = runs
    ds = load_things_eeg2(things)
    store = RunStore(out)
    for protocol in ("zero-shot", "zero-shot-loso"):
        for fold in make_folds(ds, protocol):
            cell = next(d for d in store.finished_cells() if d.parts[-5:-2] == (protocol, fold.name, "embedding-ridge"))
            with np.load(cell / "embeddings.npz") as z:
                emb, space = z["embedding"], str(z["space"])
            test = ds.subset(fold.test)
            assert space == "synth-cnn:fold-train" and emb.shape[0] == len(test) == 12
            # an embedder built independently from the fold's training trials gives the same candidates
            embedder = image_embedder(space, ds.subset(fold.train), cache_dir=out / ".cache" / ds.name / "seed-0")
            ids = test.unique_image_ids()
            target = np.array([ids.index(i) for i in test.image_ids])
            top1 = retrieval_topk(emb, embedder.embed(test.load_images(ids)), target).mean()
            row = table[(table.protocol == protocol) & (table.fold == fold.name) & (table.method == "embedding-ridge")
                        & (table.metric == "top1")]
            assert row.value.item() == pytest.approx(top1)
            assert row.label.item() == "12-way, from embedding" and row.backbone.item() == space


def test_labels_sources_and_what_the_candidate_count_cannot_support(runs):
    _, table = runs
    floor = table[(table.method == "floor-mean") & table.metric.str.startswith("top")]
    assert set(floor.label) == {"12-way, from reconstruction", "2-way, 50 draws, from reconstruction",
                                "4-way, 50 draws, from reconstruction"}
    # one image for every trial: exactly one candidate wins, so top-1 is one trial in twelve
    assert floor[floor.metric == "top1"].value.tolist() == pytest.approx([1 / 12] * 4)
    assert "top1-50way" not in set(table.metric)  # 12 candidates: no 50-way value rather than a wrong one
    ridge = table[(table.method == "embedding-ridge") & (table.metric == "top1-2way")].groupby("protocol").value.mean()
    # concepts never trained on, identified from their attributes; worse from other subjects' EEG
    assert ridge["zero-shot"] > 0.7 and 0.5 < ridge["zero-shot-loso"] < ridge["zero-shot"]


def test_a_cell_whose_embeddings_are_lost_refits_and_scores_the_same(runs, things):
    out, table = runs
    store = RunStore(out)
    cell = next(d for d in store.finished_cells() if d.parts[-3] == "embedding-ridge")
    (cell / "DONE").unlink()
    (cell / "embeddings.npz").unlink()
    again = run_grid(_config(things), out, progress=False)
    assert (cell / "embeddings.npz").is_file()
    pd.testing.assert_frame_equal(again.reset_index(drop=True), table.reset_index(drop=True))


def test_retrieval_metrics_need_an_image_metric_beside_them_and_are_not_image_metrics(things, tmp_path):
    from metrics.engine import MetricsEngine

    with pytest.raises(UserError, match="scored beside the image metrics"):
        _config(things, metrics=["top1"])
    with pytest.raises(UserError, match="metric 'top1': scored from embeddings, not images"):
        MetricsEngine(["ssim", "top1"])
