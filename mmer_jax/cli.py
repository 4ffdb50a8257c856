"""The ``mmer`` command: thin argument parsing over the library (commands in the README).

Errors print one line on stderr naming the problem (set MMER_DEBUG=1 for the traceback) and exit
with 2 for usage/config errors, 1 for failed runs.
"""

from __future__ import annotations

import argparse
import os
import sys

from mmer_jax.errors import MmerError, UsageError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mmer", description="Multimodal emotion recognition in JAX.")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a config; resumes if --workdir holds a run")
    t.add_argument("--config", required=True, help="experiments/<name>.py")
    t.add_argument("--workdir", required=True)

    e = sub.add_parser("eval", help="re-evaluate a run at its best-by-validation checkpoint")
    e.add_argument("--workdir", required=True)
    e.add_argument("--split", default="test", choices=["train", "validation", "test"])

    d = sub.add_parser("data", help="corpus commands")
    dsub = d.add_subparsers(dest="data_command", required=True)
    b = dsub.add_parser("build", help="build a corpus into array_record files (no TensorFlow)")
    b.add_argument("name")
    b.add_argument("--config", default=None)
    b.add_argument("--manual_dir", default=None)
    b.add_argument("--data_dir", default=None)
    b.add_argument("--force", action="store_true")

    r = sub.add_parser("reproduce", help="run a seed system's configs and write its report")
    r.add_argument("system")
    r.add_argument("--corpus", default=None)
    r.add_argument("--seeds", type=int, default=3)
    r.add_argument("--workdir", default="runs/reproduce")
    r.add_argument("--out", default="reproductions")

    k = sub.add_parser("bench", help="benchmarks: kernels | pipeline | train")
    k.add_argument("what", choices=["kernels", "pipeline", "train"])
    k.add_argument("--out", default=None)
    k.add_argument("--quick", action="store_true")
    k.add_argument("--config", default=None, help="pipeline/train: experiment config")
    k.add_argument("--workdir", default=None, help="pipeline/train: scratch directory")
    k.add_argument("--compare", default=None, metavar="KEY=V1,V2",
                   help="train: time the step per value of one config key, side by side")
    return p


def _split_overrides(argv: list[str]) -> tuple[list[str], list[str]]:
    """Separates ``--config.KEY=VALUE`` overrides from the other arguments."""
    rest, overrides = [], []
    it = iter(argv)
    for arg in it:
        if arg.startswith("--config."):
            body = arg[len("--config.") :]
            if "=" not in body:  # allow "--config.key value"
                body = f"{body}={next(it, '')}"
            overrides.append(body)
        else:
            rest.append(arg)
    return rest, overrides


def _dispatch(args, overrides: list[str]) -> int:
    if args.command == "train":
        from mmer_jax import config as config_lib
        from mmer_jax.train.hooks import Interrupted
        from mmer_jax.train.run import run
        from mmer_jax.train.sharding import maybe_initialize_distributed

        cfg = config_lib.load(args.config, overrides)
        maybe_initialize_distributed()
        try:
            results = run(cfg, args.workdir)
        except Interrupted as exc:
            print(f"mmer: {exc}; run the same command to resume", file=sys.stderr)
            return 3
        t = results["test"]
        print(
            f"test accuracy {t['accuracy']:.4f}  weighted F1 {t['weighted_f1']:.4f}  "
            f"UAR {t['uar']:.4f}  -> {os.path.join(args.workdir, 'results.json')}"
        )
        for name, v in results.get("variants", {}).items():
            print(
                f"  {name:>8}: accuracy {v['test']['accuracy']:.4f}  "
                f"weighted F1 {v['test']['weighted_f1']:.4f}"
            )
        return 0
    if overrides and args.command not in ("reproduce", "bench"):
        raise UsageError(f"--config.{overrides[0]} is only valid with train, reproduce or bench")
    if args.command == "eval":
        from mmer_jax.train.evaluate import evaluate_run

        out = evaluate_run(args.workdir, args.split)
        for name, res in out.items():
            m = res.get(args.split)
            if m is None:
                print(f"{name}: {res.get('error')}")
            else:
                print(
                    f"{name}: {args.split} accuracy {m['accuracy']:.4f}  weighted F1 "
                    f"{m['weighted_f1']:.4f}  UAR {m['uar']:.4f}  (best epoch {res['epoch']})"
                )
        return 0
    if args.command == "data":
        from data_prep import build as build_lib

        try:
            builder = build_lib.build(
                args.name, args.config, args.data_dir, args.manual_dir, force=args.force
            )
        except build_lib.BuildError as exc:
            raise UsageError(str(exc)) from exc
        except AssertionError as exc:  # TFDS signals a missing manual_dir this way
            raise UsageError(f"{args.name}: {exc}") from exc
        for split, info in builder.info.splits.items():
            print(
                f"{args.name}/{builder.builder_config.name if builder.builder_config else ''} "
                f"{split}: {info.num_examples} examples"
            )
        print(f"written to {builder.data_dir}")
        return 0
    if args.command == "reproduce":
        from mmer_jax.reproduce.harness import reproduce

        reproduce(
            args.system,
            corpus=args.corpus,
            seeds=args.seeds,
            workdir=args.workdir,
            out_dir=args.out,
            overrides=overrides,
        )
        return 0
    if args.command == "bench":
        if args.what == "kernels":
            given = [f for f in ("config", "workdir", "compare") if getattr(args, f)]
            if given:
                raise UsageError(f"--{given[0]} is not an option of `mmer bench kernels`")
            from kernels import bench as kernels_bench

            argv = (["--out", args.out] if args.out else []) + (["--quick"] if args.quick else [])
            argv += [f"--config.{o}" for o in overrides]
            return kernels_bench.main(argv) or 0
        from mmer_jax import bench

        return bench.run(args.what, config=args.config, overrides=overrides, out=args.out,
                         quick=args.quick, workdir=args.workdir, compare=args.compare)
    raise UsageError(f"unknown command {args.command!r}")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    rest, overrides = _split_overrides(argv)
    args = _parser().parse_args(rest)
    try:
        return _dispatch(args, overrides)
    except MmerError as exc:
        if os.environ.get("MMER_DEBUG"):
            raise
        print(f"mmer: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(
            "mmer: interrupted; run the same command again to resume from the last checkpoint",
            file=sys.stderr,
        )
        return 130
    except Exception as exc:  # noqa: BLE001 - one line instead of a traceback wall
        if os.environ.get("MMER_DEBUG"):
            raise
        print(
            f"mmer: error: {type(exc).__name__}: {exc} (set MMER_DEBUG=1 for the traceback)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
