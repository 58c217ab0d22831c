"""Pretrain a BERT (masked LM + next-sentence prediction) on your own text, with a WordPiece vocabulary trained on it.

--corpus is a folder (or .txt files) of UTF-8 text, documents separated by blank lines (default: the Lee news
corpus that PyPI's gensim ships as test data). A WordPiece vocabulary is trained on it first (OUT/vocab.txt),
then a BERT of --preset's shape from scratch; every 10th document is held out and scored before and after.
OUT/model holds the pretrainer with its vocabulary: `classify_csv.py --model OUT/model` fine-tunes it.
The last line printed is a JSON summary. For long runs (resumable, with plots) use `kzoo pretrain`.

    python examples/pretrain_text.py --corpus my_texts/ --vocab-size 8000 --steps 2000 --out runs/pretrained
    python examples/pretrain_text.py               # the news corpus (pip install --no-deps gensim), 500 steps
    python examples/pretrain_text.py --tiny        # seconds: vocabulary 300, 20 steps of 8 x 32 tokens
"""

import argparse
import json
import os
import sys


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", nargs="+", help="folder(s) or .txt file(s) (default: gensim's news corpus)")
    parser.add_argument("--out", default="runs/pretrained")
    parser.add_argument("--preset", default="bert_tiny_en_uncased", help="the architecture (`kzoo presets`)")
    parser.add_argument("--vocab-size", type=int, default=8000)
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--sequence-length", type=int, default=128)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--tiny", action="store_true", help="a quick check: small vocabulary, few short steps")
    args = parser.parse_args()
    if args.tiny:
        args.vocab_size, args.steps, args.batch_size, args.sequence_length = 300, 20, 8, 32
    os.makedirs(args.out, exist_ok=True)
    if not args.corpus:
        from kzoo.demo import demo_corpus  # 300 news articles, blank lines between them

        args.corpus = [demo_corpus(os.path.join(args.out, "corpus"))]

    import keras

    from kzoo.data import pretraining_dataset, train_wordpiece
    from kzoo.models import BertBackbone, BertPretrainer

    vocab_path = os.path.join(args.out, "vocab.txt")
    tokenizer, report = train_wordpiece(args.corpus, args.vocab_size, vocab_path)
    print(report)
    keras.utils.set_random_seed(0)
    data = {split: pretraining_dataset(args.corpus, tokenizer, "nsp", sequence_length=args.sequence_length,
                                       batch_size=args.batch_size, holdout_every=10, split=split,
                                       repeat=split == "train") for split in ("train", "eval")}
    held_out = data["eval"].take(10).cache().repeat()  # the same 10 batches every time (steps=10 below)
    model = BertPretrainer(BertBackbone.from_preset(args.preset, vocabulary_size=tokenizer.vocabulary_size()))
    model.compile(optimizer=keras.optimizers.AdamW(args.learning_rate))  # the MLM + NSP loss is built in
    before = model.evaluate(held_out, steps=10, return_dict=True, verbose=0)
    model.fit(data["train"], steps_per_epoch=max(1, args.steps // 5), epochs=5, verbose=2)
    after = model.evaluate(held_out, steps=10, return_dict=True, verbose=0)
    model.save_to_preset(os.path.join(args.out, "model"), overwrite=True, assets=[vocab_path])
    for name in ("mlm_loss", "mlm_accuracy", "nsp_accuracy"):
        print(f"held-out {name}: {before[name]:.4f} before, {after[name]:.4f} after")
    print(f"wrote {vocab_path} and {args.out}/model")
    print(json.dumps({"vocabulary_size": tokenizer.vocabulary_size(), "steps": 5 * max(1, args.steps // 5),
                      "held_out_before": before, "held_out_after": after}))


if __name__ == "__main__":
    try:
        main()
    except (ValueError, FileNotFoundError, ImportError) as error:
        sys.exit(f"{sys.argv[0]}: error: {error}")
