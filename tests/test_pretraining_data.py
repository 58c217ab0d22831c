"""Pretraining data: corpus reading, NSP/SOP pairs and 80/10/10 masking, checked as statistics over thousands of
sequences against the recipe of the BERT and ALBERT papers (docs/design.md §5)."""

import os

import numpy as np
import pytest

from kzoo.data.corpus import iter_documents, split_sentences
from kzoo.data.masking import MaskedLMMasker, word_start_table
from kzoo.data.pairs import PairBuilder

DOC_STRIDE = 100_000  # synthetic token ids encode their document: id // DOC_STRIDE


def synthetic_documents(count=2000, seed=0):
    """Documents of 1–12 sentences of 3–25 tokens; ids increase through each document and encode it."""
    rng = np.random.default_rng(seed)
    documents = []
    for d in range(count):
        next_id = d * DOC_STRIDE
        sentences = []
        for _ in range(rng.integers(1, 13)):
            length = int(rng.integers(3, 26))
            sentences.append(np.arange(next_id, next_id + length, dtype="int32"))
            next_id += length
        documents.append(sentences)
    return documents


def _is_run(tokens):
    return len(tokens) > 0 and np.all(np.diff(tokens) == 1)


def _instances(task, seed=0, max_tokens=61, documents=None):
    return list(PairBuilder(task, max_tokens=max_tokens, seed=seed, document_pool=200)(
        documents or synthetic_documents()))


def test_nsp_labels_balanced_and_negatives_from_other_documents():
    instances = _instances("nsp")
    labels = np.array([i.label for i in instances])
    assert len(instances) > 3000
    assert abs(labels.mean() - 0.5) <= 0.03
    for instance in instances:
        doc_a = set((instance.tokens_a // DOC_STRIDE).tolist())
        doc_b = set((instance.tokens_b // DOC_STRIDE).tolist())
        assert len(doc_a) == 1 and len(doc_b) == 1
        assert len(instance.tokens_a) + len(instance.tokens_b) <= 61
        if instance.label == 1:
            assert doc_a != doc_b  # every negative comes from another document
        else:
            assert doc_a == doc_b and instance.tokens_a.max() < instance.tokens_b.min()


def test_sop_positive_is_its_pair_reversed():
    instances = _instances("sop")
    labels = np.array([i.label for i in instances])
    assert len(instances) > 3000
    assert abs(labels.mean() - 0.5) <= 0.03
    for instance in instances:
        a, b = instance.tokens_a, instance.tokens_b
        assert _is_run(a) and _is_run(b)  # each side: consecutive text of one document
        assert a[0] // DOC_STRIDE == b[0] // DOC_STRIDE
        if instance.label == 1:
            assert b.max() < a.min()  # swapped: the text of B comes first in the document
        else:
            assert a.max() < b.min()


def test_short_sequences_and_truncation():
    rng = np.random.default_rng(1)
    long_documents = [[np.arange(d * DOC_STRIDE + 10 * s, d * DOC_STRIDE + 10 * s + int(rng.integers(2, 6)),
                                 dtype="int32") for s in range(1000)] for d in range(20)]

    def short_share(short_seq_prob):
        builder = PairBuilder("sop", max_tokens=61, short_seq_prob=short_seq_prob, seed=0, document_pool=20)
        totals = np.array([len(i.tokens_a) + len(i.tokens_b) for i in builder(long_documents)])
        assert totals.max() <= 61
        return np.mean(totals < 50)

    # Without short_seq_prob only document ends fall short; with 0.1, a tenth of targets are drawn from [2, 61]
    # (and short targets make more, shorter instances).
    assert short_share(0.0) < 0.02
    assert 0.06 <= short_share(0.1) - short_share(0.0) <= 0.2


def test_pairs_are_deterministic_under_a_seed():
    def key(instances):
        return [(i.label, i.tokens_a.tolist(), i.tokens_b.tolist()) for i in instances[:200]]

    assert key(_instances("nsp", seed=3)) == key(_instances("nsp", seed=3))
    assert key(_instances("nsp", seed=3)) != key(_instances("nsp", seed=4))


def test_one_sentence_documents_give_pairs_from_halves():
    documents = [[np.arange(d * DOC_STRIDE, d * DOC_STRIDE + 10, dtype="int32")] for d in range(400)]
    instances = _instances("sop", documents=documents)
    assert len(instances) == 400
    assert abs(np.mean([i.label for i in instances]) - 0.5) <= 0.08
    with pytest.raises(ValueError, match="NSP needs at least two documents"):
        list(PairBuilder("nsp", max_tokens=61)([[np.arange(4), np.arange(4, 8)]] * 1))


def test_mlm_sequences_are_consecutive_text():
    instances = _instances("mlm", max_tokens=62)
    assert all(i.tokens_b is None and i.label is None and _is_run(i.tokens_a) for i in instances)
    assert max(len(i.tokens_a) for i in instances) == 62


# --- masking -------------------------------------------------------------------------------------------------

V = 3000
CLS, SEP, PAD, MASK = 2, 3, 0, 4
WORD_STARTS = np.ones(V, bool)
WORD_STARTS[1500:] = False  # ids ≥ 1500 continue the previous word ("##" pieces)


def packed_batch(rows=4000, length=128, seed=0):
    """[CLS] A [SEP] B [SEP] [PAD]..., real lengths 20–128, words of 1–4 pieces."""
    rng = np.random.default_rng(seed)
    batch = np.full((rows, length), PAD, "int32")
    for r in range(rows):
        real = int(rng.integers(20, length + 1))
        words = []
        while sum(len(w) for w in words) < real:
            words.append([int(rng.integers(10, 1500))] + rng.integers(1500, V, rng.integers(0, 4)).tolist())
        tokens = [t for w in words for t in w][:real - 3]
        cut = len(tokens) // 2
        row = [CLS] + tokens[:cut] + [SEP] + tokens[cut:] + [SEP]
        batch[r, :len(row)] = row
    return batch


@pytest.fixture(scope="module")
def batch():
    return packed_batch()


def _mask(batch, strategy, seed=(1, 2), max_predictions=20):
    import tensorflow as tf

    masker = MaskedLMMasker(V, MASK, [CLS, SEP, PAD], max_predictions, strategy=strategy, word_starts=WORD_STARTS)
    out = masker(tf.constant(batch), tf.constant(seed))
    return {k: np.asarray(v) for k, v in out.items()}


def _selected(batch, out):
    chosen = np.zeros(batch.shape, bool)
    rows, cols = np.nonzero(out["mask_weights"])
    chosen[rows, out["mask_positions"][rows, cols]] = True
    return chosen


@pytest.mark.parametrize("strategy", ["token", "whole_word", "ngram"])
def test_masking_statistics(batch, strategy):
    out = _mask(batch, strategy)
    eligible = ~np.isin(batch, [CLS, SEP, PAD])
    chosen = _selected(batch, out)
    per_row = out["mask_weights"].sum(1)
    # Rows short enough that 15% stays under max_predictions=20: the share is 15% ± 1 point.
    room = eligible.sum(1) <= 125
    share = chosen[room].sum() / eligible[room].sum()
    assert abs(share - 0.15) <= 0.01, share
    assert per_row.max() <= 20  # max_predictions_per_seq
    assert not np.any(chosen & ~eligible)  # special tokens and padding never chosen
    assert np.array_equal(out["mask_ids"][out["mask_weights"] > 0], batch[chosen])
    replaced = out["token_ids"][chosen]
    original = batch[chosen]
    as_mask = np.mean(replaced == MASK)
    kept = np.mean(replaced == original)
    randomised = np.mean((replaced != MASK) & (replaced != original))
    assert abs(as_mask - 0.8) <= 0.02 and abs(kept - 0.1) <= 0.02 and abs(randomised - 0.1) <= 0.02
    assert not np.any(np.isin(replaced[replaced != MASK], [CLS, SEP, PAD]))  # random ids are ordinary pieces
    assert np.array_equal(out["token_ids"][~chosen], batch[~chosen])  # nothing else changes
    positions = np.where(out["mask_weights"] > 0, out["mask_positions"], 10**6)
    assert np.all(np.diff(positions, axis=1) >= 0)  # sorted, padding slots last


@pytest.mark.parametrize("strategy", ["whole_word", "ngram"])
def test_whole_words_are_never_split(batch, strategy):
    chosen = _selected(batch, _mask(batch, strategy))
    eligible = ~np.isin(batch, [CLS, SEP, PAD])
    continuation = ~WORD_STARTS[batch] & eligible & np.pad(eligible[:, :-1], [(0, 0), (1, 0)])
    # A continuation piece is chosen exactly when the piece before it is (after [SEP] a piece starts a word).
    assert np.array_equal(chosen[:, 1:][continuation[:, 1:]], chosen[:, :-1][continuation[:, 1:]])


def test_ngram_lengths_follow_one_over_n():
    import tensorflow as tf

    masker = MaskedLMMasker(V, MASK, [PAD], 20, strategy="ngram", word_starts=np.ones(V, bool))
    words = tf.tile(tf.range(120)[None], [400, 1])
    ngram = np.asarray(masker._group_ngrams(words, tf.constant([5, 6], tf.int64)))
    lengths = np.concatenate([np.bincount(row)[:-1] for row in ngram])  # drop each row's cut-off last n-gram
    expected = np.array([1, 1 / 2, 1 / 3]) / (1 + 1 / 2 + 1 / 3)
    observed = np.bincount(lengths, minlength=4)[1:4] / len(lengths)
    assert np.all(np.abs(observed - expected) <= 0.02), observed


def test_masks_are_dynamic_and_seeded(batch):
    first = _mask(batch[:200], "token", seed=(1, 2))
    again = _mask(batch[:200], "token", seed=(1, 2))
    other = _mask(batch[:200], "token", seed=(3, 4))
    assert np.array_equal(first["mask_positions"], again["mask_positions"])
    differs = np.any(_selected(batch[:200], first) != _selected(batch[:200], other), axis=1)
    assert differs.mean() > 0.95


def test_max_predictions_caps_long_sequences():
    long_rows = packed_batch(rows=300, length=512, seed=1)
    out = _mask(long_rows, "whole_word", max_predictions=20)
    assert out["mask_positions"].shape == (300, 20)
    assert out["mask_weights"].sum(1).max() == 20


def test_word_start_tables():
    assert word_start_table(["[PAD]", "the", "##s"]).tolist() == [True, True, False]
    assert word_start_table(["<pad>", "[CLS]", "▁the", "s", "▁a"], sentencepiece=True).tolist() == [
        True, True, True, False, True]


# --- corpus ----------------------------------------------------------------------------------------------------

def test_sentences_keep_abbreviations_and_quotes():
    assert split_sentences('Mrs. Weston smiled. "Is it so?" asked Mr. Knightley. It was.') == [
        "Mrs. Weston smiled.", '"Is it so?" asked Mr. Knightley.', "It was."]


def test_holdout_split_partitions_documents(tmp_path):
    (tmp_path / "a.txt").write_text("\n\n".join(f"Document {i} starts. It ends." for i in range(50)))
    everything = list(iter_documents(tmp_path, split="all"))
    train = list(iter_documents(tmp_path, holdout_every=5))
    held = list(iter_documents(tmp_path, holdout_every=5, split="eval"))
    assert len(everything) == 50 and len(held) == 10 and len(train) == 40
    assert sorted(map(tuple, train + held)) == sorted(map(tuple, everything))


def test_corpus_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        list(iter_documents(tmp_path / "missing"))
    with pytest.raises(ValueError, match="no .txt files"):
        list(iter_documents(tmp_path))
    (tmp_path / "empty.txt").write_text("\n\n   \n")
    with pytest.raises(ValueError, match="is empty"):
        list(iter_documents(tmp_path))
    (tmp_path / "latin1.txt").write_bytes("Good text.\n\nCaf\xe9 au lait.\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin1.txt, line 3: not UTF-8"):
        list(iter_documents(tmp_path / "latin1.txt"))


def test_documents_stream(tmp_path):
    """A file is read line by line: the first document arrives before the reader reaches a bad line."""
    (tmp_path / "big.txt").write_bytes(b"First document. Two sentences.\n\n" + b"\xff\n")
    documents = iter_documents(tmp_path / "big.txt")
    assert next(documents) == ["First document.", "Two sentences."]
    with pytest.raises(ValueError, match="not UTF-8"):
        next(documents)
    assert os.path.exists(tmp_path / "big.txt")


def test_files_are_interleaved(tmp_path):
    """Documents come from the files in turn, so NSP's other-document pool spans the corpus."""
    for name in ("a", "b", "c"):
        (tmp_path / f"{name}.txt").write_text("\n\n".join(f"{name.upper()} doc {i}." for i in range(3 if name != "b" else 1)))
    order = [document[0].split()[0] for document in iter_documents(tmp_path, split="all", cycle_length=2)]
    assert order == ["A", "B", "A", "A", "C", "C", "C"]  # B ends, C takes its place in the cycle
