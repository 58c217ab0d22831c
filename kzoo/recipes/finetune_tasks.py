"""What `kzoo finetune` does differently per task: which fields it reads, which model it builds, how it scores.

classify  text (+ optional pair) → a class         TextClassifier
tokens    words → a tag per word                    TokenClassifier   (JSONL lists, or space-separated strings)
qa        question + context → an answer span       SpanQuestionAnswerer (answer text, SQuAD dict, or empty)
embed     pairs of texts that belong together       TextEmbedder (in-batch negatives; scored by retrieval)
"""

import collections

import numpy as np

from kzoo.data.labelled_files import REPLACE_HINT, column, label_column, text_column, where_is
from kzoo.data.task_inputs import check_text, replace_surrogates
from kzoo.evaluation.scores import classification_scores, exact_match, squad_f1
from kzoo.file_checks import describe


def _option(field):
    """The command-line option that names a config field: "text_field" → "--text-field"."""
    return "--" + field.replace("_", "-")


def _texts(rows, config, field, path=None):
    """The texts of the config field `field` ("text_field", ...): checked, named by file and line."""
    return text_column(rows, getattr(config, field), path or config.data, _option(field), config.encoding_errors)


def _two_or_more(names, what):
    """`names`, or a ValueError when training sees fewer than two: a classifier needs two classes."""
    if len(names) < 2:
        raise ValueError(f"Every training example has the {what} {names[0]!r}; a classifier needs two or more "
                         f"(check --label-field).")
    return names


class FinetuneTask:
    """What every task shares; each subclass names its fields, model, monitor and scores."""

    columns = ("accuracy", "macro_f1", "majority_baseline")  # the scores `kzoo finetune` prints

    def fit_targets(self, y):
        """What `fit` gets as targets of the rows' `y` (the embed task trains on its pairs alone)."""
        return y

    def training_rows(self, model, x, y):
        """How many rows `fit` steps over in an epoch (what the learning-rate schedule counts)."""
        return len(y)


class ClassifyTask(FinetuneTask):
    name = "classify"
    fields = {"text_field": "text", "pair_field": None, "label_field": "label"}
    monitor, mode = "val_accuracy", "max"

    @property
    def model_class(self):
        from kzoo.models import TextClassifier

        return TextClassifier

    def read(self, rows, config):
        return self.texts(rows, config), label_column(rows, config.label_field, config.data, "--label-field")

    def texts(self, rows, config, path=None):
        """The model's x of `rows`: texts, or (texts, pairs) with `config.pair_field`; no labels needed."""
        texts = _texts(rows, config, "text_field", path)
        if config.pair_field:
            return texts, _texts(rows, config, "pair_field", path)
        return texts

    def label_names(self, labels):
        return _two_or_more(sorted(set(labels)), "label")

    def held_out_labels(self, labels):
        return set(labels)

    def predict(self, model, x, batch_size):
        return model.predict_labels(x, batch_size=batch_size)

    def correct(self, predicted, truth):
        """Per-example 0/1 correctness (what `accuracy` averages), for paired comparisons of two models."""
        return [p == t for p, t in zip(predicted, truth)]

    def score(self, predicted, truth, train_labels, label_names):
        index = {name: i for i, name in enumerate(label_names)}
        majority = index[collections.Counter(train_labels).most_common(1)[0][0]]
        return classification_scores([index[t] for t in truth], [index.get(p, -1) for p in predicted],
                                     len(label_names), majority)


class TokensTask(ClassifyTask):
    name = "tokens"
    fields = {"text_field": "tokens", "pair_field": None, "label_field": "tags"}

    @property
    def model_class(self):
        from kzoo.models import TokenClassifier

        return TokenClassifier

    def read(self, rows, config):
        words = _word_lists(rows, config, "text_field")
        tags = _word_lists(rows, config, "label_field")
        for index, (row, w, t) in enumerate(zip(rows, words, tags)):
            if len(w) != len(t):
                raise ValueError(f"{where_is(config.data, row, index)}: {len(w)} words ({config.text_field!r}) but "
                                 f"{len(t)} tags ({config.label_field!r}).")
        return words, tags

    def label_names(self, labels):
        return _two_or_more(sorted({tag for tags in labels for tag in tags}), "tag")

    def held_out_labels(self, labels):
        return {tag for tags in labels for tag in tags}

    @staticmethod
    def _per_word(rows):
        return [tag for tags in rows for tag in tags]

    def correct(self, predicted, truth):
        """Per word (a word truncated away is predicted None: wrong)."""
        return super().correct(self._per_word(predicted), self._per_word(truth))

    def score(self, predicted, truth, train_labels, label_names):
        """Per word (words truncated away count as wrong)."""
        return super().score(self._per_word(predicted), self._per_word(truth), self._per_word(train_labels),
                             label_names)


class QuestionAnsweringTask(FinetuneTask):
    name = "qa"
    fields = {"text_field": "question", "pair_field": "context", "label_field": "answer"}
    monitor, mode = "val_loss", "min"

    def training_rows(self, model, x, y):
        """With a document stride, one row per window of each context."""
        return len(y) if model.doc_stride is None else len(model.encode_examples(x).lengths)

    @property
    def model_class(self):
        from kzoo.models import SpanQuestionAnswerer

        return SpanQuestionAnswerer

    def read(self, rows, config):
        questions, contexts = _texts(rows, config, "text_field"), _texts(rows, config, "pair_field")
        answers = [_answer(a, f"{where_is(config.data, row, index)}: field {config.label_field!r}")
                   for index, (row, a) in enumerate(zip(rows, column(rows, config.label_field, config.data,
                                                                     "--label-field")))]
        return (questions, contexts), answers

    def label_names(self, labels):
        return None

    def held_out_labels(self, labels):
        return set()

    def predict(self, model, x, batch_size):
        """Answer texts, decoded with the model's `doc_stride` and `max_answer_length` (--doc-stride and
        --max-answer-length, which `load_task_model` builds it with, or its preset's)."""
        return [p["answer"] for p in model.predict_answers(*x, batch_size=batch_size)]

    def score(self, predicted, truth, train_labels, label_names):
        """accuracy = exact match; macro_f1 = SQuAD's F1 (word overlap after normalising), averaged over
        questions; majority_baseline = exact match of always giving the most common training answer (usually
        "no answer")."""
        texts = [_answer_text(a) for a in truth]
        majority = collections.Counter(_answer_text(a) for a in train_labels).most_common(1)[0][0]
        return {"accuracy": float(np.mean([exact_match(p, t) for p, t in zip(predicted, texts)])),
                "macro_f1": float(np.mean([squad_f1(p, t) for p, t in zip(predicted, texts)])),
                "majority_baseline": float(np.mean([exact_match(majority, t) for t in texts])),
                "majority_answer": majority, "no_answer_share": float(np.mean([not t for t in texts]))}


class EmbedTask(FinetuneTask):
    """Pairs of texts that belong together (a question and its answer, two paraphrases): x is (anchors,
    positives), y the positives again, for scoring. Scored by retrieval on the test split: each anchor against
    every distinct positive of the split."""

    name = "embed"
    fields = {"text_field": "anchor", "pair_field": "positive", "label_field": None}
    monitor, mode = "val_loss", "min"
    columns = ("accuracy", "recall_at_10", "mrr_at_10", "chance_baseline")
    top_k = 10

    @property
    def model_class(self):
        from kzoo.models import TextEmbedder

        return TextEmbedder

    def read(self, rows, config):
        if config.label_field:
            raise ValueError("--task embed reads pairs (--text-field, --pair-field) and no labels; drop "
                             "--label-field.")
        anchors, positives = _texts(rows, config, "text_field"), _texts(rows, config, "pair_field")
        return (anchors, positives), positives

    def fit_targets(self, y):
        return None

    def label_names(self, labels):
        return None

    def held_out_labels(self, labels):
        return set()

    def predict(self, model, x, batch_size):
        """The `top_k` distinct positives of the split most similar to each anchor, most similar first."""
        anchors, positives = x
        candidates = sorted(set(positives))
        similarity = model.similarity(anchors, candidates, batch_size=batch_size)
        nearest = np.argsort(-similarity, axis=1, kind="stable")[:, :self.top_k]
        return [[candidates[j] for j in row] for row in nearest]

    def score(self, predicted, truth, train_labels, label_names):
        """accuracy = recall@1 (the anchor's own positive ranked first), recall_at_10, mrr_at_10 (the mean of
        1 / rank, 0 past 10), chance_baseline = recall@1 of a random ranking (1 / distinct positives)."""
        ranks = [found.index(positive) + 1 if positive in found else None for found, positive in zip(predicted, truth)]
        return {"accuracy": float(np.mean([rank == 1 for rank in ranks])),
                "recall_at_10": float(np.mean([rank is not None for rank in ranks])),
                "mrr_at_10": float(np.mean([1 / rank if rank else 0.0 for rank in ranks])),
                "chance_baseline": 1 / len(set(truth))}


TASKS = {task.name: task for task in (ClassifyTask(), TokensTask(), QuestionAnsweringTask(), EmbedTask())}


def _word_lists(rows, config, field):
    """The tokens task's words or tags (config field `field`) of every row: each a list of strings (tags may be
    numbers) or a space-separated string; a ValueError names the file, line and field of one that is not."""
    name = getattr(config, field)
    lists = []
    for index, (row, value) in enumerate(zip(rows, column(rows, name, config.data, _option(field)))):
        where = f"{where_is(config.data, row, index)}: field {name!r}"
        if isinstance(value, str):
            value = value.split()
        elif not isinstance(value, list):
            raise ValueError(f"{where} is {describe(value)}, not a list of words.")
        if field == "label_field":
            value = [str(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v for v in value]
        if config.encoding_errors == "replace":
            value = [replace_surrogates(v) if isinstance(v, str) else v for v in value]
        items = [check_text(v, f"{where}[{position}]", REPLACE_HINT) for position, v in enumerate(value)]
        if not items:
            raise ValueError(f"{where} is an empty list.")
        lists.append(items)
    return lists


def _answer(value, where="the answer"):
    """An answer as `SpanQuestionAnswerer.fit` takes it: text, {"text", "answer_start"}, or None (empty: no
    answer). SQuAD's {"text": [...], "answer_start": [...]} gives its first answer (none when the lists are
    empty). A ValueError names (`where`) any other value."""
    if isinstance(value, dict):
        if isinstance(value.get("text"), list) and isinstance(value.get("answer_start"), list):
            if not value["text"]:
                return None
            return {"text": value["text"][0], "answer_start": value["answer_start"][0]}
        if "text" in value and "answer_start" in value:
            return value
        raise ValueError(f"{where} is an object without \"text\" and \"answer_start\" (it has {sorted(value)}).")
    if value is None or isinstance(value, str):
        return value or None
    raise ValueError(f"{where} is {describe(value)}, not an answer (text, SQuAD object, or empty).")


def _answer_text(answer):
    return "" if answer is None else answer["text"] if isinstance(answer, dict) else str(answer)
