"""benchmarks/compare.py --write keeps one section per CPU and instruction set: a run replaces its
own section and leaves every other section, and whatever precedes the first one, as it was."""

import pytest

from conftest import load_benchmark


@pytest.fixture(scope="module")
def compare():
    return load_benchmark("compare")


def test_a_run_replaces_only_its_own_section(compare, tmp_path):
    path = tmp_path / "B.md"
    path.write_text("# Benchmarks\n\nintro\n\n## CPU A · avx2 (native)\n\nold A\n\n## CPU B · avx512 (native)\n\n"
                    "keep B\n### a sub-heading of B\nmore B\n")
    compare.write_sections(str(path), "## CPU A · avx2 (native)", ["new A"])
    text = path.read_text()
    assert "old A" not in text and "new A" in text
    assert "intro" in text and "keep B" in text and "### a sub-heading of B\nmore B" in text
    assert text.index("CPU A") < text.index("CPU B")  # order kept


def test_a_new_machine_is_appended(compare, tmp_path):
    path = tmp_path / "B.md"
    compare.write_sections(str(path), "## CPU A · avx2 (native)", ["A"])
    compare.write_sections(str(path), "## CPU C · baseline (forced)", ["C"])
    text = path.read_text()
    assert text.startswith("# Benchmarks")
    assert text.count("\n## ") == 2 and "\nA\n" in text and "\nC\n" in text


def test_a_file_without_the_title_loses_nothing(compare, tmp_path):
    path = tmp_path / "B.md"
    path.write_text("## CPU A · avx2 (native)\n\nA\n\n## CPU B · avx2 (native)\n\nB\n")
    compare.write_sections(str(path), "## CPU B · avx2 (native)", ["B2"])
    text = path.read_text()
    assert "\nA\n" in text and "B2" in text and "\nB\n" not in text


def test_the_targets_follow_a_full_run_at_two_threads_only(compare):
    ratios = {"lecture y = x·w f32": {"numpy": 1.05, "torch": 1.2}}
    lines = compare.targets_section("avx2", True, 2, False, ratios)
    assert lines[0] == "" and lines[1].startswith("Issue 9's targets in this run (avx2 kernels, 2")
    assert ("- missed: the lecture's three products ≥ 1.1× numpy; lowest 1.050 (lecture y = x·w "
            "f32); 2 of its 3 cases not measured against numpy in this run") in lines
    assert sum(line.startswith("- not measured:") for line in lines) == 5
    assert compare.targets_section("avx2", True, 2, True, ratios) == []  # --quick: other sizes
    four = compare.targets_section("avx2", True, 4, False, ratios)
    assert four[-1] == "- not judged: the targets are set at 2 threads"
