"""Is one model better than another on the same test examples? A paired bootstrap and exact sign-flip test."""

import math

import numpy as np


def paired_accuracy_difference(correct_a, correct_b, rounds=10000, seed=0):
    """How sure is "A beats B" when both were scored on the same examples? `correct_*`: per-example 0/1, or
    (runs, examples) for several training runs of each (run i of A paired with run i of B, e.g. training seeds).

    Returns the accuracy difference A − B (of the mean over runs), its 95% interval from a paired bootstrap over
    the examples (an example keeps all its runs), each run's own difference (`run_differences`, several runs
    only), the counts of (run, example) pairs only A or only B gets right,
    and an exact two-sided p-value with the examples as the units, as the bootstrap has: for one run the exact
    McNemar test (`mcnemar_p`), for several its generalisation (`sign_flip_p`): each example's summed gain
    keeps or flips its sign at random. Identical runs therefore add no certainty. Both take the test set as the
    noise; the spread between training runs shows only in the runs' own differences. Written here because it
    is a few lines and kzoo does not depend on scipy.
    """
    a, b = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    if a.shape != b.shape or a.ndim not in (1, 2) or not a.size:
        raise ValueError(f"correct_a and correct_b must be equal-length, non-empty 1-D (or 2-D: runs × examples); "
                         f"got {a.shape}, {b.shape}.")
    gains = (a.astype("int64") - b).reshape(-1, a.shape[-1]).sum(axis=0)  # per example, summed over the runs
    runs = a.size // gains.size
    gain = gains / runs
    rng = np.random.default_rng(seed)
    means = np.concatenate([gain[rng.integers(0, gain.size, (min(500, rounds - start), gain.size))].mean(axis=1)
                            for start in range(0, rounds, 500)])  # 500 resamples at a time bounds the memory
    low, high = np.percentile(means, [2.5, 97.5])
    result = {"difference": float(gain.mean()), "interval_95": [float(low), float(high)],
              "only_a_right": int(np.sum(a & ~b)), "only_b_right": int(np.sum(~a & b)),
              ("mcnemar_p" if runs == 1 else "sign_flip_p"): sign_flip_p(gains)}
    if runs > 1:  # the spread between training runs, for a test with the runs as the units
        result["run_differences"] = (a.mean(axis=-1) - b.mean(axis=-1)).tolist()
    return result


def sign_flip_p(gains):
    """Exact two-sided p-value of Σ gains (integers, one per example) when each example's sign is a fair coin:
    P(|Σ ±|g_e|| ≥ |Σ g_e|). With gains in {−1, 0, 1} this is the exact McNemar test. The null distribution
    is a convolution of one binomial per distinct |g| (few: at most the number of runs), so it is exact and fast.
    """
    magnitudes = np.abs(np.asarray(gains, "int64"))
    magnitudes = magnitudes[magnitudes > 0]
    pmf = np.ones(1)  # of X = Σ over examples with a positive sign of |g_e|
    for k in np.unique(magnitudes):
        n = int(np.sum(magnitudes == k))
        log_norm = math.lgamma(n + 1) - n * math.log(2)
        spread = np.zeros(int(k) * n + 1)
        spread[::int(k)] = [math.exp(log_norm - math.lgamma(j + 1) - math.lgamma(n - j + 1))
                            for j in range(n + 1)]  # Binomial(n, 1/2) at multiples of k
        pmf = np.convolve(pmf, spread)
    total = int(magnitudes.sum())
    observed = abs(int(np.sum(gains)))
    return min(1.0, float(pmf[np.abs(2 * np.arange(total + 1) - total) >= observed].sum()))  # Σ = 2X − total


def describe_paired(paired, what="examples"):
    """One line for a `paired_accuracy_difference` result; `what` names the scored items."""
    low, high = paired["interval_95"]
    test, p = ("McNemar p", paired["mcnemar_p"]) if "mcnemar_p" in paired else ("sign-flip p", paired["sign_flip_p"])
    runs = paired.get("run_differences")
    per_run = f"; per run {', '.join(f'{d:+.4f}' for d in runs)}" if runs else ""
    return (f"{paired['difference']:+.4f} accuracy, 95% interval [{low:+.4f}, {high:+.4f}] (paired bootstrap), "
            f"{test} = {p:.3f} ({paired['only_a_right']} vs {paired['only_b_right']} {what} "
            f"only one of them gets right{per_run})")
