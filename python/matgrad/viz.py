"""Draw the graph behind a tensor as Graphviz DOT source (and as SVG/PNG when Graphviz is installed)."""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import List, Mapping, Optional, Union

from .tensor import Tensor

__all__ = ["to_dot"]

_RENDERED = {".svg": "svg", ".png": "png", ".pdf": "pdf"}


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def to_dot(t: Tensor, path: Union[str, os.PathLike[str], None] = None,
           names: Optional[Mapping[str, Tensor]] = None) -> str:
    """Return the DOT source of the graph that produced ``t``: one box per tensor with its op
    (``leaf`` or ``const`` for inputs), shape and dtype; edges run from inputs to outputs.

    ``names``: optional {label: tensor} to name some tensors (``{"w": w}``). ``path``: also write
    the drawing: ``.dot``/``.gv`` writes the source; ``.svg``, ``.png`` or ``.pdf`` runs Graphviz's
    ``dot`` program, which must be installed (RuntimeError otherwise).
    """
    if not isinstance(t, Tensor):
        raise TypeError(f"to_dot: expected a Tensor, got {type(t).__name__}")
    label_of = {id(v): k for k, v in (names or {}).items()}
    ids = {id(t): 0}
    nodes: List[str] = []
    edges: List[str] = []
    stack = [t]
    while stack:  # iterative: deep graphs are fine
        node = stack.pop()
        nid = ids[id(node)]
        if node._op is not None:
            kind = node._op
        elif node.requires_grad:
            kind = "leaf"
        else:
            kind = "const"
        name = label_of.get(id(node))
        head = f"{name} = {kind}" if name else kind
        shape = "x".join(str(n) for n in node.data.shape) or "scalar"
        style = ', style=filled, fillcolor="#dbe9f6"' if kind == "leaf" else ""
        label = _escape(head) + "\\n" + _escape(f"{shape} {node.data.dtype}")  # \n: a line break in DOT
        nodes.append(f'  n{nid} [label="{label}"{style}];')
        for p in node._prev:
            if id(p) not in ids:
                ids[id(p)] = len(ids)
                stack.append(p)
            edges.append(f"  n{ids[id(p)]} -> n{nid};")
    src = "\n".join(["digraph matgrad {", "  rankdir=LR;", '  node [shape=box, fontname="Helvetica"];',
                     *sorted(nodes, key=lambda s: int(s.split()[0][1:])), *edges, "}"]) + "\n"
    if path is not None:
        _write(src, os.fspath(path))
    return src


def _write(src: str, path: str) -> None:
    ext = os.path.splitext(path)[1].lower()
    if ext in (".dot", ".gv"):
        with open(path, "w", encoding="utf-8") as f:
            f.write(src)
        return
    if ext not in _RENDERED:
        raise ValueError(f"to_dot: cannot tell the format of {path!r}; use .dot, .gv, .svg, .png or .pdf")
    dot = shutil.which("dot")
    if dot is None:
        raise RuntimeError(f"to_dot: writing {path!r} needs the Graphviz program 'dot', which is not on PATH; "
                           "install Graphviz, or write the DOT source with a .dot path")
    done = subprocess.run([dot, f"-T{_RENDERED[ext]}", "-o", path], input=src, text=True,
                          capture_output=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"to_dot: dot failed with exit code {done.returncode}: {done.stderr.strip()}")
