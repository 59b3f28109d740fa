"""The code style the project keeps (issue 18): ruff, configured in pyproject.toml, is clean."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import REPO


def _ruff() -> list[str]:
    found = Path(sys.executable).with_name("ruff")
    if found.exists():
        return [str(found)]
    if shutil.which("ruff"):
        return ["ruff"]
    pytest.skip("ruff is not installed (requirements.txt pins it)")


def test_ruff_check_is_clean():
    result = subprocess.run([*_ruff(), "check", "src", "workflow/scripts", "tests", "benchmarks"], cwd=REPO,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]


def test_rule_scripts_need_no_inline_noqa():
    """The injected ``snakemake`` object is allowed per file in pyproject.toml, not line by line."""
    flagged = [f"{path.relative_to(REPO)}:{n}" for path in sorted((REPO / "workflow" / "scripts").glob("*.py"))
               for n, line in enumerate(path.read_text().splitlines(), 1) if "# noqa" in line]
    assert not flagged, flagged


def _library_paths() -> dict[str, Path]:
    """Every module of the grids library by its dotted name (a package by its ``__init__.py``)."""
    root = REPO / "src"
    return {".".join(path.relative_to(root).with_suffix("").parts).removesuffix(".__init__"): path
            for path in sorted((root / "grids").rglob("*.py"))}


def _library_modules() -> list[str]:
    return sorted(_library_paths())


@pytest.mark.parametrize("name", _library_modules())
def test_every_module_declares_what_it_exports(name):
    """Each library module lists its public names in ``__all__``; each listed name exists, and each
    listed function or class says what it does in a docstring."""
    import importlib
    import inspect

    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{name} has no __all__"
    missing = [item for item in exported if not hasattr(module, item)]
    assert not missing, f"{name}.__all__ names what the module lacks: {missing}"
    undocumented = [item for item in exported if (inspect.isfunction(getattr(module, item))
                                                  or inspect.isclass(getattr(module, item)))
                    and not inspect.getdoc(getattr(module, item))]
    assert not undocumented, f"{name}: exported without a docstring: {undocumented}"


def _numpydoc_problems(function) -> list[str]:
    """What a function's docstring lacks as numpydoc: a Parameters section naming every parameter
    (``*args``/``**kwargs`` as in the signature), and Returns (or Yields) unless it returns None."""
    import inspect
    import re

    doc = inspect.getdoc(function) or ""
    signature = inspect.signature(function)
    parameters = [p.name for p in signature.parameters.values() if p.name != "self"]
    problems = []
    if parameters:
        if "Parameters\n----------" not in doc:
            problems.append("no Parameters section")
        else:
            section = re.split(r"\n\n[A-Z][a-z]+\n-+", doc.split("Parameters\n----------", 1)[1])[0]
            described = set(re.findall(r"^\*{0,2}(\w+)", section, re.M))
            missing = [p for p in parameters if p not in described]
            if missing:
                problems.append(f"parameters not described: {missing}")
    if signature.return_annotation not in (None, "None") and not re.search(r"Returns\n-{7}|Yields\n-{6}", doc):
        problems.append("no Returns section")
    return problems


@pytest.mark.parametrize("name", _library_modules())
def test_exported_functions_have_numpydoc_docstrings(name):
    """Issue 18, as scanpy does it: every function a module exports documents its parameters and
    what it returns in numpydoc sections (classes keep prose docstrings)."""
    import importlib
    import inspect

    module = importlib.import_module(name)
    problems = {item: _numpydoc_problems(getattr(module, item)) for item in getattr(module, "__all__", [])
                if inspect.isfunction(getattr(module, item, None)) and getattr(module, item).__module__ == name}
    problems = {item: found for item, found in problems.items() if found}
    assert not problems, f"{name}: {problems}"


def test_the_numpydoc_check_can_fail():
    def undocumented(a: int, *, b: int = 0) -> int:
        """Adds."""
        return a + b

    def documented(a: int, **settings) -> None:
        """Does.

        Parameters
        ----------
        a
            A number.
        **settings
            Passed on.
        """

    assert _numpydoc_problems(undocumented) == ["no Parameters section", "no Returns section"]
    assert _numpydoc_problems(documented) == []


def _module_level_imports(path: Path, name: str, modules: set[str]) -> set[str]:
    """The grids modules that importing ``name`` (at ``path``) imports at once: the ``import``/``from``
    statements at module level, also inside module-level ``try`` and ``if`` blocks, but not those
    inside functions or under ``if TYPE_CHECKING`` (which never run)."""
    import ast

    def executed(statements: list[ast.stmt]) -> Iterator[ast.stmt]:
        for node in statements:
            if isinstance(node, ast.If):
                if "TYPE_CHECKING" not in ast.unparse(node.test):
                    yield from executed(node.body)
                yield from executed(node.orelse)
            elif isinstance(node, ast.Try):
                for block in (node.body, *(handler.body for handler in node.handlers), node.orelse, node.finalbody):
                    yield from executed(block)
            else:
                yield node

    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in executed(ast.parse(path.read_text()).body):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0]
                source = f"{base}.{node.module}" if node.module else base
            else:
                source = node.module or ""
            found.add(source)
            # `from grids.pkg import module` imports that submodule too.
            found |= {f"{source}.{alias.name}" for alias in node.names}
    return {module for module in found if module in modules and module != name}


def test_the_library_has_no_import_cycles():
    """Issue 18: no module of grids imports, through any chain of module-level imports, itself."""
    paths = _library_paths()
    graph = {name: _module_level_imports(path, name, set(paths)) for name, path in paths.items()}
    assert graph["grids.surrogate.metrics"], "the import scan found nothing: it is broken"

    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name: str, trail: list[str]) -> None:
        state[name] = 1
        for target in sorted(graph[name]):
            if state.get(target) == 1:
                cycles.append(trail[trail.index(target):] + [target])
            elif target not in state:
                visit(target, [*trail, target])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not cycles, "\n".join(" -> ".join(cycle) for cycle in cycles)


def test_the_library_never_imports_the_workflow_package():
    """Issue 18: grids.workflow (logging glue, config checks, GPU assignment, stage runners) imports
    the library, never the other way round: no import anywhere in a library module, inside
    functions included, names grids.workflow."""
    import ast

    def imported(path: Path, name: str) -> set[str]:
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = package.rsplit(".", node.level - 1)[0] if node.level else ""
                source = ".".join(part for part in (base, node.module) if part)
                found |= {source} | {f"{source}.{alias.name}" for alias in node.names}
        return found

    paths = _library_paths()
    assert "grids.workflow.stages.explain" in paths, "the workflow package moved: update this test"
    offenders = {name: sorted(m for m in imported(path, name) if m == "grids.workflow"
                              or m.startswith("grids.workflow."))
                 for name, path in paths.items() if name != "grids.workflow" and not name.startswith("grids.workflow.")}
    assert not {name: found for name, found in offenders.items() if found}


def test_exported_functions_take_keywords_beyond_the_third_argument():
    """Issue 18, as scanpy does it: a call such as ``fimap(objective, train, 10, seed=0)`` names
    everything past the first three arguments, so a reordered signature cannot shift values."""
    import ast

    offenders = []
    for path in _library_paths().values():
        tree = ast.parse(path.read_text())
        exported = {item.value for node in tree.body if isinstance(node, ast.Assign)
                    and any(getattr(t, "id", None) == "__all__" for t in node.targets) for item in node.value.elts}
        offenders += [f"{path.relative_to(REPO)}:{node.name}" for node in tree.body
                      if isinstance(node, ast.FunctionDef) and node.name in exported
                      and len(node.args.posonlyargs + node.args.args) > 3]
    assert not offenders, offenders
