"""Extractive (span) question answering on any backbone: start and end logits over `[CLS] question [SEP]
context [SEP]`, answers decoded back to character spans of the context; [CLS] stands for "no answer"."""

import dataclasses

import keras
import numpy as np

from kzoo.data.task_inputs import as_text_list
from kzoo.data.word_pieces import split_words, tokenize_words
from kzoo.layers.initializers import truncated_normal
from kzoo.models.string_inputs import EncodedExamples
from kzoo.models.task import Task

NO_ANSWER = 0  # the [CLS] position: both start and end there means "the context holds no answer"
_MASKED = -1e9  # logit of padding positions (outputs are float32)


@dataclasses.dataclass
class AlignedContexts:
    """Where each context's words ended up: `offsets[i]` is the sequence position of context piece 0,
    `word_of_piece[i]` the word of each kept piece, `spans[i]` each word's characters, `truncated[i]` whether
    pieces were cut off the end."""

    offsets: np.ndarray
    word_of_piece: list
    spans: list
    truncated: list


def best_span(start_logits, end_logits, first, stop, max_answer_length):
    """The highest-scoring (start, end, score) with first ≤ start ≤ end < stop and end − start < max_answer_length,
    or None when the no-answer score (start = end = [CLS]) is higher."""
    if stop <= first:
        return None
    scores = start_logits[first:stop, None] + end_logits[None, first:stop]
    length = np.arange(stop - first)
    allowed = (length[None, :] >= length[:, None]) & (length[None, :] - length[:, None] < max_answer_length)
    scores = np.where(allowed, scores, -np.inf)
    start, end = np.unravel_index(int(np.argmax(scores)), scores.shape)
    score = float(scores[start, end])
    if start_logits[NO_ANSWER] + end_logits[NO_ANSWER] > score:
        return None
    return first + int(start), first + int(end), score


@keras.saving.register_keras_serializable(package="kzoo")
class SpanQuestionAnswerer(Task):
    """Start/end logits from the sequence output: dropout → Dense(2), as Hugging Face's
    `*ForQuestionAnswering` (whose BERT and ALBERT heads use no dropout: the default here). Outputs
    `{"start_logits", "end_logits"}`, each (batch, sequence) float32, padding positions at -1e9.

    With a `preprocessor`, `fit` takes `((questions, contexts), answers)`: an answer is its text (found in the
    context), a dict `{"text", "answer_start"}` (SQuAD's character offset), or None / "" for no answer. The
    question is kept whole (one longer than the sequence allows is an error); the context is truncated, and an
    answer cut off with it becomes "no answer". `predict_answers` decodes spans of at most
    `max_answer_length` pieces back to context text.

    Args:
        backbone: a kzoo backbone.
        dropout: dropout rate before the span head (0, as Hugging Face's BERT and ALBERT).
        max_answer_length: the longest answer, in word pieces, that `predict_answers` returns.
        **kwargs: `preprocessor` (a `TextPreprocessor`, for raw text) and `keras.Model` arguments (`name`).

    Example:
    >>> import numpy as np
    >>> from kzoo.models import BertBackbone
    >>> backbone = BertBackbone(vocabulary_size=100, num_layers=2, num_heads=2, hidden_dim=16,
    ...                         intermediate_dim=32, max_sequence_length=32)
    >>> model = SpanQuestionAnswerer(backbone)
    >>> out = model({"token_ids": np.array([[2, 5, 3, 7, 8, 3]]), "segment_ids": np.array([[0, 0, 0, 1, 1, 1]]),
    ...              "padding_mask": np.ones((1, 6), "int32")})
    >>> tuple(out["start_logits"].shape), tuple(out["end_logits"].shape)
    ((1, 6), (1, 6))
    """

    _per_token_outputs = True
    _output_pad_value = _MASKED

    def __init__(self, backbone, dropout=0.0, max_answer_length=30, **kwargs):
        if int(max_answer_length) < 1:
            raise ValueError(f"max_answer_length must be ≥ 1; got {max_answer_length}.")
        inputs = dict(backbone.input)
        features = backbone(inputs)
        x = keras.layers.Dropout(dropout, dtype=backbone.dtype_policy, name="qa_dropout")(features["sequence_output"])
        qa_outputs = keras.layers.Dense(2, kernel_initializer=truncated_normal(backbone.initializer_range),
                                        dtype=backbone.dtype_policy, name="qa_outputs")
        logits = keras.ops.cast(qa_outputs(x), "float32")
        real = keras.ops.cast(inputs["padding_mask"], "bool")
        outputs = {name: keras.ops.where(real, logits[..., i], _MASKED)
                   for i, name in enumerate(("start_logits", "end_logits"))}
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self.backbone = backbone
        self._backbone_features = features
        self.qa_outputs = qa_outputs
        self.dropout = dropout
        self.max_answer_length = int(max_answer_length)

    def _task_config(self):
        return {"dropout": self.dropout, "max_answer_length": self.max_answer_length}

    def compile(self, optimizer="adamw", loss="auto", metrics="auto", **kwargs):
        """Defaults: the mean of start and end cross-entropy (as Hugging Face), exact start/end accuracy."""
        if loss == "auto":
            loss = {k: keras.losses.SparseCategoricalCrossentropy(from_logits=True)
                    for k in ("start_logits", "end_logits")}
            kwargs.setdefault("loss_weights", {"start_logits": 0.5, "end_logits": 0.5})
        if metrics == "auto":
            metrics = {k: [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
                       for k in ("start_logits", "end_logits")}
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)

    # Raw text ------------------------------------------------------------------------------------------------
    def _align(self, x):
        """(questions, contexts) → full-length inputs and where each context's words landed."""
        if not (isinstance(x, (tuple, list)) and len(x) == 2 and not isinstance(x[0], (str, bytes))):
            raise ValueError("SpanQuestionAnswerer takes raw text as a pair (questions, contexts).")
        questions, contexts = as_text_list(x[0], "questions"), as_text_list(x[1], "contexts")
        if len(questions) != len(contexts):
            raise ValueError(f"{len(questions)} questions but {len(contexts)} contexts.")
        question_pieces = self.preprocessor.tokenize(questions)
        limit = self.preprocessor.sequence_length - 3  # [CLS] question [SEP] context [SEP]
        for index, pieces in enumerate(question_pieces):
            if len(pieces) >= limit:
                raise ValueError(f"question {index} has {len(pieces)} tokens; with [CLS], two [SEP] and at least "
                                 f"one context token it must have at most {limit - 1} "
                                 f"(sequence_length {self.preprocessor.sequence_length}).")
        words_and_spans = [split_words(context) for context in contexts]  # never empty: as_text_list checked
        pieced = tokenize_words(self.preprocessor, [words for words, _ in words_and_spans])
        kept = [limit - len(q) for q in question_pieces]
        context_pieces = [pieces[:room] for pieces, room in zip(pieced.pieces, kept)]
        inputs, lengths = self.preprocessor.encode_pieces([question_pieces, context_pieces])
        aligned = AlignedContexts(offsets=np.array([len(q) + 2 for q in question_pieces]),
                                  word_of_piece=[w[:room] for w, room in zip(pieced.word_of_piece, kept)],
                                  spans=[spans for _, spans in words_and_spans],
                                  truncated=[len(pieces) > room for pieces, room in zip(pieced.pieces, kept)])
        return contexts, inputs, lengths, aligned

    @staticmethod
    def _answer_chars(answer, context, index):
        """(start, end) characters of `answer` in `context`, or None for no answer."""
        if answer is None or (isinstance(answer, str) and not answer.strip()):
            return None
        if isinstance(answer, dict):
            text, start = str(answer["text"]), int(answer["answer_start"])
            if context[start:start + len(text)] != text:
                raise ValueError(f"answer {index}: {text!r} is not at character {start} of its context "
                                 f"(found {context[start:start + len(text)]!r}).")
            return start, start + len(text)
        start = context.find(str(answer))
        if start < 0:
            raise ValueError(f"answer {index}: {answer!r} does not occur in its context.")
        return start, start + len(str(answer))

    def answer_positions(self, aligned, index, chars):
        """Sequence positions (start, end) of the pieces covering characters `chars`, or (0, 0) when there is
        no answer or the context was truncated before its end."""
        if chars is None:
            return NO_ANSWER, NO_ANSWER
        spans = np.array(aligned.spans[index]).reshape(-1, 2)
        words = np.flatnonzero((spans[:, 1] > chars[0]) & (spans[:, 0] < chars[1]))
        if not words.size:
            raise ValueError(f"answer {index} (characters {chars[0]}:{chars[1]}) covers no word of its context.")
        pieces = np.flatnonzero((aligned.word_of_piece[index] >= words[0]) & (aligned.word_of_piece[index] <= words[-1]))
        last_kept = len(aligned.word_of_piece[index]) - 1
        if (not pieces.size or aligned.word_of_piece[index][pieces[-1]] != words[-1]
                or (aligned.truncated[index] and pieces[-1] == last_kept)):
            return NO_ANSWER, NO_ANSWER  # (partly) truncated away
        offset = int(aligned.offsets[index])
        return offset + int(pieces[0]), offset + int(pieces[-1])

    def encode_examples(self, x, y=None, sample_weight=None):
        contexts, inputs, lengths, aligned = self._align(x)
        if y is None:
            return EncodedExamples(inputs, lengths)
        if len(y) != len(contexts):
            raise ValueError(f"{len(contexts)} contexts but {len(y)} answers.")
        positions = np.array([self.answer_positions(aligned, i, self._answer_chars(answer, contexts[i], i))
                              for i, answer in enumerate(y)], "int32").reshape(-1, 2)
        targets = {"start_logits": positions[:, 0], "end_logits": positions[:, 1]}
        return EncodedExamples(inputs, lengths, targets,
                               None if sample_weight is None else np.asarray(sample_weight, "float32"))

    def predict_answers(self, questions, contexts, batch_size=32, max_answer_length=None):
        """Answers as dicts `{"answer", "start", "end", "score"}` (character offsets into the context);
        `{"answer": "", "start": None, "end": None}` where no-answer scores highest.

        Args:
            questions: a list of strings.
            contexts: a list of strings, one per question.
            batch_size: examples per forward pass.
            max_answer_length: the longest answer in word pieces; None: the model's `max_answer_length`.
        """
        contexts, inputs, lengths, aligned = self._align((questions, contexts))
        logits = self._predict_encoded(inputs, lengths, batch_size)
        longest = int(max_answer_length or self.max_answer_length)
        answers = []
        for index, context in enumerate(contexts):
            first = int(aligned.offsets[index])
            span = best_span(logits["start_logits"][index], logits["end_logits"][index], first,
                             first + len(aligned.word_of_piece[index]), longest)
            if span is None:
                answers.append({"answer": "", "start": None, "end": None, "score": None})
                continue
            start_word = aligned.word_of_piece[index][span[0] - first]
            end_word = aligned.word_of_piece[index][span[1] - first]
            start, end = aligned.spans[index][start_word][0], aligned.spans[index][end_word][1]
            answers.append({"answer": context[start:end], "start": start, "end": end, "score": span[2]})
        return answers
