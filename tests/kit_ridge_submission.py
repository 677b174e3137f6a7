"""An outside lab's method, written against the kit alone: numpy and the standard library, no eeg2img.

Usage: python kit_ridge_submission.py KIT SUB NAME. Per fold: ridge regression from the flattened EEG
of the training trials to the pixels of their stimuli, applied to the test trials; one PNG per test
trial (written with zlib, so not even an image library is needed); then ``SUB/submission.toml``.
"""

import json
import struct
import sys
import zlib
from pathlib import Path

import numpy as np


def read_png(path: Path) -> np.ndarray:
    """8-bit RGB or RGBA PNGs without interlacing, as the suite writes its stimuli."""
    data = path.read_bytes()
    pos, chunks, header = 8, [], None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            chunks.append(body)
        pos += 12 + length
    width, height, depth, colour = header[:4]
    channels = {2: 3, 6: 4}[colour]
    raw = zlib.decompress(b"".join(chunks))
    stride = width * channels
    out = np.zeros((height, stride), np.uint8)
    prev = np.zeros(stride, np.int32)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], np.frombuffer(raw, np.uint8, stride, y * (stride + 1) + 1).astype(np.int32)
        if kind == 0:
            cur = line
        elif kind == 2:
            cur = (line + prev) % 256
        else:  # sub, average, paeth need the left neighbour: decode pixel by pixel
            cur = np.zeros(stride, np.int32)
            for x in range(stride):
                a = cur[x - channels] if x >= channels else 0
                b, c = prev[x], (prev[x - channels] if x >= channels else 0)
                if kind == 1:
                    pred = a
                elif kind == 3:
                    pred = (a + b) // 2
                else:
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                cur[x] = (line[x] + pred) % 256
        out[y], prev = cur, cur
    return out.reshape(height, width, channels)[..., :3]


def write_png(path: Path, image: np.ndarray) -> None:
    height, width, _ = image.shape
    raw = b"".join(b"\x00" + image[y].tobytes() for y in range(height))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def main(kit: Path, sub: Path, name: str) -> None:
    doc = json.loads((kit / "benchmark.json").read_text())
    for fold in doc["folds"]:
        train, test = np.load(kit / fold["train_file"]), np.load(kit / fold["test_file"])
        x = train["eeg"].reshape(len(train["eeg"]), -1).astype(np.float64)
        mean, scale = x.mean(0), x.std(0) + 1e-6
        x = (x - mean) / scale
        y = np.stack([read_png(kit / fold["images"] / f"{i}.png") for i in train["image_ids"]]).reshape(len(x), -1)
        y_mean = y.mean(0)
        # ridge in its dual form: N training trials ≪ features
        alpha = 10.0 * x.shape[1]
        weights = x.T @ np.linalg.solve(x @ x.T + alpha * np.eye(len(x)), y - y_mean)
        xt = (test["eeg"].reshape(len(test["eeg"]), -1) - mean) / scale
        pred = np.clip(xt @ weights + y_mean, 0, 255).astype(np.uint8)
        side = int(round((y.shape[1] // 3) ** 0.5))
        folder = sub / fold["dataset"] / fold["protocol"] / fold["fold"]
        folder.mkdir(parents=True, exist_ok=True)
        for trial_id, image in zip(test["trial_ids"], pred):
            write_png(folder / f"{trial_id}.png", image.reshape(side, side, 3))
    (sub / "submission.toml").write_text(f'name = "{name}"\nbenchmark_id = "{doc["benchmark_id"]}"\n'
                                         'authors = "a test lab"\noracle = false\n')


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3])
