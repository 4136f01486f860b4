"""benchmarks/thread_scaling.py's tables: one per case, a row per thread count, GEMM as a rate and
the others in ms, each other library's time over matgrad's as its ratio, a dash where a library
has no figure."""

import pytest

from conftest import load_benchmark


@pytest.fixture(scope="module")
def scaling():
    return load_benchmark("thread_scaling")


def _rows(lines, case):
    """The data rows of `case`'s table, split into cells."""
    start = lines.index(next(line for line in lines if line.startswith(case)))
    rows = []
    for line in lines[start + 4:]:  # title, blank, header, rule
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def test_rates_times_and_ratios(scaling):
    gemm, layer, mlp = scaling.GEMM, scaling.LAYER, scaling.MLP
    flops = {gemm: 2e9, layer: 1e9, mlp: 1e8}
    results = {
        1: {"matgrad": {gemm: 0.010, layer: 0.050, mlp: 0.002},
            "numpy": {gemm: 0.020, layer: 0.075, mlp: 0.003},
            "torch": {gemm: 0.005, layer: 0.100, mlp: 0.004}},
        16: {"matgrad": {gemm: 0.001, layer: 0.008, mlp: 0.0005},
             "numpy": {gemm: 0.0011, layer: 0.012, mlp: 0.0006},
             "torch": {gemm: 0.0009, layer: 0.016}},  # no MLP figure for torch here
    }
    lines = scaling.format_tables(results, flops, ["matgrad", "numpy", "torch"])

    header = lines[lines.index(f"{gemm} (GFLOP/s)") + 2]
    assert header == "| threads | matgrad | numpy | torch | × vs numpy | × vs torch |"
    assert _rows(lines, gemm) == [["1", "200", "100", "400", "2.00", "0.50"],
                                  ["16", "2000", "1818", "2222", "1.10", "0.90"]]
    assert _rows(lines, layer) == [["1", "50.00", "75.00", "100.00", "1.50", "2.00"],
                                   ["16", "8.00", "12.00", "16.00", "1.50", "2.00"]]
    assert _rows(lines, mlp) == [["1", "2.00", "3.00", "4.00", "1.50", "2.00"],
                                 ["16", "0.50", "0.60", "—", "1.20", "—"]]


def test_without_torch_the_columns_shrink(scaling):
    gemm, layer, mlp = scaling.GEMM, scaling.LAYER, scaling.MLP
    results = {2: {"matgrad": {gemm: 0.01, layer: 0.02, mlp: 0.001},
                   "numpy": {gemm: 0.01, layer: 0.04, mlp: 0.002}}}
    lines = scaling.format_tables(results, {gemm: 1e9, layer: 1e9, mlp: 1e9}, ["matgrad", "numpy"])
    assert "| threads | matgrad | numpy | × vs numpy |" in lines
    assert not any("torch" in line for line in lines)
    assert _rows(lines, layer) == [["2", "20.00", "40.00", "2.00"]]


def test_the_cases_are_compare_cases(scaling):
    """The names must match compare_cases.py's, or the workers would run nothing."""
    table = scaling.compare_cases.cases(False, scaling.ONLY)
    assert set(table) == {scaling.GEMM, scaling.LAYER, scaling.MLP}
