"""Build reports and the skip policy shared by every builder.

Skip policy:
  * A problem confined to one file (unparseable name, zero-length, corrupt or truncated media,
    NaN/inf samples, no video stream) skips that file. Every skip is logged with its reason and
    counted in the build report; nothing is dropped silently.
  * A problem with the corpus as a whole (``manual_dir`` missing, no recognisable files, a split
    with no candidate file) is a hard :class:`CorpusError` naming the directory, raised before
    any decoding.

Repairs and flags:
  * A *repair* is a change the builder made to make a file usable (e.g. a cp1252 byte in a UTF-8
    CSV, an out-of-range float clip rescaled); each kind is counted (``repairs``).
  * A *flag* marks a stored example worth a look but not wrong enough to drop (all-silent audio,
    several audio streams, a duration outlier); each is listed with its path (``flags``).

The report (counts per class and per speaker, durations, resampling, skipped files with reasons,
repairs, flags) is written as ``build_report.json`` inside the prepared dataset's directory
(``<data_dir>/<name>/<config>/<version>/``), so it moves and is deleted with the data it describes.
"""

from __future__ import annotations

import collections
import json
import logging
import os
from pathlib import Path
from typing import Any

from data_prep.errors import BuildError

log = logging.getLogger("data_prep")

REPORT_NAME = "build_report.json"
UNASSIGNED = "unassigned"  # skips found before a file could be given a split (e.g. bad names)


LFS_REASON = "git-lfs pointer"
_LFS_HEAD = b"version https://git-lfs.github.com/spec/"


def lfs_pointer(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a Git LFS pointer file (what a clone without ``git lfs`` holds in
    place of each media file): a small text file starting with the LFS spec line."""
    try:
        if os.path.getsize(path) > 1024:
            return False
        with open(path, "rb") as f:
            return f.read(len(_LFS_HEAD)) == _LFS_HEAD
    except OSError:
        return False


class CorpusError(BuildError):
    """The corpus as a whole is unusable (missing directory, no files, empty split).

    A ``BuildError`` so that ``mmer data build`` reports it as a usage error, not a traceback.
    """


class SkipLog:
    """Counts and logs skipped files with their reason, grouped by split."""

    def __init__(self) -> None:
        self.items: dict[str, list[dict[str, str]]] = collections.defaultdict(list)

    def skip(self, path: str | os.PathLike, reason: str, split: str = UNASSIGNED) -> None:
        """Records that ``path`` was not used, and why."""
        path = os.fspath(path)
        # MediaError messages already start with the path; keep the reason readable on its own.
        if reason.startswith(path + ": "):
            reason = reason[len(path) + 2:]
        self.items[split].append({"path": path, "reason": reason})
        log.warning("skipping %s (%s): %s", path, split, reason)

    def count(self, split: str | None = None) -> int:
        if split is None:
            return sum(len(v) for v in self.items.values())
        return len(self.items.get(split, []))


class _SplitStats:
    def __init__(self) -> None:
        self.count = 0
        self.per_class: collections.Counter = collections.Counter()
        self.per_speaker: collections.Counter = collections.Counter()
        self.orig_sr: collections.Counter = collections.Counter()
        self.durations: list[float] = []
        self.extra: dict[str, list[float]] = collections.defaultdict(list)

    def to_dict(self) -> dict[str, Any]:
        d = self.durations
        out = {
            "count": self.count,
            "per_class": dict(sorted(self.per_class.items())),
            "per_speaker": dict(sorted(self.per_speaker.items())),
            "duration_s": {"total": round(sum(d), 3), "min": round(min(d), 3) if d else None,
                           "max": round(max(d), 3) if d else None},
            "orig_sample_rates": {str(k): v for k, v in sorted(self.orig_sr.items())},
        }
        for key, vals in self.extra.items():
            out[f"mean_{key}"] = round(sum(vals) / len(vals), 4) if vals else None
        return out


class BuildReport:
    """Collects per-split statistics and skips while a builder generates examples."""

    def __init__(self, dataset: str, config: str, version: str, target_sr: int = 16000) -> None:
        self.dataset, self.config, self.version = dataset, config, version
        self.target_sr = target_sr
        self.splits: dict[str, _SplitStats] = collections.defaultdict(_SplitStats)
        self.skips = SkipLog()
        self.notes: dict[str, Any] = {}
        self.repairs: collections.Counter = collections.Counter()
        self.repaired_in: dict[str, set[str]] = collections.defaultdict(set)
        self.flags: dict[str, list[dict[str, str]]] = collections.defaultdict(list)
        self._durations: list[tuple[float, str, str]] = []
        # Stored example id -> {"split", "speaker", "label"} (fold protocols are built from it).
        self.examples: dict[str, dict[str, str]] = {}
        self._source_of: dict[str, str] = {}  # example id -> its media file (duplicate errors)

    def add(self, split: str, label: str, speaker: str, duration_s: float | None = None,
            orig_sr: int | None = None, *, path: str | os.PathLike | None = None,
            media: Any = (), example_id: str | None = None, **extra: float) -> None:
        """Records one stored example; ``extra`` numbers are averaged (e.g. face_found).

        Args:
          path: the example's media file; with it, durations take part in outlier flagging.
          media: the ``info`` dicts of :mod:`data_prep._common.media` reads for this example (one
            dict or several); their ``flags`` and ``repairs`` are recorded against ``path``.
          example_id: the stored ``id``; with it the example takes part in fold protocols.

        Raises:
          CorpusError: ``example_id`` was already added (names both files).
        """
        if example_id is not None:
            if example_id in self.examples:
                raise CorpusError(
                    f"{self.dataset}/{self.config}: {self._source_of.get(example_id, '?')} and "
                    f"{os.fspath(path) if path is not None else '?'} give the same example id "
                    f"{example_id!r}; remove or rename one")
            self.examples[example_id] = {"split": split, "speaker": speaker, "label": label}
            if path is not None:
                self._source_of[example_id] = os.fspath(path)
        s = self.splits[split]
        s.count += 1
        s.per_class[label] += 1
        s.per_speaker[speaker] += 1
        if duration_s is not None:
            s.durations.append(float(duration_s))
            if path is not None:
                self._durations.append((float(duration_s), os.fspath(path), split))
        if orig_sr is not None:
            s.orig_sr[int(orig_sr)] += 1
        for k, v in extra.items():
            s.extra[k].append(float(v))
        for info in ([media] if isinstance(media, dict) else list(media)):
            where = os.fspath(path) if path is not None else "?"
            for kind, detail in sorted((info.get("flags") or {}).items()):
                self.flag(where, kind, str(detail), split)
            for kind, n in sorted((info.get("repairs") or {}).items()):
                self.repair(kind, n, where)

    def repair(self, kind: str, n: int = 1, where: str | os.PathLike | None = None) -> None:
        """Counts ``n`` repairs of ``kind`` (made in file ``where``)."""
        if n <= 0:
            return
        self.repairs[kind] += int(n)
        if where is not None:
            self.repaired_in[kind].add(os.fspath(where))

    def flag(self, path: str | os.PathLike, kind: str, detail: str = "",
             split: str = UNASSIGNED) -> None:
        """Marks the stored example from ``path`` with ``kind`` (it is kept, not skipped)."""
        self.flags[kind].append({"path": os.fspath(path), "split": split, "detail": detail})
        log.info("flag %s: %s (%s) %s", kind, os.fspath(path), split, detail)

    def _duration_outliers(self) -> list[dict[str, str]]:
        """Clips longer than max(3 x the median, Q3 + 3 IQR) of this build (>= 8 clips)."""
        if len(self._durations) < 8:
            return []
        import numpy as np

        d = np.array([x[0] for x in self._durations])
        q1, med, q3 = np.percentile(d, [25, 50, 75])
        limit = max(3.0 * med, q3 + 3.0 * (q3 - q1))
        return [{"path": p, "split": s, "detail": f"{dur:.2f} s > {limit:.2f} s"}
                for dur, p, s in self._durations if dur > limit]

    def skip(self, path: str | os.PathLike, reason: str, split: str = UNASSIGNED) -> None:
        self.skips.skip(path, reason, split)

    def to_dict(self) -> dict[str, Any]:
        resampled = sum(v for s in self.splits.values() for k, v in s.orig_sr.items()
                        if k != self.target_sr)
        return {
            "dataset": self.dataset, "config": self.config, "version": self.version,
            "target_sample_rate": self.target_sr, "resampled_examples": resampled,
            "splits": {k: v.to_dict() for k, v in sorted(self.splits.items())},
            "skipped_total": self.skips.count(),
            "skipped": {k: list(v) for k, v in sorted(self.skips.items.items())},
            "repairs": dict(sorted(self.repairs.items())),
            "repaired_files": {k: sorted(v) for k, v in sorted(self.repaired_in.items())},
            "flags": self._all_flags(),
            "notes": self.notes,
        }

    def _all_flags(self) -> dict[str, list[dict[str, str]]]:
        flags = {k: list(v) for k, v in self.flags.items()}
        outliers = self._duration_outliers()
        if outliers:
            flags["duration_outlier"] = outliers
        return dict(sorted(flags.items()))

    def write(self, directory: str | os.PathLike) -> Path:
        """Writes ``build_report.json`` into ``directory`` and logs a one-line summary."""
        path = Path(os.fspath(directory)) / REPORT_NAME
        d = self.to_dict()
        path.write_text(json.dumps(d, indent=2, sort_keys=False))
        counts = ", ".join(f"{k}={v['count']}" for k, v in d["splits"].items())
        log.info("%s/%s: %s; %d skipped; report %s", self.dataset, self.config, counts,
                 d["skipped_total"], path)
        return path


def read_report(builder_or_dir: Any) -> dict[str, Any]:
    """Loads the build report of a prepared builder (or from its data directory)."""
    directory = getattr(builder_or_dir, "data_dir", builder_or_dir)
    return json.loads((Path(os.fspath(directory)) / REPORT_NAME).read_text())


class ReportingMixin:
    """Gives a ``GeneratorBasedBuilder`` a ``self.report`` that is written with the dataset.

    TFDS generates into a temporary directory and renames it on success; while
    ``_download_and_prepare`` runs, ``self.data_dir`` is that temporary directory, so the report
    written there appears atomically with the data (and not at all if generation fails).
    """

    # Worker processes for the per-file work (set by ``data_prep.build.build``, ``--num_workers``);
    # the output is the same for any count (see ``data_prep._common.parallel``).
    num_workers: int = 1

    def _map(self, fn, items, split: str, **kwargs):
        """``ordered_map(fn, items)`` over ``self.num_workers`` workers, results in item order,
        with a progress bar labelled ``<name>/<config> <split>``."""
        from data_prep._common.parallel import ordered_map

        config = self.builder_config.name if self.builder_config else "default"
        return ordered_map(fn, items, self.num_workers, desc=f"{self.name}/{config} {split}",
                           **kwargs)

    def _decoded(self, fn, work, items, split: str, path_of=lambda item: item[0]):
        """``_map(fn, work)`` paired with ``items``: yields ``(item, result)`` for each decoded
        item, in order, and records a skip (with the worker's reason) for each that failed."""
        from data_prep._common.parallel import Failed

        for item, res in zip(items, self._map(fn, work, split), strict=True):
            if isinstance(res, Failed):
                path = path_of(item)
                reason = res.reason
                if lfs_pointer(path):
                    reason = f"{LFS_REASON}, not the media file: run `git lfs pull` in the clone"
                self.report.skip(path, reason, split)
                continue
            yield item, res

    def _download_and_prepare(self, dl_manager, download_config, *args, **kwargs):
        self.report = BuildReport(self.name, self.builder_config.name, str(self.version))
        try:
            super()._download_and_prepare(dl_manager, download_config, *args, **kwargs)
        except Exception as exc:
            # TFDS's "No examples were yielded" says nothing of why; git-lfs pointers are the
            # usual reason for a clone (CREMA-D, TurEV-DB are Git LFS repositories).
            lfs = [s["path"] for v in self.report.skips.items.values() for s in v
                   if s["reason"].startswith(LFS_REASON)]
            if lfs and not isinstance(exc, CorpusError):
                root = os.fspath(dl_manager.manual_dir)
                n = sum(lfs_pointer(os.path.join(base, f))
                        for base, _, files in os.walk(root) for f in files)
                raise CorpusError(
                    f"{self.name}/{self.builder_config.name}: {n} files under {root} are "
                    f"git-lfs pointers, not media (e.g. {lfs[0]}): the corpus was cloned "
                    f"without Git LFS; run `git lfs pull` in {root}") from exc
            raise
        protocols = self._fold_protocols(self.report.examples)
        if protocols:
            from data_prep._common.folds import write_folds

            write_folds(self.data_dir, protocols, emobox=self._emobox_name(),
                        examples={i: e["speaker"] for i, e in self.report.examples.items()},
                        emobox_keys=self._emobox_keys())
            self.report.notes["folds"] = {
                name: {"description": p["description"],
                       "speaker_independent": p["speaker_independent"],
                       "speakers": [f.get("speakers") for f in p["folds"]]}
                for name, p in protocols.items()}
        self.report.write(self.data_dir)
        # ``data_prep.build`` sets it: build_source.json then appears with the data, atomically.
        write_source = getattr(self, "write_build_source", None)
        if write_source is not None:
            write_source(self.data_dir)

    def _fold_protocols(self, examples: dict[str, dict[str, str]]) -> dict[str, Any]:
        """Fold protocols over the stored ``examples`` (id -> split, speaker, label), written as
        ``folds.json`` (see :mod:`data_prep.folds`); the first is the default. None by default."""
        return {}

    def _emobox_name(self) -> str:
        """EmoBox's name of this corpus (``data/<name>/``), "" when EmoBox has no folds of it."""
        from data_prep._common.emobox import EMOBOX_NAMES

        return EMOBOX_NAMES.get(self.name, "")

    def _emobox_keys(self) -> dict[str, str]:
        """EmoBox key -> stored id, where a corpus gives them explicitly (a folder manifest)."""
        return {}

    def _manual_root(self, dl_manager) -> Path:
        """Returns the manual directory, or raises :class:`CorpusError` naming the directory."""
        try:
            return Path(os.fspath(dl_manager.manual_dir))
        except (AssertionError, ValueError) as exc:  # TFDS: missing, empty or not enabled.
            raise CorpusError(f"{self.name}: unusable manual_dir: {exc}") from exc

    def _require_splits(self, per_split: dict[str, list], root: Path) -> None:
        """Raises :class:`CorpusError` when a split has no candidate file.

        Without this TFDS fails later with a message naming neither the directory nor the skips.
        """
        for split in ("train", "validation", "test"):
            if not per_split.get(split):
                raise CorpusError(
                    f"{self.name}/{self.builder_config.name}: no files for split {split!r} under "
                    f"{root} ({self.report.skips.count()} files skipped so far)")
