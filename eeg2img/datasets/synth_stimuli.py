"""Procedural stimuli of the synthetic dataset: class catalogue, instance layouts, rendering, captions.

A class is a (shape, colour, texture) family such as "red striped circle"; an instance varies in
position, size, rotation, exact colour and background shade. Images are drawn with vectorised numpy
masks on a 2× supersampled grid (box-filtered down, which anti-aliases edges and textures), so the
whole default set of 2,000 images renders in about a second.

Class ``c`` takes shape ``c % 8`` and colour ``c % 5``: by the Chinese remainder theorem the first 40
classes are 40 distinct shape×colour pairs (the EEG-CVPR40 size), and any prefix mixes shapes and
colours. The texture cycles with the class and shifts by one for every further 40 classes, so up to
8 × 5 × 4 = 160 classes have distinct names.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SHAPES = ("circle", "square", "triangle", "star", "cross", "diamond", "ring", "hexagon")
COLOURS = {
    "red": (0.86, 0.16, 0.14),
    "green": (0.18, 0.66, 0.22),
    "blue": (0.16, 0.32, 0.88),
    "yellow": (0.95, 0.83, 0.12),
    "purple": (0.58, 0.22, 0.74),
}
TEXTURES = ("solid", "striped", "checkered", "dotted")
MAX_CLASSES = len(SHAPES) * len(COLOURS) * len(TEXTURES)

# Rotation period (degrees) under which each shape / texture looks the same; 0 = any rotation.
_SHAPE_PERIOD = {
    "circle": 0,
    "square": 90,
    "triangle": 120,
    "star": 72,
    "cross": 90,
    "diamond": 180,
    "ring": 0,
    "hexagon": 60,
}
_TEXTURE_PERIOD = {"solid": 0, "striped": 180, "checkered": 90, "dotted": 90}

# Instance ranges, as fractions of the image width.
CENTRE_RANGE = (0.22, 0.78)
RADIUS_RANGE = (0.14, 0.30)
BACKGROUND_RANGE = (0.05, 0.95)
COLOUR_JITTER = 0.04
TEXTURE_CYCLES_PER_RADIUS = 1.5
SUPERSAMPLE = 2

LAYOUT_COLUMNS = ("x", "y", "size", "rotation", "red", "green", "blue", "background")


@dataclass(frozen=True)
class StimulusClass:
    index: int
    shape: str
    colour: str
    texture: str

    @property
    def name(self) -> str:
        return f"{self.colour} {self.texture} {self.shape}"

    @property
    def rotation_period(self) -> int:
        """Degrees after which a rotated instance looks the same (0: rotation is invisible)."""
        return _combined_period(_SHAPE_PERIOD[self.shape], _TEXTURE_PERIOD[self.texture])


def _combined_period(a: int, b: int) -> int:
    if a == 0 or b == 0:
        return a or b
    return int(np.lcm(a, b)) % 360 or 360


def class_catalogue(n_classes: int) -> list[StimulusClass]:
    """The first ``n_classes`` classes (the same classes whatever ``n_classes`` is)."""
    out = []
    for c in range(n_classes):
        first40 = c % 40
        texture = (first40 + first40 // 8 + c // 40) % len(TEXTURES)
        out.append(StimulusClass(c, SHAPES[c % len(SHAPES)], list(COLOURS)[c % len(COLOURS)], TEXTURES[texture]))
    return out


def sample_layouts(cls: StimulusClass, n_images: int, rng: np.random.Generator) -> np.ndarray:
    """Instance parameters ``(n_images, len(LAYOUT_COLUMNS))`` in the order of :data:`LAYOUT_COLUMNS`.

    x, y: centre in image fractions (y grows downwards); size: radius as a fraction of the width;
    rotation: degrees in [0, 360); red/green/blue: instance colour in [0, 1]; background: grey level.
    """
    x = rng.uniform(*CENTRE_RANGE, n_images)
    y = rng.uniform(*CENTRE_RANGE, n_images)
    size = rng.uniform(*RADIUS_RANGE, n_images)
    rotation = rng.uniform(0.0, 360.0, n_images)
    colour = np.clip(np.asarray(COLOURS[cls.colour]) + rng.normal(0.0, COLOUR_JITTER, (n_images, 3)), 0.0, 1.0)
    background = rng.uniform(*BACKGROUND_RANGE, n_images)
    return np.column_stack([x, y, size, rotation, colour, background]).astype(np.float64)


def _shape_mask(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Inside-test in shape coordinates (unit = radius; v points up in the unrotated shape)."""
    rho = np.hypot(u, v)
    if shape == "circle":
        return rho <= 1.0
    if shape == "ring":
        return (rho <= 1.0) & (rho >= 0.55)
    if shape == "square":
        return np.maximum(np.abs(u), np.abs(v)) <= 0.82
    if shape == "diamond":
        return np.abs(u) / 0.72 + np.abs(v) <= 1.0
    if shape == "cross":
        arm = 0.32
        return ((np.abs(u) <= arm) & (np.abs(v) <= 1.0)) | ((np.abs(v) <= arm) & (np.abs(u) <= 1.0))
    phi = np.arctan2(v, u) - np.pi / 2  # a vertex points up
    if shape in ("triangle", "hexagon"):
        n, scale = (3, 1.15) if shape == "triangle" else (6, 1.0)
        sector = 2 * np.pi / n
        edge = scale * np.cos(np.pi / n) / np.cos(np.mod(phi, sector) - np.pi / n)
        return rho <= edge
    if shape == "star":
        sector = 2 * np.pi / 5
        frac = np.mod(phi, sector) / sector
        return rho <= 0.45 + 0.6 * np.abs(1.0 - 2.0 * frac)
    raise ValueError(shape)


def _texture_mask(texture: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Where the texture shows the darker shade; cosines keep the texture's own symmetry about the centre."""
    k = 2 * np.pi * TEXTURE_CYCLES_PER_RADIUS
    if texture == "solid":
        return np.zeros(u.shape, bool)
    if texture == "striped":
        return np.cos(k * u) < 0
    if texture == "checkered":
        return np.cos(k * u) * np.cos(k * v) < 0
    if texture == "dotted":
        return np.cos(k * u) + np.cos(k * v) > 1.1
    raise ValueError(texture)


def render(cls: StimulusClass, layouts: np.ndarray, image_size: int) -> np.ndarray:
    """Images of one class as uint8 ``(n, image_size, image_size, 3)``."""
    hi = image_size * SUPERSAMPLE
    grid = (np.arange(hi, dtype=np.float32) + 0.5) / hi
    gx = grid[None, None, :]
    gy = grid[None, :, None]
    x, y, size, rotation = (layouts[:, i].astype(np.float32)[:, None, None] for i in range(4))
    theta = np.deg2rad(rotation)
    dx, dy = gx - x, y - gy  # dy: up is positive
    cos, sin = np.cos(theta), np.sin(theta)
    u = (dx * cos + dy * sin) / size
    v = (-dx * sin + dy * cos) / size
    inside = _shape_mask(cls.shape, u, v)
    dark = inside & _texture_mask(cls.texture, u, v)
    # Box-filtering the masks and compositing afterwards equals box-filtering the supersampled image
    # (compositing is linear) at a third of the cost.
    inside_frac, dark_frac = _box_down(inside), _box_down(dark)
    colour = layouts[:, 4:7].astype(np.float32)[:, None, None, :]
    background = layouts[:, 7].astype(np.float32)[:, None, None, None]
    img = (inside_frac - 0.6 * dark_frac)[..., None] * colour + (1.0 - inside_frac)[..., None] * background
    return np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)


def _box_down(mask: np.ndarray) -> np.ndarray:
    """Fraction of each SUPERSAMPLE × SUPERSAMPLE cell that is set, float32 ``(n, H, W)``."""
    m = mask.astype(np.float32)
    acc = sum(m[:, i::SUPERSAMPLE, j::SUPERSAMPLE] for i in range(SUPERSAMPLE) for j in range(SUPERSAMPLE))
    return acc / SUPERSAMPLE**2


def _position_phrase(x: float, y: float) -> str:
    col = "left" if x < 0.4 else "right" if x > 0.6 else "centre"
    row = "upper" if y < 0.4 else "lower" if y > 0.6 else "middle"
    if row == "middle":
        return "in the centre" if col == "centre" else f"on the {col}"
    if col == "centre":
        return "at the top" if row == "upper" else "at the bottom"
    return f"in the {row} {col}"


def visible_rotation(cls: StimulusClass, rotation_deg: float) -> float:
    """Rotation reduced to the class's symmetry period, in degrees (0 when rotation is invisible)."""
    period = cls.rotation_period
    return 0.0 if period == 0 else float(np.mod(rotation_deg, period))


def caption(cls: StimulusClass, layout: np.ndarray) -> str:
    """e.g. "a small red striped circle in the upper left, rotated 30 degrees, on a dark background"."""
    x, y, size, rotation, *_rest, background = (float(v) for v in layout)
    lo, hi = RADIUS_RANGE
    size_word = "small" if size < lo + (hi - lo) / 3 else "large" if size > hi - (hi - lo) / 3 else "medium-sized"
    shade = "dark" if background < 0.35 else "light" if background > 0.65 else "grey"
    parts = [f"a {size_word} {cls.name} {_position_phrase(x, y)}"]
    degrees = int(5 * round(visible_rotation(cls, rotation) / 5))
    if cls.rotation_period and degrees % cls.rotation_period:
        parts.append(f"rotated {degrees} degrees")
    parts.append(f"on a {shade} background")
    return ", ".join(parts)
