"""Train a classifier on JAX, then load it on TensorFlow and carry on: one preset folder works on every backend.

Keras picks its backend once, when it is first imported, from KERAS_BACKEND; so each half runs in its own
process. This script starts itself twice: with KERAS_BACKEND=jax it fine-tunes on the CSV (as classify_csv.py,
same options) and saves the preset OUT/jax; with KERAS_BACKEND=tensorflow it loads OUT/jax. Each half writes
its probabilities on a few texts and its held-out accuracy to OUT/<backend>.json, and the two are compared; the
last line printed is a JSON summary. Any example runs on either backend: `KERAS_BACKEND=jax python
examples/classify_csv.py`; a model trained on one backend can go on training (`fit`) on another.

    python examples/other_backend.py --data my.csv --label-field label --out runs/two_backends
    python examples/other_backend.py --tiny        # seconds: a tiny random BERT, 64 rows, 1 epoch
"""

import json
import os
import subprocess
import sys

import numpy as np
from classify_csv import arguments, new_classifier, parse, read_csv, split

TEXTS = ["what a lovely day", "my flight got cancelled again", "the meeting is at 3pm", "worst service ever"]


def half(args, backend):
    """One backend's half; it writes OUT/<backend>.json."""
    import keras

    assert keras.backend.backend() == backend, f"KERAS_BACKEND={backend} was not set before keras was imported"
    from kzoo.models import TextClassifier

    (texts, labels), (test_texts, test_labels) = split(*read_csv(args.data, args.text_field, args.label_field),
                                                       args.seed, args.max_rows)
    keras.utils.set_random_seed(args.seed)
    if backend == "jax":
        classifier = new_classifier(args, sorted(set(labels)))
        classifier.compile(optimizer=keras.optimizers.AdamW(args.learning_rate))
        classifier.fit(texts, labels, epochs=args.epochs, batch_size=args.batch_size, verbose=2)
        classifier.save_to_preset(os.path.join(args.out, "jax"), overwrite=True)
    else:
        classifier = TextClassifier.from_preset(os.path.join(args.out, "jax"))  # the weights trained on JAX
    probabilities = keras.ops.convert_to_numpy(keras.ops.softmax(classifier.predict(TEXTS + test_texts, verbose=0)))
    predicted = [classifier.label_names[i] for i in probabilities[len(TEXTS):].argmax(-1)]
    result = {"backend": backend, "probabilities": probabilities[:len(TEXTS)].tolist(),
              "accuracy": float(np.mean(np.array(predicted) == np.array(test_labels)))}
    with open(os.path.join(args.out, f"{backend}.json"), "w") as f:
        json.dump(result, f)


def main():
    parser = arguments(__doc__.splitlines()[0], "runs/two_backends")
    parser.add_argument("--half", choices=["jax", "tensorflow"], help="run only that half (in this process)")
    args = parser.parse_args()
    if args.half:
        return half(parse(parser), args.half)
    os.makedirs(args.out, exist_ok=True)
    results = {}
    for backend in ("jax", "tensorflow"):
        print(f"== {backend} ==", flush=True)
        run = subprocess.run([sys.executable, __file__, *sys.argv[1:], "--half", backend],
                             env={**os.environ, "KERAS_BACKEND": backend})
        if run.returncode:
            sys.exit(run.returncode)
        with open(os.path.join(args.out, f"{backend}.json")) as f:
            results[backend] = json.load(f)
    jax, tensorflow = results["jax"], results["tensorflow"]
    difference = float(np.max(np.abs(np.array(jax["probabilities"]) - np.array(tensorflow["probabilities"]))))
    print(f"trained on JAX, loaded on TensorFlow: largest probability difference {difference:.1e}; held-out "
          f"accuracy {jax['accuracy']:.4f} on JAX, {tensorflow['accuracy']:.4f} on TensorFlow")
    print(json.dumps({"max_difference": difference, "jax_accuracy": jax["accuracy"],
                      "tensorflow_accuracy": tensorflow["accuracy"], "texts": TEXTS}))


if __name__ == "__main__":
    try:
        main()
    except (ValueError, FileNotFoundError, ImportError) as error:
        sys.exit(f"{sys.argv[0]}: error: {error}")
