"""A synthetic long-document question answering set: one fact ("The code word is heron.") hidden among filler
sentences, usually far past the first few dozen tokens, and the question "What is the code word?". A model that
reads only the start of each context (truncation) cannot answer it; one that reads it in windows
(`SpanQuestionAnswerer(doc_stride=...)`) can. Used by examples/long_document_qa.py and tests/test_doc_stride.py.

Example:
>>> questions, contexts, answers = code_word_examples(2, sentences_per_context=3, seed=0)
>>> questions[0], answers[0]["text"] == contexts[0][answers[0]["answer_start"]:][:len(answers[0]["text"])]
('What is the code word?', True)
"""

import numpy as np

QUESTION = "What is the code word?"
CODE_WORDS = ("heron otter maple cobalt falcon willow amber cedar lynx quartz tulip walrus basil comet ember "
              "garnet hazel iris jasper kestrel lotus marble nutmeg onyx pepper raven saffron thistle umber "
              "violet").split()
_FILLER_WORDS = ("the a one this that every some her his our their old young quiet bright dark small large happy "
                 "careful kind proud".split(),
                 "house garden letter sister brother friend river village carriage morning evening dinner ball walk "
                 "visit window road book note party".split(),
                 "saw found wrote read visited liked admired left opened closed carried remembered praised "
                 "watched".split(),
                 "quickly slowly gladly early late again often seldom".split())


def filler_sentence(rng):
    """A short English-like sentence over a 70-word vocabulary ("The old house saw a letter again.")."""
    determiners, nouns, verbs, adverbs = _FILLER_WORDS
    words = [rng.choice(determiners), rng.choice(nouns), rng.choice(verbs), rng.choice(determiners),
             rng.choice(nouns)]
    if rng.random() < 0.5:
        words.append(rng.choice(adverbs))
    return " ".join(words).capitalize() + "."


def code_word_examples(count, sentences_per_context=24, seed=0, sentences=None):
    """`count` examples (questions, contexts, answers): each context `sentences_per_context` filler sentences
    with "The code word is WORD." inserted before a uniformly drawn one of them (or last), its answer
    `{"text": WORD, "answer_start": offset}` as `SpanQuestionAnswerer.fit` takes it.

    Args:
        count: examples to make.
        sentences_per_context: filler sentences per context (24 generated ones: about 200 word pieces).
        seed: the draw of filler, code words and positions.
        sentences: filler sentences to draw from (e.g. a novel's); None: generated ones.
    """
    rng = np.random.default_rng(seed)
    questions, contexts, answers = [], [], []
    for _ in range(count):
        filler = [str(sentences[rng.integers(len(sentences))]) if sentences else filler_sentence(rng)
                  for _ in range(sentences_per_context)]
        word = str(rng.choice(CODE_WORDS))
        position = int(rng.integers(sentences_per_context + 1))
        before = " ".join(filler[:position])
        fact = f"The code word is {word}."
        context = " ".join(filler[:position] + [fact] + filler[position:])
        questions.append(QUESTION)
        contexts.append(context)
        answers.append({"text": word, "answer_start": len(before) + bool(before) + fact.index(word)})
    return questions, contexts, answers
