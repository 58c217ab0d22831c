"""A PNG of a Keras `CSVLogger` file: losses on the left, accuracies on the right, train and held-out."""

import csv

from kzoo.atomic import atomic_file


def read_metrics(csv_path):
    """Rows of a CSVLogger file as dicts of floats, one per epoch (the last row written for an epoch wins),
    without the values Keras writes as "NA" (e.g. held-out metrics of a run that holds nothing out)."""
    rows = {}
    with open(csv_path) as f:
        for row in csv.DictReader(f):
            rows[int(row["epoch"])] = {k: float(v) for k, v in row.items() if v not in ("", None, "NA")}
    return [rows[epoch] for epoch in sorted(rows)]


def plot_metrics(csv_path, png_path, steps_per_epoch, title="kzoo"):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_metrics(csv_path)
    steps = [(row["epoch"] + 1) * steps_per_epoch for row in rows]
    figure, (losses, accuracies) = plt.subplots(1, 2, figsize=(11, 4))
    for key in sorted(rows[0]) if rows else []:
        axis = accuracies if key.endswith("accuracy") else losses if key.endswith("loss") else None
        if axis is not None:
            axis.plot(steps, [row.get(key) for row in rows], label=key,
                      linestyle="--" if key.startswith("val_") else "-")
    for axis, label in ((losses, "loss"), (accuracies, "accuracy")):
        axis.set_xlabel("step")
        axis.set_ylabel(label)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    figure.suptitle(title)
    figure.tight_layout()
    with atomic_file(png_path, mode="wb") as f:
        figure.savefig(f, dpi=100, format="png")
    plt.close(figure)
