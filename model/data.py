"""Loads FER2013 from the Kaggle CSV layout (plain or .gz) or the image-folder layout.

CSV: columns `emotion,pixels,Usage` (48*48 space-separated grey values). Folders: `train/<class>/*`,
optional `val/<class>/*` (PublicTest) and `test/<class>/*` (PrivateTest), class folders named as in
`vocabulary.emotions.EMOTIONS`. Bad rows are refused with an error that names the row.

FER+ votes (`load_ferplus_votes`): Microsoft's re-labelling of the same faces by ten annotators each, one CSV
row per FER2013 CSV row in the same order, columns `neutral,happiness,surprise,sadness,anger,disgust,fear,
contempt,unknown,NF`. Training uses them as soft targets beside the FER2013 label (`model.train`).
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vocabulary.emotions import EMOTIONS, FACE_SIZE, NUM_CLASSES

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
# The FER+ vote columns that name a FER2013 class, in FER2013's class order (contempt, unknown and
# not-a-face have no FER2013 class and are dropped).
FERPLUS_COLUMNS = ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral")


class FerDataError(ValueError):
    """The data set file or folder is malformed; the message names the place."""


@dataclass(frozen=True)
class FerData:
    images: np.ndarray  # (N, 48, 48) uint8
    labels: np.ndarray  # (N,) int64 in [0, 7)
    usage: np.ndarray  # (N,) str, one of USAGES
    row: np.ndarray  # (N,) int64: the row's place among the file's data rows (-1 for the folder layout)

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, index: np.ndarray | slice) -> FerData:
        return FerData(self.images[index], self.labels[index], self.usage[index], self.row[index])

    def subset(self, usage: str) -> FerData:
        return self.take(self.usage == usage)

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
    images, labels, usage, rows = [], [], [], []
    for index, row in enumerate(reader):
        where = f"{path}, line {reader.line_num}"
        if row["Usage"] not in USAGES:
            raise FerDataError(f"{where}: unknown Usage {row['Usage']!r}")
        if row["Usage"] not in wanted:
            continue
        labels.append(_parse_label(row["emotion"], where))
        images.append(_parse_pixels(row["pixels"], where))
        usage.append(row["Usage"])
        rows.append(index)
    return _stack(images, labels, usage, rows)


def count_rows(path: str | Path) -> int:
    """Data rows in a FER2013 CSV(.gz), whatever their usage."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", newline="") as text:
            return sum(1 for _ in csv.DictReader(text))
    except (OSError, EOFError, UnicodeDecodeError, csv.Error) as error:
        raise FerDataError(f"{path}: cannot read as CSV ({error})") from None


def load_ferplus_votes(path: str | Path, expected_rows: int) -> np.ndarray:
    """(expected_rows, 7) FER+ vote counts in FER2013's class order, row i for FER2013 CSV row i.

    A file whose row count differs cannot be aligned and is refused."""
    path = Path(path)
    if not path.is_file():
        raise FerDataError(f"{path}: no such file")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", newline="") as text:
            reader = csv.DictReader(text)
            missing = set(FERPLUS_COLUMNS) - set(reader.fieldnames or ())
            if missing:
                raise FerDataError(f"{path}: missing FER+ column(s) {', '.join(sorted(missing))}")
            votes = []
            for row in reader:
                try:
                    votes.append([float(row[column] or 0) for column in FERPLUS_COLUMNS])
                except ValueError:
                    raise FerDataError(f"{path}, line {reader.line_num}: vote counts must be numbers") from None
    except (OSError, EOFError, UnicodeDecodeError, csv.Error) as error:
        raise FerDataError(f"{path}: cannot read as CSV ({error})") from None
    if len(votes) != expected_rows:
        raise FerDataError(
            f"{path}: {len(votes)} vote rows for {expected_rows} FER2013 rows; the files must hold the same rows "
            "in the same order"
        )
    array = np.asarray(votes, np.float32).reshape(-1, NUM_CLASSES)
    if (array < 0).any():
        raise FerDataError(f"{path}: vote counts must not be negative")
    return array


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
    return _stack(images, labels, usage, [-1] * len(images))


def _stack(images: list[np.ndarray], labels: list[int], usage: list[str], rows: list[int]) -> FerData:
    if not images:
        empty = np.zeros(0, np.int64)
        return FerData(np.zeros((0, FACE_SIZE, FACE_SIZE), np.uint8), empty, np.zeros(0, "<U11"), empty)
    return FerData(np.stack(images), np.asarray(labels, np.int64), np.asarray(usage), np.asarray(rows, np.int64))
