"""The course lab's whole plan, as named sweeps in one storage folder, then one report.

    musictune lab --budget quick                 # = python sweeps/lab.py --budget quick
    musictune lab --budget full --data-dir ~/data/patreco3
    musictune lab --recipe tuned                 # today's searches on the same splits
    musictune lab --experiments lab-genre-lstm-mel lab-multitask     # part of the plan
    musictune lab --address auto --concurrent-experiments 4     # 4 sweeps at once on a cluster

Each experiment is a preset with the course's own models (`course_lstm`, `course_cnn`), batch 64
and the best epoch by validation loss. `--recipe course` (the default) uses the course's own
settings: random search over lr 10^U(-4.4,-2), dropout U(0.1,0.8) and LSTM layers {1,2} for the
genre LSTMs only; one model at lr 1e-4 (no dropout) for every CNN, the transfer and multitask;
the affect LSTMs on the course's best genre LSTM config; affect on an 80/20 split of the
multitask set for 30 epochs. `--recipe tuned` searches every experiment, on the same splits. A
finished experiment is skipped and a cut one resumed, so running the lab again finishes what is
missing. With --concurrent-experiments N, N experiments share the cluster at a time (each sweep
in a Ray task of its own); the transfer experiments wait for the genre CNN they start from.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import partial
from typing import ClassVar

from musictune.errors import UserError
from musictune.options import (
    first_problem,
    non_negative_float,
    non_negative_int,
    option,
    positive_float,
    positive_int,
)
from musictune.tuning.mlflow_tracking import require_mlflow
from musictune.tuning.options import SweepOptions
from musictune.tuning.storage import (
    experiment_path,
    json_text,
    read_json_file,
    read_sweep_meta,
    storage_root,
    write_experiment_file,
)

# The course's settings as sweep options: the fields `musictune sweep` fills from its flags,
# fixed config keys as the "KEY=VALUE" texts its --set takes (layers add theirs up).
COURSE = {"select_by": "loss", "scheduler": "fifo", "sets": ["batch_size=64"]}
RECIPES = ("course", "tuned")
# The course trained one model at lr 1e-4 where it searched nothing; its CNN had no dropout.
COURSE_CNN = {"sets": ["lr=0.0001", "dropout=0.0"]}
# The affect LSTMs reused the best genre LSTM's config, as the course published it.
COURSE_BEST_LSTM = {"sets": ["lr=9.1e-05", "dropout=0.196", "num_layers=2"]}
AFFECT_TEST_FRACTION = 0.2  # the course's 80/20 train/evaluation split of the multitask set
COURSE_AFFECT_EPOCHS = 30  # the course evaluated its affect models after 30 epochs
TRANSFER_SOURCE = "lab-genre-cnn-mel-beat"  # the genre CNN the transfer experiments start from
LAB_FILE = "lab.json"  # the recipe, budget and data a storage folder's lab experiments ran with


def layered(*layers: dict) -> dict:
    """Sweep option values, later layers over earlier ones; their `sets` add up, in order, as
    repeated --set flags do."""
    merged: dict = {}
    for layer in layers:
        for key, value in layer.items():
            merged[key] = [*merged.get(key, []), *value] if key == "sets" else value
    return merged


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
    settings: dict = field(default_factory=dict)  # the course's settings: SweepOptions fields
    single: bool = False  # one model: every searched key fixed, one trial
    affect: bool = False  # on the course's 80/20 split of the multitask set
    epochs: int | None = None  # the course's epochs (a smaller budget's are fewer)

    @property
    def after(self) -> str | None:
        """The experiment this one starts from (a transfer's genre sweep): it must finish first."""
        return self.settings.get("from_sweep")

    def options(self, **values) -> SweepOptions:
        """This step's sweep options: the preset's defaults, as `musictune sweep PRESET` has
        them, with the course's settings and then `values` over them."""
        return replace(SweepOptions(preset=self.preset), name=self.name, **self.settings, **values)

    def budget_settings(self, budget: Budget) -> dict:
        """samples, max_epochs (and the affect split) of this step under a budget."""
        epochs = min(self.epochs or budget.max_epochs, budget.max_epochs)
        values = {"samples": 1 if self.single else budget.samples, "max_epochs": epochs}
        return values | ({"test_fraction": AFFECT_TEST_FRACTION} if self.affect else {})


def lab_plan(recipe: str = "course") -> list[LabStep]:
    """The course's experiments, in an order where the transfer's source comes first.

    recipe "course": the course's settings per experiment; "tuned": today's searches (genre
    CNN at lr 1e-4, everything else searched), on the same splits."""
    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}: choose one of {', '.join(RECIPES)}")
    course = recipe == "course"
    lstm = layered({"model": "course_lstm"}, COURSE)
    cnn = layered({"model": "course_cnn"}, COURSE)
    fixed_cnn = layered(cnn, COURSE_CNN) if course else cnn
    genre_cnn = fixed_cnn if course else layered(cnn, {"sets": ["lr=0.0001"]})
    affect = {"patience": 0} if course else {}  # the course trained all 30 epochs
    affect_lstm = layered(lstm, COURSE_BEST_LSTM, affect) if course else lstm
    steps = [
        LabStep("lab-genre-lstm-mel", "lstm_spectrogram", lstm),
        LabStep("lab-genre-lstm-mel-beat", "lstm_spectrogram_beat", lstm),
        LabStep("lab-genre-lstm-chroma", "lstm_chroma", lstm),
        LabStep("lab-genre-lstm-fused", "lstm_fused", lstm),
        LabStep("lab-genre-cnn-mel", "cnn_spectrogram", genre_cnn, single=course),
        LabStep(TRANSFER_SOURCE, "cnn_spectrogram_beat", genre_cnn, single=course),
    ]
    one = {"single": course, "affect": True, "epochs": COURSE_AFFECT_EPOCHS if course else None}
    for target in ("valence", "energy", "danceability"):
        lstm_settings = layered(affect_lstm, {"target": target})
        cnn_settings = layered(fixed_cnn, affect, {"target": target})
        steps += [
            LabStep(f"lab-{target}-lstm", "lstm_regression", lstm_settings, **one),
            LabStep(f"lab-{target}-cnn", "cnn_regression", cnn_settings, **one),
        ]
    source = layered({"from_sweep": TRANSFER_SOURCE}, COURSE, affect, COURSE_CNN if course else {})
    finetuned, frozen = {"sets": ["freeze_backbone=false"]}, {"sets": ["freeze_backbone=true"]}
    steps += [
        LabStep("lab-transfer-finetuned", "transfer_energy", layered(source, finetuned), **one),
        LabStep("lab-transfer-frozen", "transfer_energy", layered(source, frozen), **one),
        LabStep("lab-multitask", "multitask", layered(fixed_cnn, affect), **one),
    ]
    return steps


@dataclass
class LabOptions:
    budget: str = option(
        "quick", "smoke (CI), quick, or full (the course's budgets)", choices=list(BUDGETS)
    )
    recipe: str = option(
        "course",
        "course: the course's settings per experiment (one model at lr 1e-4 where it fixed "
        "them); tuned: today's searches, on the same splits",
        choices=list(RECIPES),
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
    mlflow: str | None = option(
        None,
        "log every sweep's trials to MLflow (as musictune sweep --mlflow; default: "
        "<storage>/mlflow, one experiment per sweep)",
        nargs="?",
        const="",
        metavar="URI",
    )
    experiments: list[str] = option(
        [],
        "run only these experiments of the plan (default: every one); the report covers "
        "every finished one",
        nargs="+",
        metavar="NAME",
    )
    concurrent_experiments: int = option(
        1,
        "experiments run at once on the cluster (1: one after another); a transfer experiment "
        f"still waits for {TRANSFER_SOURCE}",
        type=positive_int,
        metavar="N",
    )

    OPTION_GROUPS: ClassVar[dict[str, tuple[str, ...]]] = {
        "the plan": ("budget", "recipe", "experiments", "seed", "concurrent_experiments"),
        "every sweep": ("crop", "folds", "amp"),
        "resources and cluster": ("cpus_per_trial", "gpus_per_trial", "max_concurrent", "address"),
        "data and results": ("data_dir", "storage", "out", "mlflow"),
    }

    def validate(self) -> None:
        n = self.concurrent_experiments
        names = [step.name for step in lab_plan(self.recipe)]
        unknown = [name for name in self.experiments if name not in names]
        first_problem([
            (n < 1, f"--concurrent-experiments must be at least 1, got {n}"),
            (bool(unknown), f"--experiments: no experiment {', '.join(unknown)} in the lab's "
             f"plan: choose from {', '.join(names)}"),
        ])  # fmt: skip
        if self.mlflow is not None:
            require_mlflow()  # before any sweep starts


# Lab options that every sweep takes as they are: the same names as SweepOptions fields.
PASSED_ON = (
    "seed", "cpus_per_trial", "gpus_per_trial", "max_concurrent", "address", "amp", "crop",
    "folds", "mlflow",  # mlflow "": the default store under the storage folder
)  # fmt: skip


def step_options(
    step: LabStep, options: LabOptions, budget: Budget, root: str, data: str
) -> SweepOptions:
    """The sweep options of one step under a budget, with the lab's resources, data and storage;
    `resume` when a cut run of it is there."""
    return step.options(
        **step.budget_settings(budget),
        **{name: getattr(options, name) for name in PASSED_ON},
        storage=root,
        data_dir=data,
        baseline_train=False,
        resume=bool(read_sweep_meta(experiment_path(root, step.name))),
    )


def claim_storage(root: str, options: LabOptions, data: str) -> None:
    """Record which lab this storage folder holds, or refuse another one there: its finished
    experiments carry the same names, so they would be kept as if they were this lab's."""
    plan = {"recipe": options.recipe, "budget": options.budget, "data_dir": data}
    held = read_json_file(root, LAB_FILE)
    if held and held != plan:
        differ = ", ".join(f"{k} {held.get(k)}" for k in plan if held.get(k) != plan[k])
        raise UserError(
            f"{root} holds a lab run with {differ} ({LAB_FILE}): pass another --storage for "
            f"--recipe {options.recipe} --budget {options.budget} on this data, or the same "
            "options to finish that lab"
        )
    if not held:
        write_experiment_file(root, LAB_FILE, json_text(plan))


def finished(root: str, name: str) -> bool:
    return read_sweep_meta(experiment_path(root, name)).get("status") == "finished"


def run_steps(options: LabOptions) -> list[str]:
    """Run every step of the plan not finished yet; return the names of those it ran.

    One after another, or with --concurrent-experiments N, N at a time on the cluster (each
    sweep in a Ray task of its own; a step waits for the experiment it starts from)."""
    from musictune.data.files import resolve_data_dir
    from musictune.tuning.concurrent import Job, run_concurrently
    from musictune.tuning.runner import run_sweep

    budget = BUDGETS[options.budget]
    root = storage_root(options.storage)
    data = str(resolve_data_dir(options.data_dir, budget.demo))
    steps, todo = lab_plan(options.recipe), []
    chosen = set(options.experiments or [s.name for s in steps])
    for step in steps:
        if (
            step.name in chosen
            and step.after not in {None, *chosen}
            and not finished(root, step.after)
        ):
            raise UserError(
                f"--experiments: {step.name} starts from {step.after}, which has not finished "
                f"in {root}: add {step.after} to --experiments"
            )
    claim_storage(root, options, data)
    for i, step in enumerate(steps, 1):
        if step.name not in chosen:
            continue
        if finished(root, step.name):
            print(f"lab {i}/{len(steps)}: {step.name} finished earlier: kept")
            continue
        label = f"lab {i}/{len(steps)}: {step.name}"
        # Built when the step starts, so that a cut run of it resumes.
        options_of = partial(step_options, step, options, budget, root, data)
        todo.append(Job(step.name, label, options_of, after=step.after))
    if options.concurrent_experiments > 1:
        run_concurrently(todo, options.concurrent_experiments, options.address)
    else:
        for job in todo:
            print(f"\n{job.label}", flush=True)
            run_sweep(job.options())
    return [job.name for job in todo]


def run_lab(options: LabOptions) -> None:
    """Every step not yet finished, then one report over them all."""
    from musictune.commands.lab_checks import lab_checks_section
    from musictune.data.files import resolve_data_dir
    from musictune.reporting.build import build_report
    from musictune.reporting.options import ReportOptions

    run_steps(options)
    budget = BUDGETS[options.budget]
    root = storage_root(options.storage)
    report = ReportOptions(
        storage=root,
        sweeps=[s.name for s in lab_plan(options.recipe) if finished(root, s.name)],
        out=options.out,
        rerun=budget.seeds > 0,
        seeds=max(1, budget.seeds),
        rerun_max_epochs=budget.rerun_max_epochs,
        cpus_per_trial=options.cpus_per_trial,
        gpus_per_trial=options.gpus_per_trial,
        address=options.address,
    )
    folder = build_report(report)
    # The course's first steps: the data's exploration figures, then overfit one batch.
    lab_checks_section(str(resolve_data_dir(options.data_dir, budget.demo)), folder)
