"""The one-pass metrics engine: every backbone runs once per image set, every metric shares its outputs.

``MetricsEngine(metrics=..., backbones=...).evaluate(pred, ref, captions, subjects, trial_ids)``
computes the requested metrics for reconstructions ``pred`` against stimuli ``ref`` (uint8
``(N, H, W, 3)``, matched by row) and returns an :class:`EvaluationReport`.

For each backbone the engine extracts the outputs of ``pred`` and of ``ref`` once (reference outputs
come from the on-disk :class:`~metrics.features_cache.FeatureCache` when the same stimuli were seen
before with the same weights and preprocessing) and then derives every metric from them:

========  ======================================  ==================================================
metric    needs                                   named
========  ======================================  ==================================================
ssim      pixels                                  ``ssim@pixels``
pixcorr   pixels                                  ``pixcorr@pixels``
fid       ``distribution_key`` features           ``fid@<backbone>`` (set level, per subject too)
kid       ``distribution_key`` features           ``kid@<backbone>`` (set level, per subject too)
is        ``score_logits_key`` logits of pred     ``is@<backbone>`` (set level, per subject too)
clip      image + text encoder, captions          ``clip@<model>``
nway      each ``identification`` feature set     ``nway@<label>`` (``nway@alexnet2``...)
corrdist  each ``correlation_distance`` set       ``corrdist@<label>`` (``corrdist@effnet-b1``, ``@swav``)
acc       ``class_logits_key`` logits             ``acc@<backbone>``
========  ======================================  ==================================================

The backbone is part of every metric's name, so numbers from different networks never mix.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from eeg2img.errors import UserError
from metrics.backbones.base import Backbone, check_images
from metrics.base import MetricResult, SmallSampleWarning
from metrics.features_cache import FeatureCache, image_set_hash
from metrics.set_level import SET_LEVEL_COLUMNS, SetLevelOptions, set_level_rows
from metrics.vocabulary import ALL_METRICS, IMAGE_METRICS, PIXEL_METRICS, RETRIEVAL_METRICS, SET_METRICS, STATUS_OK

REFERENCE_METRICS = ("fid", "kid", "nway", "corrdist", "acc")  # compare with the stimuli's features
PIXELS = "pixels"

_NEEDS = {
    "fid": "distribution_key",
    "kid": "distribution_key",
    "is": "score_logits_key",
    "acc": "class_logits_key",
}
_HINTS = {
    "fid": "pass --inception-weights PATH, or --backbone synth-cnn --dataset PATH",
    "kid": "pass --inception-weights PATH, or --backbone synth-cnn --dataset PATH",
    "is": "pass --inception-weights PATH, or --backbone synth-cnn --dataset PATH",
    "nway": "pass --alexnet-weights PATH or --inception-weights PATH, or --backbone synth-cnn --dataset PATH",
    "acc": "pass --classifier-weights PATH, or --backbone synth-cnn --dataset PATH",
    "corrdist": "pass --effnet-weights PATH and --swav-weights PATH, or --backbone synth-cnn --dataset PATH",
    "clip": "pass --clip-model NAME --clip-weights PATH",
}


def metric_name(metric: str, backbone: str) -> str:
    return f"{metric}@{backbone}"


@dataclass
class EvaluationReport:
    """Everything one evaluation produced."""

    n: int
    results: dict[str, MetricResult]
    per_sample: pd.DataFrame  # trial_id, subject, metric, backbone, value
    set_level: pd.DataFrame  # SET_LEVEL_COLUMNS (subject "all" = every trial; status "N < min" has no value)
    provenance: dict
    extras: dict[str, dict] = field(default_factory=dict)  # name -> {"std": ...} for KID / IS
    warnings: list[str] = field(default_factory=list)
    # metric@backbone -> the per-trial arrays its set-level value is computed from (rows = trials)
    set_inputs: dict[str, tuple[np.ndarray, ...]] = field(default_factory=dict, repr=False)
    # metric@backbone -> the short protocol label the value was computed under ("5-way top-1", "6 splits, N=60")
    labels: dict[str, str] = field(default_factory=dict)
    # backbone name -> {"pred": outputs, "ref": outputs}: the features every metric was computed from
    outputs: dict[str, dict[str, dict[str, np.ndarray]]] = field(default_factory=dict, repr=False)

    def to_json(self) -> dict:
        metrics = {}
        for name, r in self.results.items():
            entry = r.to_dict()
            entry.update(self.extras.get(name, {}))
            metrics[name] = entry
        return {"n": int(self.n), "metrics": metrics, "provenance": self.provenance, "warnings": list(self.warnings)}

    def write_json(self, path: str | Path) -> Path:
        from eeg2img.atomic import write_json

        return write_json(path, self.to_json())

    def table(self) -> str:
        """A plain-text table: one metric per line with value, 95% CI, N and protocol."""
        rows = [("metric", "value", "95% CI", "N", "protocol")]
        for name, r in self.results.items():
            ci = "—" if r.ci95 is None else f"[{r.ci95[0]:.4g}, {r.ci95[1]:.4g}]"
            std = self.extras.get(name, {}).get("std")
            if r.status != STATUS_OK:
                value = f"{r.status} (N={r.n})"
            else:
                value = f"{r.value:.4g}" + (f" ± {std:.2g}" if std is not None else "")
            rows.append((name, value, ci, str(r.n), r.protocol))
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths)) + "  " + row[4] for row in rows]
        lines.insert(1, "-" * (sum(widths) + 8 + len("protocol")))
        return "\n".join(lines)


class MetricsEngine:
    """Configured once, evaluates any number of (pred, ref) sets.

    ``backbones``: :class:`~metrics.backbones.base.Backbone` instances and/or registry names; ``None``
    builds the default for each requested metric from the official weights (Inception for
    FID/KID/IS/identification, AlexNet for identification, EfficientNet-B1 and SwAV for correlation
    distance, ResNet-50 for accuracy), raising
    :class:`~eeg2img.errors.WeightsNotFoundError` if a file cannot be found.
    """

    def __init__(self, metrics: Sequence[str] = IMAGE_METRICS, backbones: Sequence[Backbone | str] | None = None,
                 resize: str = "clean", device=None, cache_dir: str | Path | None = None, seed: int = 0, *,
                 use_cache: bool = True, ssim_protocol: str = "mindeye", image_size: int | None = 425,
                 n_boot: int = 1000, set_n_boot: dict[str, int] | None = None, kid_subsets: int = 100,
                 kid_subset_size: int = 1000, is_splits: int = 10, clip_variant: str = "hessel",
                 identification_n_way: int | None = None, acc_n_way: int = 50, acc_top_k: int = 1,
                 acc_draws: int = 50, per_subject_sets: bool = True, set_level: bool = True,
                 enforce_min_n: bool = True):
        from metrics.backbones.resize import check_policy

        self.metrics = tuple(dict.fromkeys(str(m).strip().lower() for m in metrics))
        from_embeddings = [m for m in self.metrics if m in RETRIEVAL_METRICS]
        if from_embeddings:
            raise UserError(f"metric {from_embeddings[0]!r}: scored from embeddings, not images (zero-shot retrieval: "
                            "`eeg2img run` on a zero-shot protocol); choose from " + ", ".join(IMAGE_METRICS))
        unknown = [m for m in self.metrics if m not in ALL_METRICS]
        if unknown:
            raise UserError(f"metric {unknown[0]!r}: unknown; choose from {', '.join(IMAGE_METRICS)}")
        if not self.metrics:
            raise UserError("no metrics requested; choose from " + ", ".join(IMAGE_METRICS))
        self.resize = check_policy(resize)
        self.device = device
        self.seed = int(seed)
        self.cache = FeatureCache(Path(cache_dir) / "features" if cache_dir is not None else None, use_cache)
        self.ssim_protocol, self.image_size = ssim_protocol, image_size
        self.n_boot = int(n_boot)
        # Set-level CIs recompute the whole metric per resample: IS is cheap, a 2048-d FID or KID is
        # seconds each, so those are off unless asked for (their subset/split std is reported instead).
        self.set_n_boot = {"fid": 0, "kid": 0, "is": 50, **(set_n_boot or {})}
        self.kid_subsets, self.kid_subset_size, self.is_splits = kid_subsets, kid_subset_size, is_splits
        self.clip_variant = clip_variant
        self.identification_n_way = identification_n_way
        self.acc_n_way, self.acc_top_k, self.acc_draws = acc_n_way, acc_top_k, acc_draws
        self.per_subject_sets = per_subject_sets
        # set_level=False collects each set-level metric's inputs (report.set_inputs) without computing it: the
        # grid runner pools them over folds first. enforce_min_n=False only serves the tests that prove the
        # formulas against the reference libraries on a handful of images.
        self.set_level, self.enforce_min_n = set_level, enforce_min_n
        self.backbones = self._resolve_backbones(backbones)

    # --- backbones ------------------------------------------------------------------------------------
    def _resolve_backbones(self, backbones: Sequence[Backbone | str] | None) -> list[Backbone]:
        from metrics.backbones.registry import build_backbone

        wanted = set(self.metrics) - set(PIXEL_METRICS)
        if backbones is None:
            names = []
            if wanted & {"fid", "kid", "is", "nway"}:
                names.append("inception-tf")
            if "nway" in wanted:
                names.append("alexnet")
            if "corrdist" in wanted:
                names += ["effnet-b1", "swav"]
            if "acc" in wanted:
                names.append("classifier")
            if "clip" in wanted:
                raise UserError(f"metric clip: needs a CLIP model; {_HINTS['clip']}")
            backbones = names
        out = []
        for b in backbones:
            if isinstance(b, str):
                kwargs = {"device": self.device}
                if b == "inception-tf":
                    kwargs["resize"] = self.resize
                b = build_backbone(b, **kwargs)
            if not isinstance(b, Backbone):
                raise UserError(f"backbone {b!r}: not a Backbone; pass instances or registry names")
            out.append(b)
        names = [b.name for b in out]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise UserError(f"backbone {dup[0]}: given twice; metric names <metric>@<backbone> must be unique, "
                            "so pass each backbone once")
        for m in sorted(wanted):
            if not self._serving(m, out):
                given = ", ".join(b.name for b in out) or "none"
                raise UserError(f"metric {m}: no backbone provides what it needs (backbones: {given}); {_HINTS[m]}")
        return out

    @staticmethod
    def _serving(metric: str, backbones: Sequence[Backbone]) -> list[Backbone]:
        if metric in _NEEDS:
            return [b for b in backbones if getattr(b, _NEEDS[metric])]
        if metric == "nway":
            return [b for b in backbones if b.identification]
        if metric == "corrdist":
            return [b for b in backbones if b.correlation_distance]
        if metric == "clip":
            return [b for b in backbones if b.has_text]
        return []

    def _used_backbones(self) -> list[Backbone]:
        wanted = set(self.metrics) - set(PIXEL_METRICS)
        return [b for b in self.backbones if any(b in self._serving(m, self.backbones) for m in wanted)]

    # --- evaluation -------------------------------------------------------------------------------------
    def evaluate(self, pred: np.ndarray, ref: np.ndarray, captions: Sequence[str] | None = None,
                 subjects: Sequence[Any] | None = None, trial_ids: Sequence[Any] | None = None) -> EvaluationReport:
        pred = check_images(pred, "pred")
        ref = check_images(ref, "ref")
        n = len(pred)
        if len(ref) != n:
            raise UserError(f"pred: {n} images but ref has {len(ref)}; pass one reconstruction per stimulus, "
                            "in the same order")
        trial_ids = np.array([str(t) for t in (range(n) if trial_ids is None else trial_ids)], dtype=object)
        if len(trial_ids) != n:
            raise UserError(f"trial_ids: {len(trial_ids)} ids for {n} images; pass one id per image")
        if subjects is not None:
            subjects = np.asarray(subjects)
            if len(subjects) != n:
                raise UserError(f"subjects: {len(subjects)} entries for {n} images; pass one subject per image")
        if "clip" in self.metrics:
            if captions is None:
                raise UserError("metric clip: needs one caption per image; pass --captions FILE (JSON stem → text)")
            captions = [str(c) for c in captions]
            if len(captions) != n:
                raise UserError(f"captions: {len(captions)} captions for {n} images; pass one per image")

        # Warnings that qualify a number (small-sample FID, constant images) go into the report too.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            outputs, ref_hash = self._extract(pred, ref)
            state = _Collector(n, trial_ids, subjects)
            for m in self.metrics:
                getattr(self, f"_metric_{m}")(state, pred, ref, outputs, captions)
        relevant = [w for w in caught if issubclass(w.category, UserWarning)]
        for w in relevant:  # re-emit so that callers still see them
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        messages = list(dict.fromkeys(str(w.message) for w in relevant))
        report = state.report(self._provenance(ref_hash), messages)
        report.outputs = {b.name: outputs[id(b)] for b in self._used_backbones()}
        return report

    def _extract(self, pred: np.ndarray, ref: np.ndarray) -> tuple[dict[int, dict], str | None]:
        """``{id(backbone): {"pred": outputs, "ref": outputs | None}}`` — one pass per backbone per image set.

        A backbone sees the references only when one of its metrics compares with them: CLIP serving
        only the text–image CLIP score never embeds the stimuli (500 ViT-B/32 passes saved per 500 pairs).
        """
        used = self._used_backbones()
        wanted = set(self.metrics) & set(REFERENCE_METRICS)
        needs_ref = [b for b in used if any(b in self._serving(m, self.backbones) for m in wanted)]
        ref_hash = image_set_hash(ref) if used else None  # provenance, and the cache key
        out = {}
        for b in used:
            ref_out = None
            if b in needs_ref:
                fp = b.fingerprint()
                ref_out = self.cache.get(fp, ref_hash)
                if ref_out is None:
                    ref_out = b.extract(ref, desc=f"{b.name} (ref)")
                    self.cache.put(fp, ref_hash, ref_out)
            pred_out = b.extract(pred, desc=f"{b.name} (pred)")
            out[id(b)] = {"pred": pred_out, "ref": ref_out}
        return out, ref_hash

    def _provenance(self, ref_hash: str | None) -> dict:
        from eeg2img.provenance import device_description, package_versions

        used = self._used_backbones()
        return {
            "backbones": {b.name: b.provenance() for b in used},
            "weights_sha256": {b.name: b.weights_sha256 for b in used},
            "resize": {b.name: b.resize for b in used if hasattr(b, "resize")},
            "default_resize": self.resize,
            "ref_image_set_sha256": ref_hash,
            "feature_cache": {"dir": str(self.cache.root), "hits": self.cache.hits, "misses": self.cache.misses},
            "seed": self.seed,
            "packages": package_versions(),
            "device": device_description() if self.device is None else str(self.device),
        }

    # --- per metric ---------------------------------------------------------------------------------------
    def _metric_ssim(self, st: _Collector, pred, ref, outputs, captions) -> None:
        from metrics.ssim import describe_protocol, ssim

        values = ssim(pred, ref, protocol=self.ssim_protocol, size=self.image_size)
        colour = "grey" if self.ssim_protocol == "mindeye" else "RGB mean"
        size = "native size" if self.image_size is None else f"{self.image_size}px"
        st.per_sample_metric("ssim", PIXELS, values, describe_protocol(self.ssim_protocol, self.image_size),
                             f"{size}, {colour}", self.n_boot, self.seed)

    def _metric_pixcorr(self, st: _Collector, pred, ref, outputs, captions) -> None:
        from metrics.pixcorr import pixcorr

        values = pixcorr(pred, ref, size=self.image_size)
        size = "native" if self.image_size is None else f"{self.image_size}px"
        st.per_sample_metric("pixcorr", PIXELS, values, f"mindeye-{size}-rgb-pearson", f"{size}, RGB", self.n_boot,
                             self.seed)

    def _set_metric(self, metric: str, st: _Collector, outputs) -> None:
        options = SetLevelOptions(seed=self.seed, n_boot=self.set_n_boot[metric], kid_subsets=self.kid_subsets,
                                  kid_subset_size=self.kid_subset_size, is_splits=self.is_splits,
                                  enforce_min_n=self.enforce_min_n)
        for b in self._serving(metric, self.backbones):
            o = outputs[id(b)]
            if metric == "is":
                arrays = (o["pred"][b.score_logits_key],)
                protocol = (f"IS torch-fidelity: softmax of {b.score_logits_key} ({arrays[0].shape[1]} classes), "
                            f"splits=min({self.is_splits}, N // 10), shuffle seed 2020, population std; "
                            f"{b.preprocessing}")
            else:
                arrays = (o["pred"][b.distribution_key], o["ref"][b.distribution_key])
                if metric == "fid":
                    protocol = (f"FID float64 eigvals on {b.distribution_key} ({arrays[0].shape[1]}-d); "
                                f"{b.preprocessing}")
                else:
                    protocol = (f"KID poly3 (gamma=1/d, coef 1) subsets={self.kid_subsets} "
                                f"subset_size=min({self.kid_subset_size}, N) seed={self.seed} on "
                                f"{b.distribution_key}; {b.preprocessing}")
            st.set_metric(metric, b.name, arrays, protocol, options, self.per_subject_sets, self.set_level)

    def _metric_fid(self, st: _Collector, pred, ref, outputs, captions) -> None:
        self._set_metric("fid", st, outputs)

    def _metric_kid(self, st: _Collector, pred, ref, outputs, captions) -> None:
        self._set_metric("kid", st, outputs)

    def _metric_is(self, st: _Collector, pred, ref, outputs, captions) -> None:
        self._set_metric("is", st, outputs)

    def _metric_clip(self, st: _Collector, pred, ref, outputs, captions) -> None:
        from metrics.clip_score import aggregate_clip_score, clip_score_from_embeddings

        for b in self._serving("clip", self.backbones):
            text = b.encode_text(captions)
            values = clip_score_from_embeddings(outputs[id(b)]["pred"]["image"], text, variant=self.clip_variant)
            protocol = (f"CLIP score {self.clip_variant} "
                        f"({'2.5·max(cos,0), mean' if self.clip_variant == 'hessel' else '100·cos, mean clamped'}) "
                        f"reconstruction vs caption; {b.preprocessing}")
            label = "Hessel w=2.5" if self.clip_variant == "hessel" else "torchmetrics w=100"
            st.per_sample_metric("clip", b.name, values, protocol, label, self.n_boot, self.seed,
                                 value=aggregate_clip_score(values, self.clip_variant))

    def _metric_nway(self, st: _Collector, pred, ref, outputs, captions) -> None:
        from metrics.identification import nway_identification

        if len(pred) < 2:
            raise UserError("metric nway: identification needs at least 2 images; evaluate more trials")
        for b in self._serving("nway", self.backbones):
            o = outputs[id(b)]
            for label, key in b.identification.items():
                values = nway_identification(o["pred"][key], o["ref"][key], n_way=self.identification_n_way,
                                             seed=self.seed)
                way = ("2-way, all pairs" if self.identification_n_way is None
                       else f"{self.identification_n_way}-way, 50 draws")
                protocol = f"identification {way} (MindEye), Pearson r of {key}; {b.preprocessing}"
                st.per_sample_metric("nway", label, values, protocol, way, self.n_boot, self.seed)

    def _metric_corrdist(self, st: _Collector, pred, ref, outputs, captions) -> None:
        from metrics.correlation_distance import correlation_distance

        for b in self._serving("corrdist", self.backbones):
            o = outputs[id(b)]
            for label, key in b.correlation_distance.items():
                values = correlation_distance(o["pred"][key], o["ref"][key])
                protocol = (f"correlation distance (MindEye), 1 − Pearson r of {key} with the own stimulus', mean; "
                            f"{b.preprocessing}")
                st.per_sample_metric("corrdist", label, values, protocol, f"1 − r, {key}", self.n_boot, self.seed)

    def _metric_acc(self, st: _Collector, pred, ref, outputs, captions) -> None:
        from metrics.accuracy import nway_topk_accuracy

        for b in self._serving("acc", self.backbones):
            o = outputs[id(b)]
            logits = o["pred"][b.class_logits_key]
            targets = o["ref"][b.class_logits_key].argmax(axis=1)
            n_way = min(self.acc_n_way, logits.shape[1])
            values = nway_topk_accuracy(logits, targets, n_way=n_way, top_k=self.acc_top_k, draws=self.acc_draws,
                                        seed=self.seed)
            protocol = (f"MinD-Vis {n_way}-way top-{self.acc_top_k}, {self.acc_draws} draws, seed {self.seed}; "
                        f"target = classifier's class for the stimulus ({logits.shape[1]} classes); {b.preprocessing}")
            st.per_sample_metric("acc", b.name, values, protocol, f"{n_way}-way top-{self.acc_top_k}",
                                 self.n_boot, self.seed)


class _Collector:
    """Accumulates results, per-sample rows and set-level rows while the metrics are computed."""

    def __init__(self, n: int, trial_ids: np.ndarray, subjects: np.ndarray | None):
        self.n, self.trial_ids, self.subjects = n, trial_ids, subjects
        self.results: dict[str, MetricResult] = {}
        self.extras: dict[str, dict] = {}
        self.sample_frames: list[pd.DataFrame] = []
        self.set_rows: list[dict] = []
        self.set_inputs: dict[str, tuple[np.ndarray, ...]] = {}
        self.labels: dict[str, str] = {}

    def _subject_column(self) -> np.ndarray:
        return self.subjects if self.subjects is not None else np.full(self.n, "all", dtype=object)

    def per_sample_metric(self, metric: str, backbone: str, values: np.ndarray, protocol: str, label: str,
                          n_boot: int, seed: int, value: float | None = None) -> None:
        from metrics.stats import bootstrap_ci

        values = np.asarray(values, dtype=np.float64)
        name = metric_name(metric, backbone)
        ci = bootstrap_ci(values, n_boot=n_boot, seed=seed) if n_boot > 0 and len(values) > 1 else None
        self.results[name] = MetricResult(name=name, value=float(values.mean() if value is None else value), ci95=ci,
                                          backbone=backbone, protocol=protocol, n=len(values), per_sample=values,
                                          label=label)
        self.labels[name] = label
        self.sample_frames.append(pd.DataFrame({"trial_id": self.trial_ids, "subject": self._subject_column(),
                                                "metric": name, "backbone": backbone, "value": values}))

    def set_metric(self, metric: str, backbone: str, arrays: tuple, protocol: str, options: SetLevelOptions,
                   per_subject: bool, compute: bool) -> None:
        name = metric_name(metric, backbone)
        self.set_inputs[name] = arrays
        if not compute:
            return
        rows = set_level_rows(metric, backbone, arrays, self.subjects if per_subject else None, options)
        whole = rows[0]
        ci = None if np.isnan(whole["ci_low"]) else (whole["ci_low"], whole["ci_high"])
        self.results[name] = MetricResult(name=name, value=whole["value"], ci95=ci, backbone=backbone,
                                          protocol=f"{protocol}; N={whole['n']}", n=whole["n"],
                                          label=whole["label"], status=whole["status"])
        self.labels[name] = whole["label"]
        if not np.isnan(whole["std"]):
            self.extras[name] = {"std": float(whole["std"])}
        for row in rows:
            if row["warning"]:
                warnings.warn(row["warning"] if row["subject"] == "all" else f"subject {row['subject']}: "
                              f"{row['warning']}", SmallSampleWarning, stacklevel=2)
            self.set_rows.append({**row, "metric": name})

    def report(self, provenance: dict, messages: list[str]) -> EvaluationReport:
        samples = (pd.concat(self.sample_frames, ignore_index=True) if self.sample_frames
                   else pd.DataFrame(columns=["trial_id", "subject", "metric", "backbone", "value"]))
        set_level = pd.DataFrame(self.set_rows, columns=SET_LEVEL_COLUMNS)
        set_level["subject"] = set_level["subject"].astype(object)
        return EvaluationReport(self.n, self.results, samples, set_level, provenance, self.extras, messages,
                                set_inputs=self.set_inputs, labels=self.labels)


# ------------------------------------------------------------------------------------------- runner hook
def evaluate_for_runner(pred: np.ndarray, ref: np.ndarray, metrics: Sequence[str], trial_ids: Sequence[str],
                        subjects: Sequence[int], captions: Sequence[str] | None, dataset, backbone: str = "synth-cnn",
                        cache_dir: str | Path | None = None, seed: int = 0, backbone_options: dict | None = None,
                        **engine_kwargs) -> EvaluationReport:
    """What the grid runner needs per cell: the report of its per-sample metrics and its set-level inputs.

    Set-level metrics are not computed here (``set_level=False``): one fold holds a fraction of the test
    set, so the runner pools ``report.set_inputs`` over the folds and calls :mod:`metrics.set_level` once.
    ``backbone`` names the backbone of the model-based metrics (``synth-cnn`` trains on ``dataset``'s
    stimuli, cached under ``cache_dir``; ``inception-tf`` and friends resolve official weights);
    ``backbone_options`` go to the backbone's constructor (e.g. ``{"config": SynthCNNConfig(...)}``).
    """
    from metrics.backbones.registry import build_backbone

    needs_backbone = [m for m in metrics if m not in PIXEL_METRICS]
    backbones: list[Backbone] = []
    if needs_backbone:
        if backbone == "synth-cnn":
            from metrics.backbones.indomain import InDomainCNN

            backbones = [InDomainCNN.for_dataset(dataset, cache_dir=cache_dir, **(backbone_options or {}))]
        else:
            backbones = [build_backbone(backbone, **(backbone_options or {}))]
    engine = MetricsEngine(metrics, backbones=backbones, cache_dir=cache_dir, seed=seed,
                           **{"set_level": False, **engine_kwargs})
    return engine.evaluate(pred, ref, captions=captions, subjects=subjects, trial_ids=trial_ids)


__all__ = ["ALL_METRICS", "SET_METRICS", "EvaluationReport", "MetricsEngine", "evaluate_for_runner", "metric_name"]
