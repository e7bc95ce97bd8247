#!/usr/bin/env python3
"""The package's import graph by layer, from the source alone (``ast``; nothing is imported).

Prints every edge between the package's top-level parts (``muon_nerf.fields``, ``muon_nerf.optim``,
``muon_nerf.fit``, ``muon_nerf.runs``, the front ends), marks the edges that point up a layer and
the cycles between parts, and counts the lines of each layer. Exit status 1 if an edge points up
or a cycle exists.

    python3 scripts/import_graph.py [PACKAGE_DIR]
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

LAYERS = {"fields": 0, "optim": 1, "fit": 2, "runs": 3}
"""Lower layers; every other part of the package is a front end (layer 4)."""
NAMES = ("fields", "optim", "fit", "runs", "front ends")
FRONT_END = 4


def part_of(module: str) -> str:
    """``muon_nerf.signals.image`` → ``signals``; the package's own ``__init__`` → ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def layer_of(part: str) -> int:
    return LAYERS.get(part, FRONT_END)


def module_name(path: Path, root: Path) -> str:
    rel = path.relative_to(root.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports(tree: ast.AST, package: str) -> set[str]:
    """Every ``package.*`` module imported anywhere in the file (also inside functions)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == package}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == package:
            found.add(node.module)
    return found


def main(root: Path) -> int:
    root = root.resolve()
    package = root.name
    edges: dict[tuple[str, str], set[str]] = defaultdict(set)
    lines = defaultdict(int)
    for path in sorted(root.rglob("*.py")):
        name = module_name(path, root)
        src = part_of(name)
        lines[layer_of(src)] += len(path.read_text().splitlines())
        for target in imports(ast.parse(path.read_text()), package):
            dst = part_of(target)
            if dst != src:
                edges[src, dst].add(name)
    bad = 0
    print("import edges between parts (importer -> imported: importing modules)")
    for (src, dst), mods in sorted(edges.items()):
        up = layer_of(src) < layer_of(dst)
        cycle = (dst, src) in edges and layer_of(src) == layer_of(dst) == FRONT_END and src < dst
        mark = "  UPWARD" if up else "  CYCLE" if cycle else ""
        bad += up or cycle
        print(f"  {src:>15} -> {dst:<15} {', '.join(sorted(mods))}{mark}")
    print("lines per layer")
    for layer, label in enumerate(NAMES):
        print(f"  {layer} {label:<12} {lines[layer]:>6}")
    print(f"upward edges or cycles: {bad}")
    return int(bad > 0)


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "muon_nerf"
    raise SystemExit(main(target))
