"""matgrad against numpy (and PyTorch when installed), same machine, same run.

Each library runs in its own process, so one library's spinning worker threads
(OpenMP, OpenBLAS) never steal cores from another's timings. The processes stay
up for the whole run and take short turns (TURN_SECONDS of calls each, a few
turns per case per round) one after another at each case, the library that goes
first rotating; a turn starts when the last library's threads have stopped
spinning. A shared machine's slow spells (they last seconds to minutes and
can halve a core's speed) then hit the libraries' turns at a case alike, and a
ratio is the median over the turns of that turn's ratio. The table reports
medians over the turns, with the spread. Ratios > 1 mean matgrad is faster.

    python benchmarks/compare.py                 # all cases, print the table
    python benchmarks/compare.py --quick         # small sizes (CI smoke run)
    python benchmarks/compare.py --write BENCHMARKS.md
    python benchmarks/compare.py --isa avx2      # matgrad's AVX2 path vs OpenBLAS's Haswell kernel

numpy is timed with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE removed from its
environment (they pin an older, slower OpenBLAS kernel on some machines here),
or, with --isa, with OPENBLAS_CORETYPE set to the kernel for that instruction
set (avx2: Haswell, avx512: SkylakeX, baseline: Nehalem) while matgrad runs with
MATGRAD_ISA; the report names the kernel OpenBLAS picked. PyTorch is held to the same
instruction set with ATEN_CPU_CAPABILITY, MKL_ENABLE_INSTRUCTIONS and ONEDNN_MAX_CPU_ISA
(the report names the capability ATen took), so `--isa avx2` on an AVX-512 machine
compares the three libraries as an AVX2 machine would. GEMM rates are also
given as % of the FMA peak of that instruction set on this machine, measured in
the same run (matgrad.kernels.fma_peak).

Below the table, a full run at 2 threads judges issue 9's speed targets (compare_targets.py): each
met, missed (with its lowest case), not measured, or met where measured (an --only run that has
some of its cases).

--write FILE keeps one section per CPU and instruction set in FILE: a run
replaces its own section and leaves the others (a run with --only has a section
of its own, per pattern).

The cases are in compare_cases.py, the workers and their turns in compare_turns.py; this file
runs them and reports.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:  # its sibling modules, however it runs
    sys.path.insert(0, HERE)
from compare_cases import SWEEP_SIZES, cases, sweep_case_name  # noqa: E402
from compare_targets import judge, report, targets  # noqa: E402
from compare_turns import (OPENBLAS_CORETYPES, TURN_SECONDS, TURNS, library_env,  # noqa: E402
                           measure, summarize)


# ---- driver ---------------------------------------------------------------------

def available_libraries():
    libs = ["matgrad", "numpy"]
    try:
        import torch  # noqa: F401
        libs.append("torch")
    except ImportError:
        pass
    return libs


def machine_facts(threads: int, isa: str | None) -> dict:
    """matgrad's view of the machine, from a matgrad process with the run's environment:
    config() (caches, blocking) and the FMA peak of the instruction set, both dtypes."""
    code = ("import json, matgrad\nk = matgrad.kernels\nc = k.config()\n"
            f"c['peak'] = {{d: k.fma_peak(c['isa'], d, threads={threads}, seconds=0.3) "
            "for d in ('float32', 'float64')}\nprint(json.dumps(c))")
    out = subprocess.run([sys.executable, "-c", code], env=library_env("matgrad", threads, isa),
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"matgrad failed:\n{out.stderr}")
    return json.loads(out.stdout)


def environment_summary(threads: int, isa: str | None, facts: dict) -> list[str]:
    import numpy as np
    import matgrad
    caches = facts["caches"]
    def slices(b: dict) -> str:  # kc, and how deep a slice may grow (kc_limit)
        limit = b.get("kc_limit", b["kc"])
        return f"kc {b['kc']}" + (f" (slices up to {limit})" if limit > b["kc"] else "")
    blocking = "; ".join(f"{d} {b['mr']}×{b['nr']} {slices(b)} nc {b['nc']} mc {b['mc']}"
                         for d, b in facts["blocking"].items())
    lines = [
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs; "
        f"{_cpu_model()}",
        f"caches ({facts['cache_source']}): L1d {caches['l1d'] >> 10} KiB, L2 {caches['l2'] >> 10} KiB, "
        f"L3 {caches['l3'] >> 20} MiB; blocking ({facts['blocking_source']}): {blocking}",
        f"FMA peak of {facts['isa']} here, {threads} threads: "
        f"{facts['peak']['float32']:.0f} GFLOP/s f32, {facts['peak']['float64']:.0f} f64",
        f"threads: {threads} per library; each library in its own process, the processes taking "
        "turns case by case",
        f"matgrad {matgrad.__version__} (kernels: {facts['isa']}"
        f"{', forced with --isa' if isa else ''}), numpy {np.__version__}"
        f" (OpenBLAS kernel: {_openblas_kernel(threads, isa)}"
        f"{', forced with OPENBLAS_CORETYPE' if isa else ''})",
    ]
    try:
        import torch
        lines[-1] += f", torch {torch.__version__} (ATen capability: {_torch_capability(threads, isa)}"
        lines[-1] += f"{', forced with ATEN_CPU_CAPABILITY, MKL_ENABLE_INSTRUCTIONS' if isa else ''})"
    except ImportError:
        lines[-1] += ", torch not installed"
    return lines


def _torch_capability(threads: int, isa: str | None = None) -> str:
    return _printed_in_env("torch", "import torch\nprint(torch.backends.cpu.get_cpu_capability())",
                           threads, isa)


def _printed_in_env(lib: str, code: str, threads: int, isa: str | None) -> str:
    """What `code` prints in a fresh interpreter with `lib`'s benchmark environment."""
    out = subprocess.run([sys.executable, "-c", code], env=library_env(lib, threads, isa),
                         capture_output=True, text=True)
    return out.stdout.strip() or "unknown"


def _cpu_model() -> str:
    fields = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        return platform.platform()
    return (f"{fields.get('model name', 'unknown CPU')}, family {fields.get('cpu family', '?')}"
            f" model {fields.get('model', '?')}")


def _openblas_kernel(threads: int, isa: str | None = None) -> str:
    code = ("import numpy\ntry:\n from threadpoolctl import threadpool_info\n"
            " print(next((i.get('architecture') for i in threadpool_info() if i['internal_api']=="
            "'openblas'), 'unknown'))\nexcept ImportError:\n print('unknown (threadpoolctl missing)')")
    return _printed_in_env("numpy", code, threads, isa)


def section_key(facts: dict, isa: str | None) -> str:
    """The heading of this run's section in the --write file: one per CPU and instruction set."""
    return f"## {_cpu_model()} · {facts['isa']}{' (forced)' if isa else ' (native)'}"


def write_sections(path: str, key: str, body: list[str]) -> None:
    """Replaces the section headed `key` in `path` (or appends it), keeping the others."""
    title = ("# Benchmarks\n\nOne section per CPU and instruction set, each written by "
             "`python benchmarks/compare.py --write BENCHMARKS.md [--isa ISA]` on that machine;\n"
             "a run replaces only its own section. The CPU changes from session to session here:\n"
             "compare ratios within a section, not rates across sections.\n")
    text = ""
    if os.path.exists(path):
        with open(path) as f:
            text = f.read()
    parts = ("\n" + text).split("\n## ")
    head = parts[0].strip("\n") or title  # whatever precedes the first section is kept
    sections = ["## " + p for p in parts[1:]]
    new = key + "\n\n" + "\n".join(body).rstrip() + "\n"
    for i, sec in enumerate(sections):
        if sec.splitlines()[0].strip() == key:
            sections[i] = new
            break
    else:
        sections.append(new)
    with open(path, "w") as f:
        f.write(head.rstrip() + "\n\n" + "\n".join(s.rstrip() + "\n" for s in sections))


def write_plots(folder: str, table: dict, medians: dict, libs: list, lines: list) -> None:
    """GFLOP/s against size per library and dtype; training-step time per library."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(folder, exist_ok=True)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=False)
    for ax, dname in zip(axes, ("f32", "f64")):
        for lib in libs:
            sizes, rates = [], []
            for s in SWEEP_SIZES:
                name = sweep_case_name(dname, s)
                if name in medians and lib in medians[name]:
                    sizes.append(s)
                    rates.append(table[name][1] / medians[name][lib] / 1e9)
            if sizes:
                ax.plot(sizes, rates, marker="o", label=lib)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("n (n×n · n×n)")
        ax.set_ylabel("GFLOP/s")
        ax.set_title(f"GEMM {'float32' if dname == 'f32' else 'float64'}, 2 threads")
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend()
    fig.suptitle(lines[0].split(";")[-1].strip(), fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(folder, "gemm_gflops.png"), dpi=110)
    plt.close(fig)

    steps = [k for k in table if k.startswith(("train step", "tiny graph", "lecture layer"))]
    fig, axes = plt.subplots(1, len(steps), figsize=(3.2 * len(steps), 3.6))
    for ax, name in zip(axes, steps):
        vals = [medians[name].get(lib, float("nan")) * 1e3 for lib in libs]
        bars = ax.bar(libs, vals, color=["#2a7", "#48c", "#d63"][: len(libs)])
        ax.bar_label(bars, fmt="%.3g")
        ax.set_title(name.replace(", batch", "\nbatch").replace(" 8×8", "\n8×8"), fontsize=8)
        ax.set_ylabel("ms per step (lower is better)")
    fig.tight_layout()
    fig.savefig(os.path.join(folder, "training_steps.png"), dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3,
                        help=f"rounds, each of {TURNS} turns per library per case (default 3)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--write", metavar="FILE", help="also write the table as Markdown")
    parser.add_argument("--plots", metavar="DIR", help="also write PNG plots there (needs matplotlib)")
    parser.add_argument("--only", metavar="REGEX", help="run only the cases whose name matches")
    parser.add_argument("--isa", choices=sorted(OPENBLAS_CORETYPES),
                        help="run matgrad with MATGRAD_ISA and numpy with the matching OpenBLAS kernel")
    args = parser.parse_args(argv)

    libs = available_libraries()
    facts = machine_facts(args.threads, args.isa)
    table = cases(args.quick, args.only)
    runs = measure(libs, list(table), args.rounds, args.quick, args.threads, args.only, args.isa)

    header = ["case", *[f"{lib} ms" for lib in libs], "rate (matgrad)", "% peak (matgrad / numpy)",
              *[f"× vs {lib}" for lib in libs if lib != "matgrad"]]
    rows = []
    medians, ratios = {}, {}
    for name, (_, work, unit) in table.items():
        med, spread, ratio = summarize(runs, name, libs)
        medians[name], ratios[name] = med, ratio
        cells = [name]
        for lib in libs:
            cells.append(f"{med[lib] * 1e3:.3f} (±{spread[lib] * 50:.0f}%)" if lib in med else "")
        main_lib = "matgrad" if "matgrad" in med else "numpy"
        cells.append(f"{work / med[main_lib] / 1e9:.1f} {unit}")
        cells.append(_percent_of_peak(name, work, unit, med, facts["peak"]))
        for lib in libs:
            if lib == "matgrad":
                continue
            cells.append(f"{ratio[lib]:.2f}" if lib in ratio else "")
        rows.append(cells)

    lines = environment_summary(args.threads, args.isa, facts)
    md = [f"- {line}" for line in lines] + [
        f"- {args.rounds} rounds of {TURNS} turns per library per case (each turn the median of its "
        f"calls over {TURN_SECONDS} s or more), medians over the turns; ± is half the spread between "
        "turns; × is the median over the turns of that turn's ratio", "",
        "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    md += ["| " + " | ".join(r) + " |" for r in rows]
    md += targets_section(facts["isa"], args.isa is not None, args.threads, args.quick, ratios)
    print("\n".join(md))
    if args.plots:
        write_plots(args.plots, table, medians, libs, lines)
    if args.write:
        command = "python benchmarks/compare.py" + "".join(
            f" {a}" for a in (argv if argv is not None else sys.argv[1:]))
        key = section_key(facts, args.isa) + (f" · only `{args.only}`" if args.only else "")
        write_sections(args.write, key, [f"`{command}`", ""] + md)
    return 0


def targets_section(kernel_set: str, forced: bool, threads: int, quick: bool,
                    ratios: dict[str, dict[str, float]]) -> list[str]:
    """The lines below the table that judge issue 9's targets (set at full sizes, 2 threads)."""
    if quick:
        return []
    heading = f"Issue 9's targets in this run ({kernel_set} kernels, {threads} threads; " \
              "benchmarks/compare_targets.py):"
    if threads != 2:
        return ["", heading, "- not judged: the targets are set at 2 threads"]
    return ["", heading] + report(judge(targets(kernel_set, forced), ratios))


def _percent_of_peak(name: str, work: float, unit: str, med: dict, peak: dict) -> str:
    """GEMM rows only: matgrad's and numpy's rate as % of this ISA's FMA peak."""
    if unit != "GFLOP/s" or "gemm" not in name and "lecture" not in name:
        return ""
    dtype = "float64" if " f64 " in f" {name} " else "float32"
    cells = [f"{100 * work / med[lib] / 1e9 / peak[dtype]:.0f}%" for lib in ("matgrad", "numpy")
             if lib in med]
    return " / ".join(cells)


if __name__ == "__main__":
    sys.exit(main())
