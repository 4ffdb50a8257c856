"""The architecture is checked, not described: import layering, no import cycle, ruff, and the one
undeclared-upstream dependency we declare for someone else.

The contracts live in pyproject.toml (``[tool.importlinter]``); ``lint-imports`` prints which import
breaks which contract, and the failure message here is that output.
"""

import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROOTS = ("mmer_jax", "mmer_kernels", "data_prep", "experiments", "mmer_registry")


def _run(*args, timeout=300):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(list(args), cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=timeout)
    return done.returncode, f"$ {' '.join(args[2:] if args[1] == '-c' else args)}\n" \
                            f"{done.stdout}{done.stderr}"


def _contracts():
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        tomllib = pytest.importorskip("tomli")
    with open(os.path.join(REPO, "pyproject.toml"), "rb") as f:
        cfg = tomllib.load(f)["tool"]["importlinter"]
    return cfg, {c["id"]: c for c in cfg["contracts"]}


def test_import_contracts_hold():
    pytest.importorskip("importlinter", reason="install the dev extra: pip install -e .[dev]")
    code = "import sys; from importlinter.cli import lint_imports_command as c; c(['--no-cache'])"
    rc, out = _run(sys.executable, "-c", code)
    assert rc == 0, out


def test_contracts_cover_the_declared_architecture():
    """Guards the contracts themselves: removing or reordering a layer must fail here."""
    cfg, contracts = _contracts()
    assert tuple(cfg["root_packages"]) == ROOTS and cfg["include_external_packages"]
    layers = [[m.strip() for m in layer.replace(":", "|").split("|")]
              for layer in contracts["layers"]["layers"]]
    order = {m.strip("()"): i for i, layer in enumerate(layers) for m in layer}
    chain = ["mmer_jax.cli", "mmer_jax.reproduce", "mmer_jax.train", "mmer_jax.models",
             "mmer_kernels", "mmer_registry"]
    assert [order[m] for m in chain] == sorted(order[m] for m in chain)
    assert len(set(order[m] for m in chain)) == len(chain)
    assert order["mmer_jax.models"] == order["mmer_jax.data"]
    assert "|" in contracts["layers"]["layers"][order["mmer_jax.models"]]  # independent
    assert order["mmer_jax.bench"] == order["mmer_jax.reproduce"] == order["mmer_jax.serve"]
    for low in ("mmer_jax.schema", "mmer_jax.errors", "mmer_jax.io_utils"):
        assert order[low] > order["mmer_jax.models"], low
    assert order["mmer_jax.train"] < order["mmer_jax.config"] < order["mmer_jax.models"]
    forbidden = {c["id"]: c for c in contracts.values() if c["type"] == "forbidden"}
    assert any({"data_prep", "mmer_kernels"} <= set(c["source_modules"])
               and "mmer_jax" in c["forbidden_modules"] for c in forbidden.values())
    assert any(c["source_modules"] == ["mmer_kernels"] and {"flax", "mmer_jax", "data_prep"}
               <= set(c["forbidden_modules"]) for c in forbidden.values())
    assert any(c["source_modules"] == ["mmer_registry"]
               and set(ROOTS) - {"mmer_registry"} <= set(c["forbidden_modules"])
               for c in forbidden.values())
    placed = contracts["mmer_jax-placed"]
    assert placed["containers"] == ["mmer_jax"] and placed["exhaustive"] is True
    assert contracts["private-modules"]["type"] == "private_modules"
    assert contracts["acyclic"]["type"] == "acyclic_siblings"
    assert set(contracts["acyclic"]["ancestors"]) == set(ROOTS)


def _cycles(edges):
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index, low, on_stack, stack, out, counter = {}, {}, set(), [], [], [0]
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, it = work[-1]
            nxt = next(it, None)
            if nxt is not None:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter[0]
                    counter[0] += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(edges.get(nxt, ())))))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
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


def test_no_import_cycle_between_modules():
    """Module-level cycles anywhere, also through a package's ``__init__`` (which the
    acyclic_siblings contract does not see) and across root packages. Imports inside functions
    count: they hide a cycle, they do not remove it."""
    grimp = pytest.importorskip("grimp", reason="install the dev extra: pip install -e .[dev]")
    sys.path.insert(0, REPO)
    try:
        graph = grimp.build_graph(*ROOTS, cache_dir=None)
    finally:
        sys.path.remove(REPO)
    edges = {m: graph.find_modules_directly_imported_by(m) for m in graph.modules}
    cycles = _cycles(edges)
    lines = []
    for comp in cycles:
        members = set(comp)
        lines.append(" <-> ".join(comp))
        for m in comp:
            for imported in sorted(edges[m] & members):
                for d in graph.get_import_details(importer=m, imported=imported):
                    lines.append(f"    {m}:{d['line_number']}: {d['line_contents']}")
    assert not cycles, "import cycles:\n" + "\n".join(lines)


def test_cycle_finder_finds_cycles():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_ruff_is_clean():
    pytest.importorskip("ruff", reason="install the dev extra: pip install -e .[dev]")
    rc, out = _run(sys.executable, "-m", "ruff", "check", "--no-cache", ".")
    assert rc == 0, out


def test_tensorflow_datasets_needs_importlib_resources():
    """pyproject declares importlib_resources only because tensorflow_datasets 4.9.10 imports it
    (lazily, when a builder's ``code_path`` is resolved) without declaring it; when this fails
    with "no longer imports", that declaration can go."""
    code = ("import sys, tensorflow_datasets as tfds; "
            "assert tfds.builder_cls('mnist').code_path.name == 'mnist.py'; "
            "sys.exit(0 if 'importlib_resources' in sys.modules else 3)")
    rc, out = _run(sys.executable, "-c", code)
    assert rc != 3, "tensorflow_datasets no longer imports importlib_resources: undeclare it"
    assert rc == 0, out
