"""The lab report's first steps, as the course did them before any sweep: look at the data
(`explore`'s figures), then check that the course's LSTM and CNN overfit one batch
(`musictune train --overfit 1`: the check passes when the loss falls near zero)."""

from __future__ import annotations

from pathlib import Path

from musictune.reporting import explore, plots
from musictune.reporting.html import Document

# Per model: (lr, epochs), enough to drive the loss near zero on the tiny demo with room to
# spare (LSTM 0.003, CNN 0.002 at the end), and no more: the lab's smoke test pays for them.
OVERFIT = {"course_lstm": (3e-3, 30), "course_cnn": (1e-3, 20)}
OVERFIT_BATCH = 8  # clips in the one batch
NEAR_ZERO = 0.05  # the final training loss that passes the check


def exploration(data_dir: str | None, folder: Path, doc: Document) -> None:
    """The exploration figures in `folder`, and their section in `doc`."""
    clips, before, after = explore.figures(explore.data_views(data_dir), folder, None, "explore-")
    doc.heading("Lab: data exploration")
    shapes = [
        f"{label}: full {full_clip.shape}, beat-synced "
        + ("none" if beat_clip is None else f"{beat_clip.shape}")
        for label, full_clip, beat_clip in clips
    ]
    doc.text(
        "Two genres' clips (train split), mel (128 bins) and chroma (12), as (bins, frames): "
        + "; ".join(shapes)
        + "."
    )
    doc.image("explore-clips.png", "mel and chroma of two genres, full and beat-synced")
    kept = [c for c in after["train"] if c != "(dropped)"]
    doc.text(
        f"Clips per genre: {len(before['train'])} genres before the mapping, {len(kept)} "
        f"classes after it ({after['train'].get('(dropped)', 0)} train clips dropped)."
    )
    doc.image("explore-classes.png", "clips per genre before and per class after the mapping")


def overfit_losses(data_dir: str | None, model: str) -> list[float]:
    """Training loss per epoch of `musictune train --overfit 1` (one fixed batch)."""
    from musictune.data.dataset import load_task
    from musictune.models import get_family
    from musictune.training.loop import TrainConfig, build_model, fit

    data = load_task("genre", data_dir, "mel", True)
    family = get_family(model)
    net = build_model(data, family.name, seed=0, **family.kwargs({**family.defaults}))
    lr, epochs = OVERFIT[model]
    config = TrainConfig(
        lr=lr, batch_size=OVERFIT_BATCH, max_epochs=epochs, patience=0,
        overfit_batches=1, device="cpu",
    )  # fmt: skip
    losses: list[float] = []
    fit(net, data, config, on_epoch=lambda metrics, *_: losses.append(metrics["train_loss"]))
    return losses


def overfit(data_dir: str | None, folder: Path, doc: Document) -> dict[str, bool]:
    """Both models' overfit curves in one figure and their section; whether each passed."""
    import matplotlib.pyplot as plt

    curves = {m: overfit_losses(data_dir, m) for m in OVERFIT}
    passed = {m: bool(c) and c[-1] < NEAR_ZERO for m, c in curves.items()}
    fig, ax = plt.subplots(figsize=(7, 3.8), layout="constrained")
    for m, c in curves.items():
        ax.plot(range(1, len(c) + 1), c, label=m)
    ax.set(xlabel="epoch", ylabel="training loss", yscale="log", title="overfit one batch")
    ax.legend()
    plots.save(fig, folder / "overfit.png")
    doc.heading("Lab: overfit one batch")
    doc.text(
        f"`musictune train --overfit 1`: one fixed batch of {OVERFIT_BATCH} beat-synced mel "
        "genre clips, "
        + ", ".join(f"{m} lr {lr:g} for {n} epochs" for m, (lr, n) in OVERFIT.items())
        + f". Passes when the final training loss is below {NEAR_ZERO}."
    )
    for m, c in curves.items():
        verdict = "passed" if passed[m] else "FAILED: the loss did not fall near zero"
        doc.text(f"{m}: training loss {c[0]:.3f} -> {c[-1]:.4f}: {verdict}")
    doc.image("overfit.png", "training loss on one fixed batch")
    return passed


def lab_checks_section(data_dir: str | None, folder: Path) -> dict[str, bool]:
    """Add the exploration and overfit sections to the report's index.md and index.html."""
    doc = Document("lab checks")
    exploration(data_dir, folder, doc)
    passed = overfit(data_dir, folder, doc)
    markdown = doc.to_markdown().split("\n", 2)[2]  # without the stand-alone title
    index = folder / "index.md"
    index.write_text(index.read_text() + "\n" + markdown)
    page = folder / "index.html"
    added = doc.to_html(folder).split("\n<body>\n", 1)[1].split("\n", 1)[1]  # no <h1>
    head, _, _ = page.read_text(encoding="utf-8").rpartition("</body></html>")
    page.write_text(head.rstrip("\n") + "\n" + added, encoding="utf-8")
    return passed
