"""Packaging: light core dependencies, the extras, the type marker and the stub of the compiled core."""
from __future__ import annotations

import ast
import inspect
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import mlbs

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "python" / "mlbs"

#: Import names of the core dependencies (pyproject.toml [project] dependencies).
CORE_IMPORTS = {"numpy", "scipy", "numba", "llvmlite", "faiss"}
#: Subpackages and modules that may need the extras at import time.
EXTRA_PARTS = {"experiments", "models", "torch", "cli.py"}
HEAVY = ("torch", "tqdm", "matplotlib")


def pyproject() -> dict:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)


def requirement_names(requirements: list[str]) -> set[str]:
    import re

    return {re.split(r"[<>=!~ \[;]", r, maxsplit=1)[0].lower() for r in requirements}


def test_core_dependencies_are_the_light_set_and_numba_is_bounded():
    project = pyproject()["project"]
    core = project["dependencies"]
    assert requirement_names(core) == {"numpy", "scipy", "numba", "llvmlite", "faiss-cpu"}
    for name in ("numba", "llvmlite"):   # the code uses Numba internals (intrinsic, cgutils, llvmlite.ir)
        (spec,) = [r for r in core if requirement_names([r]) == {name}]
        assert "<" in spec and ">=" in spec, spec
    extras = {k: requirement_names(v) for k, v in project["optional-dependencies"].items()}
    assert "torch" in extras["torch"]
    assert {"torch", "tqdm", "matplotlib"} <= extras["experiments"]
    assert "ray" in extras["cluster"]
    assert {"pytest", "hypothesis", "scikit-learn"} <= extras["test"]


def core_modules() -> list[Path]:
    return [p for p in sorted(PACKAGE.rglob("*.py"))
            if p.relative_to(PACKAGE).parts[0] not in EXTRA_PARTS]


def import_time_imports(tree: ast.Module):
    """(line, top-level module name) of the imports run when the module is imported: those outside
    functions and outside ``if TYPE_CHECKING:``."""
    def visit(nodes):
        for node in nodes:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                yield from visit(node.orelse)
                continue
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield node.lineno, alias.name.split(".")[0]
            elif isinstance(node, ast.ImportFrom):
                yield node.lineno, "mlbs" if node.level else (node.module or "").split(".")[0]
            yield from visit(ast.iter_child_nodes(node))
    yield from visit(tree.body)


def test_core_modules_import_only_the_standard_library_and_core_dependencies():
    allowed = CORE_IMPORTS | set(sys.stdlib_module_names) | {"mlbs"}
    modules = core_modules()
    assert {"selector.py", "metrics.py", "policies", "data"} <= {p.relative_to(PACKAGE).parts[0] for p in modules}
    offending = []
    for path in modules:
        for line, name in import_time_imports(ast.parse(path.read_text(), str(path))):
            if name not in allowed:
                offending.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    assert not offending, offending


def test_import_time_walker_sees_nested_imports():
    tree = ast.parse("import a\ntry:\n    import b.c\nexcept ImportError:\n    from d import e\n"
                     "if TYPE_CHECKING:\n    import f\ndef g():\n    import h\n")
    assert [name for _, name in import_time_imports(tree)] == ["a", "b", "d"]


def test_public_modules_import_without_torch_tqdm_matplotlib():
    """In a fresh interpreter where importing torch, tqdm or matplotlib fails, the public modules
    import and none of the three is loaded (scripts/check_core_only.sh checks the same in an
    environment that does not have them installed)."""
    code = f"""
import importlib.abc, sys
class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {HEAVY!r}:
            raise ImportError("refused: " + name)
sys.meta_path.insert(0, Refuse())
import mlbs, mlbs.policies, mlbs.selector, mlbs.metrics, mlbs.data
from mlbs.selector import BatchSelector
from mlbs.policies import Adaptive, Random
mlbs.WeightedIndex(4, seed=0)
print(sorted(m for m in sys.modules if m.split(".")[0] in {HEAVY!r}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"PYTHONPATH": str(Path(mlbs.__file__).resolve().parents[1]), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


# --------------------------------------------------------------------------- typing
def test_type_marker_and_core_stub_ship_in_the_package():
    assert (PACKAGE / "py.typed").is_file()
    assert (PACKAGE / "_core.pyi").is_file()
    assert pyproject()["tool"]["scikit-build"]["wheel"]["packages"] == ["python/mlbs"]


def stub_classes() -> dict[str, dict[str, list[str]]]:
    """{class: {method: parameter names without self}} of the public classes in ``_core.pyi``."""
    tree = ast.parse((PACKAGE / "_core.pyi").read_text())
    out = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            methods = {}
            for f in node.body:
                if isinstance(f, ast.FunctionDef):
                    a = f.args
                    methods[f.name] = [p.arg for p in a.posonlyargs + a.args + a.kwonlyargs][1:]
            out[node.name] = methods
    return out


def runtime_parameters(method) -> list[str]:
    """Parameter names (without self) from the signature line pybind11 writes into the docstring,
    e.g. ``draw(self: object, k: typing.SupportsInt, pressure: float) -> numpy.typing.NDArray``."""
    line = (method.__doc__ or "").splitlines()[0]
    params = line[line.index("(") + 1:line.rindex(") ->")]
    names, depth, start = [], 0, 0
    for pos, ch in enumerate(params + ","):
        if ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
        elif ch == "," and depth == 0:
            name = params[start:pos].split(":")[0].strip()
            start = pos + 1
            if name not in ("self", "*", "/"):
                names.append(name)
    return names


def stub_variables() -> dict[str, str]:
    """{name: annotation} of the module-level variables in ``_core.pyi``."""
    tree = ast.parse((PACKAGE / "_core.pyi").read_text())
    return {node.target.id: ast.unparse(node.annotation) for node in tree.body
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)}


def test_core_stub_matches_the_compiled_module():
    _core = pytest.importorskip("mlbs._core")
    stub, variables = stub_classes(), stub_variables()
    public = sorted(n for n in vars(_core) if not n.startswith("_"))
    assert sorted([*stub, *variables]) == public
    for name, annotation in variables.items():
        assert type(getattr(_core, name)).__name__ == annotation, name
    for cls_name, methods in stub.items():
        cls = getattr(_core, cls_name)
        runtime = {n for n in vars(cls) if not n.startswith("_")} | {"__init__", "__len__", "__getstate__",
                                                                     "__setstate__"}
        internal = {m for m in methods if m.startswith("_") and not m.startswith("__")}
        assert set(methods) - internal == runtime, cls_name
        assert all(hasattr(cls, m) for m in internal), cls_name
        for name, params in methods.items():
            attr = inspect.getattr_static(cls, name)
            if isinstance(attr, property) or name in ("__getstate__", "__setstate__"):
                continue
            assert params == runtime_parameters(getattr(cls, name)), f"{cls_name}.{name}"


def test_typed_modules_pass_mypy_and_type_user_code(tmp_path):
    """mypy finds no error in the fully annotated modules, and through the stub it types user code:
    the one wrong call in the snippet is the one error reported."""
    pytest.importorskip("mypy")
    user = tmp_path / "user_code.py"
    user.write_text("import numpy as np\nimport mlbs\nfrom mlbs import metrics\n\n"
                    "index = mlbs.WeightedIndex(10, seed=0)\n"
                    "batch: np.ndarray = index.draw_distinct(3)\n"
                    "value: float = metrics.macro_auc(np.zeros((2, 2)), np.ones((2, 2)))\n"
                    "details: metrics.AucResult = metrics.macro_auc(np.zeros((2, 2)), np.ones((2, 2)), "
                    "return_details=True)\n"
                    "index.draw('three')\n")
    out = subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "cache"), "--no-error-summary",
                          "--ignore-missing-imports", "--follow-imports=silent", "--disallow-untyped-defs",
                          "mlbs/__init__.py", "mlbs/metrics.py", "mlbs/typing.py", "mlbs/_core.pyi", str(user)],
                         capture_output=True, text=True, cwd=ROOT / "python")
    errors = [line for line in out.stdout.splitlines() if ": error:" in line]
    assert len(errors) == 1 and "user_code.py:9:" in errors[0] and '"draw"' in errors[0], out.stdout + out.stderr


def public_functions():
    """(name, function) of every public function and method of the policies, the selector and the
    metrics (constructors included)."""
    import mlbs.metrics
    import mlbs.policies
    import mlbs.selector

    objects = [getattr(mlbs.policies, n) for n in mlbs.policies.__all__] + [mlbs.selector.BatchSelector]
    objects += [getattr(mlbs.metrics, n) for n in mlbs.metrics.__all__]
    for obj in objects:
        if inspect.isfunction(obj):
            yield obj.__qualname__, obj
        elif inspect.isclass(obj) and not issubclass(obj, Warning):
            for name, member in vars(obj).items():
                if name.startswith("_") and name != "__init__":
                    continue
                member = getattr(member, "__func__", getattr(member, "fget", member))
                if inspect.isfunction(member):
                    yield member.__qualname__, member


def test_public_api_is_annotated():
    unannotated = []
    for name, f in public_functions():
        sig = inspect.signature(f)
        missing = [p.name for p in sig.parameters.values()
                   if p.name not in ("self", "cls") and p.annotation is inspect.Parameter.empty]
        if sig.return_annotation is inspect.Signature.empty and f.__name__ != "__init__":
            missing.append("return")
        if missing:
            unannotated.append(f"{name}: {missing}")
    assert not unannotated, unannotated
    assert {"BatchSelector.observe", "Adaptive.__init__", "macro_auc"} <= {name for name, _ in public_functions()}
