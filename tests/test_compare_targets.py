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


GRID_KEY = ("GEMM 256³, 512³, 1024³, 2048³, four transpose cases, f32 and f64", "numpy")
STEP_KEY = ("the MLP 784-512-256-10 training step", "torch")


def off_grid_key(ct):
    return (ct.OFF_GRID, "numpy")


def full_run(cc, value=1.7):
    """Ratios of a run over the full table with every library at `value`."""
    return {n: {"numpy": value, "torch": value} for n in cc.cases(False)}


def by_name(verdicts):
    return {(v.target.name, v.target.against): v for v in verdicts}


def test_every_case_a_target_names_is_a_row_of_the_full_table(ct, cc):
    names = set(cc.cases(False))
    grid, off_grid = ct.gemm_cases(), ct.off_grid_cases()
    assert len(grid) == 4 * 2 * 4 and len(set(grid)) == len(grid)
    assert len(off_grid) == 2 * len(cc.OFF_GRID_SHAPES)
    for t in ct.targets("avx2", forced=True):
        assert set(t.cases) <= names, t.name
    for s in (256, 512, 1024, 2048):
        assert f"gemm f64 {s}³ Aᵀ·Bᵀ" in grid and f"gemm f32 {s}³ A·Bᵀ" in grid


def test_the_sweep_reuses_the_grids_rows_and_keeps_its_own_below_it(cc):
    names = list(cc.cases(False))
    assert not [n for n in names if n.startswith("sweep gemm") and "128³" not in n]
    assert "sweep gemm f32 128³" in names and "sweep gemm f64 128³" in names
    assert cc.sweep_case_name("f64", 512) == "gemm f64 512³ A·B"
    for s in cc.SWEEP_SIZES:  # every point of the plot has its row
        assert cc.sweep_case_name("f32", s) in names


def test_a_run_above_every_bar_meets_every_target(ct, cc):
    verdicts = ct.judge(ct.targets("avx2", forced=True), full_run(cc))
    assert len(verdicts) == 6
    assert [v.status for v in verdicts] == ["met"] * 6
    assert ct.report(verdicts)[0] == (f"- met: {GRID_KEY[0]} ≥ 1.0× numpy; lowest 1.700 "
                                      "(gemm f32 256³ A·B)")
    assert ct.report(verdicts)[-1] == f"- met: {STEP_KEY[0]} ≥ 1.2× PyTorch; 1.700"


@pytest.mark.parametrize("case, key, value", [
    ("gemm f64 512³ Aᵀ·B", GRID_KEY, 0.99),
    ("lecture y = x·w f32", ("the lecture's three products", "numpy"), 1.09),
    ("lecture layer fwd+bwd f32", ("the lecture layer forward+backward", "torch"), 1.59),
    ("train step MLP 784-512-256-10, batch 128", STEP_KEY, 1.19),
    ("off-grid gemm f32 1000×1000×1000", None, 0.98),
])
def test_one_case_under_its_bar_misses_that_target_and_names_the_case(ct, cc, case, key, value):
    key = key or off_grid_key(ct)
    ratios = full_run(cc)
    ratios[case] = {"numpy": value, "torch": value}
    verdicts = by_name(ct.judge(ct.targets("avx512", forced=False), ratios))
    missed = verdicts[key]
    assert missed.status == "missed" and missed.worst_case == case and missed.worst == value
    others = [v for k, v in verdicts.items() if k != key and case not in v.target.cases]
    assert others and all(v.status == "met" for v in others)
    line = ct.report([missed])[0]
    assert line.startswith("- missed:")
    assert line.endswith(f"; lowest {value:.3f} ({case})" if len(missed.target.cases) > 1
                         else f"; {value:.3f}")


@pytest.mark.parametrize("value, bar, text", [(1.0996, 1.1, "1.0996"), (0.9996, 1.0, "0.9996"),
                                              (1.1, 1.1, "1.100"), (1.59999, 1.6, "1.59999")])
def test_a_ratio_prints_on_its_side_of_the_bar(ct, cc, value, bar, text):
    assert ct.shown(value, bar) == text
    ratios = full_run(cc)
    ratios["gemm f32 2048³ A·B"]["numpy"] = value
    grid = by_name(ct.judge(ct.targets("avx2", forced=True), ratios))[GRID_KEY]
    if bar == 1.0:
        assert grid.status == "missed"
        assert f"lowest {text} (gemm f32 2048³ A·B)" in ct.report([grid])[0]


def test_the_layer_against_numpy_and_pytorch_are_separate_bars(ct, cc):
    ratios = full_run(cc)
    ratios["lecture layer fwd+bwd f32"] = {"numpy": 1.45, "torch": 1.55}
    verdicts = by_name(ct.judge(ct.targets("avx2", forced=True), ratios))
    assert verdicts[("the lecture layer forward+backward", "numpy")].status == "met"
    assert verdicts[("the lecture layer forward+backward", "torch")].status == "missed"


def test_a_forced_baseline_has_only_the_gemm_bar_a_native_one_has_all(ct, cc):
    ratios = full_run(cc)
    ratios["lecture y = x·w f32"] = {"numpy": 0.5, "torch": 0.5}
    forced = ct.judge(ct.targets("baseline", forced=True), ratios)
    assert [v.target.name for v in forced] == [GRID_KEY[0]] and forced[0].status == "met"
    native = by_name(ct.judge(ct.targets("baseline", forced=False), ratios))
    assert len(native) == 6
    assert native[("the lecture's three products", "numpy")].status == "missed"


def test_cases_the_run_lacks_are_reported_not_passed(ct, cc):
    only_big = {n: r for n, r in full_run(cc).items() if "256³" not in n and "512³" not in n}
    no_torch = {n: {"numpy": r["numpy"]} for n, r in only_big.items()}
    verdicts = by_name(ct.judge(ct.targets("avx2", forced=True), no_torch))
    grid = verdicts[GRID_KEY]
    assert grid.status == "met where measured" and len(grid.missing) == 16
    assert verdicts[STEP_KEY].status == "not measured"
    lines = ct.report(list(verdicts.values()))
    assert lines[0].endswith("; 16 of its 32 cases not measured against numpy in this run")
    assert sum(l.startswith("- not measured:") for l in lines) == 2  # layer and step vs PyTorch


def test_a_run_with_some_off_grid_rows_is_met_only_where_measured(ct, cc):
    ratios = {n: r for n, r in full_run(cc).items() if "f64" not in n or "off-grid" not in n}
    off_grid = by_name(ct.judge(ct.targets("avx2", forced=True), ratios))[off_grid_key(ct)]
    assert off_grid.status == "met where measured" and len(off_grid.missing) == 5
    none = {n: r for n, r in ratios.items() if "off-grid" not in n}
    off_grid = by_name(ct.judge(ct.targets("avx2", forced=True), none))[off_grid_key(ct)]
    assert off_grid.status == "not measured" and ct.report([off_grid])[0].startswith(
        "- not measured:")


def test_a_case_measured_against_numpy_only_is_missing_for_pytorch(ct, cc):
    ratios = full_run(cc)
    ratios["lecture layer fwd+bwd f32"] = {"numpy": 1.5}
    verdicts = by_name(ct.judge(ct.targets("avx2", forced=True), ratios))
    assert verdicts[("the lecture layer forward+backward", "numpy")].status == "met"
    assert verdicts[("the lecture layer forward+backward", "torch")].status == "not measured"
