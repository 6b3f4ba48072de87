"""The course's published figures: REFERENCE values on the real FMA data, never measured here.

They are kept in this one place and shown in their own column of the report, beside (never in
place of) what this project measured. All are Spearman's rho on the test split.

Genre classification: the course's published genre figures are not recorded in this project,
so there are deliberately no genre rows here rather than invented ones; genre experiments are
reported without a reference.
"""

from __future__ import annotations

from dataclasses import dataclass

SOURCE = "course lab, real FMA data (patreco3), test split"


@dataclass(frozen=True)
class Reference:
    task: str  # regression | multitask | transfer
    target: str  # an affect target, or "mean" of the three
    setting: str  # what the course trained
    metric: str
    value: float


REFERENCES: tuple[Reference, ...] = (
    Reference("regression", "valence", "2D CNN, one model per target", "Spearman", 0.49),
    Reference("regression", "energy", "2D CNN, one model per target", "Spearman", 0.74),
    Reference("regression", "danceability", "2D CNN, one model per target", "Spearman", 0.57),
    Reference(
        "regression", "mean", "2D CNN, mean of the three single-target models", "Spearman", 0.60
    ),
    Reference("transfer", "energy", "2D CNN pretrained on genres, fine-tuned", "Spearman", 0.75),
    Reference("multitask", "mean", "2D CNN, one multitask model", "Spearman", 0.61),
)


def is_transfer(meta: dict, config: dict | None = None) -> bool:
    """Transfer experiments name themselves so (preset) or carry transfer/pretrained keys."""
    keys = list(meta) + list(config or {})
    return "transfer" in str(meta.get("preset", "")) or any(
        "transfer" in k or "pretrained" in k for k in keys
    )


def references_for(meta: dict, config: dict | None = None) -> list[Reference]:
    """The reference rows an experiment can be set beside (none for genre experiments)."""
    task = meta.get("task")
    if task == "multitask":
        return [r for r in REFERENCES if r.task == "multitask"]
    if task != "regression":
        return []
    target = meta.get("target")
    kind = "transfer" if is_transfer(meta, config) else "regression"
    return [r for r in REFERENCES if r.task == kind and r.target == target]
