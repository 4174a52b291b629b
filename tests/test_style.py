"""House style, checked by the test suite: ruff, mypy, docstrings, private names, import cycles.

Each check names every file, name or import that fails it, so a failure says what to fix.

- ruff: ``ruff check`` over kbench, tests, benchmarks, dev.py and the notebooks, ``ruff format --check`` over all
  but the notebooks.
- mypy: over the files pyproject's ``[tool.mypy]`` lists (the whole of kbench), with its settings.
- docstrings: every module, and every public function, class and method in kbench/ (see :func:`missing_docstrings`).
- private names: no kbench module imports ``_name`` from another, or reads ``module._name``; the compiled-kernels
  modules (``KERNEL_MODULES``) imported as modules are the house convention and allowed.
- import cycles: none between kbench modules, counting imports inside functions and under ``TYPE_CHECKING``
  (a deferred import hides a cycle from Python, not from a reader).
- hypothesis deadlines: every ``@given`` test runs with ``deadline=None`` (see :func:`deadline_bound_tests`).
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "kbench"
RUFF_PATHS = ["kbench", "tests", "benchmarks", "dev.py"]
KERNEL_MODULES = frozenset({"_kernels", "_batch_kernels", "_fast_kernels", "_preemption_kernels"})


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _run_tool(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    if importlib.util.find_spec(module) is None:
        pytest.fail(
            f"{module} is not installed in this interpreter; install kbench's test extras: pip install -e '.[test]'"
        )
    return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True, text=True)


# --- ruff and mypy -------------------------------------------------------------------------------------------------


def test_ruff_check_is_clean():
    result = _run_tool("ruff", "check", "--no-cache", "--output-format=concise", *RUFF_PATHS, "notebooks")
    assert result.returncode == 0, f"ruff check failed:\n{result.stdout}{result.stderr}"


def test_ruff_format_is_clean():
    result = _run_tool("ruff", "format", "--check", "--no-cache", *RUFF_PATHS)
    assert result.returncode == 0, (
        f"files ruff format would change (run `ruff format` on them):\n{result.stdout}{result.stderr}"
    )


@pytest.mark.slow
def test_mypy_is_clean():
    files = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]["files"]
    assert files == ["kbench"]  # the whole package; narrow it only with a reason
    result = _run_tool("mypy", "--config-file", "pyproject.toml")  # files and settings from [tool.mypy]
    assert result.returncode == 0, f"mypy over {files}:\n{result.stdout}{result.stderr}"


# --- the modules of kbench, parsed once ---------------------------------------------------------------------------


@dataclass
class Module:
    """One kbench source file: its dotted name, path and syntax tree."""

    name: str
    path: Path
    tree: ast.Module
    is_package: bool
    # local name -> dotted target ("kbench.sim.engine" for a module, "kbench.sim.engine.Engine" for a name in one)
    bindings: dict[str, str] = field(default_factory=dict)

    @property
    def rel(self) -> str:
        return str(self.path.relative_to(ROOT))


def _module_name(path: Path) -> tuple[str, bool]:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def _load_modules() -> dict[str, Module]:
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        name, is_package = _module_name(path)
        modules[name] = Module(name, path, ast.parse(path.read_text(), str(path)), is_package)
    for module in modules.values():
        module.bindings = _bindings(module, modules)
    return modules


def _absolute(module: Module, node: ast.ImportFrom) -> str:
    """The absolute module an ``from ... import`` names, relative imports resolved."""
    if not node.level:
        return node.module or ""
    base = module.name.split(".")
    if not module.is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


@dataclass(frozen=True)
class Import:
    """One imported name: the line, the kbench module it loads, and the dotted name it binds."""

    line: int
    target: str  # the kbench module the import loads (an edge of the import graph)
    qualified: str  # what the local name refers to: a module, or module.attribute
    local: str  # the local name bound
    deferred: bool  # inside a function (or under TYPE_CHECKING)


def _imports(module: Module, modules: dict[str, Module]) -> Iterator[Import]:
    """Every import of a kbench module in ``module``, at any depth."""
    deferred_nodes = {id(n) for f in ast.walk(module.tree) if _defers(f) for n in ast.walk(f) if n is not f}
    for node in ast.walk(module.tree):
        deferred = id(node) in deferred_nodes
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] != "kbench":
                    continue
                local = alias.asname or alias.name.split(".")[0]
                qualified = alias.name if alias.asname else alias.name.split(".")[0]
                yield Import(node.lineno, _nearest_module(alias.name, modules), qualified, local, deferred)
        elif isinstance(node, ast.ImportFrom):
            source = _absolute(module, node)
            if source.split(".")[0] != "kbench":
                continue
            for alias in node.names:
                qualified = f"{source}.{alias.name}"
                target = qualified if qualified in modules else _nearest_module(source, modules)
                yield Import(node.lineno, target, qualified, alias.asname or alias.name, deferred)


def _defers(node: ast.AST) -> bool:
    """True for a function body or an ``if TYPE_CHECKING:`` block: imports inside it run later or never."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return True
    if isinstance(node, ast.If):
        test = node.test
        return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
            isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
        )
    return False


def _nearest_module(dotted: str, modules: dict[str, Module]) -> str:
    parts = dotted.split(".")
    while parts and ".".join(parts) not in modules:
        parts.pop()
    return ".".join(parts)


def _bindings(module: Module, modules: dict[str, Module]) -> dict[str, str]:
    """Names the module binds by importing kbench modules or names from them (a top-level import wins over one
    inside a function that binds the same name)."""
    imports = sorted(_imports(module, modules), key=lambda imp: not imp.deferred)  # deferred first, then overridden
    return {imp.local: imp.qualified for imp in imports}


MODULES = _load_modules()


# --- docstrings ---------------------------------------------------------------------------------------------------


def _decorator_names(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> set[str]:
    names = set()
    for dec in node.decorator_list:
        target = dec.func if isinstance(dec, ast.Call) else dec
        if isinstance(target, ast.Name):
            names.add(target.id)
        elif isinstance(target, ast.Attribute):
            names.add(target.attr)
    return names


def _resolve(module: Module, dotted: str, depth: int = 0) -> tuple[str, str] | None:
    """Follow ``dotted`` (a name in ``module``) to ("kbench module", "ClassName") or ("external", "dotted.path")."""
    head, _, rest = dotted.partition(".")
    if head in module.bindings:
        full = module.bindings[head] + (f".{rest}" if rest else "")
    elif any(isinstance(n, ast.ClassDef) and n.name == head for n in module.tree.body):
        return module.name, dotted
    else:
        for node in module.tree.body:  # plain `import enum` / `from enum import Enum`
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if (alias.asname or alias.name.split(".")[0]) == head:
                        return "external", (alias.name if alias.asname else head) + (f".{rest}" if rest else "")
            if isinstance(node, ast.ImportFrom) and not node.level and node.module:
                for alias in node.names:
                    if (alias.asname or alias.name) == head:
                        return "external", f"{node.module}.{alias.name}" + (f".{rest}" if rest else "")
        return None
    owner = _nearest_module(full, MODULES)
    attr = full[len(owner) + 1 :]
    if not attr or depth > 5:
        return None
    if attr in {n.name for n in MODULES[owner].tree.body if isinstance(n, ast.ClassDef)}:
        return owner, attr
    return _resolve(MODULES[owner], attr, depth + 1)


def _class_def(module_name: str, name: str) -> ast.ClassDef | None:
    for node in MODULES[module_name].tree.body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            return node
    return None


def _external_doc(dotted: str, method: str) -> bool:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for part in parts[cut:]:
                obj = getattr(obj, part)
            return bool(inspect.getdoc(getattr(obj, method, None)))
        except AttributeError:
            return False
    return False


def _base_documents(module: Module, cls: ast.ClassDef, method: str) -> bool:
    """True when a base class of ``cls`` (in kbench or outside it) has a documented ``method``."""
    for base in cls.bases:
        if isinstance(base, ast.Subscript):  # Generic[T], Mapping[str, int]
            base = base.value
        found = _resolve(module, ast.unparse(base))
        if found is None:
            continue
        owner, name = found
        if owner == "external":
            documented = _external_doc(name, method)
        else:
            documented = _kbench_doc(owner, name, method)
        if documented:
            return True
    return False


def _kbench_doc(owner: str, name: str, method: str) -> bool:
    """True when kbench class ``owner.name``, or one of its bases, has a documented ``method``."""
    base_def = _class_def(owner, name)
    if base_def is None:
        return False
    for node in base_def.body:
        if (
            isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.name == method
            and ast.get_docstring(node)
        ):
            return True
    return _base_documents(MODULES[owner], base_def, method)


def _exempt_method(module: Module, cls: ast.ClassDef, node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    decorators = _decorator_names(node)
    if decorators & {"overload", "override", "setter", "deleter"}:
        return True
    return _base_documents(module, cls, node.name)


def _public_defs(module: Module, body: list[ast.stmt], owner: ast.ClassDef | None, prefix: str) -> Iterator[str]:
    """Qualified names of public definitions in ``body`` that lack a docstring."""
    for node in body:
        if isinstance(node, (ast.If, ast.Try)):
            yield from _public_defs(module, node.body + node.orelse, owner, prefix)
            continue
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        if node.name.startswith("_"):  # private, or a dunder method
            continue
        qualified = f"{prefix}{node.name}"
        if isinstance(node, ast.ClassDef):
            if not ast.get_docstring(node):
                yield f"class {qualified}"
            yield from _public_defs(module, node.body, node, f"{qualified}.")
        elif not ast.get_docstring(node) and not (owner is not None and _exempt_method(module, owner, node)):
            yield f"{'method' if owner else 'function'} {qualified}"


def missing_docstrings(module: Module) -> list[str]:
    """What in ``module`` needs a docstring and has none.

    Every module (a package's ``__init__.py`` is its docstring) and every public function, class and method,
    private modules' included (``_kernels.py`` functions are called from their package). Exempt, as in
    numpydoc, Sphinx autodoc and ruff's pydocstyle rules: names starting with ``_`` (so dunder methods too),
    nested functions, methods of private classes, ``@overload`` signatures, property setters and deleters,
    ``@override`` methods, and methods overriding a base class's documented method (``inspect.getdoc`` and
    ``help()`` show the inherited docstring).
    """
    missing = [] if ast.get_docstring(module.tree) else ["module docstring"]
    return missing + list(_public_defs(module, module.tree.body, None, ""))


def test_every_public_name_in_kbench_has_a_docstring():
    failures = [f"{m.rel}: {what}" for m in MODULES.values() for what in missing_docstrings(m)]
    assert not failures, f"{len(failures)} definitions without a docstring:\n" + "\n".join(failures)


# --- private names across modules ---------------------------------------------------------------------------------


def _private_import(imp: Import) -> str | None:
    """Why importing ``imp`` reaches a private name of another module, or None."""
    module_path = imp.qualified.split(".")
    for i, part in enumerate(module_path[1:], start=1):
        if not _is_private(part):
            continue
        is_last = i == len(module_path) - 1
        if part in KERNEL_MODULES and ".".join(module_path[: i + 1]) in MODULES:
            continue  # the compiled-kernels module itself, imported as a module or a name imported from it
        if is_last and imp.qualified not in MODULES:
            return f"imports private name {part} from {'.'.join(module_path[:i])}"
        return f"imports private module {'.'.join(module_path[: i + 1])}"
    return None


def _local_names(function: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> set[str]:
    args = function.args
    names = {a.arg for a in args.posonlyargs + args.args + args.kwonlyargs}
    names |= {a.arg for a in (args.vararg, args.kwarg) if a is not None}
    body = function.body if isinstance(function.body, list) else [function.body]
    for stmt in body:
        for node in ast.walk(stmt):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
    return names


def _module_attribute_reads(module: Module) -> Iterator[tuple[int, str, str]]:
    """(line, module, attribute) for every ``module._attr`` read through a name bound to a kbench module."""

    def visit(node: ast.AST, shadowed: frozenset[str]) -> Iterator[tuple[int, str, str]]:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            shadowed = shadowed | _local_names(node)
        if isinstance(node, ast.Attribute):
            chain = _dotted(node)
            if chain is not None:
                yield from _private_in_chain(node.lineno, chain, shadowed)
                return
        for child in ast.iter_child_nodes(node):
            yield from visit(child, shadowed)

    def _private_in_chain(line: int, chain: list[str], shadowed: frozenset[str]) -> Iterator[tuple[int, str, str]]:
        head = chain[0]
        if head in shadowed or head not in module.bindings:
            return
        current = module.bindings[head]
        for attr in chain[1:]:
            if current not in MODULES:
                return
            if _is_private(attr) and not (attr in KERNEL_MODULES and f"{current}.{attr}" in MODULES):
                yield line, current, attr
                return
            current = f"{current}.{attr}"

    yield from visit(module.tree, frozenset())


def _dotted(node: ast.AST) -> list[str] | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return [node.id, *reversed(parts)]


def private_reaches(module: Module) -> list[str]:
    """Every place ``module`` imports or reads a private name of another kbench module."""
    found = []
    for imp in _imports(module, MODULES):
        why = _private_import(imp)
        if why and imp.target != module.name:
            found.append(f"{module.rel}:{imp.line}: {why}")
    for line, owner, attr in _module_attribute_reads(module):
        if owner != module.name:
            found.append(f"{module.rel}:{line}: reads private name {owner}.{attr}")
    return found


def test_no_private_names_reached_across_kbench_modules():
    failures = [line for m in MODULES.values() for line in private_reaches(m)]
    assert not failures, (
        f"{len(failures)} private names reached across modules (make the name public where other modules use it, "
        "or move the code):\n" + "\n".join(failures)
    )


# --- import cycles ------------------------------------------------------------------------------------------------


def import_graph() -> dict[str, dict[str, list[str]]]:
    """module -> imported kbench module -> where ("line 12", "line 40 (deferred)"), every import counted."""
    graph: dict[str, dict[str, list[str]]] = {name: {} for name in MODULES}
    for module in MODULES.values():
        for imp in _imports(module, MODULES):
            if imp.target and imp.target != module.name:
                where = f"line {imp.line}" + (" (deferred)" if imp.deferred else "")
                lines = graph[module.name].setdefault(imp.target, [])
                if where not in lines:  # one entry for `from x import a, b`
                    lines.append(where)
    return graph


def strongly_connected(graph: dict[str, dict[str, list[str]]]) -> list[list[str]]:
    """Tarjan's strongly connected components of more than one module, each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10 * len(graph) + 100))
    try:
        for v in sorted(graph):
            if v not in index:
                connect(v)
    finally:
        sys.setrecursionlimit(limit)
    return sorted(components)


def test_no_import_cycles_between_kbench_modules():
    graph = import_graph()
    failures = []
    for component in strongly_connected(graph):
        members = set(component)
        failures.append(f"cycle among {len(component)} modules: {', '.join(component)}")
        for source in component:
            for target, where in sorted(graph[source].items()):
                if target in members:
                    failures.append(f"    {MODULES[source].rel} imports {target} ({', '.join(where)})")
    assert not failures, "import cycles between kbench modules:\n" + "\n".join(failures)


# --- the checks check what they claim -----------------------------------------------------------------------------


def _fake(source: str, name: str = "kbench.fake.mod") -> Module:
    module = Module(name, PACKAGE / "fake" / "mod.py", ast.parse(source), False)
    module.bindings = _bindings(module, MODULES)
    return module


def test_docstring_check_names_what_is_missing_and_exempts_documented_overrides():
    module = _fake(
        '"""doc"""\n'
        "from kbench.sim.dist import Distribution\n"
        "def f(): pass\n"
        "def _g(): pass\n"
        "class C:\n"
        "    def m(self): pass\n"
        "    def __repr__(self): return ''\n"
        "class D(Distribution):\n"
        '    """doc"""\n'
        "    def mean(self): return 0.0\n"
        "    def extra(self): pass\n"
    )
    assert missing_docstrings(module) == ["function f", "class C", "method C.m", "method D.extra"]


def test_private_check_allows_kernel_modules_and_flags_private_names():
    module = _fake(
        '"""doc"""\n'
        "from kbench.etcd import _kernels as k\n"
        "from kbench.sim._kernels import splitmix_unit\n"
        "from kbench.sim.engine import _label\n"
        "from kbench.sim import engine\n"
        "def f(x):\n"
        "    engine._PENDING\n"
        "    k.scan\n"
        "def g(engine):\n"
        "    return engine._heap\n"
    )
    assert private_reaches(module) == [
        "kbench/fake/mod.py:4: imports private name _label from kbench.sim.engine",
        "kbench/fake/mod.py:7: reads private name kbench.sim.engine._PENDING",
    ]


def test_cycle_finder_finds_a_cycle_and_its_edges():
    graph = {"a": {"b": ["line 1"]}, "b": {"c": ["line 2 (deferred)"]}, "c": {"a": ["line 3"]}, "d": {"a": ["x"]}}
    assert strongly_connected(graph) == [["a", "b", "c"]]


# --- hypothesis deadlines ------------------------------------------------------------------------------------------


def _called(node: ast.expr) -> str | None:
    """The name a decorator calls: ``given`` for ``given(...)`` and ``hypothesis.given(...)``."""
    if not isinstance(node, ast.Call):
        return None
    func = node.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None


def _no_deadline(node: ast.expr, names: dict[str, ast.expr]) -> bool:
    """True for ``settings(..., deadline=None, ...)``, or a module-level name bound to one."""
    if isinstance(node, ast.Name) and node.id in names:
        node = names[node.id]
    return (
        isinstance(node, ast.Call)
        and _called(node) == "settings"
        and any(
            k.arg == "deadline" and isinstance(k.value, ast.Constant) and k.value.value is None for k in node.keywords
        )
    )


def deadline_bound_tests(source: str, path: str) -> list[str]:
    """The ``@given`` tests of a test module that keep hypothesis' 200 ms deadline: an example that a loaded host
    stalls past it fails as Flaky however right the code is, so every property test sets ``deadline=None``."""
    tree = ast.parse(source)
    names = {
        target.id: node.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    bound = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        given = any(_called(d) == "given" for d in node.decorator_list)
        if given and not any(_no_deadline(d, names) for d in node.decorator_list):
            bound.append(f"{path}:{node.lineno}: {node.name}")
    return bound


def test_every_property_test_runs_without_a_deadline():
    bound = [
        line
        for path in sorted((ROOT / "tests").rglob("*.py"))
        for line in deadline_bound_tests(path.read_text(), str(path.relative_to(ROOT)))
    ]
    assert not bound, "@given tests without settings(deadline=None):\n" + "\n".join(bound)


def test_deadline_check_accepts_settings_and_named_settings_and_flags_the_rest():
    source = (
        "from hypothesis import given, settings\n"
        "SLOW = settings(max_examples=5, deadline=None)\n"
        "TIMED = settings(deadline=200)\n"
        "@settings(deadline=None)\n"
        "@given(x)\n"
        "def test_a(x): pass\n"
        "@SLOW\n"
        "@given(x)\n"
        "def test_b(x): pass\n"
        "@given(x)\n"
        "def test_c(x): pass\n"
        "@TIMED\n"
        "@given(x)\n"
        "def test_d(x): pass\n"
        "def test_e(): pass\n"
        "@hypothesis.settings(deadline=None)\n"
        "@hypothesis.given(x)\n"
        "def test_f(x): pass\n"
        "@hypothesis.given(x)\n"
        "def test_g(x): pass\n"
    )
    assert deadline_bound_tests(source, "t.py") == ["t.py:11: test_c", "t.py:14: test_d", "t.py:20: test_g"]
