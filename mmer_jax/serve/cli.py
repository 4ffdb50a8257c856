"""The ``predict``, ``serve`` and ``export`` sub-commands of ``mmer`` (parsing and dispatch).

``mmer_jax.cli`` calls :func:`add_commands` on its sub-parsers and :func:`dispatch` first; this
module imports nothing heavy until a command runs.
"""

from __future__ import annotations

import argparse
import json
import sys


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults in the help, examples kept on their own lines."""

    def _get_help_string(self, action):
        # A required option has no default to show, and a help text that already says its
        # default must not get "(default: None)" after it.
        if action.required or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def add_commands(sub) -> None:
    """Adds ``predict``, ``serve`` and ``export`` to an argparse sub-parsers object."""
    fmt = _HelpFormatter
    p = sub.add_parser(
        "predict", help="per-class probabilities of audio/video/text files", formatter_class=fmt,
        description="Per-class probabilities of files from a finished run's best checkpoint, "
        "computed through the training pipeline's own features.",
        epilog="examples:\n  mmer predict --workdir runs/quickstart clip.wav --text 'so happy'\n"
        "  mmer predict --workdir runs/quickstart talk.mp4 --window 2 --hop 1 --json")
    p.add_argument("--workdir", required=True, help="a finished `mmer train` run")
    p.add_argument("files", nargs="*", metavar="FILE",
                   help="wav/flac/mp3 audio, mp4/avi/webm video, or a .txt transcript; none "
                   "with --text: predict the transcript alone")
    p.add_argument("--variant", default=None, help="default: the run's primary variant")
    p.add_argument("--text", default=None, help="transcript for models that use text")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--window", type=float, default=None, metavar="S",
                   help="sliding windows of S seconds (a per-window timeline)")
    p.add_argument("--hop", type=float, default=None, metavar="S",
                   help="window hop in seconds (default: --window)")

    s = sub.add_parser(
        "serve", help="HTTP server and web page for a trained run", formatter_class=fmt,
        description="A Starlette app under uvicorn: GET /, /health, /model, POST /predict, "
        "WebSocket /stream. The model is compiled for every bucketed shape at start-up.",
        epilog="example:\n  mmer serve --workdir runs/quickstart --port 8000  "
        "# then open http://127.0.0.1:8000/")
    s.add_argument("--workdir", required=True, help="a finished `mmer train` run")
    s.add_argument("--variant", default=None, help="default: the run's primary variant")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on")
    s.add_argument("--port", type=int, default=8000, help="port to listen on")
    s.add_argument("--max-upload-mb", type=float, default=32.0, help="larger uploads get 413")
    s.add_argument("--max-concurrency", type=int, default=2, help="predictions run at once")
    s.add_argument("--max-queue", type=int, default=8, help="waiting requests; more get 503")

    e = sub.add_parser(
        "export", help="a run as a jax.export artefact (no config machinery)",
        formatter_class=fmt,
        description="Writes one serialized jax.export function per bucketed input shape "
        "(parameters baked in), model.json (classes, modalities, feature settings) and "
        "vocab.json; mmer_jax.serve.export.load_exported(DIR) loads it with jax and numpy only.",
        epilog="example:\n  mmer export --workdir runs/quickstart --out exported/quickstart")
    e.add_argument("--workdir", required=True, help="a finished `mmer train` run")
    e.add_argument("--variant", default=None, help="default: the run's primary variant")
    e.add_argument("--out", required=True, help="output directory")


def _table(result: dict) -> str:
    classes = list(result["probabilities"])
    width = max(len(c) for c in classes)
    # A transcript has no duration: say only what was used.
    length = f"{result['duration_s']:.2f} s; " if result["duration_s"] else ""
    lines = [f"{result['file']}: {result['label']}  ({length}modalities used: "
             f"{', '.join(result['modalities']['used']) or 'none'})"]
    for m, why in result["modalities"]["missing"].items():
        lines.append(f"  missing {m}: {why}")
    for c in classes:
        p = result["probabilities"][c]
        lines.append(f"  {c:<{width}}  {p:6.3f}  {'#' * round(p * 40)}")
    if len(result["windows"]) > 1:
        lines.append("  timeline:")
        for w in result["windows"]:
            lines.append(f"    {w['start']:7.2f}-{w['end']:7.2f} s  {w['label']:<{width}}  "
                         f"{w['probabilities'][w['label']]:.3f}")
    return "\n".join(lines)


def dispatch(args) -> int | None:
    """Runs ``args.command`` when it is one of this module's; None otherwise.

    Raises:
      UsageError: a bad run directory, variant or option (exit 2).
    """
    if args.command == "predict":
        from mmer_jax.serve.inputs import InputError
        from mmer_jax.serve.text_predictor import open_predictor

        if args.hop is not None and args.window is None:
            from mmer_jax.errors import UsageError

            raise UsageError("--hop needs --window")
        if not args.files and args.text is None:
            from mmer_jax.errors import UsageError

            raise UsageError("give FILE(s), or --text for a transcript alone")
        predictor = open_predictor(args.workdir, args.variant)
        results, failed = [], 0
        for path in args.files or [None]:  # None: the --text transcript on its own
            try:
                if path is None:
                    decoded = predictor.decode(None, args.text, shown_name="--text")
                    results.append(predictor.predict_decoded(decoded, args.window, args.hop,
                                                             name="--text"))
                else:
                    results.append(predictor.predict_file(path, args.text, args.window,
                                                          args.hop))
            except InputError as exc:
                failed += 1
                results.append({"file": path or "--text", "error": str(exc)})
        if args.json:
            print(json.dumps({"variant": predictor.variant, "classes": predictor.classes,
                              "results": results}, indent=1))
        else:
            for r in results:
                print(f"{r['file']}: error: {r['error']}" if "error" in r else _table(r))
        return 1 if failed else 0
    if args.command == "export":
        from mmer_jax.serve.export import export_run
        from mmer_jax.serve.predictor import Predictor

        meta = export_run(Predictor(args.workdir, args.variant), args.out)
        print(f"exported {meta['variant']} ({len(meta['functions'])} input shapes) -> {args.out}")
        return 0
    if args.command == "serve":
        from mmer_jax.serve.app import serve
        from mmer_jax.serve.text_predictor import open_predictor

        predictor = open_predictor(args.workdir, args.variant)
        n = len(predictor.bucket_shapes())
        print(f"compiling {n} input shapes ...", file=sys.stderr)
        took = predictor.warmup()
        print(f"ready in {took:.1f} s: http://{args.host}:{args.port}/", file=sys.stderr)
        serve(predictor, args.host, args.port,
              max_upload_bytes=int(args.max_upload_mb * (1 << 20)),
              max_concurrency=args.max_concurrency, max_queue=args.max_queue)
        return 0
    return None
