"""Every pointer into the docs resolves: a file named as `docs/x.md` exists, a section quoted
after it (`docs/x.md, "Tenth session"`) is a heading of that file, and the relative links of
the README and docs/ point at files that exist.

The tuning notes moved between files as they grew (docs/tuning.md, tuning-conv.md and a log
per host); code comments cite them by file and section, and this keeps those citations true.
Outside the source tree (the wheel leg copies tests, docs, benchmarks and the README only) the
C++ sources are absent, and only what is there is checked."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
SOURCE_DIRS = ("cpp", "benchmarks", "scripts", "tests", "python", "docs", "examples")
SOURCE_SUFFIXES = {".cpp", ".hpp", ".inc", ".h", ".py", ".sh", ".md", ".txt", ".toml"}
TOP_FILES = ("README.md", "BENCHMARKS.md", "CMakeLists.txt")

# `docs/name.md, "Section"`, or inside docs/ the bare `name.md, "Section"`; the section may
# run on over a comment's line break, which _flatten has joined.
_CITATION = re.compile(r'(?:docs/)?([A-Za-z0-9_.-]+\.md),\s*"([^"]{3,120})"')
_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def _sources():
    files = [ROOT / name for name in TOP_FILES if (ROOT / name).is_file()]
    for folder in SOURCE_DIRS:
        if (ROOT / folder).is_dir():
            files += [p for p in sorted((ROOT / folder).rglob("*"))
                      if p.suffix in SOURCE_SUFFIXES and p.is_file() and "__pycache__" not in p.parts]
    return files


def _flatten(text):
    """One line: each line break and the next line's comment marker become one space."""
    return re.sub(r"\n\s*(?://+|#+|\*)?\s*", " ", text)


def _headings(doc):
    return [line.lstrip("#").strip() for line in doc.read_text(encoding="utf-8").splitlines()
            if line.startswith("#")]


def _citations():
    found = []
    for path in _sources():
        if path.resolve() == Path(__file__).resolve():
            continue
        text = _flatten(path.read_text(encoding="utf-8", errors="replace"))
        for m in _CITATION.finditer(text):
            name, section = m.groups()
            if (DOCS / name).is_file():
                found.append((path.relative_to(ROOT).as_posix(), name, section))
    return found


def test_the_docs_are_there():
    for name in ("tuning.md", "tuning-conv.md", "tuning-log-xeon-167.md", "tuning-log-xeon-207.md",
                 "errors.md", "autograd.md"):
        assert (DOCS / name).is_file(), name


def test_named_doc_files_exist():
    missing = set()
    for path in _sources():
        if path.resolve() == Path(__file__).resolve():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for name in re.findall(r"docs/([A-Za-z0-9_-]+\.md)\b", text):
            if not (DOCS / name).is_file():
                missing.add(f"{path.relative_to(ROOT).as_posix()}: docs/{name}")
    assert sorted(missing) == []


def test_cited_sections_are_headings_of_the_cited_file():
    citations = _citations()
    # The C++ sources cite the tuning logs by section; without them (outside the tree) the
    # docs' own citations are still there to check.
    assert len(citations) >= (20 if (ROOT / "cpp").is_dir() else 5)
    wrong = []
    for where, name, section in citations:
        if not any(h.startswith(section) for h in _headings(DOCS / name)):
            wrong.append(f'{where}: {name}, "{section}"')
    assert wrong == []


@pytest.mark.parametrize("doc", ["README.md"] + [f"docs/{p.name}" for p in sorted(DOCS.glob("*.md"))])
def test_relative_links_resolve(doc):
    path = ROOT / doc
    broken = [target for target in _LINK.findall(path.read_text(encoding="utf-8"))
              if "://" not in target and not (path.parent / target).exists()]
    assert broken == []


def test_a_wrong_citation_would_be_caught():
    """The checks above see a section that is not a heading, and a file that is not there."""
    text = _flatten('// see docs/tuning-log-xeon-167.md,\n// "Twentieth session").')
    ((name, section),) = _CITATION.findall(text)
    assert name == "tuning-log-xeon-167.md" and section == "Twentieth session"
    assert not any(h.startswith(section) for h in _headings(DOCS / name))
    assert any(h.startswith("Tenth session") for h in _headings(DOCS / name))
