"""Peak memory of the lecture's layer, forward + backward, against the arrays that must exist.

y = relu(x·w + b) with N=64, D=M=4096 float32. The arrays the result consists of are y (also what
the backward keeps for its mask), dL/dx and dL/dw (dL/db is 16 KiB). Everything else the layer
allocates at its peak (packing buffers, the masked gradient) is overhead; the target is
(arrays + overhead) / arrays <= 1.1. Each library is measured in a fresh process.

    python benchmarks/layer_memory.py [matgrad|numpy|torch]
"""

import resource
import subprocess
import sys

N, D, M = 64, 4096, 4096


def rss_peak_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def rss_now_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def measure(lib):
    import numpy as np
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, D), dtype=np.float32)
    w = rng.standard_normal((D, M), dtype=np.float32)
    w /= 64
    b = np.zeros(M, np.float32)
    gy = rng.standard_normal((N, M), dtype=np.float32)
    if lib == "matgrad":
        import matgrad as mg
        tx, tw, tb = (mg.tensor(a, requires_grad=True) for a in (x, w, b))
        run = lambda: mg.linear(tx, tw, tb, relu=True).backward(gy)  # noqa: E731
    elif lib == "torch":
        import torch
        tx, tw, tb = (torch.from_numpy(a).requires_grad_() for a in (x, w, b))
        run = lambda: torch.relu(torch.addmm(tb, tx, tw)).backward(torch.from_numpy(gy))  # noqa: E731
    else:
        def run():
            y = np.maximum(x @ w + b, 0)
            g = gy * (y > 0)
            return y, g @ w.T, x.T @ g, g.sum(axis=0)
    base = rss_now_bytes()
    assert rss_peak_bytes() - base < 8 << 20, "the peak must be set by the layer, not by setup"
    kept = run()  # noqa: F841  (the results stay alive, as in training)
    peak = rss_peak_bytes() - base
    needed = 4 * (N * M + N * D + D * M + M)  # y, dL/dx, dL/dw, dL/db
    print(f"{lib}: peak above inputs {peak / 2**20:.1f} MiB, arrays that must exist "
          f"{needed / 2**20:.1f} MiB, ratio {peak / needed:.3f}")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        measure(sys.argv[1])
    else:
        for lib in ("matgrad", "numpy", "torch"):
            subprocess.run([sys.executable, __file__, lib], check=False)
