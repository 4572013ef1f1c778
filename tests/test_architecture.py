"""The layers and the import graph (docs/ARCHITECTURE.md): checked by import-linter's contracts in pyproject.toml
and by a cycle search over grimp's graph of every module."""

from __future__ import annotations

import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("celebref", "baselines", "degradations", "evaluation", "reports")

grimp = pytest.importorskip("grimp", reason="import-linter (and grimp) come with the test extra: pip install -e '.[test]'")


def _toml() -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_import_linter_contracts_are_kept():
    exe = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    proc = subprocess.run([exe, "--config", str(ROOT / "pyproject.toml")], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout


def test_core_contract_names_every_core_module():
    """A new module in the core must be added to the 'core imports nothing above it' contract."""
    contracts = _toml()["tool"]["importlinter"]["contracts"]
    core = next(c for c in contracts if c["type"] == "forbidden" and "celebref.app" in c["forbidden_modules"])
    import celebref

    found = {f"celebref.{m.name}" for m in pkgutil.iter_modules(celebref.__path__)} - {"celebref.app", "celebref.__main__"}
    assert found == set(core["source_modules"]), "edit the core contract in pyproject.toml"


def _cycles(graph) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, it = work[-1]
            for nxt in it:
                if nxt not in graph.modules:
                    continue
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph.find_modules_directly_imported_by(nxt)))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    comp = []
                    while True:
                        m = stack.pop()
                        on_stack.discard(m)
                        comp.append(m)
                        if m == node:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return out


def test_no_import_cycles():
    """No two modules import each other, directly or through others (imports inside functions count too).
    A package's ``__init__`` re-exporting its own submodules is the only allowed loop."""
    graph = grimp.build_graph(*PACKAGES)
    cycles = []
    for comp in _cycles(graph):
        packages = {m for m in comp if any(o.startswith(m + ".") for o in comp)}
        rest = [m for m in comp if m not in packages]
        # a loop that only runs through a package and its own children re-exported by its __init__ is allowed
        if packages and all(any(m.startswith(p + ".") for p in packages) for m in rest):
            inner = grimp.build_graph(*PACKAGES)
            for p in packages:
                inner.remove_module(p)
            if not [c for c in _cycles(inner) if set(c) <= set(rest)]:
                continue
        cycles.append(comp)
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)
