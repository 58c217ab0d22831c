"""Bad data and bad text get one clear line naming the file and line, or the index of the text: pretraining
corpora, `kzoo finetune`'s CSV/JSONL files and options, and raw text through the task models."""

import json
import os
import re

import numpy as np
import pytest
from conftest import BACKEND, make_backbone, word_preprocessor

from kzoo.data.corpus import check_corpus, check_utf8, iter_documents
from kzoo.data.labelled_files import read_rows, split_rows
from kzoo.recipes.finetune import FinetuneConfig
from kzoo.recipes.finetune_tasks import TASKS

# File parsing does not depend on the backend: it runs in the TensorFlow half of the suite only.
tf_only = pytest.mark.skipif(BACKEND != "tensorflow", reason="backend-independent: runs under TensorFlow only")

WORDS = ["good", "bad", "day", "movie", "rose", "met", "bob", "who", "?", "."]


def one_line(text):
    assert "\n" not in text.strip() and "Traceback" not in text, text
    return text.strip()


def write(path, content):
    (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
    return path


def jsonl(rows):
    return "".join(json.dumps(row) + "\n" for row in rows)


def labelled(count=12):
    return [{"text": f"good day {i}", "label": ["neg", "pos"][i % 2]} for i in range(count)]


# Pretraining corpora -------------------------------------------------------------------------------------------


@tf_only
def test_corpus_bytes_that_are_not_utf8_are_named_by_file_line_and_byte(tmp_path):
    write(tmp_path / "a.txt", "A first document. It is fine.\n\nAnother one here.\n")
    write(tmp_path / "b.txt", b"Fine line here. Another one.\n\nCaf\xe9 au lait is good.\n")
    with pytest.raises(ValueError, match=r"b\.txt, line 3: not UTF-8 \(invalid continuation byte at byte 33 of the "
                                         r"file\); re-encode the file, e\.g\. `iconv -f latin1"):
        check_corpus(tmp_path, "nsp")
    write(tmp_path / "b.txt", "Windows Notepad's Unicode.\n".encode("utf-16"))
    with pytest.raises(ValueError, match=r"b\.txt, line 1: not UTF-8 .* at byte 0 .*looks like UTF-16"):
        check_corpus(tmp_path, "mlm")
    os.remove(tmp_path / "b.txt")
    assert check_corpus(tmp_path, "nsp") == [str(tmp_path / "a.txt")]


@tf_only
@pytest.mark.parametrize("block_size", [1, 2, 3, 5, 64])
def test_utf8_check_reads_in_blocks_and_finds_the_first_bad_byte(tmp_path, block_size):
    """Characters cut by a block's end are carried over: a valid file passes at any block size, and a bad byte
    is named at its true line and offset."""
    text = "é€😀 plain\nñ\n\nzwölf €\n".encode()
    check_utf8(write(tmp_path / "good.txt", text), block_size=block_size)
    bad = text + "x€".encode()[:-1]  # ends in a character cut short
    with pytest.raises(ValueError, match=rf"line 5: not UTF-8 \(unexpected end of data at byte {len(text) + 1} "):
        check_utf8(write(tmp_path / "cut.txt", bad), block_size=block_size)
    bad = text[:16] + b"\xff" + text[16:]  # at the start of line 2
    with pytest.raises(ValueError, match=r"line 2: not UTF-8 \(invalid start byte at byte 16 "):
        check_utf8(write(tmp_path / "bad.txt", bad), block_size=block_size)


@tf_only
def test_corpus_too_small_for_its_task_says_what_the_task_needs(tmp_path):
    one = write(tmp_path / "one.txt", "Only one document here. It has two sentences.\n")
    with pytest.raises(ValueError, match=r"NSP pretraining needs 2 or more documents \(paragraphs separated by a "
                                         r"blank line\) to train on; the corpus .*one\.txt gives 1\."):
        check_corpus(one, "nsp")
    assert check_corpus(one, "sop") and check_corpus(one, "mlm")  # SOP splits one sentence into two segments
    word = write(tmp_path / "word.txt", "Hello\n\n   \n\nWorld\n")
    with pytest.raises(ValueError, match=r"SOP pretraining makes sentence pairs, which need a document of two words "
                                         r"or more; every document of the corpus .*word\.txt has one word"):
        check_corpus(word, "sop")
    assert check_corpus(word, "mlm")
    blank = write(tmp_path / "blank.txt", "   \n\n\t\n\n")
    with pytest.raises(ValueError, match=r"The corpus .*blank\.txt is empty: no text in it"):
        check_corpus(blank, "mlm")
    two = write(tmp_path / "two.txt", "First document. Two sentences.\n\nSecond document.\n")
    assert check_corpus(two, "nsp")
    with pytest.raises(ValueError, match=r"NSP .* gives 1 \(holdout_every=2 holds out 1 document in 2\)"):
        check_corpus(two, "nsp", holdout_every=2)
    with pytest.raises(ValueError, match="task must be one of"):
        check_corpus(two, "mlm+nsp")


@tf_only
def test_corpus_folder_without_txt_files_and_byte_order_marks(tmp_path):
    write(tmp_path / "notes.md", "Not a corpus.")
    write(tmp_path / "book.TXT", "Upper-case extension.")
    with pytest.raises(ValueError, match=r"Corpus folder .* has no \.txt files \(it holds book\.TXT, notes\.md\)"):
        check_corpus(tmp_path)
    write(tmp_path / "bom.txt", "\ufeffFirst sentence. Second one.\n".encode())
    assert list(iter_documents(tmp_path / "bom.txt")) == [["First sentence.", "Second one."]]


# Labelled data through `kzoo finetune` --------------------------------------------------------------------------

GOOD = jsonl(labelled())
# (file name, content, extra options, the message after "kzoo finetune: error: ")
BAD_DATA = {
    "not_utf8": ("a.csv", "text,label\ngood,pos\ncafé,neg\n".encode("latin-1"), [],
                 r"a\.csv, line 3: not UTF-8 \(invalid continuation byte at byte 23 of the file\); re-encode .*, or "
                 r"read such bytes as U\+FFFD with encoding_errors='replace' \(--encoding-errors replace\)\."),
    "utf16": ("b.jsonl", GOOD.encode("utf-16"), [], r"b\.jsonl, line 1: not UTF-8 .*it looks like UTF-16"),
    "missing_field_csv": ("c.csv", "text,label\ngood,pos\nbad\n", [],
                          r"c\.csv, line 3: 1 field\(s\) where the header has 2 \(text, label\)\.$"),
    "extra_field_csv": ("d.csv", "text,label\ngood,pos\nbad, not good,neg\n", [],
                        r"d\.csv, line 3: 3 field\(s\) where the header has 2 \(text, label\); quote a field that "
                        r"holds a comma\."),
    "multi_line_field_csv": ("e.csv", 'text,label\n"two\nlines",pos\nbad,neg,x\n', [], r"e\.csv, line 4: 3 field"),
    "repeated_header": ("f.csv", "text,label,text\na,b,c\n", [], r"f\.csv, line 1: the header names \['text'\] more "
                                                                  r"than once"),
    "not_json": ("g.jsonl", GOOD + '{"text": "x", label: "pos"}\n', [],
                 r"g\.jsonl, line 13: not JSON \(Expecting property name enclosed in double quotes at column 15\)"),
    "not_object": ("h.jsonl", GOOD + '["good day", "pos"]\n', [],
                   r"h\.jsonl, line 13: a JSON array, not a JSON object"),
    "json_string": ("i.jsonl", GOOD + '"good day"\n', [], r"i\.jsonl, line 13: a JSON string, not a JSON object"),
    "empty_file": ("j.jsonl", "", [], r"j\.jsonl holds no examples\.$"),
    "blank_lines": ("k.jsonl", "\n  \n\n", [], r"k\.jsonl holds no examples\.$"),
    "header_only": ("l.csv", "text,label\n", [], r"l\.csv holds no examples \(only a header\)\."),
    "empty_label": ("m.csv", "text,label\n" + "good,pos\nbad,\nok,neg\n" * 3, [],
                    r"m\.csv, line \d+: field 'label' is empty; every example needs a label\."),
    "null_label": ("n.jsonl", GOOD + jsonl([{"text": "fine", "label": None}]), [],
                   r"n\.jsonl, line 13: field 'label' is empty"),
    "list_label": ("o.jsonl", GOOD + jsonl([{"text": "fine", "label": ["pos"]}]), [],
                   r"o\.jsonl, line 13: field 'label' is a list \(\['pos'\]\), not one label"),
    "null_text": ("p.jsonl", GOOD + jsonl([{"text": None, "label": "pos"}]), [],
                  r"p\.jsonl, line 13: field 'text' is None, not a string\."),
    "number_text": ("q.jsonl", GOOD + jsonl([{"text": 42, "label": "pos"}]), [],
                    r"q\.jsonl, line 13: field 'text' is an int \(42\), not a string\."),
    "blank_text": ("r.jsonl", GOOD + jsonl([{"text": " \t ", "label": "pos"}]), [],
                   r"r\.jsonl, line 13: field 'text' is empty text"),
    "lone_surrogate": ("s.jsonl", GOOD + '{"text": "half \\ud83d an emoji", "label": "pos"}\n', [],
                       r"s\.jsonl, line 13: field 'text' holds a lone surrogate \(U\+D83D at character 5\), which is "
                       r"not text .*--encoding-errors replace"),
    "missing_pair": ("t.jsonl", GOOD + jsonl([{"text": "a", "label": "pos"}]), ["--pair-field", "other"],
                     r"t\.jsonl has no field 'other' \(--pair-field\); its fields are \['label', 'text'\]\."),
    "text_field_absent": ("u.csv", "text,label\n" + "good,pos\nbad,neg\n" * 5, ["--text-field", "txt"],
                          r"u\.csv has no field 'txt' \(--text-field\); its fields are \['label', 'text'\]\."),
    "text_field_in_some_rows": ("v.jsonl", GOOD + jsonl([{"body": "fine", "label": "pos"}]), [],
                                r"v\.jsonl, line 13: no field 'text' \(--text-field\); it has \['body', 'label'\]\."),
    "label_field_absent": ("w.jsonl", GOOD, ["--label-field", "sentiment"],
                           r"w\.jsonl has no field 'sentiment' \(--label-field\)"),
    "where_matches_nothing": ("x.csv", "text,label,confidence\n" + "good,pos,0.5\nbad,neg,n/a\n" * 5,
                              ["--where", "confidence>=0.9"],
                              r"No example of .*x\.csv satisfies 'confidence>=0\.9' \(5 of its 10 rows have a number "
                              r"in 'confidence'\)\."),
    "where_field_missing": ("y.jsonl", GOOD, ["--where", "score>0"],
                            r"where='score>0': .*y\.jsonl has no field 'score' \(fields: \['label', 'text'\]\)"),
    "where_not_a_number": ("z.jsonl", GOOD, ["--where", "score>=1.2.3"], r"where='score>=1\.2\.3': '1\.2\.3' is not a "
                                                                         r"number\."),
    "where_malformed": ("z2.jsonl", GOOD, ["--where", "score=>1"], r"where='score=>1' is not 'FIELD OP NUMBER'"),
    "test_share": ("ts.jsonl", GOOD, ["--test-share", "1.5"],
                   r"test_share must be between 0 and 1 \(a share of the rows\); got 1\.5\."),
    "validation_share": ("vs.jsonl", GOOD, ["--validation-share", "0"],
                         r"validation_share must be between 0 and 1 \(a share of the rows\); got 0\.0\."),
    "too_few_rows": ("few.jsonl", jsonl(labelled(2)), [], r"1 examples cannot be split 90%/10%: each part needs one"),
    "one_label": ("one.jsonl", jsonl([{"text": f"text {i}", "label": "pos"} for i in range(12)]), [],
                  r"Every training example has the label 'pos'; a classifier needs two or more \(check "
                  r"--label-field\)\."),
    "not_csv_or_jsonl": ("data.txt", GOOD, [], r"data\.txt: kzoo reads \.csv \(with a header\) and \.jsonl files\."),
    "tokens_null_word": ("tk.jsonl", jsonl([{"tokens": ["Rose", None], "tags": ["NAME", "O"]}] * 12),
                         ["--task", "tokens"], r"tk\.jsonl, line \d+: field 'tokens'\[1\] is None, not a string\."),
    "tokens_count": ("tc.jsonl", jsonl([{"tokens": "Rose met Bob", "tags": ["NAME", "O"]}] * 12), ["--task", "tokens"],
                     r"tc\.jsonl, line \d+: 3 words \('tokens'\) but 2 tags \('tags'\)\."),
    "tokens_number": ("tn.jsonl", jsonl([{"tokens": 7, "tags": "O"}] * 12), ["--task", "tokens"],
                      r"tn\.jsonl, line \d+: field 'tokens' is an int \(7\), not a list of words\."),
    "qa_answer_type": ("qa.jsonl", jsonl([{"question": "who?", "context": "Rose met Bob.", "answer": 5}] * 12),
                       ["--task", "qa"], r"qa\.jsonl, line \d+: field 'answer' is an int \(5\), not an answer"),
    "qa_answer_object": ("qb.jsonl", jsonl([{"question": "who?", "context": "Rose met Bob.",
                                             "answer": {"start": 0}}] * 12), ["--task", "qa"],
                         r"qb\.jsonl, line \d+: field 'answer' is an object without \"text\" and \"answer_start\" "
                         r"\(it has \['start'\]\)"),
}


@tf_only
@pytest.mark.parametrize("case", sorted(BAD_DATA))
def test_finetune_names_bad_data_in_one_line_and_writes_nothing(case, tmp_path, capsys):
    from kzoo.cli import main

    name, content, options, message = BAD_DATA[case]
    data = write(tmp_path / name, content)
    task = [] if "--task" in options else ["--task", "classify"]
    code = main(["finetune", *task, "--data", str(data), "--from", "bert_tiny_en_uncased", "--out",
                 str(tmp_path / "out"), *options])
    error = one_line(capsys.readouterr().err)
    assert code == 2 and error.startswith("kzoo finetune: error: ") and re.search(message, error), error
    assert not os.path.exists(tmp_path / "out")


@tf_only
def test_data_paths_that_are_not_files(tmp_path, capsys):
    from kzoo.cli import main

    for data, message in ((tmp_path, r"is a folder; the data is one \.csv or \.jsonl file"),
                          (tmp_path / "missing.csv", r"Data file .*missing\.csv does not exist")):
        code = main(["finetune", "--task", "classify", "--data", str(data), "--from", "bert_tiny_en_uncased", "--out",
                     str(tmp_path / "out")])
        assert code == 2 and re.search(message, one_line(capsys.readouterr().err))
    assert os.listdir(tmp_path) == []


def classify_config(path, **options):
    return FinetuneConfig(task="classify", data=str(path), source="-", out="-", **options)


@tf_only
def test_data_that_reads_well(tmp_path):
    """Byte-order marks, upper-case extensions, U+2028 inside a JSON string, a CSV field over csv's 128 KiB limit,
    a multi-line quoted field, lone surrogates read as U+FFFD when asked: all read, each row knowing its line."""
    task = TASKS["classify"]
    bom = write(tmp_path / "bom.CSV", "\ufefftext,label\ngood,pos\n\n\"two\nlines\",neg\n".encode())
    rows = read_rows(str(bom))
    assert task.read(rows, classify_config(bom)) == (["good", "two\nlines"], ["pos", "neg"])
    assert [row.line for row in rows] == [2, 4]
    separators = write(tmp_path / "separators.JSONL", jsonl([{"text": "one\u2028two\x85three", "label": "pos"}]))
    assert read_rows(str(separators))[0]["text"] == "one\u2028two\x85three"
    huge = write(tmp_path / "huge.csv", "text,label\n" + "word " * 40_000 + ",pos\nshort,neg\n")
    assert [len(row["text"]) for row in read_rows(str(huge))] == [200_000, 5]
    half = write(tmp_path / "half.jsonl", '{"text": "half \\ud83d emoji", "label": "pos"}\n')
    config = classify_config(half, encoding_errors="replace")
    assert task.texts(read_rows(str(half)), config) == ["half \ufffd emoji"]
    latin = write(tmp_path / "latin.csv", "text,label\ncafé,pos\n".encode("latin-1"))
    assert read_rows(str(latin), encoding_errors="replace")[0]["text"] == "caf\ufffd"
    # Rows split for training still know their file line, so a bad one is named where it is, not by its index.
    rows = read_rows(str(write(tmp_path / "late.jsonl", GOOD + jsonl([{"text": "", "label": "pos"}]))))
    train, test = split_rows(rows, 0.5, seed=0)
    bad = train if any(not row["text"] for row in train) else test
    with pytest.raises(ValueError, match=r"late\.jsonl, line 13: field 'text' is empty text"):
        task.read(bad, classify_config(tmp_path / "late.jsonl"))


# Raw text through the task models -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    from kzoo.models import TextClassifier

    preprocessor = word_preprocessor(tmp_path_factory.mktemp("vocab") / "vocab.txt", WORDS, sequence_length=32)
    return TextClassifier.from_preset("bert_tiny_en_uncased", num_classes=3, preprocessor=preprocessor,
                                      label_names=["a", "b", "c"])


# texts → the message of the ValueError, naming the offending text's index
REJECTED = {
    "empty": (["good", ""], r"texts\[1\] is empty text; remove it or give it words\."),
    "whitespace": (["good", " \t\n\u3000"], r"texts\[1\] is empty text"),
    "lone_surrogate": (["good", "bad", "a \ud800 b"], r"texts\[2\] holds a lone surrogate \(U\+D800 at character 2\), "
                                                      r"which is not text and has no UTF-8 encoding"),
    "bytes_not_utf8": ([b"good", b"caf\xe9 au lait"], r"texts\[1\] is bytes that are not UTF-8 \(invalid continuation byte "
                                              r"at byte 3\); decode them to str first\."),
    "none": (["good", None], r"texts\[1\] is None, not a string\."),
    "number": (["good", "bad", 3], r"texts\[2\] is an int \(3\), not a string\."),
    "nan": (["good", float("nan")], r"texts\[1\] is a float \(nan\), not a string\."),
    "nested": (["good", ["bad"]], r"texts\[1\] is a list \(\['bad'\]\), not a string\."),
}


@pytest.mark.parametrize("case", sorted(REJECTED))
def test_predict_names_the_text_it_refuses(classifier, case):
    texts, message = REJECTED[case]
    for predict in (classifier.predict, classifier.predict_labels):
        with pytest.raises(ValueError, match=message) as error:
            predict(texts)
        one_line(str(error.value))


def test_predict_serves_every_other_string(classifier):
    """Control and format characters, NUL, any script, bytes, mixed str and bytes, arrays: answered; a text with
    no tokens (control or zero-width characters only) is [CLS] [SEP]; a 100,000-character text is cut to the
    sequence length."""
    preprocessor = classifier.preprocessor
    special = preprocessor.special
    texts = ["good\x01 day\x7f", "good\x00bad", "\x00", "\x01\x02", "\u200b\u200d", "\ufeff", "שלום עולם",
             "e\u0301\u0301\u0301", "😀 🇫🇷", "good " * 20_000, "x" * 100_000, b"bad movie", np.str_("good"), "\u2028good"]
    inputs, lengths = preprocessor.encode(texts)
    for index in (2, 3, 4, 5):  # no tokens
        assert inputs["token_ids"][index, :lengths[index]].tolist() == [special.cls, special.sep]
    assert lengths[9] == 32 and lengths[10] == 3  # many words cut to 32 tokens; one 100,000-letter word: [UNK]
    logits = classifier.predict(texts, verbose=0)
    assert logits.shape == (len(texts), 3) and np.isfinite(logits).all()
    np.testing.assert_allclose(logits[3], logits[2], atol=1e-6)
    labels = classifier.predict_labels(["good", b"bad", np.str_("day")])
    assert len(labels) == 3 and set(labels) <= {"a", "b", "c"}
    for texts in (np.array(["good", "bad"]), ("good", "bad")):
        assert classifier.predict(texts, verbose=0).shape == (2, 3)


def test_pairs_token_words_and_questions_name_their_bad_entries(classifier, tmp_path):
    from kzoo.models import SpanQuestionAnswerer, TokenClassifier

    with pytest.raises(ValueError, match=r"pairs\[1\] holds a lone surrogate"):
        classifier.predict((["good", "bad"], ["day", "\udfff"]), verbose=0)
    with pytest.raises(ValueError, match=r"texts and pairs differ in length: 2 vs 1"):
        classifier.predict((["good", "bad"], ["day"]), verbose=0)
    backbone = make_backbone("bert", vocabulary_size=classifier.preprocessor.tokenizer.vocabulary_size())
    tagger = TokenClassifier(backbone, num_classes=2, preprocessor=classifier.preprocessor)
    with pytest.raises(ValueError, match=r"texts\[1\]\[1\] is None, not a string\."):
        tagger.predict_labels([["Rose", "met"], ["Bob", None]])
    with pytest.raises(ValueError, match=r"texts\[0\]\[0\] is empty text"):
        tagger.predict_labels([[" ", "met"]])
    with pytest.raises(ValueError, match=r"texts\[1\] is bytes that are not UTF-8"):
        tagger.predict_labels(["Rose met Bob", b"\xff"])
    with pytest.raises(ValueError, match=r"texts\[1\] is an int \(5\), not a string or a list of words"):
        tagger.predict_labels(["Rose", 5])
    assert len(tagger.predict_labels([b"Rose met Bob", ["Rose", "\x00"]])[1]) == 2
    answerer = SpanQuestionAnswerer(backbone, preprocessor=classifier.preprocessor)
    with pytest.raises(ValueError, match=r"contexts\[0\] holds a lone surrogate"):
        answerer.predict_answers(["who ?"], ["Rose \ud83d met Bob ."])
