"""Data-parallel training with mg.distributed: the loop of docs/distributed.md.

    python examples/data_parallel.py                  # one process (world size 1)
    mpiexec -n 2 python examples/data_parallel.py     # two ranks (pip install 'matgrad[mpi]')

Every rank holds the whole MLP and trains on its shard of the digits; after each backward the
ranks average their gradients, so they all take the same step and stay identical.
"""

import numpy as np

import matgrad as mg
from matgrad import distributed as dist

rank, world = dist.init()
x, y, x_test, y_test = mg.data.load_digits_split()
mg.manual_seed(0)
model = mg.nn.MLP([64, 128, 10])
dist.broadcast_parameters(model)            # one start for all ranks
opt = mg.optim.Adam(model.parameters(), lr=3e-3)

batch = 32                                  # the global batch of a step
per_rank = -(-batch // world)               # this rank's rows per step
longest = -(-len(x) // world)               # rank 0's shard is the longest: ceil(n / world)
steps = -(-longest // per_rank)             # the same number of steps on every rank
dist.print0(f"{world} rank(s), {per_rank} rows each per step, {steps} steps per epoch")
for epoch in range(10):
    mine = dist.shard(len(x), epoch, seed=0)
    total = np.zeros(2)                     # loss sum, rows
    for s in range(steps):
        idx = mine[s * per_rank:(s + 1) * per_rank]
        opt.zero_grad()
        if len(idx):                        # a rank with no rows left contributes zeros
            loss = mg.cross_entropy(model(mg.tensor(x[idx])), y[idx])
            loss.backward()
            total += (loss.item() * len(idx), len(idx))
        dist.allreduce_gradients(model)     # every rank, every step
        opt.step()
    loss_sum, rows = dist.allreduce(total)  # over all ranks: the whole training set
    dist.print0(f"epoch {epoch + 1}: mean training loss {loss_sum / rows:.4f} over {int(rows)} rows")

model.eval()
with mg.no_grad():
    accuracy = float((model(mg.tensor(x_test)).data.argmax(axis=1) == y_test).mean())
dist.print0(f"test accuracy: {100 * accuracy:.2f}%")
