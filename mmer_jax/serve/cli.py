"""The ``predict``, ``serve`` and ``export`` sub-commands of ``mmer`` (parsing and dispatch).

``mmer_jax.cli`` calls :func:`add_commands` on its sub-parsers and :func:`dispatch` first; this
module imports nothing heavy until a command runs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults in the help, examples kept on their own lines."""

    def _get_help_string(self, action):
        # A required option has no default to show, a help text that already says its
        # default must not get "(default: ...)" after it, and None says nothing.
        if action.required or action.default is None or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def add_commands(sub) -> None:
    """Adds ``predict``, ``serve`` and ``export`` to an argparse sub-parsers object."""
    fmt = HelpFormatter
    p = sub.add_parser(
        "predict", help="per-class probabilities of audio/video/text files", formatter_class=fmt,
        description="Per-class probabilities of files from a finished run's best checkpoint, "
        "computed through the training pipeline's own features.",
        epilog="examples:\n  mmer predict --workdir runs/quickstart clip.wav --text 'so happy'\n"
        "  mmer predict --workdir runs/quickstart talk.mp4 --window 2 --hop 1 --json")
    p.add_argument("--workdir", required=True, help="a finished `mmer train` run")
    p.add_argument("files", nargs="*", metavar="FILE",
                   help="wav/flac/mp3 audio, mp4/avi/webm video, or a .txt transcript; a .txt "
                   "given with a clip of the same base name (talk.mp4 talk.txt) is that clip's "
                   "transcript; a directory stands for its files of those types (not "
                   "recursing); none with --text: predict the transcript alone")
    p.add_argument("--variant", default=None, help="default: the run's primary variant")
    p.add_argument("--text", default=None, help="transcript for models that use text, of every "
                   "FILE: it wins over a paired .txt (which is then not read; a note says so)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--window", type=float, default=None, metavar="S",
                   help="sliding windows of S seconds (a per-window timeline)")
    p.add_argument("--hop", type=float, default=None, metavar="S",
                   help="window hop in seconds (default: --window)")
    p.add_argument("--max-duration", type=float, default=7200.0, metavar="S",
                   help="refuse longer files (from the header before decoding where it says)")
    p.add_argument("--max-windows", type=int, default=4096, metavar="N",
                   help="most windows per file")

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
    s.add_argument("--max-duration", type=float, default=600.0, metavar="S",
                   help="longest upload in seconds (413; from the header before decoding)")
    s.add_argument("--max-windows", type=int, default=512, metavar="N",
                   help="most windows per upload (400 past it)")
    s.add_argument("--body-timeout", type=float, default=30.0, metavar="S",
                   help="an upload must arrive within S seconds (408 after)")
    s.add_argument("--max-uploads-per-client", type=int, default=4, metavar="N",
                   help="requests one client address may have in flight (429 past it)")

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
    if result.get("scored"):
        lines.append(f"  scored: {result['scored']}")
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
        return _predict(args)
    if args.command == "export":
        from mmer_jax.serve.export import export_run
        from mmer_jax.serve.predictor import Predictor

        meta = export_run(Predictor(args.workdir, args.variant), args.out)
        print(f"exported {meta['variant']} ({len(meta['functions'])} input shapes) -> {args.out}")
        return 0
    if args.command == "serve":
        return _serve(args)
    return None


def _run_dir(workdir: str) -> None:
    """The cheap part of opening a run, before any heavy import."""
    from mmer_jax.errors import UsageError

    if not os.path.isfile(os.path.join(workdir, "config.json")):
        raise UsageError(f"--workdir {workdir!r} holds no run (config.json missing)")


def pair_transcripts(files: list[str]) -> list[tuple[str, str | None]]:
    """``[(file, transcript .txt or None)]``: a ``.txt`` given with a clip of the same path
    without extension is that clip's transcript (``talk.mp4 talk.txt``) and is not predicted
    alone; any other ``.txt`` is predicted on its own.

    Raises:
      UnsupportedMedia: a file of an unknown type.
    """
    from mmer_jax.serve import inputs

    kinds = {f: inputs.kind_of(f) for f in files}
    texts = {os.path.splitext(f)[0]: f for f in files if kinds[f] == "text"}
    clips = {os.path.splitext(f)[0] for f in files if kinds[f] != "text"}
    out = []
    for f in files:
        stem = os.path.splitext(f)[0]
        if kinds[f] == "text":
            if stem not in clips:
                out.append((f, None))
        else:
            out.append((f, texts.get(stem)))
    return out


def check_predict_args(args) -> list[tuple[str, str | None]]:
    """Every check of ``mmer predict`` that needs no model: options, the run directory, each
    file's existence and type. Returns the (file, transcript) pairs to predict.

    Raises:
      UsageError: the first problem, naming the option or file.
    """
    from mmer_jax.errors import UsageError
    from mmer_jax.serve import inputs

    if args.hop is not None and args.window is None:
        raise UsageError("--hop needs --window")
    if not args.files and args.text is None:
        raise UsageError("give FILE(s), or --text for a transcript alone")
    try:
        inputs.check_window(args.window, args.hop)
    except inputs.InputError as exc:
        raise UsageError(f"--{exc}") from None
    if not (args.max_duration > 0 and args.max_duration < float("inf")):
        raise UsageError(f"--max-duration must be a finite number of seconds > 0, got "
                         f"{args.max_duration}")
    if args.max_windows < 1:
        raise UsageError(f"--max-windows must be >= 1, got {args.max_windows}")
    _run_dir(args.workdir)
    files = [g for f in args.files for g in expand_directory(f)]
    for f in files:
        try:
            inputs.kind_of(f)  # an unsupported type, before anything loads
        except inputs.UnsupportedMedia as exc:
            raise UsageError(f"{f}: {exc}") from None
        if not os.path.isfile(f):
            raise UsageError(f"{f}: no such file")
    pairs = pair_transcripts(files)
    unread = [t for _, t in pairs if t is not None]
    if args.text is not None and unread:  # the explicit option wins over a paired file
        print(f"note: --text is the transcript of every file; {', '.join(unread)} not read",
              file=sys.stderr)
        pairs = [(f, None) for f, _ in pairs]
    return pairs


def expand_directory(path: str) -> list[str]:
    """``[path]`` for a file (or a missing path: the caller names it); for a directory, its
    audio, video and ``.txt`` files, sorted, not recursing (a note on stderr counts the other
    files left out).

    Raises:
      UsageError: a directory holding none of them.
    """
    from mmer_jax.errors import UsageError
    from mmer_jax.serve import inputs

    if not os.path.isdir(path):
        return [path]
    found, other = [], []
    for name in sorted(os.listdir(path)):
        full = os.path.join(path, name)
        if name.startswith(".") or not os.path.isfile(full):
            continue
        try:
            inputs.kind_of(name)
            found.append(full)
        except inputs.UnsupportedMedia:
            other.append(name)
    if not found:
        raise UsageError(f"{path}: a directory with no {', '.join(inputs.SUPPORTED_EXTS)} "
                         f"files in it")
    skipped = f"; {len(other)} other file(s) left out, e.g. {other[0]}" if other else ""
    print(f"note: {path}: a directory: its {len(found)} file(s){skipped}", file=sys.stderr)
    return found


def _predict(args) -> int:
    pairs = check_predict_args(args)  # before the model (and jax) is imported
    from mmer_jax.serve import inputs
    from mmer_jax.serve.prediction import open_predictor

    limits = inputs.Limits(max_duration_s=args.max_duration, max_windows=args.max_windows)
    predictor = open_predictor(args.workdir, args.variant)
    results, failed = [], 0
    for path, txt in pairs or [(None, None)]:  # None: the --text transcript on its own
        name = path or "--text"
        try:
            text = args.text
            if txt is not None:
                text = inputs.read_transcript(txt, os.path.basename(txt), notes=sys.stderr)
                name = f"{path} (+ {os.path.basename(txt)})"
            elif path is not None and inputs.kind_of(path) == "text":
                # A transcript predicted alone is decoded again below; read here for its note.
                inputs.read_transcript(path, os.path.basename(path), notes=sys.stderr)
            decoded = predictor.decode(path, text, shown_name=None if path else "--text",
                                       window_s=args.window, hop_s=args.hop, limits=limits)
            results.append(predictor.predict_decoded(decoded, name=name))
        except inputs.InputError as exc:
            failed += 1
            results.append({"file": name, "error": str(exc)})
    if args.json:
        print(json.dumps({"variant": predictor.variant, "classes": predictor.classes,
                          "results": results}, indent=1))
    else:
        for r in results:
            print(f"{r['file']}: error: {r['error']}" if "error" in r else _table(r))
    return 1 if failed else 0


def _serve(args) -> int:
    from mmer_jax.errors import UsageError
    from mmer_jax.serve.app import bind, serve

    _run_dir(args.workdir)
    for name in ("max_duration", "body_timeout"):
        v = getattr(args, name)
        if not (v > 0 and v < float("inf")):
            raise UsageError(f"--{name.replace('_', '-')} must be a finite number > 0, got {v}")
    # The port first: a busy port fails in a second, not after the compilation.
    sock = bind(args.host, args.port)
    try:
        from mmer_jax.serve.prediction import open_predictor

        predictor = open_predictor(args.workdir, args.variant)
        n = len(predictor.bucket_shapes())
        print(f"compiling {n} input shapes ...", file=sys.stderr)
        took = predictor.warmup()
        print(f"ready in {took:.1f} s: http://{args.host}:{args.port}/", file=sys.stderr)
        serve(predictor, sock=sock, max_upload_bytes=int(args.max_upload_mb * (1 << 20)),
              max_concurrency=args.max_concurrency, max_queue=args.max_queue,
              max_duration_s=args.max_duration, max_windows=args.max_windows,
              body_timeout_s=args.body_timeout,
              max_per_client=args.max_uploads_per_client)
    finally:
        sock.close()
    return 0
