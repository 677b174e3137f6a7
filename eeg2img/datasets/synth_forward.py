"""Forward model of the synthetic dataset: image latent → multichannel EEG at 1 kHz.

Version ``erp-mix-1``. Every trial is ``n_samples`` long with stimulus onset at sample 0 (as the
EEG-CVPR40 segments), sampled at 1 kHz, on a BioSemi montage (MNE's ``biosemi<n>`` positions on a
sphere; x right, y anterior, z up). Values are in units of roughly the background-noise standard
deviation (per-channel standard deviation ≈ 1, the scale of the standardised ``eeg_5_95_std.pth``).

1. **Image latent** ``z`` (25-d, unit scale): the class semantics ``e_c`` (16-d; the sum of random
   shape, colour and texture vectors plus a class-specific vector, so classes sharing an attribute
   are similar) followed by the layout features: centre x and y, size, visible rotation as cos/sin of
   the angle reduced to the class's symmetry period (0, 0 when rotation is invisible), RGB colour and
   background grey, each centred and scaled to unit variance.
2. **Latent sources**: 4 ERP-like components × 3 sources = 12 sources. Component j has a Gaussian
   temporal kernel ``exp(-(t - μ_j)² / 2σ_j²)``: P1 (+, 100 ms, σ 15), N1 (−, 170 ms, σ 20),
   P2 (+, 250 ms, σ 30), P3 (+, 350 ms, σ 55). Source k's amplitude on image i is
   ``polarity_k · (1 + w_k · z_i)`` where ``w_k`` reads a unit-variance mixture of semantics and
   layout with a semantic share growing with latency (0.1, 0.3, 0.6, 0.9: early components code
   low-level layout, late ones semantics). The first two P1/N1 sources sit over the left and right
   occipital cortex and add ``±0.8·x``: a stimulus on the right drives the left hemisphere
   (contralateral coding), so horizontal position is linearly decodable.
3. **Subject-specific mixing**: each source projects with a smooth scalp pattern (a Gaussian blob
   of geodesic width 0.3–0.5 rad around its centre, average-referenced, unit RMS over channels). A
   subject's pattern is the shared pattern with its centre moved by ~0.12 rad and its width scaled by
   ~10 %, plus 0.35 × a random smooth field; its read-out weights are ``w_k + 0.25·ε/5`` (ε standard normal), renormalised;
   its component latencies shift by N(0, 8 ms) and widths scale by ~10 %. Cross-subject transfer is
   therefore possible but imperfect.
4. **Trial variability**: per-trial latency jitter N(0, 5–12 ms) (per subject), amplitude jitter
   × lognormal(0, 0.25), and the subject's evoked gain ``0.15 · signal_strength · snr_factor``; the
   subjects' ``snr_factor`` values are log-spaced from 0.6 to 1.6, assigned in a seeded order.
5. **Noise**, generated in a low-dimensional source space and mixed (only the sensor noise is
   full-rank): 24 background sources at random scalp locations with 1/f^α (pink, α ∈ [0.8, 1.4]
   per subject) time courses, variance 0.6 in total; 2 occipito-parietal alpha sources with a
   narrow-band (σ 1 Hz) rhythm at a subject-specific 9–11.5 Hz, per-trial amplitude × lognormal(0,
   0.4), variance 0.1–0.35; 50 Hz line noise with a random phase per trial and per-channel gains
   (lognormal electrode impedances), variance 0.005–0.05; white sensor noise, variance 0.1. Background
   and alpha noise are synthesised in the frequency domain over 2 × ``n_samples`` and cropped, so
   trials carry low-frequency power and their mean is not zero. Noise is independent across trials.
6. **Block drift** (``block_drift`` > 0, Li et al. 2020's block-design confound): every recording
   block (one class per block, per subject) gets its own slow waveform, continuous over the block's
   trials (each trial lasts ``n_samples`` ms): on 4 broad scalp patterns (width 0.8–1.2 rad) an
   offset N(0, 1), a linear trend N(0, 1) from the block's start to its end and a 0.05–0.3 Hz
   sinusoid of amplitude N(0, 1), plus a per-channel offset N(0, 0.2²); all × ``block_drift``. With a weak
   stimulus response, a classifier on trial means gets ~12 % (40-way) at 0.03, ~88 % at 0.1 and
   100 % from 0.3 on: the block, hence the class under a by-image split, is read from drift alone.

Determinism: numpy generators and a torch CPU generator are seeded from
``SeedSequence(seed, spawn_key=...)`` with a key per purpose, per subject and per chunk of 256
trials, so a seed fixes every array (on one platform and BLAS).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import torch

from eeg2img.datasets import synth_stimuli as stim

FORWARD_MODEL_VERSION = "erp-mix-1"
SFREQ = 1000.0
SEMANTIC_DIM = 16
MONTAGE_SIZES = (16, 32, 64, 128, 160, 256)
CHUNK_TRIALS = 256

LATENT_LAYOUT_COLUMNS = ("x", "y", "size", "rotation_cos", "rotation_sin", "red", "green", "blue", "background")
LATENT_COLUMNS = tuple(f"semantic_{i}" for i in range(SEMANTIC_DIM)) + LATENT_LAYOUT_COLUMNS

BASE_EVOKED_GAIN = 0.15
SNR_FACTOR_RANGE = (0.6, 1.6)
LATERAL_GAIN = 0.8
N_BACKGROUND = 24
BACKGROUND_VARIANCE = 0.6
SENSOR_VARIANCE = 0.1
N_DRIFT = 4
DRIFT_CHANNEL_SD = 0.2

# Seed-sequence keys, one per purpose, so that adding a purpose never shifts another's numbers.
KEY_SEMANTICS, KEY_LAYOUT, KEY_SHARED, KEY_SPLITS, KEY_SUBJECT, KEY_TRIALS, KEY_NOISE, KEY_ORDER, KEY_SNR = range(1, 10)


def rng_for(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def torch_generator_for(seed: int, *key: int) -> torch.Generator:
    state = np.random.SeedSequence(seed, spawn_key=key).generate_state(1, np.uint64)[0]
    return torch.Generator().manual_seed(int(state))


@dataclass(frozen=True)
class Component:
    name: str
    latency_ms: float
    width_ms: float
    polarity: float
    semantic_share: float
    centres: tuple[tuple[float, float, float], ...]  # scalp directions of its sources


COMPONENTS = (
    Component("P1", 100.0, 15.0, +1.0, 0.1, ((-0.35, -0.9, 0.25), (0.35, -0.9, 0.25), (0.0, -0.95, 0.3))),
    Component("N1", 170.0, 20.0, -1.0, 0.3, ((-0.6, -0.7, 0.1), (0.6, -0.7, 0.1), (0.0, -0.8, 0.5))),
    Component("P2", 250.0, 30.0, +1.0, 0.6, ((-0.3, -0.5, 0.8), (0.3, -0.5, 0.8), (0.0, 0.4, 0.9))),
    Component("P3", 350.0, 55.0, +1.0, 0.9, ((0.0, -0.45, 0.9), (0.0, 0.0, 1.0), (-0.4, -0.3, 0.85))),
)
N_EVOKED = sum(len(c.centres) for c in COMPONENTS)
ALPHA_CENTRES = ((-0.45, -0.8, 0.4), (0.45, -0.8, 0.4))


# --- latents ---------------------------------------------------------------------------------------


def class_semantics(catalogue: list[stim.StimulusClass], seed: int) -> np.ndarray:
    """``(n_classes, 16)`` embeddings; class c's vector does not depend on how many classes there are."""
    rng = rng_for(seed, KEY_SEMANTICS)
    shape_vec = rng.standard_normal((len(stim.SHAPES), SEMANTIC_DIM))
    colour_vec = rng.standard_normal((len(stim.COLOURS), SEMANTIC_DIM))
    texture_vec = rng.standard_normal((len(stim.TEXTURES), SEMANTIC_DIM))
    own_vec = rng.standard_normal((stim.MAX_CLASSES, SEMANTIC_DIM))
    colours = list(stim.COLOURS)
    rows = [
        shape_vec[stim.SHAPES.index(c.shape)]
        + colour_vec[colours.index(c.colour)]
        + texture_vec[stim.TEXTURES.index(c.texture)]
        + 0.7 * own_vec[c.index]
        for c in catalogue
    ]
    return (np.stack(rows) / np.sqrt(3.49)).astype(np.float32)


def _uniform_sd(lo: float, hi: float) -> float:
    return (hi - lo) / np.sqrt(12.0)


def latent_vectors(semantic: np.ndarray, layouts: np.ndarray, periods: np.ndarray) -> np.ndarray:
    """Image latents ``(n, 25)`` (columns :data:`LATENT_COLUMNS`) from per-image semantics, layouts and
    each image's rotation period (degrees, 0 = rotation invisible)."""
    x, y, size, rotation = layouts[:, 0], layouts[:, 1], layouts[:, 2], layouts[:, 3]
    centre_mid, centre_sd = np.mean(stim.CENTRE_RANGE), _uniform_sd(*stim.CENTRE_RANGE)
    size_mid, size_sd = np.mean(stim.RADIUS_RANGE), _uniform_sd(*stim.RADIUS_RANGE)
    bg_mid, bg_sd = np.mean(stim.BACKGROUND_RANGE), _uniform_sd(*stim.BACKGROUND_RANGE)
    visible = periods > 0
    angle = np.where(visible, 2 * np.pi * rotation / np.where(visible, periods, 1.0), 0.0)
    rot_cos = np.where(visible, np.sqrt(2.0) * np.cos(angle), 0.0)
    rot_sin = np.where(visible, np.sqrt(2.0) * np.sin(angle), 0.0)
    layout_features = np.column_stack(
        [
            (x - centre_mid) / centre_sd,
            (y - centre_mid) / centre_sd,
            (size - size_mid) / size_sd,
            rot_cos,
            rot_sin,
            (layouts[:, 4:7] - 0.5) / 0.3,
            (layouts[:, 7] - bg_mid) / bg_sd,
        ]
    )
    return np.concatenate([semantic, layout_features], axis=1).astype(np.float32)


# --- scalp geometry -----------------------------------------------------------------------------------


@cache
def montage(n_channels: int) -> tuple[tuple[str, ...], np.ndarray]:
    """Channel names and unit direction vectors ``(C, 3)`` of MNE's ``biosemi<n_channels>`` montage."""
    import mne

    positions = mne.channels.make_standard_montage(f"biosemi{n_channels}").get_positions()["ch_pos"]
    xyz = np.array(list(positions.values()), dtype=np.float64)
    return tuple(positions), xyz / np.linalg.norm(xyz, axis=1, keepdims=True)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def scalp_pattern(directions: np.ndarray, centre: np.ndarray, width: float) -> np.ndarray:
    """A smooth, average-referenced, unit-RMS scalp map: a Gaussian in geodesic angle from ``centre``."""
    angle = np.arccos(np.clip(directions @ _unit(centre), -1.0, 1.0))
    blob = np.exp(-0.5 * (angle / width) ** 2)
    blob -= blob.mean()
    return blob / np.sqrt(np.mean(blob**2))


def _random_directions(rng: np.random.Generator, n: int, min_z: float = -0.2) -> np.ndarray:
    out = []
    while len(out) < n:
        v = _unit(rng.standard_normal(3))
        if v[2] >= min_z:
            out.append(v)
    return np.array(out)


def _random_smooth_field(rng: np.random.Generator, directions: np.ndarray, n_blobs: int = 3) -> np.ndarray:
    field = sum(
        rng.standard_normal() * scalp_pattern(directions, d, rng.uniform(0.4, 0.8))
        for d in _random_directions(rng, n_blobs)
    )
    return field / np.sqrt(np.mean(field**2))


# --- spectra -------------------------------------------------------------------------------------------


def _unit_variance_spectrum(amplitude: np.ndarray, nfft: int) -> np.ndarray:
    """Scale rfft amplitudes so that irfft of ``amplitude · (g1 + i g2)`` has unit variance."""
    power = amplitude[..., 0] ** 2 + amplitude[..., -1] ** 2 + 4.0 * np.sum(amplitude[..., 1:-1] ** 2, axis=-1)
    return amplitude * (nfft / np.sqrt(power))[..., None]


def _pink_spectrum(freqs: np.ndarray, exponent: float) -> np.ndarray:
    amp = np.maximum(freqs, 1.0) ** (-exponent / 2.0)
    amp[0] = 0.0
    return amp


# --- shared and subject models -------------------------------------------------------------------------


@dataclass(frozen=True)
class SharedModel:
    """What every subject shares: read-out weights and source centres/widths."""

    weights: np.ndarray  # (N_EVOKED, latent_dim), each row unit norm
    base_amplitude: np.ndarray  # (N_EVOKED,) signed
    centres: np.ndarray  # (N_EVOKED, 3)
    widths: np.ndarray  # (N_EVOKED,) radians
    component_of: np.ndarray  # (N_EVOKED,) component index
    lateral: np.ndarray  # (N_EVOKED,) coefficient on the x latent (contralateral coding)


def shared_model(seed: int) -> SharedModel:
    rng = rng_for(seed, KEY_SHARED)
    n_layout = len(LATENT_LAYOUT_COLUMNS)
    weights, base, centres, widths, comp, lateral = [], [], [], [], [], []
    for j, component in enumerate(COMPONENTS):
        for s, centre in enumerate(component.centres):
            sem = _unit(rng.standard_normal(SEMANTIC_DIM)) * np.sqrt(component.semantic_share)
            lay = _unit(rng.standard_normal(n_layout)) * np.sqrt(1.0 - component.semantic_share)
            weights.append(np.concatenate([sem, lay]))
            base.append(component.polarity)
            centres.append(_unit(np.asarray(centre) + rng.normal(0.0, 0.05, 3)))
            widths.append(rng.uniform(0.3, 0.5))
            comp.append(j)
            early = component.name in ("P1", "N1")
            lateral.append(LATERAL_GAIN * (1.0 if s == 0 else -1.0) if early and s < 2 else 0.0)
    return SharedModel(
        np.array(weights), np.array(base), np.array(centres), np.array(widths), np.array(comp), np.array(lateral)
    )


@dataclass(frozen=True)
class SubjectModel:
    subject: int
    mixing: np.ndarray  # (C, K_total): evoked | background | alpha | line | drift
    weights: np.ndarray  # (N_EVOKED, latent_dim)
    latency_ms: np.ndarray  # (N_EVOKED,)
    component_latency_ms: np.ndarray  # (len(COMPONENTS),)
    width_ms: np.ndarray  # (N_EVOKED,)
    evoked_gain: float
    snr_factor: float
    latency_jitter_ms: float
    noise_spectra: np.ndarray  # (N_BACKGROUND + 2, nfft // 2 + 1), unit-variance irfft amplitudes
    nfft: int
    alpha_hz: float
    pink_exponent: float
    alpha_variance: float
    line_variance: float
    sensor_sd: float

    def describe(self) -> dict:
        """JSON-ready per-subject parameters for ``synth_meta.json``."""
        return {
            "snr_factor": round(self.snr_factor, 6),
            "evoked_gain": round(self.evoked_gain, 6),
            "alpha_hz": round(self.alpha_hz, 4),
            "pink_exponent": round(self.pink_exponent, 4),
            "alpha_variance": round(self.alpha_variance, 5),
            "line_variance": round(self.line_variance, 5),
            "sensor_sd": round(self.sensor_sd, 5),
            "latency_jitter_ms": round(self.latency_jitter_ms, 3),
            "component_latency_ms": {
                c.name: round(float(ms), 2) for c, ms in zip(COMPONENTS, self.component_latency_ms)
            },
        }


def snr_factors(n_subjects: int, seed: int) -> np.ndarray:
    """Per-subject signal gains, log-spaced over :data:`SNR_FACTOR_RANGE` in a seeded order."""
    if n_subjects == 1:
        return np.ones(1)
    factors = np.geomspace(*SNR_FACTOR_RANGE, n_subjects)
    return factors[rng_for(seed, KEY_SNR).permutation(n_subjects)]


def subject_model(
    shared: SharedModel,
    subject: int,
    seed: int,
    n_channels: int,
    n_samples: int,
    snr_factor: float,
    signal_strength: float,
    subject_variability: float = 1.0,
) -> SubjectModel:
    rng = rng_for(seed, KEY_SUBJECT, subject)
    _, directions = montage(n_channels)
    v = subject_variability  # scales every departure from the shared model; 1.0 draws erp-mix-1's exact subjects

    evoked_patterns = []
    for centre, width in zip(shared.centres, shared.widths):
        moved = _unit(centre + v * rng.normal(0.0, 0.12 / np.sqrt(2.0), 3))
        own = scalp_pattern(directions, moved, width * np.exp(v * rng.normal(0.0, 0.1)))
        mixed = own + v * 0.35 * _random_smooth_field(rng, directions)
        evoked_patterns.append(mixed / np.sqrt(np.mean(mixed**2)))
    weights = shared.weights + v * 0.25 * rng.standard_normal(shared.weights.shape) / np.sqrt(shared.weights.shape[1])
    weights /= np.linalg.norm(weights, axis=1, keepdims=True)

    latency_shift = np.clip(v * rng.normal(0.0, 8.0, len(COMPONENTS)), -20.0 * v, 20.0 * v)
    width_scale = np.exp(v * rng.normal(0.0, 0.1, len(COMPONENTS)))
    latency = np.array([COMPONENTS[j].latency_ms for j in shared.component_of]) + latency_shift[shared.component_of]
    width = np.array([COMPONENTS[j].width_ms for j in shared.component_of]) * width_scale[shared.component_of]

    background_patterns = [
        scalp_pattern(directions, d, rng.uniform(0.3, 0.8)) for d in _random_directions(rng, N_BACKGROUND)
    ]
    alpha_patterns = [scalp_pattern(directions, _unit(np.asarray(c)), 0.5) for c in ALPHA_CENTRES]
    line_gains = np.exp(rng.normal(0.0, 0.5, n_channels))
    line_gains /= np.sqrt(np.mean(line_gains**2))
    drift_patterns = [scalp_pattern(directions, d, rng.uniform(0.8, 1.2)) for d in _random_directions(rng, N_DRIFT)]

    alpha_hz = rng.uniform(9.0, 11.5)
    pink_exponent = rng.uniform(0.8, 1.4)
    alpha_variance = rng.uniform(0.1, 0.35)
    line_variance = rng.uniform(0.005, 0.05)
    sensor_sd = float(np.sqrt(SENSOR_VARIANCE))
    latency_jitter = rng.uniform(5.0, 12.0)

    nfft = 2 * n_samples
    freqs = np.fft.rfftfreq(nfft, 1.0 / SFREQ)
    spectra = [_pink_spectrum(freqs, pink_exponent)] * N_BACKGROUND
    spectra += [np.exp(-0.5 * ((freqs - alpha_hz) / 1.0) ** 2)] * len(ALPHA_CENTRES)
    spectra = _unit_variance_spectrum(np.array(spectra), nfft)

    mixing = np.column_stack(
        evoked_patterns
        + [p * np.sqrt(BACKGROUND_VARIANCE / N_BACKGROUND) for p in background_patterns]
        + [p * np.sqrt(alpha_variance / len(alpha_patterns)) for p in alpha_patterns]
        + [line_gains * np.sqrt(line_variance)]
        + drift_patterns
    )
    return SubjectModel(
        subject=subject,
        mixing=mixing.astype(np.float32),
        weights=weights,
        latency_ms=latency,
        component_latency_ms=np.array([c.latency_ms for c in COMPONENTS]) + latency_shift,
        width_ms=width,
        evoked_gain=BASE_EVOKED_GAIN * signal_strength * snr_factor,
        snr_factor=float(snr_factor),
        latency_jitter_ms=float(latency_jitter),
        noise_spectra=spectra.astype(np.float32),
        nfft=nfft,
        alpha_hz=float(alpha_hz),
        pink_exponent=float(pink_exponent),
        alpha_variance=float(alpha_variance),
        line_variance=float(line_variance),
        sensor_sd=sensor_sd,
    )


# --- simulation ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recording:
    """One subject's trial sequence: the latent of each trial's image and where it sits in its block."""

    latents: np.ndarray  # (n, latent_dim) float32
    block_index: np.ndarray  # (n,) 0..n_blocks-1, the subject's recording block of each trial
    position_in_block: np.ndarray  # (n,) 0..trials_per_block-1
    trials_per_block: int


def simulate_subject(
    model: SubjectModel,
    shared: SharedModel,
    recording: Recording,
    seed: int,
    n_samples: int,
    block_drift: float,
    out: np.ndarray,
    progress=None,
    onset_sample: int = 0,
) -> None:
    """Write the subject's trials into ``out`` ``(n, C, n_samples)`` float32, chunk by chunk.

    The stimulus appears at ``onset_sample`` (0: at the first sample, as in EEG-CVPR40's segments; 200:
    a 200 ms pre-stimulus baseline, as in THINGS-EEG2's epochs)."""
    n = len(recording.latents)
    rng = rng_for(seed, KEY_TRIALS, model.subject)
    amplitude = model.evoked_gain * (shared.base_amplitude[None, :] + recording.latents @ model.weights.T)
    amplitude += model.evoked_gain * shared.lateral[None, :] * recording.latents[:, [LATENT_COLUMNS.index("x")]]
    amplitude *= np.exp(rng.normal(0.0, 0.25, (n, 1)))
    jitter_ms = rng.normal(0.0, model.latency_jitter_ms, n)
    alpha_modulation = np.exp(rng.normal(0.0, 0.4, (n, len(ALPHA_CENTRES))))
    line_phase = rng.uniform(0.0, 2 * np.pi, n)
    drift = _block_drift(rng_for(seed, KEY_TRIALS, model.subject, 1), recording, n_samples, model.mixing.shape[0])

    # Drift sources are left out of the product entirely when there is no drift (a tenth of the work).
    n_used = model.mixing.shape[1] - (0 if block_drift else N_DRIFT)
    mixing = torch.from_numpy(np.ascontiguousarray(model.mixing[:, :n_used]))
    spectra = torch.from_numpy(model.noise_spectra)
    n_noise = spectra.shape[0]
    line_row = N_EVOKED + n_noise
    t_ms = (torch.arange(n_samples, dtype=torch.float32) - onset_sample) * (1000.0 / SFREQ)
    latency = torch.from_numpy(model.latency_ms).float()
    width = torch.from_numpy(model.width_ms).float()
    # Buffers reused across chunks: fresh large temporaries would be page-faulted in again every chunk.
    size = min(n, CHUNK_TRIALS)
    sources_buf = torch.empty((size, n_used, n_samples))
    sensor_buf = torch.empty((size, model.mixing.shape[0], n_samples))
    for chunk, start in enumerate(range(0, n, CHUNK_TRIALS)):
        stop = min(n, start + CHUNK_TRIALS)
        m = stop - start
        gen = torch_generator_for(seed, KEY_NOISE, model.subject, chunk)
        sources = sources_buf[:m]

        shift = latency[None, :, None] + torch.from_numpy(jitter_ms[start:stop]).float()[:, None, None]
        kernels = torch.exp(-0.5 * ((t_ms[None, None, :] - shift) / width[None, :, None]) ** 2)
        torch.mul(kernels, torch.from_numpy(amplitude[start:stop]).float()[:, :, None], out=sources[:, :N_EVOKED])

        coeffs = torch.view_as_complex(torch.randn((m, n_noise, spectra.shape[1], 2), generator=gen))
        sources[:, N_EVOKED:line_row] = torch.fft.irfft(coeffs * spectra, n=model.nfft)[..., :n_samples]
        sources[:, N_EVOKED + N_BACKGROUND : line_row] *= torch.from_numpy(alpha_modulation[start:stop]).float()[
            ..., None
        ]

        phase = torch.from_numpy(line_phase[start:stop]).float()[:, None]
        sources[:, line_row] = torch.sin((2 * np.pi * 50.0 / 1000.0) * t_ms[None, :] + phase)
        if block_drift:
            sources[:, line_row + 1 :] = torch.from_numpy(drift.sources(start, stop, block_drift))

        eeg = torch.from_numpy(out[start:stop])  # writes straight into the caller's (file-backed) buffer
        torch.matmul(mixing, sources, out=eeg)
        eeg.add_(torch.randn(eeg.shape, generator=gen, out=sensor_buf[:m]), alpha=model.sensor_sd)
        if block_drift:
            eeg.add_(torch.from_numpy(drift.channel_offsets(start, stop, block_drift))[:, :, None])
        if progress is not None:
            progress.update(m)


@dataclass(frozen=True)
class _Drift:
    recording: Recording
    n_samples: int
    offset: np.ndarray  # (n_blocks, N_DRIFT)
    trend: np.ndarray
    amplitude: np.ndarray
    freq_hz: np.ndarray
    phase: np.ndarray
    per_channel: np.ndarray  # (n_blocks, C)

    def sources(self, start: int, stop: int, scale: float) -> np.ndarray:
        """Drift source time courses ``(stop-start, N_DRIFT, n_samples)``, continuous within a block."""
        if not scale:
            return np.zeros((stop - start, N_DRIFT, self.n_samples), np.float32)
        rec = self.recording
        block = rec.block_index[start:stop]
        trial_s = self.n_samples / SFREQ
        block_s = rec.trials_per_block * trial_s
        tau = rec.position_in_block[start:stop, None] * trial_s + np.arange(self.n_samples)[None, :] / SFREQ
        tau = tau[:, None, :]
        wave = (
            self.offset[block][:, :, None]
            + self.trend[block][:, :, None] * (2.0 * tau / block_s - 1.0)
            + self.amplitude[block][:, :, None]
            * np.sin(2 * np.pi * self.freq_hz[block][:, :, None] * tau + self.phase[block][:, :, None])
        )
        return (scale * wave).astype(np.float32)

    def channel_offsets(self, start: int, stop: int, scale: float) -> np.ndarray:
        return (scale * self.per_channel[self.recording.block_index[start:stop]]).astype(np.float32)


def _block_drift(rng: np.random.Generator, recording: Recording, n_samples: int, n_channels: int) -> _Drift:
    n_blocks = int(recording.block_index.max()) + 1
    shape = (n_blocks, N_DRIFT)
    return _Drift(
        recording=recording,
        n_samples=n_samples,
        offset=rng.standard_normal(shape),
        trend=rng.standard_normal(shape),
        amplitude=rng.standard_normal(shape),
        freq_hz=rng.uniform(0.05, 0.3, shape),
        phase=rng.uniform(0.0, 2 * np.pi, shape),
        per_channel=rng.normal(0.0, DRIFT_CHANNEL_SD, (n_blocks, n_channels)),
    )
