"""ALBERT's NSP-vs-SOP finding at small scale (Lan et al. 2020, Table 5): a model trained with next-sentence
prediction does poorly on sentence order, while one trained with sentence-order prediction also does well on
next-sentence prediction.

Two models of one architecture, identical but for the pair data their two-way sentence-pair head is trained on
(NSP or SOP, MLM for both), then each head is scored on held-out NSP pairs and on held-out SOP pairs
(label 0 = "A then B, in order" in both tasks, so one head answers either). Prints the 2×2 table and writes
JSON. The finding concerns the objective, so the default is the faster-learning bert_tiny; `--arch albert`
runs the paper's architecture.

    .venv/bin/python experiments/nsp_vs_sop.py                        # Austen, bert_tiny, 1000 steps each
    .venv/bin/python experiments/nsp_vs_sop.py --arch albert --steps 3000 --corpus my_corpus/
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", default=os.path.join(os.path.dirname(ROOT), "shared", "data", "corpora", "austen"))
    parser.add_argument("--arch", choices=["bert", "albert"], default="bert")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--sequence-length", type=int, default=64)
    parser.add_argument("--vocab-size", type=int, default=8000)
    parser.add_argument("--eval-batches", type=int, default=40)
    parser.add_argument("--out", default=os.path.join(ROOT, "saved_models", "nsp_vs_sop"))
    args = parser.parse_args()

    import keras
    import numpy as np

    from kzoo.data.pipeline import pretraining_dataset
    from kzoo.data.vocab import train_sentencepiece, train_wordpiece
    from kzoo.recipes.pretrain import PretrainConfig, build_pretrainer
    from kzoo.table import format_table
    from kzoo.train.optim import make_optimizer

    os.makedirs(args.out, exist_ok=True)
    if args.arch == "albert":
        tokenizer, report = train_sentencepiece(args.corpus, args.vocab_size, os.path.join(args.out, "spiece.model"))
    else:
        tokenizer, report = train_wordpiece(args.corpus, args.vocab_size, os.path.join(args.out, "vocab.txt"))
    print(f"tokenizer: {report}")
    config = PretrainConfig(arch=args.arch, corpus=args.corpus, out=args.out, backbone_overrides={"dropout": 0.0})
    options = dict(tokenizer=tokenizer, sequence_length=args.sequence_length, batch_size=args.batch_size,
                   masking=config.masking, holdout_every=20)
    held_out = {task: list(pretraining_dataset(args.corpus, task=task, split="eval", repeat=False, seed=7,
                                               **options).take(args.eval_batches)) for task in ("nsp", "sop")}

    pairs = {task: sum(int(y[task].shape[0]) for _, y, _ in batches) for task, batches in held_out.items()}

    def pair_accuracy(model, batches, task):
        correct = total = 0
        for x, y, _ in batches:
            inputs = {key: np.asarray(value) for key, value in x.items()}  # JAX takes arrays, not tf tensors
            logits = keras.ops.convert_to_numpy(model.predict_on_batch(inputs)[model.pair_task])
            labels = np.asarray(y[task])
            correct += int(np.sum(logits.argmax(-1) == labels))
            total += len(labels)
        return correct / total

    results = {}
    for trained_on in ("nsp", "sop"):
        keras.utils.set_random_seed(0)
        model = build_pretrainer(config, tokenizer.vocabulary_size())  # its pair head is named after its own task
        model.compile(optimizer=make_optimizer("adamw", 2e-3, args.steps, args.steps // 10))
        data = pretraining_dataset(args.corpus, task=trained_on, seed=0, **options).map(
            lambda x, y, w, task=trained_on: (x, {"mlm": y["mlm"], model.pair_task: y[task]}, w))
        start = time.time()
        history = model.fit(data, steps_per_epoch=args.steps, epochs=1, verbose=2, shuffle=False).history
        results[trained_on] = {
            "train_seconds": round(time.time() - start, 1),
            "final_train_mlm_accuracy": float(history["mlm_accuracy"][-1]),
            "nsp_accuracy": pair_accuracy(model, held_out["nsp"], "nsp"),
            "sop_accuracy": pair_accuracy(model, held_out["sop"], "sop"),
        }
        print(f"trained on {trained_on}: {results[trained_on]}")

    rows = [[f"trained with {task.upper()}", f"{results[task]['nsp_accuracy']:.3f}",
             f"{results[task]['sop_accuracy']:.3f}"] for task in ("nsp", "sop")]
    print(f"\nHeld-out pair accuracy, {config.preset}, {args.steps} steps each, batch {args.batch_size} x "
          f"seq {args.sequence_length}, {keras.backend.backend()} backend (held out: {pairs['nsp']} NSP pairs, "
          f"{pairs['sop']} SOP pairs; chance 0.5)")
    print(format_table(["model", "NSP task", "SOP task"], rows))
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"args": vars(args), "backend": keras.backend.backend(), "held_out_pairs": pairs,
                   "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
