"""The data stack, bottom to top (each module imports only those listed before it):

* ``sources``: the prepared TFDS builder (found through ``data_prep.CORPORA``) and split sources.
* ``augment``: online ops (``AUGMENTATIONS``), offline copies (``OFFLINE_AUGMENTATIONS``), cache.
* ``text``: the tokenizer.
* ``batching``: order per epoch, padding, per-host shard, length buckets, the grain routine, the
  feature-stream names.
* ``speaker_norm``: per-speaker feature statistics (it calls ``device`` inside a function).
  ``corpus``: a corpus opened for a run; one record -> one host example.
* ``base``: the pipeline surface shared by every unit; ``utterance`` / ``dialogue``: how examples
  are grouped into batch rows and collated; ``pipeline``: :func:`make_pipeline`.
* ``features`` / ``device``: the on-device feature step (``device.make_feature_step``).
"""
