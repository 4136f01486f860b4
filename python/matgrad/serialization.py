"""Checkpoints: a module's parameters and buffers, and optionally an optimizer's state and a dict of
extra values (the epoch, an RNG state, a scheduler's ``state_dict()``), in one .npz archive.

``save(module, path, optimizer=None, extra=None)`` writes atomically: into a temporary file in the
target's folder (named ``.<target name>.matgrad-tmp-XXXXXXXX``), flushed and fsync'ed, then moved
over ``path`` with ``os.replace`` (and the folder fsync'ed where the system allows), so that a
process killed mid-save leaves the previous file whole. A killed process may leave its temporary
file behind; nothing reads it. ``load(module, path, optimizer=None)`` restores the module (and the
optimizer) and returns the module; ``load_checkpoint(path, module, optimizer=None)`` does the same
and returns the ``extra`` dict. Files are read with ``allow_pickle=False``.

Format 1, the archive's entries (``np.load(path)`` shows them):

- ``__matgrad__``: the format version, a 0-d int64 array (1).
- ``module/<name>``: ``module.state_dict()``, one array per parameter or buffer (``module/0.weight``).
- ``__optimizer__`` (with an optimizer): ``optimizer.state_dict()`` as JSON, a 0-d str array, in
  which each ndarray is a reference ``{"__ndarray__": "optimizer/state/0/exp_avg"}`` to an entry
  of the archive holding it (None, a buffer not made yet, is JSON's null).
- ``__extra__`` (with ``extra``): the ``extra`` dict the same way, its arrays under ``extra/...``.
  Tuples come back as lists; numpy scalars as Python ints, floats and bools.

Files written by the older ``save`` (a plain ``{name: array}`` .npz, no marker) still load into a
module whose state dict has exactly their names; they hold no optimizer state and no extra.

Every failure to read a file into a module (and optimizer) raises ``CheckpointError`` (a
ValueError) naming the file and the first problem found, and changes nothing: all of the file is
read and checked against the module and the optimizer before anything is written. A missing or
unopenable file raises the OSError of ``open``.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from typing import Any, Callable, Dict, Optional, Set, Union

import numpy as np

from .nn.module import Module
from .optim import Optimizer

__all__ = ["save", "load", "load_checkpoint", "CheckpointError", "FORMAT_VERSION", "TEMP_MARK"]

FORMAT_VERSION = 1
MARKER = "__matgrad__"
TEMP_MARK = ".matgrad-tmp-"  # temporary files are ".<target name>" + TEMP_MARK + random letters
_OPTIMIZER, _EXTRA = "__optimizer__", "__extra__"
_REF = "__ndarray__"

PathLike = Union[str, "os.PathLike[str]"]


class CheckpointError(ValueError):
    """A file that ``load`` / ``load_checkpoint`` cannot restore: not a readable .npz archive, not a
    matgrad checkpoint, or one for another module or optimizer. The message names the file."""


# ---- encoding: nested values -> JSON text + named arrays ----------------------------------------
def _encode(value: Any, key: str, arrays: Dict[str, np.ndarray]) -> Any:
    """The JSON-able form of ``value``; each ndarray goes into ``arrays[key]`` and is replaced by
    ``{"__ndarray__": key}``. ``key`` is the value's path (``extra/rng/state``), for messages."""
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            raise TypeError(f"save: {key} is an ndarray of dtype object, which needs pickle")
        arrays[key] = value
        return {_REF: key}
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    if isinstance(value, Mapping):
        out: Dict[str, Any] = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"save: {key} has a key {k!r}; keys must be strings")
            if "/" in k or k == _REF:
                raise ValueError(f"save: {key} has a key {k!r}; keys may not contain '/' or be {_REF!r}")
            out[k] = _encode(v, f"{key}/{k}", arrays)
        return out
    if isinstance(value, (list, tuple)):
        return [_encode(v, f"{key}/{i}", arrays) for i, v in enumerate(value)]
    raise TypeError(f"save: {key} is a {type(value).__name__}; a checkpoint holds None, bools, ints, "
                    "floats, strings, ndarrays, and lists, tuples and dicts of them")


def _decode(node: Any, arrays: Dict[str, np.ndarray], used: Set[str],
            damaged: Callable[[str], CheckpointError]) -> Any:
    """Inverse of ``_encode``: references replaced by the arrays they name (each used once)."""
    if isinstance(node, dict):
        if set(node) == {_REF}:
            key = node[_REF]
            if not isinstance(key, str) or key not in arrays or key in used:
                raise damaged(f"it refers to a missing array {key!r}")
            used.add(key)
            return arrays[key]
        return {k: _decode(v, arrays, used, damaged) for k, v in node.items()}
    if isinstance(node, list):
        return [_decode(v, arrays, used, damaged) for v in node]
    return node


# ---- writing ------------------------------------------------------------------------------------
def _umask() -> int:
    try:  # Linux: read it without changing it (os.umask would, for every thread, for a moment)
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_directory(directory: str) -> None:
    """Make the rename durable where the system allows opening and fsync'ing a folder."""
    if os.name != "posix":
        return
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save(module: Module, path: PathLike, optimizer: Optional[Optimizer] = None,
         extra: Optional[Mapping[str, Any]] = None) -> None:
    """Write a checkpoint of ``module`` (its ``state_dict()``), and of ``optimizer`` (its
    ``state_dict()``) and ``extra`` when given, to ``path``: an .npz archive written exactly at
    ``path`` whatever its extension, atomically (see the module docstring).

    ``extra`` is a dict with string keys of small values: None, bools, ints, floats, strings,
    ndarrays, and lists, tuples and dicts of them (e.g. ``{"epoch": 3, "rng":
    rng.bit_generator.state, "scheduler": sched.state_dict()}``); ``load_checkpoint`` returns it.
    Everything is checked before the file is touched (TypeError / ValueError). The file keeps the
    permissions of the one it replaces (a new one gets the umask's); a symbolic link at ``path`` is
    followed.
    """
    if not isinstance(module, Module):
        raise TypeError(f"save: module must be a matgrad Module, got {type(module).__name__}")
    if optimizer is not None and not isinstance(optimizer, Optimizer):
        raise TypeError(f"save: optimizer must be a matgrad Optimizer or None, got {type(optimizer).__name__}")
    if extra is not None and not isinstance(extra, Mapping):
        raise TypeError(f"save: extra must be a dict or None, got {type(extra).__name__}")
    arrays = {MARKER: np.array(FORMAT_VERSION, dtype=np.int64)}
    for name, value in module.state_dict().items():
        _encode(np.asarray(value), f"module/{name}", arrays)
    if optimizer is not None:
        arrays[_OPTIMIZER] = np.array(json.dumps(_encode(optimizer.state_dict(), "optimizer", arrays)))
    if extra is not None:
        arrays[_EXTRA] = np.array(json.dumps(_encode(extra, "extra", arrays)))

    target = os.fsdecode(os.fspath(path))
    if os.path.islink(target):
        target = os.path.realpath(target)
    directory, name = os.path.split(os.path.abspath(target))
    try:
        mode = os.stat(target).st_mode & 0o777
    except OSError:
        mode = 0o666 & ~_umask()
    fd, tmp = tempfile.mkstemp(prefix=f".{name[:100]}{TEMP_MARK}", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            if hasattr(os, "fchmod"):
                os.fchmod(f.fileno(), mode)
            np.savez(f, **arrays)  # type: ignore[arg-type]  # mypy matches **arrays to allow_pickle too
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_directory(directory)


# ---- reading ------------------------------------------------------------------------------------
def _read_arrays(path: PathLike, label: str) -> Dict[str, np.ndarray]:
    """{entry name: ndarray} of the whole archive, or CheckpointError."""
    with open(path, "rb") as fh:  # a missing file: the OSError of open
        try:
            archive = np.load(fh, allow_pickle=False)
            if not isinstance(archive, np.lib.npyio.NpzFile):
                raise CheckpointError(f"load: {label} is not an .npz archive (it holds a single .npy array)")
            with archive:
                arrays = {name: archive[name] for name in archive.files}
        except CheckpointError:
            raise
        except Exception as exc:  # zipfile.BadZipFile, ValueError, EOFError, zlib.error, ...
            raise CheckpointError(f"load: {label} is not a readable .npz archive (truncated, corrupted or "
                                  f"another format): {type(exc).__name__}: {exc}") from exc
    for name, value in arrays.items():
        if not isinstance(value, np.ndarray):
            raise CheckpointError(f"load: {label} is not a matgrad checkpoint: its entry {name!r} "
                                  "is not a .npy array")
    return arrays


def _json_entry(arrays: Dict[str, np.ndarray], key: str, damaged: Callable[[str], CheckpointError]) -> Any:
    a = arrays[key]
    if a.shape != () or a.dtype.kind != "U":
        raise damaged(f"{key} is not a string")
    try:
        return json.loads(str(a[()]))
    except ValueError as exc:
        raise damaged(f"{key} is not valid JSON ({exc})") from None


def _detail(exc: BaseException, prefixes: Sequence[str]) -> str:
    msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
    for prefix in prefixes:
        if msg.startswith(prefix):
            return msg[len(prefix):]
    return msg


def _restore(path: PathLike, module: Module, optimizer: Optional[Optimizer], caller: str) -> Dict[str, Any]:
    """Read ``path`` into ``module`` (and ``optimizer``) after checking everything; returns extra."""
    if not isinstance(module, Module):
        raise TypeError(f"{caller}: module must be a matgrad Module, got {type(module).__name__}")
    if optimizer is not None and not isinstance(optimizer, Optimizer):
        raise TypeError(f"{caller}: optimizer must be a matgrad Optimizer or None, got {type(optimizer).__name__}")
    label = repr(os.fsdecode(os.fspath(path)))
    arrays = _read_arrays(path, label)
    names = [n for n, _ in module.named_parameters()] + [n for n, _ in module.named_buffers()]
    shapes = {n: p.data.shape for n, p in module.named_parameters()}
    shapes.update((n, np.shape(b)) for n, b in module.named_buffers())

    def damaged(what: str) -> CheckpointError:
        return CheckpointError(f"load: {label} is a damaged matgrad checkpoint: {what}")

    state: Dict[str, np.ndarray]
    opt_state: Any
    extra: Optional[Dict[str, Any]]
    if MARKER not in arrays:  # a file of the older save: {name: array}
        state, opt_state, extra = arrays, None, {}
        missing = [k for k in names if k not in state]
        unexpected = [k for k in state if k not in shapes]
        if missing or unexpected:
            raise CheckpointError(f"load: {label} is not a matgrad checkpoint (no {MARKER!r} marker) and "
                                  f"its arrays do not match the module: missing keys {missing}, "
                                  f"unexpected keys {unexpected}")
    else:
        version = arrays[MARKER]
        if version.shape != () or version.dtype.kind not in "iu":
            raise damaged(f"its {MARKER!r} format marker is not an integer")
        if not 1 <= int(version) <= FORMAT_VERSION:
            raise CheckpointError(f"load: {label} is in matgrad checkpoint format {int(version)}; this matgrad "
                                  f"reads format {FORMAT_VERSION} and older plain .npz files")
        state, used = {}, set()
        for key, value in arrays.items():
            if key.startswith("module/"):
                state[key[len("module/"):]] = value
                used.add(key)
            elif not (key in (MARKER, _OPTIMIZER, _EXTRA) or key.startswith(("optimizer/", "extra/"))):
                raise damaged(f"unexpected entry {key!r}")
        opt_state = extra = None
        if _OPTIMIZER in arrays:
            opt_state = _decode(_json_entry(arrays, _OPTIMIZER, damaged), arrays, used, damaged)
        if _EXTRA in arrays:
            extra = _decode(_json_entry(arrays, _EXTRA, damaged), arrays, used, damaged)
            if not isinstance(extra, dict):
                raise damaged(f"{_EXTRA} is not a dict")
        stray = [k for k in arrays if k.startswith(("optimizer/", "extra/")) and k not in used]
        if stray:
            raise damaged(f"unreferenced entry {stray[0]!r}")
        extra = {} if extra is None else extra
        missing = [k for k in names if k not in state]
        unexpected = [k for k in state if k not in shapes]
        if missing or unexpected:
            raise CheckpointError(f"load: {label} does not match the module: missing keys {missing}, "
                                  f"unexpected keys {unexpected}")
    for name in names:  # the first shape mismatch, before the optimizer's checks
        if state[name].shape != shapes[name]:
            raise CheckpointError(f"load: {label} does not match the module: {name} has shape "
                                  f"{state[name].shape}, the module's is {shapes[name]}")
    prepared = None
    if optimizer is not None:
        if opt_state is None:
            raise CheckpointError(f"load: {label} holds no optimizer state")
        try:
            prepared = optimizer._prepare_state(opt_state)  # checks and copies, writes nothing
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"load: {label} does not match the optimizer: "
                                  f"{_detail(exc, [type(optimizer).__name__ + '.load_state_dict: '])}") from exc
    try:
        module.load_state_dict(state)  # checks everything first: on failure, the module is unchanged
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"load: {label} does not match the module: "
                              f"{_detail(exc, ['load_state_dict: '])}") from exc
    if prepared is not None:
        optimizer._install(*prepared)  # type: ignore[union-attr]  # prepared: optimizer given; checked, cannot fail
    return extra


def load(module: Module, path: PathLike, optimizer: Optional[Optimizer] = None) -> Module:
    """Read a checkpoint written by ``save`` (or a plain .npz of the older ``save``) into
    ``module``'s parameters and buffers, in place, and into ``optimizer`` when given (the file must
    then hold optimizer state for it); returns ``module``. The file's ``extra`` is ignored: see
    ``load_checkpoint``. Raises ``CheckpointError`` (a ValueError naming the file and the first
    problem) with nothing changed when the file cannot be restored; see the module docstring."""
    _restore(path, module, optimizer, "load")
    return module


def load_checkpoint(path: PathLike, module: Module, optimizer: Optional[Optimizer] = None) -> Dict[str, Any]:
    """``load(module, path, optimizer)``, returning the checkpoint's ``extra`` dict instead (an
    empty dict when the file has none): e.g. ``extra = load_checkpoint(path, model, opt)``, then
    ``start = extra["epoch"] + 1``. Errors as ``load``."""
    return _restore(path, module, optimizer, "load_checkpoint")
