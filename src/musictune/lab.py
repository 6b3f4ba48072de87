"""The course lab's whole plan, as named sweeps in one storage folder, then one report.

    musictune lab --budget quick                 # = python sweeps/lab.py --budget quick
    musictune lab --budget full --data-dir ~/data/patreco3

Each experiment is a preset with the course's own models (`course_lstm`, `course_cnn`) and
settings (batch 64; genre CNN at lr 1e-4; random search over lr 10^U(-4.4,-2), dropout
U(0.1,0.8) and LSTM layers {1,2}; the best epoch by validation loss). A finished experiment is
skipped and a cut one resumed, so running the lab again finishes what is missing.
"""

from __future__ import annotations

from dataclasses import dataclass

from musictune.options import (
    non_negative_float,
    non_negative_int,
    option,
    positive_float,
    positive_int,
)
from musictune.tuning.storage import experiment_path, read_sweep_meta, storage_root

COURSE = ("--select-by", "loss", "--set", "batch_size=64", "--scheduler", "fifo")


@dataclass(frozen=True)
class Budget:
    samples: int  # random-search trials per experiment
    max_epochs: int
    seeds: int  # report reruns of the best config (0: test the sweep checkpoints)
    rerun_max_epochs: int
    demo: str  # the demo set used when no data is given


BUDGETS = {
    "smoke": Budget(samples=1, max_epochs=1, seeds=0, rerun_max_epochs=1, demo="tiny"),
    "quick": Budget(samples=3, max_epochs=5, seeds=1, rerun_max_epochs=20, demo="tiny"),
    # The course's: its search's epoch budget, then 1000-epoch reruns with patience 10.
    "full": Budget(samples=20, max_epochs=50, seeds=3, rerun_max_epochs=1000, demo="small"),
}


@dataclass(frozen=True)
class LabStep:
    name: str  # the experiment's name in the storage folder
    preset: str
    argv: tuple[str, ...] = ()  # the course's settings for it, as sweep options


def lab_plan() -> list[LabStep]:
    """The course's experiments, in an order where the transfer's source comes first."""
    lstm = ("--model", "course_lstm", *COURSE)
    cnn = ("--model", "course_cnn", *COURSE)
    genre_cnn = (*cnn, "--set", "lr=0.0001")
    steps = [
        LabStep("lab-genre-lstm-mel", "lstm_spectrogram", lstm),
        LabStep("lab-genre-lstm-mel-beat", "lstm_spectrogram_beat", lstm),
        LabStep("lab-genre-lstm-chroma", "lstm_chroma", lstm),
        LabStep("lab-genre-lstm-fused", "lstm_fused", lstm),
        LabStep("lab-genre-cnn-mel", "cnn_spectrogram", genre_cnn),
        LabStep("lab-genre-cnn-mel-beat", "cnn_spectrogram_beat", genre_cnn),
    ]
    for target in ("valence", "energy", "danceability"):
        steps += [
            LabStep(f"lab-{target}-lstm", "lstm_regression", (*lstm, "--target", target)),
            LabStep(f"lab-{target}-cnn", "cnn_regression", (*cnn, "--target", target)),
        ]
    source = ("--from-sweep", "lab-genre-cnn-mel-beat", *COURSE)
    steps += [
        LabStep(
            "lab-transfer-finetuned", "transfer_energy", (*source, "--set", "freeze_backbone=false")
        ),
        LabStep(
            "lab-transfer-frozen", "transfer_energy", (*source, "--set", "freeze_backbone=true")
        ),
        LabStep("lab-multitask", "multitask", cnn),
    ]
    return steps


@dataclass
class LabOptions:
    budget: str = option(
        "quick", "smoke (CI), quick, or full (the course's budgets)", choices=list(BUDGETS)
    )
    data_dir: str | None = option(
        None, "patreco3-layout data (default: $MUSICTUNE_DATA, else demo data)"
    )
    storage: str | None = option(None, "results folder (default ./results)")
    out: str | None = option(None, "report parent folder (default: reports/ beside the storage)")
    cpus_per_trial: float = option(
        1.0, "also the torch threads of a trial (as musictune sweep)", type=positive_float
    )
    gpus_per_trial: float = option(
        0.0, "GPUs of a trial; fractions pack trials on one GPU (as musictune sweep)", type=float
    )
    max_concurrent: int | None = option(
        None, "trials at once (default: as many as the cluster holds)", type=positive_int
    )
    address: str | None = option(
        None, "existing Ray cluster, e.g. after ray up (default: $RAY_ADDRESS, else local)"
    )
    amp: bool = option(False, "mixed precision on CUDA (as musictune sweep --amp)")
    seed: int = option(0, "search and training seed", type=int)
    crop: float = option(
        0.0,
        "every sweep trains on random crops of this many seconds and scores clips on their "
        "windows (as musictune sweep --crop); 0: whole clips",
        type=non_negative_float,
        metavar="SECONDS",
    )
    folds: int = option(
        0,
        "every sweep selects by K-fold cross-validation (as musictune sweep --folds); "
        "0: one train/validation split",
        type=non_negative_int,
        metavar="K",
    )


def step_argv(step: LabStep, options: LabOptions, budget: Budget, root: str, data: str) -> list:
    """The sweep command line of one step; `--resume` when a cut run of it is there."""
    argv = [
        step.preset, *step.argv, "--name", step.name, "--storage", root, "--data-dir", data,
        "--samples", str(budget.samples), "--max-epochs", str(budget.max_epochs),
        "--seed", str(options.seed), "--cpus-per-trial", f"{options.cpus_per_trial:g}",
        "--no-baseline-train",
    ]  # fmt: skip
    argv += ["--gpus-per-trial", f"{options.gpus_per_trial:g}"] if options.gpus_per_trial else []
    argv += ["--max-concurrent", str(options.max_concurrent)] if options.max_concurrent else []
    argv += ["--address", options.address] if options.address else []
    argv += ["--amp"] if options.amp else []
    argv += ["--crop", f"{options.crop:g}"] if options.crop else []
    argv += ["--folds", str(options.folds)] if options.folds else []
    if read_sweep_meta(experiment_path(root, step.name)):
        argv.append("--resume")
    return argv


def run_steps(options: LabOptions) -> list[str]:
    """Run every step of the plan not finished yet; return the names of those it ran."""
    from musictune.cli import build_parser, sweep_options_from_args
    from musictune.data_files import resolve_data_dir
    from musictune.tuning.runner import run_sweep

    budget = BUDGETS[options.budget]
    root = storage_root(options.storage)
    data = str(resolve_data_dir(options.data_dir, budget.demo))
    steps, ran = lab_plan(), []
    for i, step in enumerate(steps, 1):
        status = read_sweep_meta(experiment_path(root, step.name)).get("status")
        if status == "finished":
            print(f"lab {i}/{len(steps)}: {step.name} finished earlier: kept")
            continue
        print(f"\nlab {i}/{len(steps)}: {step.name}", flush=True)
        argv = ["sweep", *step_argv(step, options, budget, root, data)]
        run_sweep(sweep_options_from_args(build_parser().parse_args(argv)))
        ran.append(step.name)
    return ran


def run_lab(options: LabOptions) -> None:
    """Every step not yet finished, then one report over them all."""
    from musictune.reporting.build import build_report
    from musictune.reporting.options import ReportOptions

    run_steps(options)
    budget = BUDGETS[options.budget]
    report = ReportOptions(
        storage=storage_root(options.storage),
        sweeps=[s.name for s in lab_plan()],
        out=options.out,
        rerun=budget.seeds > 0,
        seeds=max(1, budget.seeds),
        rerun_max_epochs=budget.rerun_max_epochs,
        cpus_per_trial=options.cpus_per_trial,
        gpus_per_trial=options.gpus_per_trial,
        address=options.address,
    )
    build_report(report)
