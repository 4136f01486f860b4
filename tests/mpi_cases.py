"""The multi-process cases of test_distributed.py: run as ``mpiexec -n 2 python mpi_cases.py CASE``.

Each rank checks with assertions and prints ``OK CASE rank R`` at the end; the test counts the OKs.
(Not collected by pytest: the name does not start with test_.)
"""

import sys

import numpy as np

import matgrad as mg
from matgrad import distributed as dist


def _reference_and_shares(seed, n_per_rank, sizes, world):
    """A global batch (x, y) and this run's split of it: rank r takes rows r, r + world, ..."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n_per_rank * world, sizes[0]))
    y = rng.integers(0, sizes[-1], n_per_rank * world)
    return x, y


def _train(model, opt, x, y, steps, reduce):
    for _ in range(steps):
        opt.zero_grad()
        mg.cross_entropy(model(mg.tensor(x)), y).backward()
        if reduce:
            dist.allreduce_gradients(model)
        opt.step()


def _same_on_every_rank(comm, arrays):
    gathered = comm.allgather([a.copy() for a in arrays])
    for theirs in gathered[1:]:
        for a, b in zip(gathered[0], theirs):
            assert a.dtype == b.dtype and np.array_equal(a, b), "ranks differ"


def case_equivalence(comm):
    """k SGD and Adam steps over 2 ranks == one process on the concatenated batch (float64)."""
    rank, world = dist.init()
    assert (rank, world) == (comm.Get_rank(), comm.Get_size()) and world == 2
    assert dist.init() == (rank, world)  # idempotent
    # 20x600 float64 weights are 96 KB: reduced on their own buffer; the rest travels packed.
    sizes = [20, 600, 5]
    x, y = _reference_and_shares(7, 24, sizes, world)
    for make in (lambda ps: mg.optim.SGD(ps, lr=0.1, momentum=0.9),
                 lambda ps: mg.optim.Adam(ps, lr=0.01)):
        mg.manual_seed(100 + rank)  # a different start on each rank: broadcast must fix it
        model = mg.nn.MLP(sizes, dtype=np.float64)
        dist.broadcast_parameters(model)
        _same_on_every_rank(comm, [p.data for p in model.parameters()])
        opt = make(model.parameters())
        _train(model, opt, x[rank::world], y[rank::world], steps=6, reduce=True)

        mg.manual_seed(100)  # rank 0's start, trained alone on the whole batch
        alone = mg.nn.MLP(sizes, dtype=np.float64)
        _train(alone, make(alone.parameters()), x, y, steps=6, reduce=False)

        params = [p.data for p in model.parameters()]
        _same_on_every_rank(comm, params)  # bit-identical across ranks
        for a, b in zip(alone.parameters(), params):
            np.testing.assert_allclose(b, a.data, rtol=0, atol=1e-10)
        start = mg.nn.MLP(sizes, dtype=np.float64)
        assert any(not np.allclose(s.data, p) for s, p in zip(start.parameters(), params))  # it trained


def case_gradients(comm):
    """None gradients, packing into one message, borrowed buffers, average=False."""
    rank, world = dist.init()
    a = mg.tensor(np.zeros((3, 4)), requires_grad=True)
    b = mg.tensor(np.zeros(5), requires_grad=True)
    if rank == 0:
        a.grad = a._gown = np.arange(12.0).reshape(3, 4)
    dist.allreduce_gradients([a, b], average=False)
    assert b.grad is None  # no rank had one: none anywhere
    np.testing.assert_array_equal(a.grad, np.arange(12.0).reshape(3, 4))  # rank 1 counted as zeros

    # a gradient assigned by hand (borrowed) is replaced, never written
    mine = np.full((3, 4), float(rank + 1))
    a.grad = mine
    dist.allreduce_gradients([a])
    np.testing.assert_array_equal(mine, np.full((3, 4), float(rank + 1)))
    np.testing.assert_array_equal(a.grad, np.full((3, 4), 1.5))

    # twelve small layers (float32 and float64 mixed): one message per dtype
    layers = [mg.nn.Linear(4, 4, dtype=np.float32 if i % 2 else np.float64) for i in range(12)]
    params = [p for layer in layers for p in layer.parameters()]
    for p in params:
        p.grad = p._gown = np.full_like(p.data, rank + 1.0)
    calls = []
    real = dist._state.comm

    class Counting:
        def Allreduce(self, *args, **kwargs):
            calls.append(args[1].nbytes)
            return real.Allreduce(*args, **kwargs)

    dist._state.comm = Counting()
    try:
        dist.allreduce_gradients(params)
    finally:
        dist._state.comm = real
    assert len(calls) == 2, calls
    for p in params:
        np.testing.assert_array_equal(p.grad, np.full_like(p.data, 1.5))
    # large gradients: one message each, reduced in the tensor's own buffer
    big = mg.tensor(np.zeros((200, 100)), requires_grad=True)
    big.grad = big._gown = buffer = np.full((200, 100), rank + 1.0)
    dist.allreduce_gradients([big], average=False)
    assert big.grad is buffer
    np.testing.assert_array_equal(buffer, 3.0)

    totals = dist.allreduce([rank + 1, 10])
    np.testing.assert_array_equal(totals, [3, 20])
    np.testing.assert_array_equal(dist.allreduce(2.0 * rank, average=True), 1.0)


def case_buffers_and_shards(comm):
    """Batch norm's running statistics follow the root; a different model is an error on every
    rank; shard partitions the indices."""
    rank, world = dist.init()
    for root in (0, 1):
        model = mg.nn.Sequential(mg.nn.Linear(3, 4, dtype=np.float64), mg.nn.BatchNorm1d(4, dtype=np.float64))
        bn = model.layers[1]
        bn.running_mean[:] = rank + 1.0
        bn.running_var[:] = 10.0 * (rank + 1)
        bn.num_batches_tracked[...] = 5 + rank
        dist.broadcast_parameters(model, root=root)
        np.testing.assert_array_equal(bn.running_mean, root + 1.0)
        np.testing.assert_array_equal(bn.running_var, 10.0 * (root + 1))
        assert int(bn.num_batches_tracked) == 5 + root
        _same_on_every_rank(comm, [p.data for p in model.parameters()])

    wrong = mg.nn.MLP([3, 4 + rank, 2], dtype=np.float64)  # rank 1 builds a wider hidden layer
    try:
        dist.broadcast_parameters(wrong)
    except ValueError as e:
        assert "rank 1's model differs from rank 0's" in str(e) and "(3, 5)" in str(e), str(e)
    else:
        raise AssertionError("a different model on rank 1 was not reported")

    for n in (0, 1, 2, 103):
        shards = comm.allgather(dist.shard(n, epoch=3, seed=7))
        joined = np.concatenate(shards)
        assert sorted(joined.tolist()) == list(range(n))  # disjoint and covering
        assert max(map(len, shards)) - min(map(len, shards)) <= 1
    again = comm.allgather(dist.shard(103, epoch=4, seed=7))
    assert not np.array_equal(np.concatenate(again), np.concatenate(shards))  # reshuffled per epoch


def case_failure(comm):
    """Rank 1 raises while rank 0 waits in a collective: the job must end, naming rank 1."""
    rank, _ = dist.init()
    model = mg.nn.Linear(3, 2, dtype=np.float64)
    if rank == 1:
        raise RuntimeError("rank one fails on purpose")
    for p in model.parameters():
        p.grad = p._gown = np.ones_like(p.data)
    dist.allreduce_gradients(model)  # never returns: rank 1 does not come
    print("rank 0 was not stopped", flush=True)


def main():
    from mpi4py import MPI

    case = sys.argv[1]
    globals()[f"case_{case}"](MPI.COMM_WORLD)
    print(f"OK {case} rank {MPI.COMM_WORLD.Get_rank()}", flush=True)


if __name__ == "__main__":
    main()
