"""Load checkpoint folders as users find them: sharded safetensors, bfloat16 weights, and a keras-hub preset.

Each folder is written here from one tiny random kzoo BERT, without transformers or torch: a Hugging Face
folder (`to_huggingface`), the same cut into shards with a `model.safetensors.index.json`, the same in
bfloat16, and the keras-hub preset of the same weights (`to_keras_hub(...).save_to_preset`, with keras-hub's
tokenizer). Each loads back through `from_huggingface` or `BertBackbone.from_preset`, and its outputs are
compared with the original's. The last line printed is a JSON summary with the largest differences.

    python examples/convert_checkpoints.py --tiny            # seconds
    python examples/convert_checkpoints.py --out runs/checkpoints
"""

import argparse
import json
import os
import shutil
import sys

import numpy as np

VOCABULARY = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "quick", "brown", "fox", "jumps", "over", "lazy",
              "dog", "a", "man", "is", "playing", "guitar", ".", "!"]
SENTENCES = ["The quick brown fox jumps over the lazy dog.", "A man is playing a guitar!"]


def write_shards(source, target, shard_count):
    """Cut `source`'s model.safetensors into `shard_count` files and a model.safetensors.index.json, in the
    layout transformers' `save_pretrained(max_shard_size=...)` writes (written by hand here so the example needs
    no transformers)."""
    from safetensors.numpy import load_file, save_file

    shutil.copytree(source, target, ignore=shutil.ignore_patterns("model.safetensors"))
    tensors = load_file(os.path.join(source, "model.safetensors"))
    names, weight_map = sorted(tensors), {}
    for number, part in enumerate(np.array_split(np.array(names), shard_count), start=1):
        shard = f"model-{number:05d}-of-{shard_count:05d}.safetensors"
        save_file({name: tensors[name] for name in part}, os.path.join(target, shard), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(part.tolist(), shard))
    total = sum(value.nbytes for value in tensors.values())
    with open(os.path.join(target, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)


def write_bfloat16(source, target):
    """The same folder with every float32 tensor stored as bfloat16 (what `model.to(torch.bfloat16)` then
    `save_pretrained` writes)."""
    import ml_dtypes  # writing bfloat16 with numpy needs it; kzoo's reader does not
    from safetensors.numpy import load_file, save_file

    shutil.copytree(source, target, ignore=shutil.ignore_patterns("model.safetensors"))
    tensors = load_file(os.path.join(source, "model.safetensors"))
    halved = {name: value.astype(ml_dtypes.bfloat16) if value.dtype == np.float32 else value
              for name, value in tensors.items()}
    save_file(halved, os.path.join(target, "model.safetensors"), metadata={"format": "pt"})


def largest_difference(model, reference, inputs):
    """The largest absolute difference of the sequence outputs at real (unpadded) positions."""
    import keras

    mask = inputs["padding_mask"].astype(bool)
    ours = keras.ops.convert_to_numpy(model(inputs)["sequence_output"])[mask]
    theirs = keras.ops.convert_to_numpy(reference(inputs)["sequence_output"])[mask]
    return float(np.max(np.abs(ours - theirs)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/checkpoints")
    parser.add_argument("--tiny", action="store_true", help="a 2-layer, 32-wide BERT (the default is 4 x 128)")
    args = parser.parse_args()
    import keras
    import keras_hub

    from kzoo import convert
    from kzoo.data import encode_texts, load_hf_tokenizer
    from kzoo.models import BertBackbone

    keras.utils.set_random_seed(0)
    sizes = dict(num_layers=2, num_heads=2, hidden_dim=32, intermediate_dim=64) if args.tiny else \
        dict(num_layers=4, num_heads=4, hidden_dim=128, intermediate_dim=512)
    original = BertBackbone(vocabulary_size=len(VOCABULARY), max_sequence_length=64, dropout=0.0,
                            activation="gelu_approximate", **sizes)  # keras-hub BERT's GELU, for its preset
    os.makedirs(args.out, exist_ok=True)
    vocab_file = os.path.join(args.out, "vocab.txt")
    with open(vocab_file, "w") as f:
        f.write("\n".join(VOCABULARY) + "\n")
    folders = {name: os.path.join(args.out, name) for name in ("huggingface", "sharded", "bfloat16", "keras_hub")}
    convert.to_huggingface(original, folders["huggingface"], overwrite=True, assets=[vocab_file])
    for name in ("sharded", "bfloat16", "keras_hub"):  # written afresh each run
        shutil.rmtree(folders[name], ignore_errors=True)
    write_shards(folders["huggingface"], folders["sharded"], shard_count=4)
    write_bfloat16(folders["huggingface"], folders["bfloat16"])
    convert.to_keras_hub(original).save_to_preset(folders["keras_hub"])
    keras_hub.models.BertTokenizer(vocabulary=VOCABULARY, lowercase=True).save_to_preset(folders["keras_hub"])

    inputs = encode_texts(load_hf_tokenizer(folders["huggingface"]), SENTENCES)
    loaded = {"sharded": convert.from_huggingface(folders["sharded"]).model,
              "bfloat16": convert.from_huggingface(folders["bfloat16"]).model,
              "keras_hub": BertBackbone.from_preset(folders["keras_hub"])}
    differences = {name: largest_difference(model, original, inputs) for name, model in loaded.items()}
    for name, difference in differences.items():
        print(f"{name}: {sorted(os.listdir(folders[name]))[:4]}... loads; largest output difference "
              f"{difference:.2e}")
    hub_ids = encode_texts(load_hf_tokenizer(folders["keras_hub"]), SENTENCES)["token_ids"]
    print(json.dumps({"differences": differences, "folders": folders,
                      "shards": sum(name.endswith(".safetensors") for name in os.listdir(folders["sharded"])),
                      "keras_hub_tokenizer_matches": bool(np.array_equal(hub_ids, inputs["token_ids"]))}))


if __name__ == "__main__":
    try:
        main()
    except (ValueError, FileNotFoundError, ImportError) as error:
        sys.exit(f"{sys.argv[0]}: error: {error}")
