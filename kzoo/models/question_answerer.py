"""Extractive (span) question answering on any backbone: start and end logits over `[CLS] question [SEP]
context [SEP]`, answers decoded back to character spans of the context; [CLS] stands for "no answer".

A context longer than the sequence is truncated, or, with `doc_stride`, split into overlapping windows as
Hugging Face's `run_qa.py` does (`return_overflowing_tokens=True, stride=doc_stride`): every window is one row
of the model's input, and an answer is the best span over the example's windows (`decode_windows`).
"""

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
_SPECIALS_PER_ROW = 3  # [CLS] question [SEP] context [SEP]


def window_ranges(total, room, doc_stride=None):
    """(start, stop) piece ranges of a context of `total` pieces cut into windows of at most `room` pieces, each
    window sharing `doc_stride` pieces with the one before: the windows of Hugging Face's fast tokenizers'
    `return_overflowing_tokens=True, stride=doc_stride`. keras-hub's packers only truncate, so this is written
    here. `doc_stride=None`: one window, the context truncated to `room`.

    Args:
        total: the context's pieces (≥ 1).
        room: the most context pieces a window holds.
        doc_stride: pieces shared by consecutive windows (0 ≤ doc_stride < room), or None.

    Example:
    >>> window_ranges(11, 4, doc_stride=1)
    [(0, 4), (3, 7), (6, 10), (9, 11)]
    >>> window_ranges(11, 4)
    [(0, 4)]
    """
    if doc_stride is None or total <= room:
        return [(0, min(total, room))]
    step = room - doc_stride
    return [(start, min(start + room, total)) for start in range(0, total - room + step, step)]


def check_max_answer_length(max_answer_length):
    """`max_answer_length` as an int, or a one-line ValueError when it is below 1."""
    if int(max_answer_length) < 1:
        raise ValueError(f"max_answer_length must be ≥ 1; got {max_answer_length}.")
    return int(max_answer_length)


def check_doc_stride(doc_stride):
    """`doc_stride` as an int (or None), or a one-line ValueError for anything but None or an integer ≥ 0."""
    if doc_stride is None:
        return None
    if isinstance(doc_stride, bool) or not isinstance(doc_stride, (int, np.integer)) or doc_stride < 0:
        raise ValueError(f"doc_stride must be None (truncate long contexts) or an integer ≥ 0 (context tokens "
                         f"shared by consecutive windows); got {doc_stride!r}.")
    return int(doc_stride)


@dataclasses.dataclass
class ContextWindows:
    """Where each encoded row's context pieces come from. Row `w` is a window on example `example[w]`: that
    context's pieces `piece_starts[w]` to `piece_stops[w]` (exclusive), the first at sequence position
    `offsets[w]`. Per example, `word_of_piece[i]` gives the word of each of its context's pieces and `spans[i]`
    each word's characters."""

    example: np.ndarray
    offsets: np.ndarray
    piece_starts: np.ndarray
    piece_stops: np.ndarray
    word_of_piece: list
    spans: list

    def context_positions(self, window):
        """(first, stop): the sequence positions of window `window`'s context pieces."""
        first = int(self.offsets[window])
        return first, first + int(self.piece_stops[window] - self.piece_starts[window])

    def answer_positions(self, window, pieces):
        """Sequence positions (start, end) in row `window` of an answer's context pieces `pieces` (first, last), or
        (0, 0), the [CLS] position, when there is no answer or the window does not hold all of them (truncated
        away, or in another window), as Hugging Face's `prepare_train_features` labels windows."""
        if pieces is None or pieces[0] < self.piece_starts[window] or pieces[1] >= self.piece_stops[window]:
            return NO_ANSWER, NO_ANSWER
        shift = int(self.offsets[window] - self.piece_starts[window])
        return shift + pieces[0], shift + pieces[1]

    def characters(self, window, start, end):
        """(start, end) characters in the context of the words under sequence positions `start`..`end`."""
        example, shift = self.example[window], int(self.piece_starts[window] - self.offsets[window])
        words = self.word_of_piece[example][[start + shift, end + shift]]
        return self.spans[example][words[0]][0], self.spans[example][words[1]][1]


def top_span(start_logits, end_logits, first, stop, max_answer_length):
    """The highest-scoring (start, end, score) with first ≤ start ≤ end < stop and end − start <
    max_answer_length (every such span, not only the top-20 starts and ends Hugging Face tries), or None when
    first ≥ stop."""
    if stop <= first:
        return None
    scores = start_logits[first:stop, None] + end_logits[None, first:stop]
    length = np.arange(stop - first)
    allowed = (length[None, :] >= length[:, None]) & (length[None, :] - length[:, None] < max_answer_length)
    scores = np.where(allowed, scores, -np.inf)
    start, end = np.unravel_index(int(np.argmax(scores)), scores.shape)
    return first + int(start), first + int(end), float(scores[start, end])


def null_score(start_logits, end_logits):
    """The no-answer score of one row: start and end both at [CLS]."""
    return float(start_logits[NO_ANSWER] + end_logits[NO_ANSWER])


def decode_windows(start_logits, end_logits, windows, max_answer_length, null_score_threshold=0.0):
    """Each example's answer over its windows, as Hugging Face's `postprocess_qa_predictions` with
    `version_2_with_negative`: the best span of any window (inside its context, start ≤ end, at most
    `max_answer_length` pieces) against the example's null score, the smallest [CLS] score over its windows;
    no answer when null score > best span score + `null_score_threshold`.

    Args:
        start_logits, end_logits: (windows, sequence) arrays, a row per window.
        windows: the rows' `ContextWindows`.
        max_answer_length: the longest answer in pieces.
        null_score_threshold: how much more than the best span the null score must be to answer "".

    Returns:
        Per example, (window, start, end, score) (sequence positions in that window), or None for no answer.

    Example:
    >>> windows = ContextWindows(example=np.array([0, 0]), offsets=np.array([3, 3]), piece_starts=np.array([0, 2]),
    ...                          piece_stops=np.array([3, 5]), word_of_piece=[np.arange(5)], spans=[[(0, 1)] * 5])
    >>> start = np.array([[1.0, 0, 0, 0, 0, 0], [5.0, 0, 0, 0, 2, 0]])
    >>> end = np.array([[1.0, 0, 0, 0, 0, 0], [5.0, 0, 0, 0, 0, 3]])
    >>> decode_windows(start, end, windows, max_answer_length=4)        # null score min(2, 10) = 2 < 5
    [(1, 4, 5, 5.0)]
    >>> decode_windows(start, end, windows, 4, null_score_threshold=-3.5)  # 2 > 5 - 3.5: no answer
    [None]
    """
    best = [None] * len(windows.spans)
    null = np.full(len(windows.spans), np.inf)
    for window, example in enumerate(windows.example):
        null[example] = min(null[example], null_score(start_logits[window], end_logits[window]))
        span = top_span(start_logits[window], end_logits[window], *windows.context_positions(window),
                        max_answer_length)
        if span is not None and (best[example] is None or span[2] > best[example][3]):
            best[example] = (window, *span)
    return [None if span is None or null[example] > span[3] + null_score_threshold else span
            for example, span in enumerate(best)]


@keras.saving.register_keras_serializable(package="kzoo")
class SpanQuestionAnswerer(Task):
    """Start/end logits from the sequence output: dropout → Dense(2), as Hugging Face's
    `*ForQuestionAnswering` (whose BERT and ALBERT heads use no dropout: the default here). Outputs
    `{"start_logits", "end_logits"}`, each (batch, sequence) float32, padding positions at -1e9.

    With a `preprocessor`, `fit` takes `((questions, contexts), answers)`: an answer is its text (found in the
    context), a dict `{"text", "answer_start"}` (SQuAD's character offset), or None / "" for no answer. The
    question is kept whole (one longer than the sequence allows is an error). Without `doc_stride` the context is
    truncated, and an answer cut off with it becomes "no answer". With `doc_stride` the context is split into
    overlapping windows, each a row `[CLS] question [SEP] window [SEP]` (as Hugging Face's `run_qa.py`): `fit`
    and `evaluate` train and score every window (one that does not hold the whole answer is labelled "no
    answer"), raw-text `predict` returns a row per window, and `predict_answers` gives the best span over an
    example's windows, decoded back to context text, or "" when the no-answer score wins (`decode_windows`).

    Args:
        backbone: a kzoo backbone.
        dropout: dropout rate before the span head (0, as Hugging Face's BERT and ALBERT).
        max_answer_length: the longest answer, in word pieces, that `predict_answers` returns.
        doc_stride: None (truncate long contexts) or the number of context tokens consecutive windows share
            (Hugging Face's `stride`; 128 with 384-token sequences in `run_qa.py`); it must be smaller than the
            room a question leaves for context.
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

    def __init__(self, backbone, dropout=0.0, max_answer_length=30, doc_stride=None, **kwargs):
        max_answer_length = check_max_answer_length(max_answer_length)
        doc_stride = check_doc_stride(doc_stride)
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
        self.max_answer_length = max_answer_length
        self.doc_stride = doc_stride

    def _task_config(self):
        return {"dropout": self.dropout, "max_answer_length": self.max_answer_length, "doc_stride": self.doc_stride}

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
    @staticmethod
    def _text_pairs(x):
        """(questions, contexts) as two checked lists of strings of the same length."""
        if not (isinstance(x, (tuple, list)) and len(x) == 2 and not isinstance(x[0], (str, bytes))):
            raise ValueError("SpanQuestionAnswerer takes raw text as a pair (questions, contexts).")
        questions, contexts = as_text_list(x[0], "questions"), as_text_list(x[1], "contexts")
        if len(questions) != len(contexts):
            raise ValueError(f"{len(questions)} questions but {len(contexts)} contexts.")
        return questions, contexts

    def _context_rooms(self, question_pieces, doc_stride):
        """The context pieces each question leaves room for; a ValueError for a question that leaves none, or a
        `doc_stride` not smaller than the room."""
        sequence_length = self.preprocessor.sequence_length
        limit = sequence_length - _SPECIALS_PER_ROW
        rooms = [limit - len(pieces) for pieces in question_pieces]
        for index, (pieces, room) in enumerate(zip(question_pieces, rooms)):
            if room < 1:
                raise ValueError(f"question {index} has {len(pieces)} tokens; with [CLS], two [SEP] and at least "
                                 f"one context token it must have at most {limit - 1} "
                                 f"(sequence_length {sequence_length}).")
            if doc_stride is not None and doc_stride >= room:
                raise ValueError(f"doc_stride {doc_stride} must be smaller than the room left for context: {room} "
                                 f"tokens for question {index} (sequence_length {sequence_length} less [CLS], two "
                                 f"[SEP] and its {len(pieces)} tokens).")
        return rooms

    def _align(self, x, doc_stride=None):
        """(questions, contexts) → (contexts, inputs, lengths, `ContextWindows`): a row per window of each
        context (one truncated window without `doc_stride`)."""
        questions, contexts = self._text_pairs(x)
        question_pieces = self.preprocessor.tokenize(questions)
        rooms = self._context_rooms(question_pieces, doc_stride)
        words_and_spans = [split_words(context) for context in contexts]  # never empty: as_text_list checked
        pieced = tokenize_words(self.preprocessor, [words for words, _ in words_and_spans])
        rows = [(example, start, stop) for example, (pieces, room) in enumerate(zip(pieced.pieces, rooms))
                for start, stop in window_ranges(len(pieces), room, doc_stride)]
        example, starts, stops = (np.array(column, "int32") for column in zip(*rows))
        inputs, lengths = self.preprocessor.encode_pieces([[question_pieces[e] for e in example],
                                                           [pieced.pieces[e][a:b] for e, a, b in rows]])
        windows = ContextWindows(example=example, offsets=np.array([len(question_pieces[e]) + 2 for e in example]),
                                 piece_starts=starts, piece_stops=stops, word_of_piece=pieced.word_of_piece,
                                 spans=[spans for _, spans in words_and_spans])
        return contexts, inputs, lengths, windows

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

    @staticmethod
    def answer_pieces(windows, example, chars):
        """(first, last): the pieces of example `example`'s context under characters `chars` (whole words), or None
        for no answer."""
        if chars is None:
            return None
        spans = np.array(windows.spans[example]).reshape(-1, 2)
        words = np.flatnonzero((spans[:, 1] > chars[0]) & (spans[:, 0] < chars[1]))
        if not words.size:
            raise ValueError(f"answer {example} (characters {chars[0]}:{chars[1]}) covers no word of its context.")
        word_of_piece = windows.word_of_piece[example]
        pieces = np.flatnonzero((word_of_piece >= words[0]) & (word_of_piece <= words[-1]))  # every word has one
        return int(pieces[0]), int(pieces[-1])

    def encode_examples(self, x, y=None, sample_weight=None):
        """A row per window (see the class); an example's answer and sample weight go with each of its windows."""
        contexts, inputs, lengths, windows = self._align(x, self.doc_stride)
        if y is None:
            return EncodedExamples(inputs, lengths)
        if len(y) != len(contexts):
            raise ValueError(f"{len(contexts)} contexts but {len(y)} answers.")
        pieces = [self.answer_pieces(windows, index, self._answer_chars(answer, context, index))
                  for index, (answer, context) in enumerate(zip(y, contexts))]
        positions = np.array([windows.answer_positions(window, pieces[example])
                              for window, example in enumerate(windows.example)], "int32").reshape(-1, 2)
        targets = {"start_logits": positions[:, 0], "end_logits": positions[:, 1]}
        return EncodedExamples(inputs, lengths, targets, self._window_weights(sample_weight, windows, len(contexts)))

    @staticmethod
    def _window_weights(sample_weight, windows, examples):
        """Each window's weight: its example's (None stays None)."""
        if sample_weight is None:
            return None
        sample_weight = np.asarray(sample_weight, "float32")
        if sample_weight.shape != (examples,):
            raise ValueError(f"sample_weight must hold one weight per example ({examples}); got shape "
                             f"{sample_weight.shape}.")
        return sample_weight[windows.example]

    def predict_answers(self, questions, contexts, batch_size=32, max_answer_length=None, doc_stride=None,
                        null_score_threshold=0.0):
        """Answers as dicts `{"answer", "start", "end", "score"}` (character offsets into the context, score the
        span's start + end logit); `{"answer": "", "start": None, "end": None, "score": None}` where no-answer
        wins (see `decode_windows`).

        Args:
            questions: a list of strings.
            contexts: a list of strings, one per question.
            batch_size: windows per forward pass.
            max_answer_length: the longest answer in word pieces; None: the model's `max_answer_length`.
            doc_stride: context tokens shared by consecutive windows; None: the model's `doc_stride`.
            null_score_threshold: answer "" when the null score exceeds the best span's score by more than this
                (Hugging Face's `null_score_diff_threshold`: higher, fewer empty answers).

        Example:
        >>> from kzoo.data import BertWordPieceTokenizer
        >>> from kzoo.data.task_inputs import TextPreprocessor
        >>> from kzoo.models import BertBackbone
        >>> words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "who", "?", "rose", "met", "bob", "in", "paris", "."]
        >>> preprocessor = TextPreprocessor(BertWordPieceTokenizer(vocabulary=words), sequence_length=8)
        >>> backbone = BertBackbone(vocabulary_size=12, num_layers=1, num_heads=1, hidden_dim=8,
        ...                         intermediate_dim=16, max_sequence_length=8)
        >>> model = SpanQuestionAnswerer(backbone, doc_stride=1, preprocessor=preprocessor)
        >>> context = "Rose met Bob in Paris."  # windows of 3 pieces: "Rose met Bob", "Bob in Paris", "Paris ."
        >>> answer = model.predict_answers(["who?"], [context], null_score_threshold=1e9)[0]  # never ""
        >>> answer["answer"] == context[answer["start"]:answer["end"]] != ""
        True
        """
        doc_stride = self.doc_stride if doc_stride is None else check_doc_stride(doc_stride)
        contexts, inputs, lengths, windows = self._align((questions, contexts), doc_stride)
        logits = self._predict_encoded(inputs, lengths, batch_size)
        spans = decode_windows(logits["start_logits"], logits["end_logits"], windows,
                               int(max_answer_length or self.max_answer_length), float(null_score_threshold))
        answers = []
        for context, span in zip(contexts, spans):
            if span is None:
                answers.append({"answer": "", "start": None, "end": None, "score": None})
                continue
            start, end = windows.characters(*span[:3])
            answers.append({"answer": context[start:end], "start": start, "end": end, "score": span[3]})
        return answers
