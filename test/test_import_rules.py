"""The README's import rules, read from the source: only nodes/ imports rclpy, and core/ and tools/
load without it (tools reach nodes/ only inside functions, when a command needs the live graph)."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from bharnet_ros.core.paths import CHECKOUT

PACKAGE = CHECKOUT / "bharnet_ros"
ROS_FREE = ("core", "tools")  # importable without rclpy


def modules(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (PACKAGE / folder).rglob("*.py"))


def imported(node: ast.AST) -> Iterator[str]:
    """Names of the modules an import statement imports."""
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
        yield node.module


def import_time_imports(tree: ast.AST) -> Iterator[str]:
    """The imports that run when the module is imported: everything outside function bodies."""
    for child in ast.iter_child_nodes(tree):
        if not isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            yield from imported(child)
            yield from import_time_imports(child)


def is_under(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def all_imports(path: Path) -> Iterator[str]:
    """Every module a file imports, inside functions too."""
    for node in ast.walk(ast.parse(path.read_text())):
        yield from imported(node)


def test_only_nodes_imports_rclpy():
    outside = [p for p in PACKAGE.rglob("*.py") if "nodes" not in p.relative_to(PACKAGE).parts]
    offenders = [
        f"{path.relative_to(CHECKOUT)}: {name}"
        for path in outside
        for name in all_imports(path)
        if is_under(name, "rclpy")
    ]
    assert offenders == []


def test_core_and_tools_do_not_import_nodes_at_import_time():
    offenders = [
        f"{path.relative_to(CHECKOUT)}: {name}"
        for path in modules(*ROS_FREE)
        for name in import_time_imports(ast.parse(path.read_text()))
        if is_under(name, "bharnet_ros.nodes") or is_under(name, "rclpy")
    ]
    assert offenders == []


def test_core_never_imports_nodes_or_tools():
    offenders = [
        f"{path.relative_to(CHECKOUT)}: {name}"
        for path in modules("core")
        for name in all_imports(path)
        if is_under(name, "bharnet_ros.nodes") or is_under(name, "bharnet_ros.tools")
    ]
    assert offenders == []


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(CHECKOUT).with_suffix("").parts).removesuffix(".__init__")


def test_core_and_tools_load_without_rclpy():
    """What the ast checks cannot see (a chain of imports), checked by importing every module for real;
    ``nodes.bag_eval`` too, which the tools import for the real-time mode and which loads rclpy late."""
    names = [module_name(p) for p in modules(*ROS_FREE)] + ["bharnet_ros.nodes.bag_eval"]
    script = "import importlib, sys\nfor name in sys.argv[1:]: importlib.import_module(name)\n"
    script += "print(sorted(m for m in sys.modules if m.split('.')[0] == 'rclpy'))"
    done = subprocess.run(
        [sys.executable, "-c", script, *names], cwd=CHECKOUT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_runtime_path_never_imports_torch():
    """core/ and nodes/ run on a robot that installed requirements-runtime.txt only (no torch):
    every module is imported for real, so a chain of imports that reaches torch is caught too."""
    names = [module_name(p) for p in modules("core", "nodes")]
    script = "import importlib, sys\nfor name in sys.argv[1:]: importlib.import_module(name)\n"
    script += "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch'))"
    done = subprocess.run(
        [sys.executable, "-c", script, *names], cwd=CHECKOUT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
