"""Fingerprints of two small fixed-seed runs, recorded before the architecture refactor (issue 9).

The quickstart's tiny config (fused variant, generated ``tiny`` corpus) and S002's dialogue config
(a small COSMIC-format IEMOCAP text fixture; the override keys follow the current schema, the
values are those of the recorded run) are trained end to end through the public ``run``;
the fingerprint is a SHA-256 per parameter leaf of the final and best checkpoints plus the
validation and test metrics. A refactor that claims "same behaviour" must reproduce them bit for
bit on the same jax version. XLA's CPU numerics also change with the CPU's vector extensions
(AVX-512 sums reductions in another order than AVX2), so the runs are capped at fixed levels
(:data:`GOLDEN_LEVELS`, ``--xla_cpu_max_isa``) and compared at the widest level the CPU has.

    python -m tests.golden.fingerprint record   # rewrites golden.json: only for an intended change
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import pickle
import sys

HERE = pathlib.Path(__file__).resolve().parent
GOLDEN = HERE / "golden.json"
REPO = HERE.parents[1]
METRIC_KEYS = ("accuracy", "weighted_f1", "uar", "loss", "confusion")
# Fingerprints are recorded with XLA's CPU code capped at these vector-extension levels
# (``--xla_cpu_max_isa``): AVX2 is on every x86-64 CPU of the last decade, SSE4.2 on the rest, so
# the test compares on any x86 CPU instead of only the CPU kind that recorded it.
GOLDEN_LEVELS = ("AVX512", "AVX2", "SSE4_2")

# dialogue -> number of utterances (one longer than max_utterances, so chunking is exercised).
DIALOGUES = {
    "train": {"Ses01F_impro01": 5, "Ses01M_script01_1": 11, "Ses02M_impro04": 3,
              "Ses03F_impro02": 7, "Ses03M_impro05": 6, "Ses04F_script01": 8},
    "validation": {"Ses02F_impro02": 4, "Ses04M_impro01": 5},
    "test": {"Ses05M_impro03": 6, "Ses05F_script02_2": 9},
}


def write_cosmic_fixture(root: pathlib.Path) -> None:
    """A COSMIC ``iemocap.pkl`` whose words carry the label, so a model can learn something."""
    words = ["joy", "tears", "calm", "rage", "thrill", "stuck"]
    speakers, labels, sentences, ids = {}, {}, {}, {}
    for split, ds in DIALOGUES.items():
        ids[split] = list(ds)
        for j, (d, n) in enumerate(ds.items()):
            speakers[d] = ["FM"[(i // 2 + j) % 2] for i in range(n)]
            labels[d] = [(3 * i + j) % 6 for i in range(n)]
            sentences[d] = [f"w{i % 3} {words[labels[d][i]]} " + "tok " * (i % 4)
                            for i in range(n)]
    obj = [speakers, labels, sentences, ids["train"], ids["test"], ids["validation"]]
    root.mkdir(parents=True, exist_ok=True)
    (root / "iemocap.pkl").write_bytes(pickle.dumps(obj, protocol=4))


def quickstart_overrides(data_dir: str) -> list[str]:
    return [f"data.data_dir={data_dir}", "data.config=tiny", "data.read_threads=0",
            "train.epochs=2", "train.batch_size=16", "train.progress=False", "train.log_every=1"]


def dialogue_overrides(data_dir: str, manual_dir: str) -> list[str]:
    return [f"data.data_dir={data_dir}", f"data.manual_dir={manual_dir}", "data.read_threads=0",
            "data.max_utterances=8", "data.utterance_bucket=8", "data.max_tokens=8",
            "data.token_bucket=4", "train.epochs=3", "train.batch_size=4", "train.warmup_steps=2",
            "train.progress=False", "train.log_every=1", "model.text.embed_dim=16",
            "model.text.filters=8", "model.text.out=16", "model.context_hidden=8",
            "model.head_hidden=16", "model.text.bigram_buckets=64"]


def cpu_id() -> str:
    """The CPU model and its vector extensions, recorded beside the fingerprints."""
    from mmer_jax.train.determinism import cpu_flags

    model, flags = cpu_flags()
    return f"{model} [{' '.join(flags)}]"


def _digest(tree) -> dict[str, str]:
    import jax
    import numpy as np

    out = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        arr = np.ascontiguousarray(np.asarray(leaf))
        name = "/".join(str(getattr(k, "key", getattr(k, "idx", k))) for k in path)
        out[name] = hashlib.sha256(arr.tobytes() + str(arr.dtype).encode()).hexdigest()[:16]
    return out


def _checkpoint_digests(workdir: str, variant: str) -> dict:
    import orbax.checkpoint as ocp

    out = {}
    for which in ("latest", "best"):
        root = os.path.join(workdir, "variants", variant, "ckpt", which)
        with ocp.CheckpointManager(root) as mgr:
            step = mgr.latest_step()
            restored = mgr.restore(step, args=ocp.args.Composite(
                state=ocp.args.StandardRestore()))
        state = restored["state"]
        out[which] = {"step": int(step), "params": _digest(state["params"]),
                      "batch_stats": _digest(state.get("batch_stats") or {})}
    return out


def fingerprint(config: str, overrides: list[str], workdir: str) -> dict:
    """Trains ``config`` through the public entry points and returns its fingerprint."""
    from mmer_jax import config as config_lib
    from mmer_jax.train.run import run

    cfg = config_lib.load(str(REPO / config), overrides)
    results = run(cfg, workdir)
    return {
        "variant": results["variant"],
        "test": {k: results["test"][k] for k in METRIC_KEYS},
        "validation": {k: results["validation"][k] for k in METRIC_KEYS},
        "checkpoints": _checkpoint_digests(workdir, results["variant"]),
    }


def run_all(tmp: pathlib.Path, tiny_data_dir: str | None = None) -> dict:
    from data_prep import build

    if tiny_data_dir is None:
        tiny_data_dir = str(tmp / "tfds_tiny")
        build.build("generated_emotion", "tiny", tiny_data_dir)
    out = {}
    # The quickstart's four variants trimmed to the fused one: every encoder and the fusion.
    from mmer_jax import config as config_lib

    cfg = config_lib.load(str(REPO / "experiments/quickstart.py"),
                          quickstart_overrides(tiny_data_dir))
    import ml_collections

    cfg.variants = ml_collections.ConfigDict({"fused": ["audio", "frames", "text"]})
    from mmer_jax.train.run import run

    results = run(cfg, str(tmp / "quickstart"))
    out["quickstart_tiny"] = {
        "variant": results["variant"],
        "test": {k: results["test"][k] for k in METRIC_KEYS},
        "validation": {k: results["validation"][k] for k in METRIC_KEYS},
        "checkpoints": _checkpoint_digests(str(tmp / "quickstart"), results["variant"]),
    }
    write_cosmic_fixture(tmp / "cosmic")
    out["s002_dialogue"] = fingerprint(
        "experiments/s002_iemocap_text.py",
        dialogue_overrides(str(tmp / "tfds_dlg"), str(tmp / "cosmic")),
        str(tmp / "s002"),
    )
    return out


def fingerprint_at(level: str, tiny_data_dir: str | None = None) -> dict:
    """:func:`run_all` in a child process whose XLA CPU code is capped at ``level`` (one of
    ``determinism.CPU_ISA_LEVELS``): XLA reads ``XLA_FLAGS`` once per process."""
    import subprocess
    import tempfile

    flags = " ".join(f for f in os.environ.get("XLA_FLAGS", "").split()
                     if not f.startswith(("--xla_cpu_max_isa=", "--xla_force_host_platform")))
    env = {**os.environ, "JAX_PLATFORMS": "cpu",
           "XLA_FLAGS": f"{flags} --xla_force_host_platform_device_count=4 "
                        f"--xla_cpu_max_isa={level}".strip()}
    with tempfile.TemporaryDirectory() as tmp:
        out = pathlib.Path(tmp) / "fingerprint.json"
        cmd = [sys.executable, "-m", "tests.golden.fingerprint", "run", "--out", str(out)]
        if tiny_data_dir:
            cmd += ["--tiny-data-dir", tiny_data_dir]
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
        if proc.returncode:
            raise RuntimeError(f"fingerprint at {level} failed:\n{proc.stderr[-3000:]}")
        return json.loads(out.read_text())


def main(argv: list[str]) -> int:
    """``run [--out F] [--tiny-data-dir D]``: this process's fingerprint (under its own
    ``XLA_FLAGS``); ``record``: every level of :data:`GOLDEN_LEVELS` this CPU has, into
    golden.json (only for an intended change of numerics)."""
    import tempfile

    import jax

    from mmer_jax.train.determinism import cpu_isa_levels

    if argv[:1] == ["record"]:
        have = cpu_isa_levels()
        levels = {lv: fingerprint_at(lv) for lv in GOLDEN_LEVELS if lv in have}
        first = next(iter(levels.values()))
        out = {"jax": first["jax"], "device_count": first["device_count"],
               "recorded_on": cpu_id(), "levels": {
                   lv: {k: fp[k] for k in ("quickstart_tiny", "s002_dialogue")}
                   for lv, fp in levels.items()}}
        GOLDEN.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
        print(f"written {GOLDEN} ({', '.join(levels)})")
        return 0
    args = dict(zip(argv[1::2], argv[2::2], strict=False))
    with tempfile.TemporaryDirectory() as tmp:
        out = run_all(pathlib.Path(tmp), args.get("--tiny-data-dir"))
    out["jax"] = jax.__version__
    out["device_count"] = jax.device_count()
    out["cpu"] = cpu_id()
    text = json.dumps(out, indent=1, sort_keys=True)
    if "--out" in args:
        pathlib.Path(args["--out"]).write_text(text + "\n")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    sys.exit(main(sys.argv[1:]))
