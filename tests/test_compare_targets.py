"""benchmarks/compare_targets.py judges a compare.py run against issue 9's targets: a ratio below
its bar is a miss naming the case, a case the run lacks is reported rather than passed."""

import pytest

from conftest import load_benchmark


@pytest.fixture(scope="module")
def ct():
    return load_benchmark("compare_targets")


@pytest.fixture(scope="module")
def cc():
    return load_benchmark("compare_cases")


def full_run(ct, cc, value=1.7):
    """Ratios of a run over the full table with every library at `value`."""
    names = list(cc.cases(False))
    return names, {n: {"numpy": value, "torch": value} for n in names}


def by_name(verdicts):
    return {(v.target.name, v.target.against): v for v in verdicts}


def test_the_grid_is_every_size_dtype_and_transpose_case_of_the_table(ct, cc):
    names = list(cc.cases(False))
    grid = ct.gemm_cases()
    assert len(grid) == 4 * 2 * 4 and len(set(grid)) == len(grid)
    assert all(n in names for n in grid)  # the table measures every case a target names
    for s in (256, 512, 1024, 2048):
        assert f"gemm f64 {s}³ Aᵀ·Bᵀ" in grid and f"gemm f32 {s}³ A·Bᵀ" in grid


def test_a_run_above_every_bar_meets_every_target(ct, cc):
    names, ratios = full_run(ct, cc)
    verdicts = ct.judge(ct.targets("avx2", names), ratios)
    assert len(verdicts) == 6
    assert [v.status for v in verdicts] == ["met"] * 6
    assert by_name(verdicts)[("off-grid GEMM shapes, as the grid", "numpy")].target.cases


@pytest.mark.parametrize("case, target, value", [
    ("gemm f64 512³ Aᵀ·B", ("GEMM 256³–2048³, four transpose cases, f32 and f64", "numpy"), 0.99),
    ("lecture y = x·w f32", ("the lecture's three products", "numpy"), 1.09),
    ("lecture layer fwd+bwd f32", ("the lecture layer forward+backward", "torch"), 1.59),
    ("train step MLP 784-512-256-10, batch 128", ("the MLP 784-512-256-10 training step", "torch"),
     1.19),
    ("off-grid gemm f32 1000×1000×1000", ("off-grid GEMM shapes, as the grid", "numpy"), 0.98),
])
def test_one_case_under_its_bar_misses_that_target_and_names_the_case(ct, cc, case, target, value):
    names, ratios = full_run(ct, cc)
    ratios[case] = {"numpy": value, "torch": value}
    verdicts = by_name(ct.judge(ct.targets("avx512", names), ratios))
    missed = verdicts[target]
    assert missed.status == "missed" and missed.worst_case == case and missed.worst == value
    others = [v for key, v in verdicts.items() if key != target and case not in v.target.cases]
    assert all(v.status == "met" for v in others)
    line = next(l for l in ct.report([missed]))
    assert line.startswith("- missed:") and f"{value:.2f}" in line


def test_the_layer_against_numpy_and_pytorch_are_separate_bars(ct, cc):
    names, ratios = full_run(ct, cc)
    ratios["lecture layer fwd+bwd f32"] = {"numpy": 1.45, "torch": 1.55}
    verdicts = by_name(ct.judge(ct.targets("avx2", names), ratios))
    assert verdicts[("the lecture layer forward+backward", "numpy")].status == "met"
    assert verdicts[("the lecture layer forward+backward", "torch")].status == "missed"


def test_the_baseline_set_has_only_the_gemm_bar(ct, cc):
    names, ratios = full_run(ct, cc)
    ratios["lecture y = x·w f32"] = {"numpy": 0.5, "torch": 0.5}
    verdicts = ct.judge(ct.targets("baseline", names), ratios)
    assert [v.target.against for v in verdicts] == ["numpy"] and verdicts[0].status == "met"


def test_cases_the_run_lacks_are_reported_not_passed(ct, cc):
    names, ratios = full_run(ct, cc)
    only_big = {n: r for n, r in ratios.items() if "256³" not in n and "512³" not in n}
    no_torch = {n: {"numpy": r["numpy"]} for n, r in only_big.items()}
    verdicts = by_name(ct.judge(ct.targets("avx2", names), no_torch))
    grid = verdicts[("GEMM 256³–2048³, four transpose cases, f32 and f64", "numpy")]
    assert grid.status == "met where measured" and len(grid.missing) == 16
    assert verdicts[("the MLP 784-512-256-10 training step", "torch")].status == "not measured"
    lines = ct.report(list(verdicts.values()))
    assert "16 of its 32 cases not in this run" in lines[0]
    assert sum(l.startswith("- not measured:") for l in lines) == 2  # layer and step vs PyTorch


def test_a_run_without_off_grid_rows_does_not_pass_the_off_grid_target(ct, cc):
    names = [n for n in cc.cases(False) if not n.startswith("off-grid")]
    ratios = {n: {"numpy": 2.0, "torch": 2.0} for n in names}
    verdicts = by_name(ct.judge(ct.targets("avx2", names), ratios))
    assert verdicts[("off-grid GEMM shapes, as the grid", "numpy")].status == "not measured"
