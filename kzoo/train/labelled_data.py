"""The old name of what is now two modules: reading and splitting labelled files (`kzoo.data.labelled_files`) and
the scores and paired tests (`kzoo.evaluation`). Re-exports both; new code imports from them."""

from kzoo.data.labelled_files import (REPLACE_HINT, Row, column, label_column, parse_where, read_rows,  # noqa: F401
                                      split_rows, text_column, tweets_csv, where_is)
from kzoo.evaluation.paired import describe_paired, paired_accuracy_difference, sign_flip_p  # noqa: F401
from kzoo.evaluation.scores import classification_scores  # noqa: F401
