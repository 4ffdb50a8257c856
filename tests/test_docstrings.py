"""Public definitions of the layers people read first (train/, data/, mmer_kernels/) are
documented, and every public function that raises says so in a ``Raises:`` section."""

import ast
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ("mmer_jax/train", "mmer_jax/data", "mmer_kernels")


def _public_defs(tree: ast.Module):
    """(qualified name, node) of public module-level functions/classes and their public methods."""
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_"):
            yield node.name, node
            if isinstance(node, ast.ClassDef):
                for item in node.body:
                    if isinstance(item, ast.FunctionDef) and not item.name.startswith("_"):
                        yield f"{node.name}.{item.name}", item


def _raises_directly(fn: ast.FunctionDef) -> bool:
    """True when the function's own body (not a nested function) has a ``raise X`` (an abstract
    method's ``raise NotImplementedError`` does not count)."""
    stack = list(fn.body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Raise) and node.exc is not None:
            name = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            if not (isinstance(name, ast.Name) and name.id == "NotImplementedError"):
                return True
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue
        stack.extend(ast.iter_child_nodes(node))
    return False


def _files():
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            if not path.name.startswith("_") or path.name == "__init__.py":
                yield path


@pytest.mark.parametrize("path", list(_files()), ids=lambda p: str(p.relative_to(REPO)))
def test_public_definitions_have_docstrings_and_raises_sections(path):
    tree = ast.parse(path.read_text())
    missing, no_raises = [], []
    for name, node in _public_defs(tree):
        doc = ast.get_docstring(node)
        if not doc:
            missing.append(name)
        elif isinstance(node, ast.FunctionDef) and _raises_directly(node) and "Raises:" not in doc:
            no_raises.append(name)
    assert not missing, f"no docstring: {missing}"
    assert not no_raises, f"raises without a 'Raises:' section: {no_raises}"
