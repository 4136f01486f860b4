"""Users' own tables for ``python -m matgrad --data FILE``: .npz and .csv, checked before training.

A table is features X (N, D) and class labels y (N,). Labels may be numbers or strings: they are
mapped to classes 0..K-1 in sorted order, and the mapping (``classes``) is kept so it can be
printed and saved. Every problem is a :class:`DataError` naming the file and what is wrong (the
column and row where it is found), raised before any training starts.
"""

from __future__ import annotations

import csv
import zipfile
from pathlib import Path
from typing import NamedTuple, Optional, Sequence, Union

import numpy as np

__all__ = ["DataError", "Table", "load_table", "stratified_split", "standardize", "load_sklearn"]

SKLEARN_DATASETS = ("iris", "wine", "breast_cancer")


class DataError(ValueError):
    """A data file that cannot be trained on; the message names the file and the problem."""


class Table(NamedTuple):
    x: np.ndarray  # (N, D) float64
    y: np.ndarray  # (N,) int64 classes 0..K-1
    classes: list  # classes[k] is the original label of class k
    feature_names: list


def _classes_of(path: str, labels: np.ndarray) -> tuple[np.ndarray, list]:
    """Labels mapped to 0..K-1 in sorted order; at least two classes."""
    if labels.dtype.kind == "f":
        bad = ~np.isfinite(labels)
        if bad.any():
            row = int(np.argmax(bad))
            raise DataError(f"{path}: label at row {row + 1} is {labels[row]}")
        if not np.all(labels == np.round(labels)):
            row = int(np.argmax(labels != np.round(labels)))
            raise DataError(f"{path}: labels must be classes (integers or strings); row {row + 1} has {labels[row]}")
        labels = labels.astype(np.int64)
    classes, y = np.unique(labels, return_inverse=True)
    names = [c.item() if isinstance(c, np.generic) else c for c in classes]
    if len(names) < 2:
        raise DataError(f"{path}: every row has the label {names[0]!r}: training needs at least two classes")
    return y.astype(np.int64).reshape(-1), names


def _check_finite(path: str, x: np.ndarray, names: Sequence[str]) -> None:
    bad = ~np.isfinite(x)
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        raise DataError(f"{path}: {x[row, col]} at row {row + 1}, column {names[col]!r}; "
                        "features must be finite numbers")


def _load_npz(path: str) -> Table:
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise DataError(f"{path}: cannot read it as an .npz archive ({e})") from None
    with archive:
        missing = [k for k in ("X", "y") if k not in archive.files]
        if missing:
            raise DataError(f"{path}: the archive has no array {' or '.join(repr(k) for k in missing)} "
                            f"(it holds {sorted(archive.files)}); expected X (N, D) and y (N,)")
        try:
            x, labels = archive["X"], archive["y"]
        except ValueError as e:  # object arrays need pickle, which is never allowed
            raise DataError(f"{path}: {e}") from None
    if x.ndim != 2:
        raise DataError(f"{path}: X must be 2-D (N, D), got shape {x.shape}")
    if labels.ndim != 1:
        raise DataError(f"{path}: y must be 1-D (N,), got shape {labels.shape}")
    if len(x) != len(labels):
        raise DataError(f"{path}: X has {len(x)} rows but y has {len(labels)}")
    if len(x) == 0:
        raise DataError(f"{path}: no rows")
    if x.dtype.kind not in "biuf":
        raise DataError(f"{path}: X has dtype {x.dtype}; features must be numbers")
    names = [f"X[:, {j}]" for j in range(x.shape[1])]
    x = x.astype(np.float64)
    _check_finite(path, x, names)
    if labels.dtype.kind not in "biufU":
        raise DataError(f"{path}: y has dtype {labels.dtype}; labels must be integers or strings")
    y, classes = _classes_of(path, labels)
    return Table(x, y, classes, names)


def _number(text: str) -> Optional[float]:
    try:
        return float(text)
    except ValueError:
        return None


def _load_csv(path: str, target: Optional[str]) -> Table:
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not a UTF-8 text file ({e.reason} at byte {e.start})") from None
    except csv.Error as e:
        raise DataError(f"{path}: not a readable CSV file ({e})") from None
    rows = [r for r in rows if r and any(cell.strip() for cell in r)]
    if not rows:
        raise DataError(f"{path}: the file is empty; expected a header row and data rows")
    header, body = [h.strip() for h in rows[0]], rows[1:]
    if not body:
        raise DataError(f"{path}: no rows after the header")
    if len(header) < 2:
        raise DataError(f"{path}: the header has {len(header)} column; expected features and a label")
    if target is None:
        t = len(header) - 1
    elif target in header:
        t = header.index(target)
    else:
        raise DataError(f"{path}: --target {target!r} is not a column of the header {header}")
    for i, r in enumerate(body):
        if len(r) != len(header):
            raise DataError(f"{path}: row {i + 1} (line {i + 2}) has {len(r)} fields, the header {len(header)}")
    feature_cols = [j for j in range(len(header)) if j != t]
    x = np.empty((len(body), len(feature_cols)))
    v: Union[float, str, None]  # a feature's value, then a label's text
    for k, j in enumerate(feature_cols):
        for i, r in enumerate(body):
            v = _number(r[j])
            if v is None:
                what = "is empty" if not r[j].strip() else f"has {r[j]!r}"
                raise DataError(f"{path}: feature column {header[j]!r} is not numeric: row {i + 1} "
                                f"(line {i + 2}) {what}")
            x[i, k] = v
    names = [header[j] for j in feature_cols]
    _check_finite(path, x, names)
    raw = [r[t].strip() for r in body]
    for i, v in enumerate(raw):
        if not v:
            raise DataError(f"{path}: the label column {header[t]!r} is empty at row {i + 1} (line {i + 2})")
    numbers = [_number(v) for v in raw]
    if all(v is not None for v in numbers):
        labels = np.array(numbers)
    else:
        labels = np.array(raw)
    y, classes = _classes_of(path, labels)
    return Table(x, y, classes, names)


def load_table(path: str, target: Optional[str] = None) -> Table:
    """Read ``path`` (.npz with arrays X and y, or .csv with a header row) as a checked Table.

    CSV: the label is the last column, or the one named ``target``; every other column must be
    numeric. Labels (numbers or strings) become classes 0..K-1 in sorted order.
    """
    p = Path(path)
    if not p.exists():
        raise DataError(f"{path}: no such file")
    if not p.is_file():
        raise DataError(f"{path}: not a file")
    suffix = p.suffix.lower()
    if suffix not in (".npz", ".csv"):
        raise DataError(f"{path}: unknown file type {p.suffix!r}; expected .npz (arrays X, y) or .csv")
    if target is not None and suffix == ".npz":
        raise DataError(f"{path}: --target names a CSV column; an .npz has its labels in y")
    try:
        return _load_npz(path) if suffix == ".npz" else _load_csv(path, target)
    except PermissionError:
        raise DataError(f"{path}: permission denied") from None
    except IsADirectoryError:
        raise DataError(f"{path}: not a file") from None


def load_sklearn(name: str) -> Table:
    """One of scikit-learn's bundled tables (iris, wine, breast_cancer) as a Table."""
    if name not in SKLEARN_DATASETS:
        raise DataError(f"--dataset {name!r}: expected digits or one of {', '.join(SKLEARN_DATASETS)}")
    try:
        from sklearn import datasets
    except ImportError:
        raise DataError(f"--dataset {name} needs scikit-learn, which is not installed: "
                        "pip install scikit-learn") from None
    bunch = getattr(datasets, f"load_{name}")()
    classes = [str(c) for c in bunch.target_names]
    return Table(np.asarray(bunch.data, np.float64), np.asarray(bunch.target, np.int64), classes,
                 [str(n) for n in bunch.feature_names])


def stratified_split(y: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, test indices): each class split in the same proportion, shuffled (seeded).

    Each class with at least two rows keeps at least one on each side.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"stratified_split: test_fraction must be in (0, 1), got {test_fraction}")
    rng = np.random.default_rng(seed)
    train, test = [], []
    for k in np.unique(y):
        rows = rng.permutation(np.flatnonzero(y == k))
        n_test = int(round(len(rows) * test_fraction))
        if len(rows) >= 2:
            n_test = min(max(n_test, 1), len(rows) - 1)
        test.append(rows[:n_test])
        train.append(rows[n_test:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


def standardize(x_train: np.ndarray, x_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both scaled by the training split's mean and standard deviation (constant columns: by 1)."""
    mean = x_train.mean(axis=0)
    std = x_train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return (x_train - mean) / std, (x_test - mean) / std
