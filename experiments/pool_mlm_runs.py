"""Pool training runs of experiments/distill_mlm.py: distilled vs alone over several seeds, on the same tokens.

Each run folder holds `every_token_correct.npz` and `masked_token_correct.npz` (0/1 per held-out token, in the
same order for every run with the same corpus, teacher and sequence length: the held-out batches do not depend on
`--seed`). Run i's distilled student is paired with run i's student alone; the result is the difference of their
mean accuracies, a bootstrap over tokens (each keeping all its runs) and an exact sign-flip test with the tokens
as the units (`kzoo.evaluation.paired_accuracy_difference`). The one-draw masked tokens are also split
by what the models were shown there ([MASK], a random id, the token itself), where a run saved it.

    python experiments/pool_mlm_runs.py runs/mlm_tf_seed0 runs/mlm_tf_seed1 --out runs/mlm_tf_pooled.json
"""

import argparse
import json
import os

import numpy as np

from kzoo.atomic import atomic_file
from kzoo.evaluation import describe_paired, paired_accuracy_difference
from kzoo.evaluation.mlm_scoring import TARGET_KINDS


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="output folders of experiments/distill_mlm.py")
    parser.add_argument("--out", help="write the results here as JSON")
    args = parser.parse_args()
    results = {"runs": args.runs}
    for scoring in ("every_token", "masked_token"):
        scores = [np.load(os.path.join(run, f"{scoring}_correct.npz")) for run in args.runs]
        sizes = {run: s["alone"].size for run, s in zip(args.runs, scores)}
        if len(set(sizes.values())) != 1:
            raise ValueError(f"{scoring}: the runs scored different held-out tokens ({sizes}); pool only runs "
                             "with the same corpus, teacher and sequence length.")
        distilled, alone = (np.stack([s[key] for s in scores]) for key in ("distilled", "alone"))
        paired = paired_accuracy_difference(distilled, alone)
        results[scoring] = {"tokens": int(alone.shape[1]), "distilled": distilled.mean(axis=1).tolist(),
                            "alone": alone.mean(axis=1).tolist(), "distilled_vs_alone": paired}
        print(f"{scoring} ({alone.shape[1]:,} tokens, {len(args.runs)} runs): distilled "
              f"{distilled.mean():.4f}, alone {alone.mean():.4f}; {describe_paired(paired, 'token scores')}")
        kinds = [s["kind"] for s in scores if "kind" in s]  # saved with the one-draw scores only
        if any(not np.array_equal(k, kinds[0]) for k in kinds):
            raise ValueError("The runs' masked tokens were shown differently ([MASK] / random / kept): they did not "
                             "score the same held-out batches.")
        if kinds:
            results["by_target_kind"] = {}
            for index, kind in enumerate(TARGET_KINDS):
                at = kinds[0] == index
                paired = paired_accuracy_difference(distilled[:, at], alone[:, at])
                results["by_target_kind"][kind] = {"tokens": int(at.sum()), "distilled": float(distilled[:, at].mean()),
                                                   "alone": float(alone[:, at].mean()), "distilled_vs_alone": paired}
                print(f"  shown {kind} ({at.sum():,} tokens): distilled {distilled[:, at].mean():.4f}, alone "
                      f"{alone[:, at].mean():.4f}; {describe_paired(paired, 'token scores')}")
    if args.out:
        with atomic_file(args.out, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
