"""What the lent GPU machine has, and an import blocker that makes any machine look like it.

The GPU machine (an H100 or H200, Python 3.12, jax 0.11.2, no network) holds the packages of
``MACHINE_PACKAGES`` (import names of the pip list its image was read with) and nothing else:
no tensorflow-datasets, librosa, grain, array_record, soundfile, av, ml_collections or
tensorboardX. ``CARRIED_WHEELS`` are pure-Python wheels ``benchmarks/gpu_check.sh`` brings in
``.whl/`` (``benchmarks/gpu_wheels.sh`` downloads them here). Every module a
``benchmarks/gpu_check.py`` step imports must come from these, the standard library or this
repository.

``MMER_GPU_MACHINE_ONLY=1`` with ``benchmarks/gpu_rehearsal`` on ``PYTHONPATH`` installs
:class:`Blocker` at start-up (its ``sitecustomize.py``): any other top-level module that this
repository's code asks for is not found, as there (``try: import x / except ImportError``
fallbacks keep working); :data:`KNOWN_ABSENT` is refused whoever asks; each refused name is
appended to ``$MMER_GPU_BLOCKED_LOG`` when set.
"""

from __future__ import annotations

import ast
import importlib.abc
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Import names of the image's packages (KINDS.md, "Python packages already there", 2026-11-17).
MACHINE_PACKAGES = frozenset("""
absl accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated_doc anyio attr attrs
botorch build certifi charset_normalizer chex click cloudpickle cmake colorama contourpy coverage
cuda cupy cupyx cupy_backends cycler Cython cython pyximport diffrax e3nn einops equinox etils
execnet filelock flatbuffers flax fontTools formulaic frozenlist fsspec gpytorch grpc h11 h5py
hf_xet httpcore httpx huggingface_hub humanize hypothesis idna imageio iniconfig interface_meta
jax jax_plugins jax_cuda13_plugin jax_cuda13_pjrt jaxlib jaxtyping jinja2 joblib kiwisolver
lazy_loader lightning lightning_utilities linear_operator lineax llvmlite lxml markdown
markdown_it markupsafe matplotlib mpl_toolkits pylab mdurl mesonbuild ml_dtypes mpi4py mpmath
msgpack multidict multipledispatch mypy_extensions nanobind narwhals networkx ninja numba
numba_cuda numpy numpyro nvidia onnx onnx_ir onnxruntime onnxscript cv2 optax opt_einsum
opt_einsum_fx optimistix orbax packaging pandas pathspec patsy peft PIL pip pluggy portalocker
prometheus_client propcache google psutil pyarrow pybind11 cpuinfo pygments pyparsing
pyproject_hooks pyre_extensions pytest py pytest_benchmark pytest_cov pytest_mock pytest_timeout
xdist dateutil pytorch_lightning yaml regex requests rich sacrebleu safetensors scikit_build_core
skimage sklearn scipy seaborn sentencepiece sentence_transformers setuptools pkg_resources
shellingham simplejson six sortedcontainers statsmodels sympy tabulate tensorboard
tensorboard_data_server tensorstore threadpoolctl tifffile tiktoken timm tokenizers toolz tlz
torch torchgen functorch torchaudio torchdiffeq torch_geometric torchmetrics torchvision tqdm
transformers treescope triton typer typing_extensions typing_inspect urllib3 uvloop
wadler_lindig werkzeug wheel wrapt xarray xxhash yarl zipp
""".split())

# Pure-Python wheels gpu_check.sh installs from .whl/ (name==version, as pip takes them).
CARRIED_WHEELS = ("ml_collections==1.1.0",)
CARRIED_PACKAGES = frozenset({"ml_collections"})

# This repository's importable roots: its packages, and the modules the benchmarks and the
# kernel tests put on sys.path themselves (every .py file of benchmarks/ and tests/kernels/).
REPO_ROOTS = frozenset({"mmer_jax", "mmer_kernels", "data_prep", "experiments", "mmer_registry",
                        "benchmarks", "tests", "conftest", "sitecustomize"} | {
    f[:-3] for d in ("benchmarks", os.path.join("tests", "kernels"))
    if os.path.isdir(os.path.join(REPO, d))
    for f in os.listdir(os.path.join(REPO, d)) if f.endswith(".py")})

# Named in the issue as absent there; a test checks they stay outside the allowed set.
KNOWN_ABSENT = ("tensorflow_datasets", "tensorflow", "librosa", "grain", "array_record",
                "soundfile", "av", "tensorboardX")


def allowed(top: str) -> bool:
    """Whether top-level module ``top`` can be imported on the GPU machine (with the carried
    wheels). Private names (``_pytest``, ``_yaml``, ...) are extension internals of allowed
    packages or of the standard library."""
    return (top in sys.stdlib_module_names or top in MACHINE_PACKAGES
            or top in CARRIED_PACKAGES or top in REPO_ROOTS or top.startswith("_")
            or top == "__main__")


def _asked_from_repo() -> bool:
    """Whether the import being resolved was asked for by this repository's code (the first
    caller outside importlib). A third-party package's own imports are its installation's
    business: its version there brings its dependencies (this machine's newer huggingface_hub
    imports httpx2, which the machine's does not); only :data:`KNOWN_ABSENT` is refused to it."""
    frame = sys._getframe(2)
    while frame is not None:
        name = frame.f_code.co_filename
        if not (name.startswith("<frozen") or os.sep + "importlib" + os.sep in name):
            return name.startswith(REPO + os.sep) and os.sep + "site-packages" + os.sep not in name
        frame = frame.f_back
    return False


class Blocker(importlib.abc.MetaPathFinder):
    """The finders of ``sys.meta_path`` behind a gate: a top-level module :func:`allowed`
    refuses is not found (``import`` raises ModuleNotFoundError, ``importlib.util.find_spec``
    returns None), as on a machine without it."""

    def __init__(self, finders: list, log: str | None = None):
        self.finders, self.log = list(finders), log

    def find_spec(self, fullname, path=None, target=None):
        top = fullname.partition(".")[0]
        if top in KNOWN_ABSENT or (not allowed(top) and _asked_from_repo()):
            if self.log:
                with open(self.log, "a") as f:
                    f.write(f"{fullname}\n")
            return None
        for finder in self.finders:
            find = getattr(finder, "find_spec", None)
            spec = find(fullname, path, target) if find else None
            if spec is not None:
                return spec
        return None

    def find_distributions(self, *args, **kwargs):
        """importlib.metadata's look-up, passed through (package metadata stays visible)."""
        for finder in self.finders:
            if hasattr(finder, "find_distributions"):
                yield from finder.find_distributions(*args, **kwargs)

    def invalidate_caches(self):
        for finder in self.finders:
            if hasattr(finder, "invalidate_caches"):
                finder.invalidate_caches()


def install(log: str | None = None) -> Blocker:
    """Replaces ``sys.meta_path`` by a :class:`Blocker` over its finders; returns it.
    ``log``: a file each refused module name is appended to (default ``$MMER_GPU_BLOCKED_LOG``).
    """
    blocker = Blocker(sys.meta_path, log if log is not None
                      else os.environ.get("MMER_GPU_BLOCKED_LOG"))
    sys.meta_path[:] = [blocker]
    return blocker


def _imports(tree, module_level_only: bool):
    """(module name, level) of the import statements of an AST: all, or only those that run
    when the module is imported (function bodies left out, class bodies kept)."""
    stack = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Import):
            yield from ((a.name, 0) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            yield (node.module or "", node.level)
            yield from ((f"{node.module}.{a.name}" if node.module else a.name, node.level)
                        for a in node.names)  # `from pkg import submodule`
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            if not module_level_only:
                stack.extend(ast.iter_child_nodes(node))
        else:
            stack.extend(ast.iter_child_nodes(node))


def _repo_file(name: str, search: list[str]) -> str | None:
    """The repository file that module ``name`` is, found under ``search`` folders."""
    parts = name.split(".")
    for base in search:
        for path in (os.path.join(base, *parts) + ".py",
                     os.path.join(base, *parts, "__init__.py")):
            if os.path.isfile(path):
                return path
    return None


def import_closure(entries: list[str]) -> dict[str, list[str]]:
    """Third-party top-level modules that importing ``entries`` needs, statically.

    The entry files' imports are all taken (their functions run in the step), then, through
    this repository's modules they reach, the imports that run at module import (a lazy import
    inside a function of a reached module is left to the dry run under :class:`Blocker`).
    Packages' ``__init__`` files along a dotted name count as imported.

    Args:
        entries: file paths of the step (scripts, modules, test files).

    Returns:
        top-level name -> repository files importing it (sorted), for names outside this
        repository and the standard library.

    Raises:
        SyntaxError: a reached file does not parse.
    """
    search = [REPO, os.path.join(REPO, "benchmarks"), os.path.join(REPO, "tests", "kernels")]
    out: dict[str, set] = {}
    todo = [(os.path.abspath(e), False) for e in entries]
    seen = set()
    while todo:
        path, module_level = todo.pop()
        if (path, module_level) in seen or (path, False) in seen:
            continue
        seen.add((path, module_level))
        with open(path) as f:
            tree = ast.parse(f.read(), path)
        rel = os.path.relpath(path, REPO)
        package = os.path.dirname(rel).replace(os.sep, ".")
        for name, level in _imports(tree, module_level):
            if level:  # relative: from the importing file's package
                base = package.split(".")[: len(package.split(".")) - (level - 1)]
                name = ".".join([p for p in base if p] + ([name] if name else []))
            if not name:
                continue
            top = name.partition(".")[0]
            if top in sys.stdlib_module_names:
                continue
            parts = name.split(".")
            found = False
            for i in range(1, len(parts) + 1):
                file = _repo_file(".".join(parts[:i]), search)
                if file:
                    found = True
                    todo.append((file, True))
            if not found and top not in REPO_ROOTS:
                out.setdefault(top, set()).add(rel)
    return {k: sorted(v) for k, v in sorted(out.items())}
