"""Loads FER2013 from the Kaggle CSV layout (plain or .gz) or the image-folder layout.

CSV: columns `emotion,pixels,Usage` (48*48 space-separated grey values). Folders: `train/<class>/*`,
optional `val/<class>/*` (PublicTest) and `test/<class>/*` (PrivateTest), class folders named as in
`model.emotions.EMOTIONS`. Bad rows are refused with an error that names the row.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model.emotions import EMOTIONS, NUM_CLASSES

FACE_SIZE = 48
USAGES = ("Training", "PublicTest", "PrivateTest")
# Folder names of the image layout, mapped to the CSV's Usage values.
FOLDER_USAGE = {
    "train": "Training",
    "training": "Training",
    "val": "PublicTest",
    "valid": "PublicTest",
    "validation": "PublicTest",
    "publictest": "PublicTest",
    "test": "PrivateTest",
    "privatetest": "PrivateTest",
}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".pgm"}


class FerDataError(ValueError):
    """The data set file or folder is malformed; the message names the place."""


@dataclass(frozen=True)
class FerData:
    images: np.ndarray  # (N, 48, 48) uint8
    labels: np.ndarray  # (N,) int64 in [0, 7)
    usage: np.ndarray  # (N,) str, one of USAGES

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, usage: str) -> FerData:
        keep = self.usage == usage
        return FerData(self.images[keep], self.labels[keep], self.usage[keep])

    def class_counts(self) -> np.ndarray:
        return np.bincount(self.labels, minlength=NUM_CLASSES)


def load_fer2013(path: str | Path, usages: Iterable[str] = ("Training",)) -> FerData:
    """Read the rows of the given usages from a CSV(.gz) file or an image-folder tree."""
    path = Path(path)
    wanted = tuple(usages)
    unknown = [u for u in wanted if u not in USAGES]
    if unknown:
        raise FerDataError(f"unknown usage {unknown[0]!r}; expected one of {', '.join(USAGES)}")
    if not path.exists():
        raise FerDataError(f"{path}: no such file or folder")
    data = _load_folder(path, wanted) if path.is_dir() else _load_csv(path, wanted)
    if len(data) == 0:
        raise FerDataError(f"{path}: no rows with usage {', '.join(wanted)}")
    return data


def _load_csv(path: Path, wanted: tuple[str, ...]) -> FerData:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", newline="") as text:
            return _parse_csv(text, path, wanted)
    except (OSError, EOFError, UnicodeDecodeError, csv.Error) as error:
        raise FerDataError(f"{path}: cannot read as CSV ({error})") from None


def _parse_csv(text: io.TextIOBase, path: Path, wanted: tuple[str, ...]) -> FerData:
    reader = csv.DictReader(text)
    missing = {"emotion", "pixels", "Usage"} - set(reader.fieldnames or ())
    if missing:
        raise FerDataError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
    images, labels, usage = [], [], []
    for row in reader:
        where = f"{path}, line {reader.line_num}"
        if row["Usage"] not in USAGES:
            raise FerDataError(f"{where}: unknown Usage {row['Usage']!r}")
        if row["Usage"] not in wanted:
            continue
        labels.append(_parse_label(row["emotion"], where))
        images.append(_parse_pixels(row["pixels"], where))
        usage.append(row["Usage"])
    return _stack(images, labels, usage)


def _parse_label(text: str | None, where: str) -> int:
    try:
        label = int(text or "")
    except ValueError:
        label = -1
    if not 0 <= label < NUM_CLASSES:
        raise FerDataError(f"{where}: unknown label {text!r}; expected 0..{NUM_CLASSES - 1}")
    return label


def _parse_pixels(text: str | None, where: str) -> np.ndarray:
    values = (text or "").split()
    if len(values) != FACE_SIZE * FACE_SIZE:
        raise FerDataError(f"{where}: {len(values)} pixel values; expected {FACE_SIZE * FACE_SIZE}")
    try:
        pixels = np.array(values, dtype=np.int32)
    except (ValueError, OverflowError):  # OverflowError: an integer beyond int32, such as 99999999999
        raise FerDataError(f"{where}: pixel values must be integers in 0..255") from None
    if pixels.min() < 0 or pixels.max() > 255:
        raise FerDataError(f"{where}: pixel values must lie in 0..255")
    return pixels.astype(np.uint8).reshape(FACE_SIZE, FACE_SIZE)


def _load_folder(root: Path, wanted: tuple[str, ...]) -> FerData:
    import cv2  # only the folder layout needs an image decoder

    images, labels, usage = [], [], []
    for split_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        split_usage = FOLDER_USAGE.get(split_dir.name.lower())
        if split_usage is None or split_usage not in wanted:
            continue
        for class_dir in sorted(p for p in split_dir.iterdir() if p.is_dir()):
            if class_dir.name.lower() not in EMOTIONS:
                raise FerDataError(f"{class_dir}: unknown class folder; expected one of {', '.join(EMOTIONS)}")
            label = EMOTIONS.index(class_dir.name.lower())
            for file in sorted(class_dir.iterdir()):
                if file.suffix.lower() not in IMAGE_SUFFIXES:
                    continue
                image = cv2.imread(str(file), cv2.IMREAD_GRAYSCALE)
                if image is None:
                    raise FerDataError(f"{file}: not a readable image")
                if image.shape != (FACE_SIZE, FACE_SIZE):
                    image = cv2.resize(image, (FACE_SIZE, FACE_SIZE), interpolation=cv2.INTER_AREA)
                images.append(image)
                labels.append(label)
                usage.append(split_usage)
    return _stack(images, labels, usage)


def _stack(images: list[np.ndarray], labels: list[int], usage: list[str]) -> FerData:
    if not images:
        return FerData(np.zeros((0, FACE_SIZE, FACE_SIZE), np.uint8), np.zeros(0, np.int64), np.zeros(0, "<U11"))
    return FerData(np.stack(images), np.asarray(labels, np.int64), np.asarray(usage))
