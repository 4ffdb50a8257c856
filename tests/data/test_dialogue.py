"""DialoguePipeline on a tiny IEMOCAP `text` corpus built from a COSMIC-format pickle."""

import pickle

import ml_collections
import numpy as np
import pytest

from mmer_jax.data.dialogue import DialoguePipeline, chunk_sizes
from mmer_jax.data.pipeline import make_pipeline

# dialogue -> number of utterances; the 19-turn one is longer than max_utterances (8) below.
DIALOGUES = {"train": {"Ses01F_impro01": 5, "Ses01M_script01_1": 19, "Ses02M_impro04": 3,
                       "Ses03F_impro02": 7},
             "validation": {"Ses02F_impro02": 4},
             "test": {"Ses05M_impro03": 6, "Ses05F_script02_2": 11}}
MAX_UTT = 8


def _cosmic(root):
    speakers, labels, sentences, ids = {}, {}, {}, {}
    for split, ds in DIALOGUES.items():
        ids[split] = list(ds)
        for j, (d, n) in enumerate(ds.items()):
            # Dialogues start with either speaker, so the per-dialogue speaker map is exercised.
            speakers[d] = ["FM"[(i // 2 + j) % 2] for i in range(n)]
            labels[d] = [(3 * i + j) % 6 for i in range(n)]
            sentences[d] = [f"word{i} " + "tok " * (i % 4) + f"{split}" for i in range(n)]
    obj = [speakers, labels, sentences, ids["train"], ids["test"], ids["validation"]]
    root.mkdir(parents=True, exist_ok=True)
    (root / "iemocap.pkl").write_bytes(pickle.dumps(obj, protocol=4))
    return obj


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    base = tmp_path_factory.mktemp("dlg")
    obj = _cosmic(base / "manual")
    data_cfg = ml_collections.ConfigDict(dict(
        corpus="iemocap", config="text", data_dir=str(base / "tfds"),
        manual_dir=str(base / "manual"), build_if_missing=True, cache=True, read_threads=0,
        unit="dialogue", max_utterances=MAX_UTT, utterance_bucket=8, max_tokens=6,
        token_bucket=4, min_count=1))
    return data_cfg, obj, base


def _words(pipe, row):
    return [" ".join(pipe.tokenizer.vocab[t] for t in r if t) for r in row]


def test_chunk_sizes():
    assert chunk_sizes(19, 8) == [7, 6, 6]
    assert chunk_sizes(8, 8) == [8]
    assert chunk_sizes(1, 8) == [1]
    assert chunk_sizes(17, 8) == [6, 6, 5]


def test_grouping_order_speakers_and_vocab(corpus, tmp_path):
    data_cfg, obj, _ = corpus
    speakers, labels, sentences = obj[:3]
    pipe = make_pipeline(data_cfg, ["text"], seed=0, workdir=str(tmp_path))
    assert isinstance(pipe, DialoguePipeline)
    assert (tmp_path / "vocab.json").exists()
    assert "validation" not in pipe.tokenizer.index  # vocabulary from train only
    assert pipe.class_names == ["hap", "sad", "neu", "ang", "exc", "fru"]
    # 19 turns -> 3 chunks; the others fit.
    assert pipe.num_examples("train") == 3 + 3
    assert pipe.num_utterances("train") == 5 + 19 + 3 + 7
    assert pipe.num_dialogues("train") == 4
    chunks = [ids for d, ids, _ in pipe.units["train"] if d == "Ses01M_script01_1"]
    assert [len(c) for c in chunks] == [7, 6, 6]  # split into chunks, not truncated
    src = pipe.sources["train"]
    for d, ids, spk in pipe.units["train"]:
        turns = [int(src[int(i)]["turn"]) for i in ids]
        assert turns == sorted(turns) and np.all(np.diff(turns) == 1)
        raw = [speakers[d][t] for t in turns]
        first = speakers[d][0]
        assert list(spk) == [0 if s == first else 1 for s in raw]
        assert [int(src[int(i)]["label"]) for i in ids] == [labels[d][t] for t in turns]
    assert pipe.steps_per_epoch(4) == 2  # 6 units, remainder kept by default


@pytest.mark.parametrize("split", ["train", "validation", "test"])
def test_eval_covers_every_utterance_once_in_order(corpus, split):
    data_cfg, obj, _ = corpus
    labels = obj[1]
    pipe = DialoguePipeline(data_cfg, ["text"], seed=0)
    seen = []
    for batch in pipe.batches(split, 4, train=False):
        b, u, length = batch["tokens"].shape
        assert u % 8 == 0 and u <= max(MAX_UTT, 8)
        assert length <= 6 and (length % 4 == 0 or length == 6)  # bucket, capped at max_tokens
        assert batch["utt_mask"].shape == batch["label"].shape == batch["weight"].shape == (b, u)
        assert batch["speaker"].dtype == np.int32 and batch["label"].dtype == np.int32
        np.testing.assert_array_equal(batch["weight"] > 0, batch["utt_mask"])
        assert not batch["tokens"][~batch["utt_mask"]].any()  # padded utterances are empty
        for r in range(b):
            n = int(batch["utt_mask"][r].sum())
            assert batch["utt_mask"][r, :n].all()  # real utterances first, contiguous
            words = _words(pipe, batch["tokens"][r, :n])
            seen.extend(zip(words, batch["label"][r, :n].tolist(), strict=True))
    expected = [(f"word{i}" + " tok" * (i % 4) + f" {split}", labels[d][i])
                for d in sorted(DIALOGUES[split]) for i in range(DIALOGUES[split][d])]
    assert len(seen) == sum(DIALOGUES[split].values())
    assert [y for _, y in seen] == [y for _, y in expected]
    if split == "train":  # other splits' words are partly out of vocabulary
        assert [w for w, _ in seen] == [e for e, _ in expected]


def test_training_batches_shuffle_and_keep_remainder(corpus):
    data_cfg, _, _ = corpus
    pipe = DialoguePipeline(data_cfg, ["text"], seed=3)
    total = 0
    epochs = []
    for epoch in range(2):
        batches = list(pipe.batches("train", 4, epoch=epoch, train=True))
        assert len(batches) == pipe.steps_per_epoch(4) == 2
        total = sum(float(b["weight"].sum()) for b in batches)
        assert total == pipe.num_utterances("train")  # every utterance every epoch
        epochs.append([b["label"][b["utt_mask"]].tolist() for b in batches])
    assert epochs[0] != epochs[1]
    again = [b["label"][b["utt_mask"]].tolist() for b in pipe.batches("train", 4, epoch=1,
                                                                        train=True)]
    assert again == epochs[1]  # order depends on (seed, epoch) only
    skipped = list(pipe.batches("train", 4, epoch=1, train=True, skip_batches=1))
    assert len(skipped) == 1 and skipped[0]["label"][skipped[0]["utt_mask"]].tolist() == again[1]
    # Two hosts each get half of every global batch, together the same utterances.
    halves = [list(pipe.batches("train", 4, epoch=1, train=True, process_index=i,
                                process_count=2)) for i in range(2)]
    assert sum(float(b["weight"].sum()) for h in halves for b in h) == total
    drop = ml_collections.ConfigDict(data_cfg.to_dict())
    drop.drop_remainder = True
    pd = DialoguePipeline(drop, ["text"], seed=3)
    assert pd.steps_per_epoch(4) == 1 and len(list(pd.batches("train", 4, train=True))) == 1


def test_device_prepare_dialogue(corpus):
    from mmer_jax.data import device

    data_cfg, _, _ = corpus
    pipe = DialoguePipeline(data_cfg, ["text"], seed=0)
    host = next(iter(pipe.batches("test", 4)))
    out = device.prepare(host, data_cfg)
    assert set(out) == {"tokens", "tokens_mask", "utt_mask", "speaker", "label", "weight"}
    assert out["tokens_mask"].shape == host["tokens"].shape
    np.testing.assert_array_equal(np.asarray(out["tokens_mask"]), host["tokens"] > 0)
    np.testing.assert_array_equal(np.asarray(out["speaker"]), host["speaker"])


def test_utterance_corpus_without_dialogue_fields_is_a_usage_error(tiny_generated):
    from mmer_jax.errors import UsageError

    cfg = ml_collections.ConfigDict(dict(
        corpus="generated_emotion", config="tiny", data_dir=tiny_generated, manual_dir="",
        build_if_missing=True, cache=True, read_threads=0, unit="dialogue", max_utterances=8,
        max_tokens=8, token_bucket=4, min_count=1))
    src_fields = None
    try:
        DialoguePipeline(cfg, ["text"], seed=0)
    except UsageError as exc:
        src_fields = str(exc)
    if src_fields is None:
        pytest.skip("generated_emotion stores dialogue fields")
    assert "dialogue_id" in src_fields


@pytest.mark.parametrize("kind", ["bilstm", pytest.param("cnn", marks=pytest.mark.slow)])
def test_packed_utterances_give_the_same_model_outputs(corpus, kind):
    """data.pack_utterances feeds the word encoder the real utterances only; the model's outputs
    (eval mode) equal those of the unpacked [B, U, L] batch."""
    import jax

    from mmer_jax.config import base_config
    from mmer_jax.data import device
    from mmer_jax.errors import UsageError
    from mmer_jax.models import build_model

    data_cfg, _, _ = corpus
    packed_cfg = ml_collections.ConfigDict(data_cfg.to_dict())
    packed_cfg.pack_utterances = 4
    plain = next(iter(DialoguePipeline(data_cfg, ["text"], seed=0).batches("test", 4)))
    pipe = DialoguePipeline(packed_cfg, ["text"], seed=0)
    packed = next(iter(pipe.batches("test", 4)))
    assert "tokens" not in packed
    real = int(plain["utt_mask"].sum())
    n = packed["tokens_packed"].shape[0]
    assert n % 4 == 0 and real <= n < real + 4
    slots = packed["packed_slot"][:real]
    np.testing.assert_array_equal(packed["tokens_packed"][:real],
                                  plain["tokens"].reshape(-1, plain["tokens"].shape[-1])[slots])
    assert (packed["packed_slot"][real:] == plain["utt_mask"].size).all()
    assert not packed["tokens_packed"][real:].any()

    section = base_config("s002").model
    section.text.kind = kind
    model = build_model(section, num_classes=6, vocab_size=pipe.vocab_size, modalities=["text"])
    a, b = device.prepare(plain, data_cfg), device.prepare(packed, packed_cfg)
    # An rbg key: the eager init's random programs compile several times faster than threefry's.
    params = model.init(jax.random.key(0, impl="rbg"), a, train=False)
    out_a, out_b = model.apply(params, a, train=False)[0], model.apply(params, b, train=False)[0]
    np.testing.assert_allclose(np.asarray(out_a), np.asarray(out_b), rtol=1e-5, atol=1e-5)
    with pytest.raises(UsageError, match="pack_utterances"):
        pipe.batches("train", 4, train=True, process_index=0, process_count=2)
