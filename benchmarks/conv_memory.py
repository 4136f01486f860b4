"""Peak memory of a convolution's forward + backward, against the arrays that must exist.

cs231n's ThreeLayerConvNet layer: x (50, 3, 32, 32), 32 filters 7×7, stride 1, pad 3, float32. The
arrays the result consists of are y, dL/dx, dL/dw and dL/db, plus one im2col buffer
(N, C·KH·KW, OH·OW) that the backward reads; everything else allocated at the peak is overhead.
The target is peak / (arrays + buffer) <= 1.2. Five steps are run: the buffer must be reused (the
peak after five steps is the peak after one), not reallocated. Each library in a fresh process.

    python benchmarks/conv_memory.py [matgrad|numpy|torch]
"""

import os
import resource
import subprocess
import sys

N, C, HW, F, K, PAD = 50, 3, 32, 32, 7, 3


def rss_peak_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def rss_now_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def measure(lib):
    import numpy as np
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from conv_cases import numpy_conv_backward, numpy_conv_forward

    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, C, HW, HW), dtype=np.float32)
    w = rng.standard_normal((F, C, K, K), dtype=np.float32)
    b = np.zeros(F, np.float32)
    gy = rng.standard_normal((N, F, HW, HW), dtype=np.float32)
    if lib == "matgrad":
        import matgrad as mg
        tx, tw, tb = (mg.tensor(a, requires_grad=True) for a in (x, w, b))

        def run():
            for t in (tx, tw, tb):
                t.grad = None  # the gradients of the last step go, as zero_grad does
            y = mg.conv2d(tx, tw, tb, 1, PAD)
            y.backward(gy)
            return y
    elif lib == "torch":
        import torch
        tx, tw, tb = (torch.from_numpy(a).requires_grad_() for a in (x, w, b))
        tgy = torch.from_numpy(gy)

        def run():
            tx.grad = tw.grad = tb.grad = None
            y = torch.nn.functional.conv2d(tx, tw, tb, 1, PAD)
            y.backward(tgy)
            return y
    else:
        def run():
            y, cols = numpy_conv_forward(x, w, b, 1, PAD)
            return y, numpy_conv_backward(gy, cols, x.shape, w, 1, PAD)
    base = rss_now_bytes()
    assert rss_peak_bytes() - base < 8 << 20, "the peak must be set by the layer, not by setup"
    kept = run()
    first = rss_peak_bytes() - base
    for _ in range(4):
        kept = None  # the last step's output goes before the next step, as in a training loop
        kept = run()  # noqa: F841
    peak = rss_peak_bytes() - base
    oh = HW + 2 * PAD - K + 1
    arrays = 4 * (N * F * oh * oh + N * C * HW * HW + F * C * K * K + F)  # y, dL/dx, dL/dw, dL/db
    buffer = 4 * N * C * K * K * oh * oh
    print(f"{lib}: peak above inputs {peak / 2**20:.1f} MiB (after one step {first / 2**20:.1f}), arrays that "
          f"must exist {arrays / 2**20:.1f} MiB + one im2col buffer {buffer / 2**20:.1f} MiB, "
          f"ratio {peak / (arrays + buffer):.3f}")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        measure(sys.argv[1])
    else:
        for lib in ("matgrad", "numpy", "torch"):
            subprocess.run([sys.executable, __file__, lib], check=False,
                           env={**os.environ, "OMP_NUM_THREADS": "2"})
