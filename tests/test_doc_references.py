"""Every pointer into the docs resolves: a file named as `docs/x.md` exists, a section quoted
after a doc file (`docs/x.md, "Tenth session"`) names exactly one heading of that file, and the
relative links of the README and docs/ point at files that exist.

The tuning notes moved between files as they grew (docs/tuning.md, tuning-conv.md, a log per
host, tuning-index.md); code comments cite them by file and section, and this keeps those
citations true. Outside the source tree (the wheel leg copies tests, docs, examples, benchmarks,
README.md and BENCHMARKS.md) the C++ sources are absent, and only what is there is checked."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
SOURCE_DIRS = ("cpp", "benchmarks", "scripts", "tests", "python", "docs", "examples")
SOURCE_SUFFIXES = {".cpp", ".hpp", ".inc", ".h", ".py", ".sh", ".md", ".txt", ".toml"}
TOP_FILES = ("README.md", "BENCHMARKS.md", "CMakeLists.txt")
# The team's design notes beside the repository (../shared/docs), cited by name in comments.
SHARED_NOTES = {"kernel-design.md", "style.md", "architecture.md"}

# `docs/name.md, "Section"`, or inside docs/ the bare `name.md, "Section"`; a citation may run
# over a comment's line break, which _flatten joins.
_CITATION = re.compile(r'(?:docs/)?([A-Za-z0-9_.-]+\.md),\s*"([^"]{3,120})"')
_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def _sources():
    files = [ROOT / name for name in TOP_FILES if (ROOT / name).is_file()]
    for folder in SOURCE_DIRS:
        if (ROOT / folder).is_dir():
            files += [p for p in sorted((ROOT / folder).rglob("*"))
                      if p.suffix in SOURCE_SUFFIXES and p.is_file()
                      and "__pycache__" not in p.parts and p.resolve() != Path(__file__).resolve()]
    return files


def _flatten(text):
    """One line: each line break and the next line's comment marker become one space."""
    return re.sub(r"\n\s*(?://+|#+|\*)?\s*", " ", text)


def _headings(doc):
    """The Markdown headings of `doc`, without their #s (lines in code fences are not headings)."""
    heads, fenced = [], False
    for line in doc.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif line.startswith("#") and not fenced:
            heads.append(line.lstrip("#").strip())
    return heads


def _citations(sources):
    """(where, file name, section) for every citation of a .md file with a quoted section."""
    found = []
    for path in sources:
        text = _flatten(path.read_text(encoding="utf-8", errors="replace"))
        found += [(path.relative_to(ROOT).as_posix(), name, section)
                  for name, section in _CITATION.findall(text)]
    return found


def _resolves(name, section):
    """The citation names a doc of this repository and exactly one of its headings."""
    doc = DOCS / name
    return doc.is_file() and sum(h.startswith(section) for h in _headings(doc)) == 1


def test_the_docs_are_there():
    for name in ("tuning.md", "tuning-conv.md", "tuning-index.md", "tuning-log-xeon-167.md",
                 "tuning-log-xeon-207.md", "errors.md", "autograd.md"):
        assert (DOCS / name).is_file(), name


def test_named_doc_files_exist():
    missing = set()
    for path in _sources():
        text = path.read_text(encoding="utf-8", errors="replace")
        for m in re.finditer(r"(\.\./shared/)?docs/([A-Za-z0-9_-]+\.md)\b", text):
            if not m.group(1) and not (DOCS / m.group(2)).is_file():
                missing.add(f"{path.relative_to(ROOT).as_posix()}: docs/{m.group(2)}")
    assert sorted(missing) == []


def test_cited_sections_name_one_heading_of_the_cited_file():
    citations = _citations(_sources())
    wrong = [f'{where}: {name}, "{section}"' for where, name, section in citations
             if name not in SHARED_NOTES and not _resolves(name, section)]
    assert wrong == []
    # Not vacuous: the docs cite each other, and the C++ sources cite the tuning logs (their
    # citations run over comment line breaks, so this also checks that those are joined).
    assert sum(where.startswith("docs/") for where, _, _ in citations) >= 100
    if (ROOT / "cpp").is_dir():
        assert sum(where.startswith("cpp/") for where, _, _ in citations) >= 15


@pytest.mark.parametrize("doc", ["README.md"] + [f"docs/{p.name}" for p in sorted(DOCS.glob("*.md"))])
def test_relative_links_resolve(doc):
    path = ROOT / doc
    broken = [target for target in _LINK.findall(path.read_text(encoding="utf-8"))
              if "://" not in target and not (path.parent / target).exists()]
    assert broken == []


def test_a_wrong_citation_would_be_caught():
    """A section that is not a heading, one that names two, and a file that is not there."""
    text = _flatten('// see docs/tuning-log-xeon-167.md,\n// "Ninety-ninth session").')
    ((name, section),) = _CITATION.findall(text)
    assert name == "tuning-log-xeon-167.md" and section == "Ninety-ninth session"
    assert not _resolves(name, section)
    assert _resolves(name, "Tenth session")
    assert not _resolves(name, "Tried and not kept")  # the second and the third session's
    assert _resolves(name, "Tried and not kept (same Xeon, 2026-12-05, third session)")
    assert not _resolves("tuning-log-xeon-999.md", "Tenth session")
