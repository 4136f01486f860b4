"""mg.distributed: the single-process paths here, the multi-process ones under mpiexec -n 2.

The mpiexec cases (tests/mpi_cases.py) need mpi4py and an MPI launcher (``pip install
'matgrad[mpi]'``) and are skipped without them; CI installs the extra and runs them. Each runs
under a timeout, so a deadlock fails the test instead of hanging the suite.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import matgrad as mg
from matgrad import distributed as dist
from matgrad.__main__ import main

HERE = Path(__file__).resolve().parent
LAUNCHER_VARIABLES = dist._LAUNCHER_VARIABLES


def _mpiexec():
    beside = Path(sys.executable).parent / "mpiexec"
    return str(beside) if beside.exists() else shutil.which("mpiexec")


try:
    import mpi4py  # noqa: F401
    HAVE_MPI = _mpiexec() is not None
except ImportError:
    HAVE_MPI = False
needs_mpi = pytest.mark.skipif(not HAVE_MPI, reason=f"needs mpi4py and mpiexec: {dist.MPI_EXTRA}")


def _clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in LAUNCHER_VARIABLES and not k.startswith(("OMPI_", "PMIX_"))}
    env.update(extra)
    return env


def _mpirun(args, timeout=120, ranks=2):
    command = [_mpiexec(), "-n", str(ranks), "--oversubscribe", "--allow-run-as-root",
               "-x", "OMP_NUM_THREADS=1", sys.executable, *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=_clean_env(),
                          cwd=HERE)


@pytest.fixture
def alone(monkeypatch):
    """init() as a process that no launcher started and that has no mpi4py: world size 1."""
    for name in LAUNCHER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(dist, "_import_mpi", lambda: None)
    previous_threads = mg.get_num_threads()
    dist._reset_for_tests()
    yield dist
    dist._reset_for_tests()
    mg.set_num_threads(previous_threads)


# ---- one process ----------------------------------------------------------------------------------
def test_before_init_the_queries_say_so():
    assert not dist.is_initialized()
    for call in (dist.rank, dist.world_size, dist.barrier, dist.is_root):
        with pytest.raises(RuntimeError, match=r"call mg.distributed.init\(\) first"):
            call()
    with pytest.raises(RuntimeError, match="init"):
        dist.allreduce_gradients(mg.nn.Linear(2, 2))
    with pytest.raises(RuntimeError, match="init"):
        dist.shard(10)  # needs the rank unless given


def test_alone_the_world_has_one_rank_and_collectives_change_nothing(alone):
    assert alone.init(threads=1) == (0, 1)
    assert alone.init() == (0, 1) and alone.is_initialized()
    assert (alone.rank(), alone.world_size(), alone.is_root()) == (0, 1, True)
    assert mg.get_num_threads() == 1
    alone.barrier()
    model = mg.nn.Linear(3, 2, dtype=np.float64)
    before = [p.data.copy() for p in model.parameters()]
    alone.broadcast_parameters(model)
    assert all(np.array_equal(b, p.data) for b, p in zip(before, model.parameters()))
    mg.cross_entropy(model(mg.tensor(np.ones((4, 3)))), [0, 1, 1, 0]).backward()
    grads = [p.grad.copy() for p in model.parameters()]
    alone.allreduce_gradients(model)
    assert all(np.array_equal(g, p.grad) for g, p in zip(grads, model.parameters()))
    lonely = mg.tensor(np.zeros(3), requires_grad=True)
    alone.allreduce_gradients([lonely])
    assert lonely.grad is None
    np.testing.assert_array_equal(alone.allreduce([1.5, 2]), [1.5, 2])
    np.testing.assert_array_equal(alone.allreduce(np.array([True, False])), [1, 0])


def test_init_takes_threads_from_the_cores_unless_told(alone, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    mg.set_num_threads(1)
    alone.init()
    expected = alone.cores_per_rank() if mg.kernels.has_openmp() else 1  # a build without OpenMP stays at 1
    assert mg.get_num_threads() == expected >= 1
    alone._reset_for_tests()
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    mg.set_num_threads(1)
    alone.init()
    assert mg.get_num_threads() == 1  # OMP_NUM_THREADS is the user's word


@pytest.mark.parametrize("threads", [0, -1, 1.5, True, "2"])
def test_init_rejects_a_bad_thread_count(alone, threads):
    with pytest.raises(ValueError, match="init: threads must be a positive integer"):
        alone.init(threads=threads)


def test_under_a_launcher_without_mpi4py_init_names_the_extra(alone, monkeypatch):
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "2")
    with pytest.raises(ImportError, match=re.escape("pip install 'matgrad[mpi]'")):
        alone.init()
    assert not alone.is_initialized()


def test_a_single_task_slurm_job_is_not_a_launcher(alone, monkeypatch):
    monkeypatch.setenv("SLURM_NTASKS", "1")
    assert alone.init() == (0, 1)


@pytest.mark.parametrize("n, world", [(0, 1), (1, 3), (10, 1), (10, 3), (103, 4), (7, 7), (5, 8)])
def test_shard_partitions_the_indices(n, world):
    shards = [dist.shard(n, epoch=2, seed=9, rank=r, world_size=world) for r in range(world)]
    assert all(s.dtype == np.int64 for s in shards)
    assert sorted(np.concatenate(shards).tolist()) == list(range(n))  # disjoint, and every index once
    assert max(map(len, shards)) - min(map(len, shards)) <= 1
    # every rank computes the same permutation: asking again gives the same shard
    assert all(np.array_equal(s, dist.shard(n, 2, 9, rank=r, world_size=world)) for r, s in enumerate(shards))
    trimmed = [dist.shard(n, 2, 9, drop_last=True, rank=r, world_size=world) for r in range(world)]
    assert {len(s) for s in trimmed} == {n // world}
    assert all(np.array_equal(t, s[:n // world]) for t, s in zip(trimmed, shards))


def test_shard_reshuffles_per_epoch_and_seed():
    base = dist.shard(50, epoch=0, seed=1, rank=0, world_size=2)
    assert not np.array_equal(base, dist.shard(50, epoch=1, seed=1, rank=0, world_size=2))
    assert not np.array_equal(base, dist.shard(50, epoch=0, seed=2, rank=0, world_size=2))
    np.testing.assert_array_equal(dist.shard(6, shuffle=False, rank=1, world_size=2), [1, 3, 5])


@pytest.mark.parametrize("kwargs, match", [
    ({"n_samples": -1}, "n_samples must be a non-negative integer"),
    ({"n_samples": 2.5}, "n_samples must be a non-negative integer"),
    ({"n_samples": 4, "epoch": -1}, "epoch must be"),
    ({"n_samples": 4, "seed": True}, "seed must be"),
    ({"n_samples": 4, "rank": 2, "world_size": 2}, "rank 2 is not in a world of size 2"),
    ({"n_samples": 4, "rank": 0, "world_size": 0}, "rank 0 is not in a world of size 0"),
])
def test_shard_rejects_bad_arguments(kwargs, match):
    kwargs.setdefault("rank", 0)
    kwargs.setdefault("world_size", 1)
    with pytest.raises(ValueError, match=match):
        dist.shard(**kwargs)


def test_broadcast_and_allreduce_check_their_arguments(alone):
    alone.init(threads=1)
    with pytest.raises(TypeError, match="expected an mg.nn.Module"):
        alone.broadcast_parameters([mg.tensor(np.ones(2), requires_grad=True)])
    with pytest.raises(ValueError, match="root must be a rank in 0..0"):
        alone.broadcast_parameters(mg.nn.Linear(2, 2), root=1)
    with pytest.raises(TypeError, match="parameter 0 is a ndarray"):
        alone.allreduce_gradients([np.ones(2)])
    with pytest.raises(TypeError, match="average must be True or False"):
        alone.allreduce_gradients(mg.nn.Linear(2, 2), average=1)
    with pytest.raises(TypeError, match="expected numbers"):
        alone.allreduce(["a"])


def test_rank0_helpers_print_and_save(alone, tmp_path, capsys):
    alone.init(threads=1)
    alone.print0("from the root")
    assert capsys.readouterr().out == "from the root\n"
    model = mg.nn.Linear(3, 2)
    alone.save(model, tmp_path / "m.npz")
    copy = mg.nn.Linear(3, 2)
    mg.load(copy, tmp_path / "m.npz")
    assert all(np.array_equal(a.data, b.data) for a, b in zip(model.parameters(), copy.parameters()))
    bar = alone.progress(total=3, file=sys.stderr)
    assert not bar.disable
    bar.close()
    alone._state.rank = 1  # as another rank sees it
    try:
        alone.print0("not shown")
        assert capsys.readouterr().out == ""
        assert alone.progress(total=3).disable
    finally:
        alone._state.rank = 0


def test_cli_distributed_without_mpi4py_names_the_extra(monkeypatch, capsys):
    monkeypatch.setattr(dist, "_import_mpi", lambda: None)
    with pytest.raises(SystemExit) as stop:
        main(["--distributed", "--epochs", "1"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "--distributed needs mpi4py" in err and "pip install 'matgrad[mpi]'" in err


def test_the_package_imports_without_mpi4py():
    code = ("import sys; sys.modules['mpi4py'] = None; import matgrad as mg; "
            "print(mg.distributed.init(threads=1))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=_clean_env())
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "(0, 1)"


# ---- two processes under mpiexec ------------------------------------------------------------------
def _both_ok(done, case):
    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(re.findall(rf"^OK {case} rank (\d)$", done.stdout, re.M)) == ["0", "1"], done.stdout


@needs_mpi
@pytest.mark.parametrize("case", ["equivalence", "gradients", "buffers_and_shards"])
def test_two_ranks(case):
    _both_ok(_mpirun(["mpi_cases.py", case]), case)


@needs_mpi
def test_a_failing_rank_ends_the_job_with_its_error():
    done = _mpirun(["mpi_cases.py", "failure"], timeout=60)  # a hang would raise TimeoutExpired
    assert done.returncode != 0
    assert "rank 1 of 2 raised an exception; aborting all ranks" in done.stderr
    assert "RuntimeError: rank one fails on purpose" in done.stderr
    assert "rank 0 was not stopped" not in done.stdout and "OK failure" not in done.stdout


@needs_mpi
def test_cli_trains_data_parallel_to_the_usual_accuracy(tmp_path):
    checkpoint = tmp_path / "digits.npz"
    done = _mpirun(["-m", "matgrad", "--distributed", "--save", str(checkpoint)], timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.strip().split("\n")
    assert "batch 32 over 2 ranks (16 per rank)" in lines[0] and "threads per rank: 1" in lines[0]
    assert sum(line.startswith("test accuracy:") for line in lines) == 1  # rank 0 alone prints
    found = re.fullmatch(r"test accuracy: (\d+\.\d\d)%", lines[-1])
    assert found and float(found.group(1)) >= 95.0, lines[-1]
    assert done.stderr.count("epoch 20/20: 100%") >= 1 and "epoch 21" not in done.stderr
    model = mg.nn.MLP([64, 128, 10])
    mg.load(model, checkpoint)  # rank 0's save is a whole checkpoint
    x, y = mg.data.load_digits_split()[2:]
    with mg.no_grad():
        accuracy = float((model(mg.tensor(x)).data.argmax(axis=1) == y).mean())
    assert f"test accuracy: {100 * accuracy:.2f}%" == lines[-1]


@needs_mpi
def test_example_on_two_ranks_matches_one_process():
    example = str(HERE.parent / "examples" / "data_parallel.py")
    two = _mpirun([example])
    assert two.returncode == 0, two.stdout + two.stderr
    one = subprocess.run([sys.executable, example], capture_output=True, text=True, timeout=120, env=_clean_env())
    assert one.returncode == 0, one.stderr
    assert two.stdout.startswith("2 rank(s), 16 rows each per step, 45 steps per epoch\n")
    assert two.stdout.count("test accuracy:") == 1  # rank 0 alone prints
    # the same global batches, so the same training up to the order of the sums
    pattern = r"mean training loss (\d+\.\d+) over 1438 rows"
    np.testing.assert_allclose([float(v) for v in re.findall(pattern, two.stdout)],
                               [float(v) for v in re.findall(pattern, one.stdout)], atol=2e-4)
