"""Helpers for testing baselines: a toy EEG/image dataset and the scores the tests compare methods with.

The toy dataset is a stand-in when the project's synthetic generator is not wanted (it is smaller and has
no files besides the PNG stimuli): each class has a hue and a shape, each image a position and size, and
the EEG carries a class pattern, an image pattern and noise, so a method that reads the EEG can beat the
floors on held-out trials.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from eeg2img.datasets.base import EEGDataset


def make_toy_dataset(root: str | Path, subjects: int = 1, classes: int = 6, images_per_class: int = 6,
                     size: int = 32, channels: int = 16, samples: int = 64, repeats: int = 1, noise: float = 1.0,
                     seed: int = 0) -> EEGDataset:
    """Write ``classes × images_per_class`` PNG stimuli under ``root`` and return an EEGDataset over them."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    hues = rng.permutation(np.linspace(0, 255, classes, endpoint=False)).astype(int)
    image_ids, image_labels, params = [], [], []
    for k in range(classes):
        for j in range(images_per_class):
            stem = f"c{k:02d}_{j:03d}"
            cx, cy = rng.uniform(0.3, 0.7, 2) * size
            r = rng.uniform(0.15, 0.3) * size
            im = Image.new("HSV", (size, size), (int(hues[k]), 90, 90))
            draw = ImageDraw.Draw(im)
            colour = (int((hues[k] + 128) % 256), 230, 240)
            box = (cx - r, cy - r, cx + r, cy + r)
            (draw.ellipse if k % 2 == 0 else draw.rectangle)(box, fill=colour)
            im.convert("RGB").save(root / f"{stem}.png")
            image_ids.append(stem)
            image_labels.append(k)
            params.append([cx / size - 0.5, cy / size - 0.5, r / size - 0.2])
    params = np.asarray(params)
    class_patterns = rng.standard_normal((classes, channels, samples))
    image_patterns = rng.standard_normal((3, channels, samples))
    t = np.linspace(0, 1, samples)
    envelope = np.exp(-((t - 0.35) / 0.15) ** 2)  # an evoked response: signal only in part of the window
    eeg, labels, ids, subs = [], [], [], []
    for s in range(subjects):
        subject_gain = 1.0 + 0.2 * rng.standard_normal()
        for _ in range(repeats):
            for n, stem in enumerate(image_ids):
                k = image_labels[n]
                signal = class_patterns[k] + 3.0 * np.tensordot(params[n], image_patterns, axes=1)
                eeg.append(subject_gain * signal * envelope + noise * rng.standard_normal((channels, samples)))
                labels.append(k)
                ids.append(stem)
                subs.append(s + 1)
    n = len(eeg)
    return EEGDataset(
        eeg=np.asarray(eeg, dtype=np.float32),
        labels_=np.asarray(labels, dtype=np.int64),
        image_ids_=np.asarray(ids),
        subjects=np.asarray(subs, dtype=np.int64),
        trial_ids=np.asarray([f"toy-{i:05d}" for i in range(n)]),
        class_names=tuple(f"class{k}" for k in range(classes)),
        name="toy",
        image_root=root,
        fingerprint=f"toy-{seed}-{subjects}-{classes}-{images_per_class}-{size}-{channels}-{samples}-{repeats}",
    )


def split_by_image(dataset: EEGDataset, test_fraction: float = 0.34, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Train/test trial indices with every class's images split between the two (no image in both)."""
    rng = np.random.default_rng(seed)
    test_images: set[str] = set()
    for k in np.unique(dataset.labels_):
        ims = sorted(set(dataset.image_ids_[dataset.labels_ == k].tolist()))
        n_test = max(1, round(test_fraction * len(ims)))
        test_images.update(rng.permutation(ims)[:n_test].tolist())
    is_test = np.isin(dataset.image_ids_, sorted(test_images))
    return np.flatnonzero(~is_test), np.flatnonzero(is_test)


def pixcorr(recons: np.ndarray, stimuli: np.ndarray) -> np.ndarray:
    """Per-sample Pearson r between flattened images (the MindEye PixCorr, without resizing)."""
    a = recons.reshape(len(recons), -1).astype(np.float64)
    b = stimuli.reshape(len(stimuli), -1).astype(np.float64)
    a -= a.mean(1, keepdims=True)
    b -= b.mean(1, keepdims=True)
    return (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)


def class_mean_accuracy(recons: np.ndarray, labels: np.ndarray, reference: np.ndarray,
                        reference_labels: np.ndarray) -> float:
    """Fraction of reconstructions whose nearest class-mean reference image (Euclidean) is their true class."""
    classes = np.unique(reference_labels)
    means = np.stack([reference[reference_labels == k].astype(np.float64).mean(0).ravel() for k in classes])
    flat = recons.reshape(len(recons), -1).astype(np.float64)
    d = ((flat[:, None, :] - means[None]) ** 2).sum(-1)
    return float(np.mean(classes[np.argmin(d, axis=1)] == np.asarray(labels)))


def stimulus_classifier_accuracy(recons: np.ndarray, labels: np.ndarray, reference: np.ndarray,
                                 reference_labels: np.ndarray, size: int = 16) -> float:
    """Accuracy of a ridge classifier trained on the reference (training) stimuli, applied to reconstructions.

    A pixel classifier learns which pixels carry the class (hue, shape) and which do not (background),
    unlike a nearest-class-mean rule, which the background brightness dominates.
    """
    from sklearn.linear_model import RidgeClassifierCV

    from baselines._common import resize_images

    def feats(x: np.ndarray) -> np.ndarray:
        return resize_images(x, size).reshape(len(x), -1).astype(np.float64) / 255.0

    clf = RidgeClassifierCV(alphas=np.logspace(-2, 3, 11)).fit(feats(reference), reference_labels)
    return float(np.mean(clf.predict(feats(recons)) == np.asarray(labels)))
