"""Leaderboard, per-subject table, significance and cross-subject gap against hand-computed pandas aggregates."""

import json

import numpy as np
import pandas as pd
import pytest
from fake_runs import write_fake_runs

from eeg2img.errors import UserError
from metrics.stats import paired_comparison, paired_test
from reports import tables
from reports.load import load_runs
from reports.metric_info import column_label, is_substitute
from reports.published import dataset_family, published_entries


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = write_fake_runs(tmp_path_factory.mktemp("tables") / "runs", protocols=("per-subject", "loso", "pooled"),
                           seeds=(0, 1))
    return load_runs(root)


@pytest.fixture(scope="module")
def raw(runs):
    # The hand-computed side reads the run store's own results table, not our loader.
    return pd.read_csv(runs.root / "results.csv")


def hand_means(raw):
    unit = raw.groupby(["dataset", "protocol", "method", "metric", "backbone", "fold", "subject"])["value"].mean()
    return unit.groupby(level=[0, 1, 2, 3, 4]).agg(["mean", "count"])


def test_loader_reads_every_finished_cell_and_every_row(runs, raw):
    assert len(runs.cells) == (3 + 3 + 1) * 4 * 2
    assert len(runs.results) == len(raw)
    assert set(runs.results["subject"]) == {"1", "2", "3"}
    assert runs.kinds == {"neuroimagen": "method", "latent-ridge": "method", "floor-mean": "floor",
                          "oracle-stimulus": "oracle"}


def test_leaderboard_means_equal_hand_computed_aggregates_and_ci_brackets_them(runs, raw):
    everything = tables.leaderboard(runs, n_boot=500)
    board = everything[everything["metric"] != "fid"]
    expected = hand_means(raw)
    got = board.set_index(["dataset", "protocol", "method", "metric", "backbone"])
    assert len(got) == len(expected)
    np.testing.assert_allclose(got.loc[expected.index, "mean"], expected["mean"], rtol=1e-12)
    assert (got.loc[expected.index, "n_units"].to_numpy() == expected["count"].to_numpy()).all()
    assert (board["ci_low"] <= board["mean"] + 1e-12).all() and (board["mean"] <= board["ci_high"] + 1e-12).all()
    assert (board["ci_high"] > board["ci_low"]).all()
    assert set(board["ci_basis"]) == {tables.CI_UNITS}
    # The set-level metric is the pooled table's whole-test-set value, seeds averaged, with its N.
    pooled = pd.read_csv(runs.root / "set_level.csv").groupby(["protocol", "method"])["value"].mean()
    fid = everything[everything["metric"] == "fid"].set_index(["protocol", "method"])
    np.testing.assert_allclose(fid.loc[pooled.index, "mean"], pooled, rtol=1e-12)
    assert set(fid["n_trials"]) == {60} and set(fid["status"]) == {"ok"}


def test_trial_bootstrap_is_used_on_request_and_only_for_metrics_with_samples(runs):
    board = tables.leaderboard(runs, ci="trials", n_boot=500)
    per_sample = board[board["metric"].isin(["ssim", "pixcorr"])]
    assert set(per_sample["ci_basis"]) == {tables.CI_TRIALS}
    assert set(board.loc[board["metric"] == "fid", "ci_basis"]) == {""}  # two seeds: no single pooled CI
    assert (per_sample["ci_low"] <= per_sample["mean"]).all() and (per_sample["mean"] <= per_sample["ci_high"]).all()
    with pytest.raises(ValueError):
        tables.leaderboard(runs, ci="subjects")


def test_significance_is_the_paired_test_against_the_best_real_method(runs, raw):
    sig = tables.significance(runs)
    unit = raw.groupby(["dataset", "protocol", "method", "metric", "backbone", "fold", "subject"])["value"].mean()
    for (protocol, metric), g in sig.groupby(["protocol", "metric"]):
        best = g["best"].iloc[0]
        means = unit.xs((protocol, metric), level=["protocol", "metric"]).groupby(level="method").mean()
        contenders = means[["neuroimagen", "latent-ridge"]]  # oracles and floors never count as "best"
        assert best == (contenders.idxmin() if metric == "fid" else contenders.idxmax())
        floor = unit.xs((protocol, metric, "floor-mean"), level=["protocol", "metric", "method"]).sort_index()
        top = unit.xs((protocol, metric, best), level=["protocol", "metric", "method"]).sort_index()
        p, _ = paired_test(floor.to_numpy(), top.to_numpy())
        row = g[g["method"] == "floor-mean"].iloc[0]
        assert row["p_units"] == pytest.approx(p) and row["n_units"] == 3
        # Over trials: the same trials of both methods, seeds averaged, tested by sign flips.
        trials = tables.trial_values(runs)
        trials = trials[(trials["protocol"] == protocol) & (trials["metric"] == metric)]
        wide = trials.pivot_table(index="trial_id", columns="method", values="value")
        expected = paired_comparison(wide["floor-mean"].to_numpy(), wide[best].to_numpy())
        assert row["n_trials"] == len(wide) == 12 and row["diff"] == pytest.approx(expected["diff"])
        assert row["p_value"] == pytest.approx(expected["p_value"])
    # Three subjects: the smallest possible two-sided sign-flip p over units is 2/8 — and the table says so —
    # while over the 12 matched trials the floor's large deficit is significant after Holm.
    assert sig.loc[~sig["is_best"], "p_units"].min() == pytest.approx(0.25)
    assert (sig.loc[~sig["is_best"], "units_min_p"] == 0.25).all() and not sig["units_can_reach"].any()
    floors = sig[sig["method"] == "floor-mean"]
    assert floors["significant"].all() and (floors["p_holm"] >= floors["p_value"]).all()
    assert "fid" not in set(sig["metric"])  # set-level: nothing to pair
    assert any("cannot reach p < 0.05" in n and "smallest possible p = 0.25" in n for n in tables.power_notes(sig))


def test_dagger_marks_methods_that_differ_significantly_from_the_best(tmp_path):
    subjects = tuple(range(1, 9))  # 8 subjects: consistent differences reach p = 2/256
    runs = load_runs(write_fake_runs(tmp_path / "runs", subjects=subjects, protocols=("per-subject",),
                                     trials_per_subject=2))
    board = tables.leaderboard(runs, n_boot=200)
    sig = tables.significance(runs)
    columns = tables.columns_of(runs.results, set_level=runs.set_level)
    wide = tables.leaderboard_wide(board, sig, columns, pd.DataFrame())
    ssim = column_label("ssim", "pixels", False, "425px, grey")
    marks = dict(zip(wide["method"], wide[f"{ssim} mark"]))
    assert marks == {"neuroimagen": "best", "latent-ridge": "†", "floor-mean": "†", "oracle-stimulus": "†"}
    row = wide[wide["method"] == "latent-ridge"].iloc[0]
    # 16 matched trials, all in the same direction: exact p = 2/2^16, times 3 comparisons (Holm).
    assert row[f"{ssim} p_vs_best"] == pytest.approx(3 * 2 / 2**16)
    assert tables.cell_text(row, tables.Column("ssim", "pixels", False, "425px, grey")).endswith("†")


def test_cross_subject_gap_pairs_fold_s_of_both_protocols(runs, raw):
    gap = tables.cross_subject_gap(runs, n_boot=500)
    unit = raw.groupby(["protocol", "method", "metric", "fold", "subject"])["value"].mean()
    for r in gap.itertuples():
        within = unit.xs(("per-subject", r.method, r.metric), level=[0, 1, 2]).sort_index()
        across = unit.xs(("loso", r.method, r.metric), level=[0, 1, 2]).sort_index()
        assert r.gap == pytest.approx((within - across).mean())  # equal trials per unit: trial mean = unit mean
        assert r.ci_low <= r.gap <= r.ci_high and r.n_units == 3 and r.n_trials == 12
        assert r.units_min_p == pytest.approx(0.25)
    # The fixture penalises LOSO: per-subject SSIM is higher for every method.
    assert (gap.loc[gap["metric"] == "ssim", "gap"] > 0).all()
    assert set(gap["method"]) == {"neuroimagen", "latent-ridge", "floor-mean", "oracle-stimulus"}


def test_cross_subject_gap_pairs_the_zero_shot_protocols_apart_from_the_others(tmp_path):
    runs = load_runs(write_fake_runs(tmp_path / "runs", protocols=("per-subject", "loso", "zero-shot",
                                                                   "zero-shot-loso")))
    gap = tables.cross_subject_gap(runs, n_boot=200)
    assert set(gap["protocols"]) == {"per-subject − loso", "zero-shot − zero-shot-loso"}
    unit = tables.unit_scores(runs.results).groupby(["protocol", "method", "metric"])["value"].mean()
    for r in gap.itertuples():
        within_protocol, across_protocol = r.protocols.split(" − ")
        assert r.within == pytest.approx(unit[(within_protocol, r.method, r.metric)])
        assert r.across == pytest.approx(unit[(across_protocol, r.method, r.metric)])
        assert r.gap == pytest.approx(r.within - r.across)
    # one row per (method, column) and pair: the zero-shot rows do not mix with the per-subject ones
    assert len(gap) == 2 * len(gap[gap["protocols"] == "per-subject − loso"])


def test_per_subject_table_is_the_mean_over_folds_and_seeds(runs, raw):
    columns = tables.columns_of(runs.results, set_level=runs.set_level)
    wide = tables.per_subject_wide(tables.per_subject(runs), columns, [("synth", "pooled")])
    ssim = column_label("ssim", "pixels", False, "425px, grey")
    expected = raw[raw["metric"] == "ssim"].groupby(["protocol", "method", "subject"])["value"].mean()
    got = wide.assign(subject=wide["subject"].astype(int)).set_index(["protocol", "method", "subject"])[ssim]
    np.testing.assert_allclose(got.loc[expected.index], expected, rtol=1e-12)
    assert list(wide.columns[:5]) == ["dataset", "protocol", "method", "kind", "subject"]


def test_substitute_backbones_are_labelled_in_column_headers(runs):
    labels = [c.label for c in tables.columns_of(runs.results, set_level=runs.set_level)]
    assert "FID ↓ [synth-cnn (substitute), 128-d]" in labels
    assert "SSIM ↑ [pixels, 425px, grey]" in labels
    assert is_substitute("synth-cnn") and is_substitute("alexnet-proxy")
    assert not is_substitute("inception-tf") and not is_substitute("pixels")
    assert is_substitute("my-cnn", {"my-cnn"})  # declared in provenance


def test_declared_substitutes_come_from_provenance(tmp_path):
    root = write_fake_runs(tmp_path / "runs", protocols=("pooled",), backbone_fid="inception-tf")
    assert not [c for c in tables.columns_of(load_runs(root).results, set_level=load_runs(root).set_level) if c.substitute]
    for prov in root.rglob("provenance.json"):
        record = json.loads(prov.read_text())
        prov.write_text(json.dumps({**record, "substitute_backbones": ["inception-tf"]}))
    runs = load_runs(root)
    labels = [c.label for c in tables.columns_of(runs.results, tables.declared_substitutes(runs), runs.set_level)]
    assert "FID ↓ [inception-tf (substitute), 128-d]" in labels


def test_published_numbers_only_for_matching_dataset_and_protocol(tmp_path):
    assert dataset_family("eeg_5_95_std") == "eeg-cvpr40"
    assert dataset_family("eeg_synth") is None and dataset_family("synth") is None
    assert published_entries("eeg_55_95_std", "loso").empty
    assert published_entries("synth", "pooled").empty
    # the THINGS-EEG2 zero-shot leaderboard: the release only (the synthetic set's loader name says synth)
    zero_shot = published_entries("things_eeg2", "zero-shot")
    nice = zero_shot[zero_shot["model"] == "NICE"]
    assert dict(zip(nice["metric"], nice["value"])) == {"top1": 0.156, "top5": 0.428}
    assert published_entries("things_eeg2_synth", "zero-shot").empty
    assert published_entries("things_eeg2", "per-subject").empty
    pooled = published_entries("eeg_5_95_std", "pooled")
    ni = pooled[(pooled["model"] == "NeuroImagen") & pooled["subject"].isna()]
    assert dict(zip(ni["metric"], ni["value"])) == {"acc": 0.856, "is": 33.5, "ssim": 0.249}

    root = write_fake_runs(tmp_path / "runs", dataset="eeg_5_95_std", protocols=("per-subject", "pooled"))
    runs = load_runs(root)
    board = tables.leaderboard(runs, n_boot=200)
    columns = tables.columns_of(runs.results, set_level=runs.set_level)
    pub = tables.published_rows(board, columns, frozenset())
    assert set(pub["protocol"]) == {"pooled"}
    ni_ssim = pub[(pub["method"] == "NeuroImagen") & (pub["metric"] == "ssim")]
    assert ni_ssim["mean"].tolist() == [0.249]
    # Published FIDs (Inception) never land in a substitute-backbone FID column.
    assert pub[pub["metric"] == "fid"].empty
    assert set(pub["kind"]) == {"reported, not reproduced"}
    wide = tables.per_subject_wide(tables.per_subject(runs), columns, [("eeg_5_95_std", "pooled")])
    reported = wide[wide["kind"] == "reported, not reproduced"]
    ssim = column_label("ssim", "pixels", False, "425px, grey")
    assert dict(zip(reported.loc[reported["method"] == "NeuroImagen", "subject"],
                    reported.loc[reported["method"] == "NeuroImagen", ssim]))["1"] == 0.254
    assert set(reported["protocol"]) == {"pooled"}


def test_published_fid_goes_into_a_real_inception_column(tmp_path):
    root = write_fake_runs(tmp_path / "runs", dataset="eeg_5_95_std", protocols=("pooled",),
                           backbone_fid="inception-tf")
    runs = load_runs(root)
    pub = tables.published_rows(tables.leaderboard(runs, n_boot=200), tables.columns_of(runs.results, set_level=runs.set_level), frozenset())
    fid = pub[pub["metric"] == "fid"]
    assert dict(zip(fid["method"], fid["mean"])) == {"EEGStyleGAN-ADA": 174.13, "GWIT": 78.11}


def test_loader_keeps_the_newest_configuration_and_drops_nan_rows(tmp_path):
    root = write_fake_runs(tmp_path / "runs", protocols=("pooled",))
    cell = next(p.parent for p in root.rglob("cell.json") if "/neuroimagen/" in str(p))
    newer = cell.parent / "ffffffffffff"
    newer.mkdir()
    for f in cell.iterdir():
        if f.is_file():
            (newer / f.name).write_bytes(f.read_bytes())
    prov = json.loads((newer / "provenance.json").read_text())
    (newer / "provenance.json").write_text(json.dumps({**prov, "created": "2030-01-01T00:00:00+00:00"}))
    rows = pd.read_parquet(newer / "metrics.parquet")
    rows["value"] = rows["value"] + 1.0
    rows.loc[0, "value"] = np.nan
    rows.to_parquet(newer / "metrics.parquet", index=False)
    runs = load_runs(root)
    got = runs.results[runs.results["method"] == "neuroimagen"]
    assert len(got) == len(rows) - 1
    np.testing.assert_allclose(np.sort(got["value"]), np.sort(rows["value"].dropna()))
    assert any("newest of 2" in n for n in runs.notes) and any("NaN" in n for n in runs.notes)


def test_loader_bad_inputs_raise_one_line_user_errors(tmp_path):
    with pytest.raises(UserError, match="no such runs directory"):
        load_runs(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no finished cells"):
        load_runs(tmp_path / "empty")
    root = write_fake_runs(tmp_path / "runs", protocols=("pooled",), methods={"floor-mean": (0.0, False)})
    cell = next(root.rglob("DONE")).parent
    (cell / "metrics.parquet").write_bytes(b"PAR1 not really parquet")
    with pytest.raises(UserError, match="metrics.parquet: unreadable") as err:
        load_runs(root)
    assert "\n" not in str(err.value)
    (cell / "cell.json").write_text("{broken")
    with pytest.raises(UserError, match="cell.json: unreadable"):
        load_runs(root)
    (cell / "DONE").unlink()
    with pytest.raises(UserError, match=r"no finished cells \(1 unfinished\)"):
        load_runs(root)


def test_reads_cells_written_by_the_run_store(tmp_path):
    runstore = pytest.importorskip("eeg2img.runstore")
    store = runstore.RunStore(tmp_path / "runs")
    rng = np.random.default_rng(0)
    for method, is_oracle in (("floor-mean", False), ("oracle-stimulus", True)):
        for s in (1, 2):
            key = runstore.CellKey("synth", "per-subject", f"sub-{s:02d}", method, 0, f"{method}-{s}".ljust(64, "0"))
            store.start(key, {"seed": 0}, is_oracle, {"config_hash": key.config_hash, "image_root": None})
            trials = pd.DataFrame({"trial_id": [f"s{s}-t{i}" for i in range(3)], "subject": s,
                                   "image_id": [f"img{i}" for i in range(3)], "label": [0, 1, 0]})
            for t in trials["trial_id"]:
                store.save_reconstruction(key, t, rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
            samples = pd.DataFrame({"trial_id": trials["trial_id"], "subject": s, "metric": "ssim",
                                    "backbone": "pixels", "value": rng.random(3)})
            rows = samples.groupby(["subject", "metric", "backbone"], as_index=False)["value"].mean().assign(
                dataset="synth", protocol="per-subject", fold=key.fold, method=method, seed=0, label="RGB")
            store.finish(key, trials, samples, rows, {"config_hash": key.config_hash, "git_commit": "abc"})
    store.write_results()
    runs = load_runs(store.root)
    expected = store.results()
    assert len(runs.cells) == 4 and runs.kinds["oracle-stimulus"] == "oracle"
    got = runs.results.sort_values(["method", "fold"])["value"].to_numpy()
    np.testing.assert_allclose(got, expected.sort_values(["method", "fold"])["value"].to_numpy())
    assert len(runs.samples()) == 12


def test_whole_test_set_rows_count_only_where_no_per_subject_rows_exist(tmp_path):
    root = write_fake_runs(tmp_path / "runs", protocols=("pooled",), methods={"neuroimagen": (0.3, False)})
    path = next(root.rglob("metrics.parquet"))
    rows = pd.read_parquet(path)
    whole = pd.DataFrame([{**rows.iloc[0].to_dict(), "subject": None, "metric": m, "backbone": "inception-tf",
                           "value": v} for m, v in (("ssim", 99.0), ("is", 30.0))])
    whole.loc[0, "backbone"] = "pixels"  # same metric and backbone as the per-subject SSIM rows
    pd.concat([rows, whole], ignore_index=True).to_parquet(path, index=False)
    runs = load_runs(root)
    board = tables.leaderboard(runs, n_boot=200)
    ssim = board[board["metric"] == "ssim"]
    assert ssim["mean"].iloc[0] == pytest.approx(rows.loc[rows["metric"] == "ssim", "value"].mean())
    assert any("whole-test-set" in n for n in runs.notes)
    # A per-cell IS row (an older run store) covers one fold's trials: never shown, and the loader says why.
    assert "is" not in set(runs.results["metric"]) and any("per-fold FID/KID/IS" in n for n in runs.notes)


def test_best_is_marked_only_when_it_beats_the_runner_up_significantly(tmp_path):
    close = {"neuroimagen": (0.30, False), "latent-ridge": (0.30, False), "floor-mean": (0.0, False)}
    runs = load_runs(write_fake_runs(tmp_path / "close", protocols=("per-subject",), methods=close))
    sig = tables.significance(runs)
    ssim = sig[sig["metric"] == "ssim"]
    best = ssim[ssim["is_best"]].iloc[0]
    runner_up = ssim[(ssim["method"] != best["method"]) & (ssim["kind"] == "method")].iloc[0]
    assert not runner_up["significant"] and not best["best_marked"]  # equal methods: no winner is declared
    assert ssim.loc[ssim["method"] == "floor-mean", "significant"].all()  # but the floor is clearly behind
    wide = tables.leaderboard_wide(tables.leaderboard(runs, n_boot=200), sig,
                                   tables.columns_of(runs.results, set_level=runs.set_level), pd.DataFrame())
    label = column_label("ssim", "pixels", False, "425px, grey")
    assert "best" not in set(wide[f"{label} mark"]) and "†" in set(wide[f"{label} mark"])

    apart = load_runs(write_fake_runs(tmp_path / "apart", protocols=("per-subject",)))
    sig = tables.significance(apart)
    assert sig.loc[sig["is_best"] & (sig["metric"] == "ssim"), "best_marked"].all()


def test_set_level_values_below_their_minimum_are_shown_as_n_below_min(tmp_path):
    runs = load_runs(write_fake_runs(tmp_path / "runs", protocols=("per-subject",), set_level_n=10))
    board = tables.leaderboard(runs, n_boot=200)
    fid = board[board["metric"] == "fid"]
    assert set(fid["status"]) == {"N < min"} and fid["mean"].isna().all()
    columns = tables.columns_of(runs.results, set_level=runs.set_level)
    wide = tables.leaderboard_wide(board, tables.significance(runs), columns, pd.DataFrame())
    col = next(c for c in columns if c.metric == "fid")
    assert {tables.cell_text(r, col) for _, r in wide.iterrows()} == {"N < min (10 < 50)"}


def test_benchmark_claims_are_paired_over_trials_with_holm_and_honest_about_direction(tmp_path):
    from reports.claims import claims_text, demo_claims

    methods = {"neuroimagen": (0.30, False), "neuroimagen-saliency": (0.20, False),
               "neuroimagen-label": (0.05, False)}
    runs = load_runs(write_fake_runs(tmp_path / "good", protocols=("per-subject",), methods=methods))
    claims = demo_claims(runs)
    # Only the SSIM half of the ablation applies (the fixture has no ACC): saliency variants above label only.
    assert set(zip(claims["claim"], claims["metric"], claims["better"])) == {
        ("ablation", "ssim", "neuroimagen"), ("ablation", "ssim", "neuroimagen-saliency")}
    assert claims["holds"].all() and (claims["p_holm"] >= claims["p_value"]).all()
    trials = tables.trial_values(runs)
    wide = trials[trials["metric"] == "ssim"].pivot_table(index="trial_id", columns="method", values="value")
    row = claims[claims["better"] == "neuroimagen"].iloc[0]
    assert row["diff"] == pytest.approx((wide["neuroimagen"] - wide["neuroimagen-label"]).mean())
    assert row["n_trials"] == 12 and row["ci_low"] > 0

    flipped = {"neuroimagen": (0.05, False), "neuroimagen-saliency": (0.05, False), "neuroimagen-label": (0.30, False)}
    bad = demo_claims(load_runs(write_fake_runs(tmp_path / "bad", protocols=("per-subject",), methods=flipped)))
    assert not bad["holds"].any() and not bad["holds_on_means"].any() and (bad["diff"] < 0).all()
    assert sum(line.startswith("✗ ") for line in claims_text(bad).splitlines()) == 2


def test_ablation_table_puts_this_runs_variants_beside_table_3(tmp_path):
    methods = {"neuroimagen": (0.30, False), "neuroimagen-saliency": (0.10, False), "floor-mean": (0.0, False)}
    runs = load_runs(write_fake_runs(tmp_path / "runs", methods=methods))
    columns = tables.columns_of(runs.results, tables.declared_substitutes(runs), runs.set_level)
    board = tables.leaderboard(runs, n_boot=50)
    table = tables.ablation_table(board, columns)
    assert list(table["method"]) == ["neuroimagen", "neuroimagen-saliency"]  # only the variants that ran
    assert list(table["variant"]) == ["label caption + saliency", "saliency only"]
    ssim = next(c for c in columns if c.metric == "ssim")
    for protocol in ("per-subject", "loso"):
        ours = table[f"synth {protocol}: {ssim.label}"].to_numpy()
        expected = board[ssim.mask(board) & (board["protocol"] == protocol)].set_index("method")["mean"]
        np.testing.assert_allclose(ours, expected.loc[list(table["method"])].to_numpy())
        assert ours[0] > ours[1]  # the fake offsets: the full model above saliency only
    paper = [c for c in table.columns if c.startswith("Table 3")]
    assert all("reported, not reproduced" in c for c in paper) and len(paper) == 3
    assert table.loc[1, next(c for c in paper if c.endswith("ACC"))] == pytest.approx(0.045)  # saliency only
    assert tables.ablation_table(board[board["method"] == "floor-mean"], columns).empty
