"""``eeg2img evaluate``: a folder of reconstructions against a folder of stimuli, matched by file stem.

    eeg2img evaluate --pred recon/ --ref stimuli/ --metrics ssim,pixcorr,fid,kid,is \\
        --inception-weights inception-2015-12-05.pt --resize clean --json scores.json

Model-based metrics use the official backbones by default (Inception-v3 TF weights for FID/KID/IS
and identification, AlexNet for identification, EfficientNet-B1 and SwAV for correlation distance,
a torchvision ImageNet classifier for accuracy, an open_clip model for CLIP score); ``--backbone
synth-cnn --dataset PATH`` uses the in-domain CNN trained on the dataset's stimuli instead, and
``--proxy-backbone`` adds a random-init network for plumbing checks. Every problem with the input is one line naming the file and the fix.
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

from eeg2img.errors import UserError
from metrics.image_folders import list_images, load_set, match_stems
from metrics.vocabulary import IMAGE_METRICS

DEFAULT_METRICS = "ssim,pixcorr,fid,kid,is"
# MindEye's eight columns in its order: PixCorr, SSIM, AlexNet(2), AlexNet(5), Inception, CLIP (two-way
# identification), EffNet-B and SwAV (correlation distance).
SUITES = {"mindeye": {"metrics": ("pixcorr", "ssim", "nway", "corrdist"),
                      "backbones": ("alexnet", "inception-tv", "effnet-b1", "swav")}}


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    from metrics.backbones.resize import RESIZE_POLICIES

    p = parser
    p.add_argument("--pred", required=True, type=Path, help="folder of reconstructions (one image per stem)")
    p.add_argument("--ref", required=True, type=Path, help="folder of stimuli with the same file stems")
    p.add_argument("--metrics", default=None,
                   help=f"comma-separated subset of {','.join(IMAGE_METRICS)} (default {DEFAULT_METRICS})")
    p.add_argument("--suite", choices=tuple(SUITES),
                   help="a published metric suite with its own backbones: mindeye = PixCorr, SSIM, AlexNet(2), "
                        "AlexNet(5), Inception (torchvision), CLIP (with --clip-model), EffNet-B1, SwAV")
    p.add_argument("--captions", type=Path, help="JSON {stem: caption} (or TSV stem<TAB>caption) for CLIP score")
    p.add_argument("--subjects", type=Path, help="JSON {stem: subject}: adds per-subject set-level metrics")
    p.add_argument("--json", type=Path, help="write the results (values, 95%% CIs, provenance) to this file")
    p.add_argument("--backbone", default=None,
                   help="comma-separated backbones for the model-based metrics: inception-tf, inception-tv, alexnet, "
                        "effnet-b1, swav, classifier, synth-cnn, or none (default: the official ones each metric needs)")
    p.add_argument("--dataset", type=Path, help="dataset whose stimuli train the synth-cnn backbone")
    p.add_argument("--inception-weights", type=Path,
                   help="inception-2015-12-05.pt (clean-fid) or weights-inception-2015-12-05-6726825d.pth")
    p.add_argument("--resize", choices=RESIZE_POLICIES, default="clean",
                   help="how images reach Inception's 299 px input (named in every result)")
    p.add_argument("--clip-model", help="open_clip model name (e.g. ViT-B-32, ViT-L-14-quickgelu) or config JSON")
    p.add_argument("--clip-weights", type=Path, help="open_clip checkpoint for --clip-model")
    p.add_argument("--clip-variant", choices=("hessel", "torchmetrics"), default="hessel")
    p.add_argument("--alexnet-weights", type=Path, help="alexnet-owt-7be5be79.pth (identification)")
    p.add_argument("--inception-tv-weights", type=Path,
                   help="inception_v3_google-0cc3c7bd.pth (MindEye's Inception identification, backbone inception-tv)")
    p.add_argument("--effnet-weights", type=Path, help="efficientnet_b1-c27df63c.pth (correlation distance)")
    p.add_argument("--swav-weights", type=Path, help="swav_800ep_pretrain.pth.tar (correlation distance)")
    p.add_argument("--classifier-weights", type=Path, help="torchvision ImageNet state dict (N-way accuracy)")
    p.add_argument("--classifier-arch", help="torchvision architecture of --classifier-weights (default: from name)")
    p.add_argument("--proxy-backbone", action="store_true",
                   help="also run a seeded random-init network (plumbing checks only; its numbers mean nothing)")
    p.add_argument("--size", type=int, default=None, help="resize every image to SIZE×SIZE on load")
    p.add_argument("--n-way", type=int, default=None, help="identification N (default: MindEye 2-way, all pairs)")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache-dir", type=Path, default=None, help="feature cache root (default $EEG2IMG_CACHE)")
    p.add_argument("--no-cache", action="store_true", help="do not read or write cached reference features")
    return parser


def _read_mapping(path: Path, what: str) -> dict[str, str]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{path}: {what} file not found; check the path") from None
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: cannot read {what} file ({type(err).__name__}); save it as UTF-8 text") from None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise UserError(f"{path}: not valid JSON (line {err.lineno}); write an object {{stem: value}}") from None
        if not isinstance(data, dict):
            raise UserError(f"{path}: expected a JSON object {{stem: value}}, got {type(data).__name__}")
        return {str(k): v for k, v in data.items()}
    out = {}
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        if "\t" not in line:
            raise UserError(f"{path}: line {i} has no tab; write one 'stem<TAB>{what}' per line or use JSON")
        k, v = line.split("\t", 1)
        out[k.strip()] = v.strip()
    return out


def _aligned(mapping: dict[str, object], stems: list[str], path: Path, what: str) -> list:
    missing = [s for s in stems if s not in mapping]
    if missing:
        raise UserError(f"{path}: no {what} for {len(missing)} image(s), e.g. {missing[0]}; add one per image stem")
    return [mapping[s] for s in stems]


# --------------------------------------------------------------------------------------------- backbones
# MindEye's pooled-feature backbones and the option that names each one's weights file
POOLED_WEIGHT_FLAGS = {"inception-tv": "inception_tv_weights", "effnet-b1": "effnet_weights", "swav": "swav_weights"}


def build_backbones(args: argparse.Namespace, metrics: list[str]) -> list:
    from eeg2img.weights import resolve_weights
    from metrics.backbones.alexnet import AlexNetFeatures
    from metrics.backbones.classifier import ImageNetClassifier
    from metrics.backbones.inception import build_inception
    from metrics.backbones.registry import build_backbone

    model_metrics = [m for m in metrics if m not in ("ssim", "pixcorr", "clip")]
    if args.backbone is not None:  # explicit, possibly empty ("" or "none": only --proxy-backbone / CLIP)
        names = [n.strip() for n in args.backbone.split(",") if n.strip() and n.strip() != "none"]
    else:
        names = []
        if set(model_metrics) & {"fid", "kid", "is", "nway"}:
            names.append("inception-tf")
        if "nway" in model_metrics:
            names.append("alexnet")
        if "corrdist" in model_metrics:
            names += ["effnet-b1", "swav"]
        if "acc" in model_metrics:
            names.append("classifier")
    out = []
    for name in names:
        if name == "inception-tf":
            out.append(build_inception(args.inception_weights, resize=args.resize, device=args.device))
        elif name == "alexnet":
            out.append(AlexNetFeatures(resolve_weights("alexnet", args.alexnet_weights), device=args.device))
        elif name in POOLED_WEIGHT_FLAGS:
            out.append(build_backbone(name, weights=getattr(args, POOLED_WEIGHT_FLAGS[name]), device=args.device))
        elif name == "classifier":
            weights = args.classifier_weights or resolve_weights("resnet50")
            out.append(ImageNetClassifier(weights, arch=args.classifier_arch, device=args.device))
        elif name == "synth-cnn":
            if args.dataset is None:
                raise UserError("--backbone synth-cnn: needs --dataset PATH (the dataset whose stimuli it learns)")
            from eeg2img.datasets import load_dataset
            from metrics.backbones.indomain import InDomainCNN

            out.append(InDomainCNN.for_dataset(load_dataset(args.dataset), cache_dir=args.cache_dir,
                                               device=args.device))
        elif name == "proxy":
            raise UserError("--backbone proxy: use --proxy-backbone (random weights are opt-in only)")
        else:
            raise UserError(f"--backbone {name}: unknown; choose from inception-tf, inception-tv, alexnet, effnet-b1, swav, "
                            "classifier, synth-cnn")
    if "clip" in metrics or (args.suite and args.clip_model):  # a suite's CLIP column is image-only identification
        if not args.clip_model:
            raise UserError("metric clip: needs --clip-model NAME and --clip-weights PATH (an open_clip checkpoint)")
        from metrics.backbones.clip import OpenClip

        out.append(OpenClip(args.clip_model, args.clip_weights, device=args.device))
    if args.proxy_backbone:
        from metrics.backbones.indomain import RandomProxy

        out.append(RandomProxy(seed=args.seed, device=args.device))
    return out


# ------------------------------------------------------------------------------------------------- run
def run(args: argparse.Namespace) -> int:
    from metrics.engine import MetricsEngine

    notes = []
    if args.suite:
        given = [flag for flag, value in (("--metrics", args.metrics), ("--backbone", args.backbone),
                                          ("--n-way", args.n_way)) if value is not None]
        if given:
            raise UserError(f"--suite {args.suite}: sets the metrics, backbones and 2-way protocol itself; "
                            f"drop {given[0]}")
        args.metrics = ",".join(SUITES[args.suite]["metrics"])
        args.backbone = ",".join(SUITES[args.suite]["backbones"])
        if not args.clip_model:
            notes.append(f"suite {args.suite}: the CLIP two-way column is not computed; pass --clip-model "
                         "ViT-L-14-quickgelu --clip-weights PATH (OpenAI's ViT-L/14, as MindEye uses)")
    elif args.metrics is None:
        args.metrics = DEFAULT_METRICS
    metrics = [m.strip().lower() for m in str(args.metrics).split(",") if m.strip()]
    bad = [m for m in metrics if m not in IMAGE_METRICS]
    if bad or not metrics:
        raise UserError(f"--metrics {args.metrics}: unknown metric {bad[0] if bad else '(none)'}; "
                        f"choose from {','.join(IMAGE_METRICS)}")
    if args.size is not None and args.size < 8:
        raise UserError(f"--size {args.size}: too small; pass at least 8 (pixels)")
    if args.json is not None:  # before any work: a path that cannot be written fails now, not after the metrics
        from eeg2img.atomic import check_output

        check_output(args.json, "file", "pass another --json path")
    pred_files = list_images(args.pred, "pred")
    ref_files = list_images(args.ref, "ref")
    stems = match_stems(pred_files, ref_files, args.pred, args.ref)
    captions = None
    if "clip" in metrics:
        if args.captions is None:
            raise UserError("metric clip: needs --captions FILE (JSON {stem: caption}) for the reconstructions")
        captions = [str(c) for c in _aligned(_read_mapping(args.captions, "caption"), stems, args.captions,
                                             "caption")]
    subjects = None
    if args.subjects is not None:
        subjects = _aligned(_read_mapping(args.subjects, "subject"), stems, args.subjects, "subject")
    # Backbones before images: a missing weights file is reported before minutes of reading.
    backbones = build_backbones(args, metrics)
    pred = load_set([pred_files[s] for s in stems], args.size, args.pred)
    ref = load_set([ref_files[s] for s in stems], args.size, args.ref)
    engine = MetricsEngine(metrics, backbones=backbones, resize=args.resize, device=args.device,
                           cache_dir=args.cache_dir, seed=args.seed, use_cache=not args.no_cache,
                           clip_variant=args.clip_variant, identification_n_way=args.n_way)
    with warnings.catch_warnings():
        # The report keeps every qualifying warning; they are printed once below as notes, not as
        # Python warnings with source lines.
        warnings.simplefilter("ignore", UserWarning)
        report = engine.evaluate(pred, ref, captions=captions, subjects=subjects, trial_ids=stems)
    report.provenance["pred_dir"], report.provenance["ref_dir"] = str(args.pred), str(args.ref)
    print(f"{len(stems)} image pairs · {args.pred} vs {args.ref}")
    print(report.table())
    report.warnings.extend(notes)
    for w in report.warnings:
        print(f"note: {w}")
    if args.json is not None:
        report.write_json(args.json)
        print(f"wrote {args.json}")
    return 0
