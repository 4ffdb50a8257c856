"""Any folder of labelled audio as a corpus (a corpus this project has no builder for).

Build::

    mmer data build folder --config turev_db --manual_dir ~/corpora/turev_db --data_dir ~/tfds
    mmer data build folder --config my_corpus.json --manual_dir ~/corpora/mine --data_dir ~/tfds

``--config`` is a registered config (``turev_db``) or a JSON spec of your corpus::

    {"name": "my_corpus",                    # the build's config name (default: file stem)
     "classes": ["angry", "calm", "happy"],  # class names, in label-id order
     "labels": {"Wut": "angry"},             # optional raw label -> class (default: lower-cased)
     "speaker_regex": "^(?P<speaker>\\\\d+)_", # on the file name; group "speaker" (or group 1)
     "manifest": "",                         # "": label = the file's folder name; else a CSV
                                             # (header path,label[,speaker][,split]
                                             # [,emobox_key]) or JSON (list of such objects)
                                             # relative to manual_dir
     "num_folds": 0,                         # speaker-grouped folds; 0 = leave one speaker out
     "emobox": ""}                           # EmoBox's name of the corpus (data/<name>/), if any

Labels come from the folder holding each file (``<root>/.../<Label>/<file>.wav``) or from the
manifest; speakers from the manifest's ``speaker`` column or the regular expression on the file
name. A manifest ``split`` column (train / validation (or dev, valid) / test) gives the build
those splits; otherwise every example goes into one split, ``full``, and runs read it through a
fold view (``data.fold=K``): the build writes ``folds.json`` (``data_prep.folds``) with the
speaker-grouped protocol (``loso`` or ``speakers<k>``) and, with a manifest split, ``official``.

EmoBox's folds of a corpus EmoBox has (``"emobox": "turevdb"``) are read from its files with
``data.fold_protocol=emobox data.emobox_dir=PATH``: each EmoBox key maps to the manifest row whose
``emobox_key`` column names it, else to the stored file whose path (the example id) ends EmoBox's
``wav`` path (``downloads/turevdb/Sound Source/Angry/1157_kz_acik.wav`` ->
``Sound Source/Angry/1157_kz_acik`` or ``Angry/1157_kz_acik``).

Skips (logged, counted in ``build_report.json``): a label outside the classes, a file name the
speaker regex does not match, unreadable/short audio. Audio: mono int16 at 16 kHz.
"""

from __future__ import annotations

import collections
import csv
import dataclasses
import io
import json
import logging
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow_datasets as tfds

from data_prep._common import features as F
from data_prep._common.clips import audio_clip
from data_prep._common.folds import speaker_protocol
from data_prep._common.report import CorpusError, ReportingMixin
from data_prep._common.speakers import SPLITS
from data_prep._common.text import TextDecodeError, read_text

AUDIO_EXTS = (".wav", ".flac")
FULL = "full"  # the one split of a build without an official split
_SPLIT_NAMES = {"train": "train", "validation": "validation", "valid": "validation",
                "val": "validation", "dev": "validation", "test": "test"}


@dataclasses.dataclass
class FolderConfig(tfds.core.BuilderConfig):
    """A folder of labelled audio; fields as in the module docstring's JSON spec."""

    classes: tuple[str, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    speaker_regex: str = r"^(?P<speaker>[^_]+)_"
    manifest: str = ""
    num_folds: int = 0
    emobox: str = ""

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> FolderConfig:
        """Reads a JSON spec (module docstring).

        Raises:
          ValueError: unreadable JSON, no ``classes``, unknown keys or a bad regular expression.
        """
        path = Path(os.path.expanduser(os.fspath(path)))
        try:
            spec = json.loads(read_text(path).text)
        except (OSError, ValueError) as exc:
            raise ValueError(f"{path}: not a readable JSON corpus spec ({exc})") from exc
        known = {"name", "classes", "labels", "speaker_regex", "manifest", "num_folds",
                 "description", "version", "emobox"}
        unknown = sorted(set(spec) - known)
        if unknown:
            raise ValueError(f"{path}: unknown keys {unknown}; known: {sorted(known)}")
        if not spec.get("classes"):
            raise ValueError(f"{path}: 'classes' (class names in label-id order) is required")
        cfg = cls(name=spec.get("name") or path.stem,
                  version=tfds.core.Version(spec.get("version", "1.0.0")),
                  description=spec.get("description", f"folder corpus from {path}"),
                  classes=tuple(spec["classes"]),
                  labels=tuple(sorted((spec.get("labels") or {}).items())),
                  speaker_regex=spec.get("speaker_regex", cls.speaker_regex),
                  manifest=spec.get("manifest", ""), num_folds=int(spec.get("num_folds", 0)),
                  emobox=str(spec.get("emobox") or ""))
        cfg.validate()
        return cfg

    def validate(self) -> None:
        re.compile(self.speaker_regex)
        bad = sorted({c for _, c in self.labels} - set(self.classes))
        if bad:
            raise ValueError(f"config {self.name!r}: labels map to {bad}, not in classes "
                             f"{list(self.classes)}")

    def class_of(self, raw: str) -> str | None:
        """The class of a raw label (folder name / manifest value), or None when it has none."""
        mapping = {k.lower(): v for k, v in self.labels}
        cls = mapping.get(raw.strip().lower(), raw.strip().lower())
        return cls if cls in self.classes else None

    def speaker_of(self, file_name: str) -> str | None:
        m = re.search(self.speaker_regex, file_name)
        if not m:
            return None
        return m.groupdict().get("speaker") or (m.group(1) if m.groups() else m.group(0))


TUREV_DB = FolderConfig(
    name="turev_db", version=tfds.core.Version("1.0.0"),
    description="TurEV-DB (Canpolat et al. 2020): Turkish acted single words, 4 emotions, 6 "
                "speakers; `Sound Source/<Emotion>/<speaker>_<xx>_<word>.wav`; 6 "
                "leave-one-speaker-out folds.",
    classes=("angry", "calm", "happy", "sad"), speaker_regex=r"^(?P<speaker>\d+)_",
    emobox="turevdb")


def _manifest_rows(root: Path, manifest: str, repairs: collections.Counter | None = None
                   ) -> list[dict[str, str]]:
    """The manifest's rows, keys and values stripped (a CSV written with ", " separators has the
    header ``path, label``), read by the project's text decoder (any of UTF-8, UTF-16, cp1252;
    repairs added to ``repairs``).

    Raises:
      CorpusError: the manifest is missing, not text, not valid JSON, or lacks ``path`` or
        ``label`` in a row (names the file, the row and the keys it has).
    """
    path = root / manifest
    if not path.is_file():
        raise CorpusError(f"folder corpus: manifest {path} not found")
    try:
        decoded = read_text(path)
    except TextDecodeError as exc:
        raise CorpusError(f"folder corpus: {exc}") from exc
    if repairs is not None:
        repairs.update(decoded.repairs)
    text = decoded.text
    if path.suffix.lower() in (".json", ".jsonl"):
        try:
            rows = (json.loads(text) if path.suffix.lower() == ".json"
                    else [json.loads(line) for line in text.splitlines() if line.strip()])
        except ValueError as exc:
            raise CorpusError(f"folder corpus: {path} is not valid JSON ({exc})") from exc
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise CorpusError(f"folder corpus: {path} must hold a list of objects")
    else:
        rows = list(csv.DictReader(io.StringIO(text, newline=""), skipinitialspace=True))
    rows = [{str(k).strip(): str(v).strip() for k, v in r.items() if k is not None
             and v is not None} for r in rows]
    if not rows:
        raise CorpusError(f"folder corpus: {path} (read as {decoded.encoding}) has no rows")
    for i, r in enumerate(rows):
        if not r.get("path") or not r.get("label"):
            raise CorpusError(f"folder corpus: {path} (read as {decoded.encoding}) row {i + 1} "
                              f"needs 'path' and 'label'; it has {sorted(r)}")
    return rows


def _unique_ids(items: list[tuple]) -> None:
    """Raises :class:`CorpusError` naming both files when two items share an example id (the
    same stem as ``.wav`` and ``.flac``)."""
    seen: dict[str, Path] = {}
    for example_id, path, *_ in items:
        if example_id in seen:
            raise CorpusError(f"folder corpus: {seen[example_id]} and {path} give the same "
                              f"example id {example_id!r}; remove or rename one")
        seen[example_id] = path


class LabelledFolder(ReportingMixin, tfds.core.GeneratorBasedBuilder):
    """A folder of labelled audio; see the module docstring."""

    name = "folder"  # the corpus name, so that a build lives in <data_dir>/folder/<config>/

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First release."}
    BUILDER_CONFIGS = [TUREV_DB]
    DEFAULT_CONFIG_NAME = "turev_db"
    MANUAL_DOWNLOAD_INSTRUCTIONS = """
    Pass the corpus root as --manual_dir, and a registered config or a JSON spec as --config (see
    data_prep/folder/folder.py).
    """

    def recipe_files(self, manual_dir: str) -> list[Path]:
        """Files whose content the build depends on besides the audio: the manifest (hashed into
        the build's recipe, :func:`data_prep.prepared.recipe`)."""
        cfg = self.builder_config
        return [Path(manual_dir) / cfg.manifest] if cfg.manifest else []

    def _create_builder_config(self, builder_config, *args, **kwargs):
        # A user's JSON spec is a custom config by design: TFDS's "Using custom data
        # configuration" warning (absl, printed on every build and read) says nothing to them.
        absl_logger = logging.getLogger("absl")
        level = absl_logger.level
        absl_logger.setLevel(max(level, logging.ERROR))
        try:
            return super()._create_builder_config(builder_config, *args, **kwargs)
        finally:
            absl_logger.setLevel(level)

    @classmethod
    def config_from_file(cls, path: str) -> FolderConfig:
        """``--config PATH.json``: a user's corpus spec (used by ``data_prep.build``)."""
        return FolderConfig.from_json(path)

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict({
                "id": tfds.features.Text(),
                "speaker": tfds.features.Text(),
                "label": tfds.features.ClassLabel(names=list(self.builder_config.classes)),
                "audio": F.audio(),
            }),
            supervised_keys=("audio", "label"),
        )

    def _split_generators(self, dl_manager):
        cfg = self.builder_config
        root = self._manual_root(dl_manager)
        self._note_old_location()
        items: list[tuple[str, Path, str, str, str]] = []  # id, path, label, speaker, split
        keys: dict[Path, str] = {}  # a manifest's emobox_key column
        if cfg.manifest:
            candidates = []
            repairs: collections.Counter = collections.Counter()
            for r in _manifest_rows(root, cfg.manifest, repairs):
                split = r.get("split", "").strip().lower()
                candidates.append((root / r["path"], r["label"], r.get("speaker", ""),
                                   _SPLIT_NAMES.get(split, "?" + split) if split else FULL))
                if r.get("emobox_key", "").strip():
                    keys[root / r["path"]] = r["emobox_key"].strip()
            for kind, n in sorted(repairs.items()):
                self.report.repair(kind, n, where=root / cfg.manifest)
        else:
            files = sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_EXTS
                           and not any(part.startswith(".") for part in p.parts))
            if not files:
                raise CorpusError(f"folder corpus: no {'/'.join(AUDIO_EXTS)} files under {root}")
            candidates = [(p, p.parent.name, "", FULL) for p in files]
        for path, raw, speaker, split in candidates:
            cls = cfg.class_of(raw)
            if cls is None:
                self.report.skip(path, f"label {raw!r} is not one of the classes "
                                       f"{list(cfg.classes)}")
                continue
            speaker = speaker or cfg.speaker_of(path.name)
            if not speaker:
                self.report.skip(path, f"file name does not match speaker_regex "
                                       f"{cfg.speaker_regex!r}")
                continue
            if split.startswith("?"):
                self.report.skip(path, f"unknown split {split[1:]!r}")
                continue
            rel = path.relative_to(root) if path.is_relative_to(root) else Path(path.name)
            items.append((rel.with_suffix("").as_posix(), path, cls, speaker, split))
        _unique_ids(items)
        if not items:
            raise CorpusError(f"folder corpus {cfg.name}: no usable file under {root} "
                              f"({self.report.skips.count()} skipped)")
        self._keys = {keys[it[1]]: it[0] for it in items if it[1] in keys}
        splits = sorted({it[4] for it in items})
        if FULL in splits and len(splits) > 1:
            raise CorpusError(f"folder corpus {cfg.name}: the manifest gives a split for some "
                              "rows only")
        if FULL not in splits:
            self._require_splits({s: [it for it in items if it[4] == s] for s in SPLITS}, root)
        self.report.notes["label_source"] = cfg.manifest or "folder names"
        return {s: self._generate_examples([it for it in items if it[4] == s], s)
                for s in splits}

    def _note_old_location(self) -> None:
        """Says where a build made before the builder was named ``folder`` lies (TFDS named it
        after the class, ``labelled_folder/``): it is no longer read and can be deleted."""
        data_root = Path(os.fspath(self._data_dir_root))
        for base in (data_root, data_root.parent):  # a --force rebuild runs one level down
            old = base / "labelled_folder" / self.builder_config.name
            if old.is_dir():
                logging.getLogger("data_prep").warning(
                    "%s is an earlier build of folder/%s (before builds moved to folder/); it is "
                    "no longer read: delete it", old, self.builder_config.name)

    def _emobox_name(self) -> str:
        return self.builder_config.emobox

    def _emobox_keys(self) -> dict[str, str]:
        stored = self.report.examples
        return {k: i for k, i in getattr(self, "_keys", {}).items() if i in stored}

    def _fold_protocols(self, examples: dict[str, dict[str, str]]) -> dict[str, Any]:
        cfg = self.builder_config
        speaker_of = {i: e["speaker"] for i, e in examples.items()}
        protocols = {}
        n_spk = len(set(speaker_of.values()))
        if n_spk >= 3:
            k = cfg.num_folds or None
            name = "loso" if k is None else f"speakers{k}"
            protocols[name] = speaker_protocol(speaker_of, k)
        if any(e["split"] != FULL for e in examples.values()):
            fold = {s: sorted(i for i, e in examples.items() if e["split"] == s) for s in SPLITS}
            fold["speakers"] = {s: sorted({speaker_of[i] for i in fold[s]}) for s in SPLITS}
            independent = not (set(fold["speakers"]["train"]) & (
                set(fold["speakers"]["validation"]) | set(fold["speakers"]["test"])))
            protocols["official"] = {"description": "the manifest's split",
                                     "speaker_independent": independent, "folds": [fold]}
        return protocols

    def _generate_examples(self, items, split):
        # Decoding and resampling run in self.num_workers processes; results come back in order.
        decoded = self._decoded(audio_clip, [it[1] for it in items], items, split,
                                path_of=lambda item: item[1])
        for (example_id, path, label, speaker, _), res in decoded:
            audio, info = res
            self.report.add(split, label, speaker, info["duration_s"], info["orig_sr"],
                            path=path, media=info, example_id=example_id)
            yield example_id, {"id": example_id, "speaker": speaker, "label": label,
                               "audio": audio.astype(np.int16)}
