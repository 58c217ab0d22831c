"""Every code block of README.md runs, as written, on tiny stand-ins for the user's files.

The ```python blocks run in order as one Python session (later sections use what earlier ones made: `clf`,
`tokenizer`), in a fresh interpreter; each ```bash block runs with `bash -e`, `kzoo` on PATH. Both run in a folder
holding tiny files under the names the README uses (`STAND_INS`). What changes in the code is listed in
`SUBSTITUTIONS` (sizes, and the README's `...` for arguments shown above it) and `ENVIRONMENT`, each with its
reason; a substitution whose text is no longer in the README fails the test, so the list cannot go stale.

The blocks start their own processes and run on the backends they name, so this file runs once, in the
TensorFlow half of `make test`.
"""

import csv
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from conftest import ROOT, write_text_corpus

README = os.path.join(ROOT, "README.md")
pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="the README's blocks run in their own processes, on the backends they name: once, in the TensorFlow half")]

# The README's names for the user's files, and what stands in for each here (made by `stand_ins`).
STAND_INS = {
    "path/to/hf_dir, all-MiniLM-L6-v2/, DIR, dir/": "a 1-layer BERT of width 16 as a Hugging Face folder (vocab.txt)",
    "tweets.csv": "40 rows of sentiment,confidence,text over a small vocabulary",
    "ner.jsonl, squad.jsonl": "30 tagged sentences; 30 question, context and answer rows",
    "my_texts/": "120 short documents (conftest.write_text_corpus); spiece.model: SentencePiece trained on them",
    "runs/tweets/best": "a TextClassifier on a 3-layer BERT (a 3-layer student is made from it), with its tokenizer",
    "runs/mine": "a TextClassifier on the 1-layer BERT, with its tokenizer",
    "pairs.jsonl": "30 anchor and positive rows (a question, the sentence answering it)",
    "keras_hub_preset/": "a 1-layer keras-hub BertBackbone of width 128 saved by its save_to_preset",
}
# (README text, what runs instead): each must be found in a block.
SUBSTITUTIONS = [
    # The set-up commands: `make test` is this suite, `make demo` takes minutes on real data; a dry run checks
    # that both targets exist and what they run.
    ("make demo", f"make -n -C {ROOT} demo"),
    ("make test", f"make -n -C {ROOT} test"),
    # Pretraining: a few steps of small batches.
    ("--steps 2000 --batch-size 32", "--steps 4 --batch-size 8 --log-every 2 --eval-batches 2"),
    ("--vocab spiece.model", "--vocab spiece.model --steps 4 --batch-size 8 --log-every 2 --eval-batches 2"),
    ("model.fit(data, steps_per_epoch=100)", "model.fit(data, steps_per_epoch=2)"),
    # Scale out: the tiny preset, two steps of one epoch.
    ('BertPretrainer(BertBackbone.from_preset("bert_base_en_uncased"',
     'BertPretrainer(BertBackbone.from_preset("bert_tiny_en_uncased"'),
    ("steps_per_epoch=1000 * engine.config.accumulate, epochs=10", "steps_per_epoch=2 * engine.config.accumulate"),
    ("batch_size=engine.micro_batch_size(256)", "batch_size=engine.micro_batch_size(16)"),
    # `kzoo COMMAND ...`: the arguments of that command as the sections above show them (the distillation from
    # the 1-layer classifier into 1 layer: tracing time grows with the layers).
    ("kzoo finetune ...", "kzoo finetune --task classify --data tweets.csv --from all-MiniLM-L6-v2/ --out runs/again "
                          "--label-field sentiment"),
    ("kzoo distill ...", "kzoo distill --teacher runs/mine --data tweets.csv --label-field sentiment "
                         "--student-layers 1 --out runs/distill_again"),
    ("kzoo pretrain ...", "kzoo pretrain --arch bert --corpus my_texts/ --out runs/pretrain_again --steps 4 "
                          "--batch-size 8 --log-every 2 --eval-batches 2"),
]
# Environment by the block's first line: the scale-out commands split the CPU into two JAX devices, as the
# block's comments ask for JAX (accumulation, the mesh) and for two devices.
ENVIRONMENT = {"kzoo finetune ... --data-parallel": {"KERAS_BACKEND": "jax",
                                                     "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}}

POSITIVE, NEGATIVE, NEUTRAL = ("good great lovely happy nice".split(), "bad awful worst sad dreadful".split(),
                               "train meeting time day bus".split())
FILLER = "the a is was very today my this".split()
NAMES = "ada bob cleo dan".split()


def readme_blocks():
    """[(language, the README line of the block's first code line, code)] for every fenced block."""
    blocks, language = [], None
    with open(README, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if language is None and line.startswith("```"):
                language, start, lines = line.strip()[3:], number + 1, []
            elif language is not None and line.startswith("```"):
                blocks.append((language, start, "".join(lines)))
                language = None
            elif language is not None:
                lines.append(line)
    return blocks


def substituted(code):
    for text, replacement in SUBSTITUTIONS:
        code = code.replace(text, replacement)
    return code


def test_readme_blocks_are_python_or_bash_and_every_substitution_applies():
    blocks = readme_blocks()
    assert {language for language, _, _ in blocks} == {"python", "bash"}
    assert len(blocks) >= 10 and sum(1 for line in open(README, encoding="utf-8")) < 200
    code = "".join(block for _, _, block in blocks)
    for text, _ in SUBSTITUTIONS:
        assert text in code, f"SUBSTITUTIONS: {text!r} is no longer in README.md's code"
    for first_line in ENVIRONMENT:
        assert any(block.startswith(first_line) for _, _, block in blocks), first_line


def write_tiny_data(folder):
    """tweets.csv, ner.jsonl and squad.jsonl in `folder`; returns their (lower-cased) words."""
    rng = np.random.default_rng(0)
    with open(folder / "tweets.csv", "w", newline="") as f:
        rows = [["sentiment", "confidence", "text"]]
        for i in range(40):  # 29 training rows: one batch, so one trace of the train step
            label, words = [("negative", NEGATIVE), ("neutral", NEUTRAL), ("positive", POSITIVE)][i % 3]
            text = [*rng.choice(words, 2), *rng.choice(FILLER, int(rng.integers(1, 5)))]
            rng.shuffle(text)
            rows.append([label, f"{rng.uniform(0.5, 1):.3f}", " ".join(text)])
        csv.writer(f).writerows(rows)
    with open(folder / "ner.jsonl", "w") as f:
        for _ in range(30):
            a, b = rng.choice(NAMES, 2)
            f.write(json.dumps({"tokens": [a.title(), "met", b.title(), "today"], "tags": ["B-PER", "O", "B-PER", "O"]})
                    + "\n")
    with open(folder / "squad.jsonl", "w") as f, open(folder / "pairs.jsonl", "w") as g:
        for _ in range(30):
            a, b = rng.choice(NAMES, 2)
            f.write(json.dumps({"question": f"Who met {b}?", "context": f"{a} met {b} on the train.",
                                "answer": a}) + "\n")
            g.write(json.dumps({"anchor": f"Who met {b}?", "positive": f"{a} met {b} on the train."}) + "\n")
    words = sorted({*POSITIVE, *NEGATIVE, *NEUTRAL, *FILLER, *NAMES, "met", "who", "on", "what", "?", ".", ","})
    return words


@pytest.fixture(scope="module")
def stand_ins(tmp_path_factory):
    """A folder holding every file the README's blocks name (see STAND_INS)."""
    import keras_hub

    from kzoo import convert
    from kzoo.data import train_sentencepiece
    from kzoo.models import BertBackbone, TextClassifier
    from kzoo.data.vocab import WORDPIECE_SPECIALS

    folder = tmp_path_factory.mktemp("readme")
    words = write_tiny_data(folder)
    (folder / "vocab.txt").write_text("\n".join([*WORDPIECE_SPECIALS, *words]) + "\n")
    for layers, name in ((1, "all-MiniLM-L6-v2"), (3, "teacher")):  # tracing time grows with the layers
        keras.utils.set_random_seed(0)
        backbone = BertBackbone(vocabulary_size=len(WORDPIECE_SPECIALS) + len(words), num_layers=layers,
                                num_heads=2, hidden_dim=16, intermediate_dim=32, max_sequence_length=128)
        convert.to_huggingface(backbone, str(folder / name), assets=[str(folder / "vocab.txt")])
    os.remove(folder / "vocab.txt")
    for name in ("path/to/hf_dir", "DIR", "dir"):
        shutil.copytree(folder / "all-MiniLM-L6-v2", folder / name)
    for source, name in (("teacher", "runs/tweets/best"), ("all-MiniLM-L6-v2", "runs/mine")):
        classifier = TextClassifier.from_preset(str(folder / source), label_names=["negative", "neutral", "positive"])
        classifier.save_to_preset(str(folder / name))
    shutil.rmtree(folder / "teacher")
    keras_hub.models.BertBackbone(vocabulary_size=100, num_layers=1, num_heads=2, hidden_dim=128, intermediate_dim=256,
                                  max_sequence_length=32).save_to_preset(str(folder / "keras_hub_preset"))
    write_text_corpus(str(folder / "my_texts"))
    train_sentencepiece(str(folder / "my_texts"), 100, str(folder / "spiece.model"))
    return folder


def run_in_copy(stand_ins, tmp_path, command, env=None):
    """Run `command` (a list) in a copy of the stand-ins; return (the folder, the finished process)."""
    folder = tmp_path / "work"
    shutil.copytree(stand_ins, folder)
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3",
           "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""), **(env or {})}
    result = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"{command[:2]} failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    return folder, result


# What the README's comments and prose say about the Python session's results, checked after it ran.
FACTS = {
    "{k: tuple(v.shape) for k, v in backbone(x).items()}": {"sequence_output": (1, 5, 128), "pooled_output": (1, 128)},
    'sorted(os.listdir("my_bert"))': ["config.json", "model.weights.h5"],
    'sorted(os.listdir("hf_out"))[:2]': ["config.json", "model.safetensors"],
    'type(conversion.model).__name__': "BertBackbone",
    'clf.predict_labels(["what a lovely day"])[0] in clf.label_names': True,
    'clf.lora_rank': 8,
    'student.backbone.num_layers': 3,
    '"vocab.txt" in os.listdir("student")': True,
    'sorted(served.signatures)': ["serve_ids", "serve_text", "serve_text_pair", "serving_default"],
    'sorted(served.signatures["serve_text"](text=tf.constant(["what a lovely day"])))':
        ["label", "logits", "probabilities"],
    'os.path.getsize("saved_models/sentiment.tflite") > 0': True,
    'tokenizer.vocabulary_size() < 8000 and os.path.isfile("vocab.txt")': True,
    'engine.micro_batch_size(256)': 256,
    'qa.doc_stride': 64,
    '(embedder.pooling_mode, embedder.normalize, np.round((vectors ** 2).sum(axis=1), 5).tolist())':
        ["mean", True, [1.0, 1.0]],
}


def test_python_blocks_run_in_order_as_one_session(stand_ins, tmp_path):
    blocks = [(start, substituted(code)) for language, start, code in readme_blocks() if language == "python"]
    driver = textwrap.dedent(f"""
        import json, os, resource
        namespace = {{"__name__": "__main__"}}
        for start, code in {blocks!r}:
            usage = resource.getrusage(resource.RUSAGE_SELF)
            print(f"--- README.md line {{start}} (after {{usage.ru_utime + usage.ru_stime:.0f}} s CPU)", flush=True)
            exec(compile("\\n" * (start - 1) + code, {README!r}, "exec"), namespace)  # tracebacks: README lines
        exec("import os, tensorflow as tf", namespace)
        facts = {{expression: eval(expression, namespace) for expression in {list(FACTS)!r}}}
        print(json.dumps(facts, default=list))
    """)
    folder, result = run_in_copy(stand_ins, tmp_path, [sys.executable, "-c", driver])
    facts = json.loads(result.stdout.strip().splitlines()[-1])
    expected = json.loads(json.dumps(FACTS))  # tuples as lists, as the session's JSON has them
    assert facts == expected
    assert (folder / "saved_models" / "sentiment" / "saved_model.pb").is_file()


def bash_blocks():
    return [pytest.param(start, code, id=f"line{start}") for language, start, code in readme_blocks()
            if language == "bash"]


def commands(code):
    """[(environment assignments, argv)] of a bash block's command lines (comments and continuations joined)."""
    lines = []
    for line in code.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        assignments = {}
        while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):
            key, value = words.pop(0).split("=", 1)
            assignments[key] = value
        if words:
            lines.append((assignments, words))
    return lines


def option(argv, name):
    return argv[argv.index(name) + 1]


@pytest.mark.parametrize("start,code", bash_blocks())
def test_bash_block_runs(stand_ins, tmp_path, start, code):
    env = next((env for first, env in ENVIRONMENT.items() if code.startswith(first)), {})
    folder, result = run_in_copy(stand_ins, tmp_path, ["bash", "-e", "-c", substituted(code)], env)
    out = result.stdout
    for assignments, argv in commands(substituted(code)):  # each command made what it says it makes
        backend = assignments.get("KERAS_BACKEND", env.get("KERAS_BACKEND", "tensorflow"))
        command = " ".join(argv[:2]) if argv[0] == "kzoo" else argv[0]
        if command == "make":
            assert ("kzoo demo" in out) if argv[-1] == "demo" else ("KERAS_BACKEND=jax" in out and "pytest" in out)
        elif command == "kzoo presets":
            assert re.search(r"^bert_tiny_en_uncased\s+BertBackbone\s+4,385,920", out, re.MULTILINE), out
        elif command == "kzoo convert":
            assert json.loads((folder / argv[3] / "config.json").read_text())["class_name"] == "BertBackbone"
            assert (folder / argv[3] / "vocab.txt").is_file() and "tensors mapped" in out
        elif command in ("kzoo finetune", "kzoo distill"):
            run = folder / option(argv, "--out")
            metrics = json.loads((run / "metrics.json").read_text())
            scores = metrics["distilled"] if command == "kzoo distill" else metrics
            assert 0 <= scores["accuracy"] <= 1 and (run / "best" / "config.json").is_file(), metrics
            assert metrics["backend"] == backend, (argv, metrics["backend"])
        elif command == "kzoo pretrain":
            summary = json.loads((folder / option(argv, "--out") / "summary.json").read_text())
            assert summary["steps"] == 4 and (folder / option(argv, "--out") / "model" / "config.json").is_file()
        elif command == "kzoo export":
            assert (folder / argv[3]).exists() and os.path.getsize(folder / argv[3]) > 0, argv
        else:
            raise AssertionError(f"README.md line {start}: no check here for {argv[:2]}; add one")
