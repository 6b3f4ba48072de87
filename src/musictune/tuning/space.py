"""Search spaces: the course's ranges for lr and dropout, plus each family's own knobs."""

from __future__ import annotations

from musictune.errors import UserError
from musictune.models import get_family

LR_RANGE = (10**-4.4, 1e-2)  # the course: lr = 10 ** U(-4.4, -2)
DROPOUT_RANGE = (0.1, 0.8)  # the course: dropout ~ U(0.1, 0.8)


def search_space(
    model: str,
    lr_range: tuple[float, float] = LR_RANGE,
    dropout_range: tuple[float, float] = DROPOUT_RANGE,
) -> dict:
    """lr and dropout, then the knobs the family declares (`Knob.sweep`; the others keep their
    defaults). An unknown family is an error naming the known ones, never a partial space."""
    from ray import tune

    space = {
        "lr": tune.loguniform(*lr_range),
        "dropout": tune.uniform(*dropout_range),
    }
    for knob in get_family(model).knobs:
        if knob.sweep is not None:
            space[knob.name] = tune.choice(list(knob.sweep))
    return space


# Multitask loss weights: relative, so the sweep scales them to average 1 (see affect.py).
LOSS_WEIGHT_RANGE = (0.25, 4.0)


def loss_weight_space(
    targets: tuple[str, ...], weights: tuple[float, ...] | None = None, tuned: bool = False
) -> dict:
    """`loss_weight_<target>` per target: fixed (default equal) or log-uniform when tuned."""
    from ray import tune

    if tuned:
        return {f"loss_weight_{t}": tune.loguniform(*LOSS_WEIGHT_RANGE) for t in targets}
    weights = weights or (1.0,) * len(targets)
    return {f"loss_weight_{t}": float(w) for t, w in zip(targets, weights)}


def transfer_space() -> dict:
    """Transfer tunes whether the genre backbone is frozen; its conv blocks are the source's."""
    from ray import tune

    return {"freeze_backbone": tune.choice([True, False])}


# --------------------------------------------------------------------------- the user's own

# Ray Tune's names; imported where a space is built, so that `musictune train` needs no Ray.
DISTRIBUTIONS = (
    "loguniform",
    "uniform",
    "randint",  # [low, high): high excluded, as in Ray and numpy
    "choice",
)
TRAINING_KEYS = {"lr": 1e-3, "dropout": 0.2, "batch_size": 32, "weight_decay": 0.0, "crop": 0.0}


def parse_value(text: str):
    """A --set value as YAML reads it: 128 -> int, 1e-3 -> float, false -> bool, else text."""
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def domain(key: str, spec, where: str):
    """A fixed value, or one-key mapping `{loguniform|uniform|randint: [low, high]}` or
    `{choice: [a, b, ...]}`, as a Tune domain; anything else is refused naming the forms."""
    if not isinstance(spec, dict):
        return spec
    forms = ", ".join(DISTRIBUTIONS)
    if len(spec) != 1 or next(iter(spec)) not in DISTRIBUTIONS:
        raise UserError(
            f"{where}: {key}: {spec!r} is not a distribution: write a value, or one of "
            f"{forms} with its arguments, e.g. {key}: {{loguniform: [0.0001, 0.01]}}"
        )
    ((kind, args),) = spec.items()
    bounds = kind != "choice"
    ok = isinstance(args, list) and (
        (len(args) == 2 and all(isinstance(a, (int, float)) for a in args) and args[0] < args[1])
        if bounds
        else len(args) >= 1
    )
    if ok and kind == "loguniform":
        ok = args[0] > 0
    if not ok:
        shape = "[low, high] with 0 < low < high" if kind == "loguniform" else "[low, high]"
        raise UserError(
            f"{where}: {key}: {kind} takes "
            + (f"{shape}, low below high" if bounds else "a list of values")
            + f", got {args!r}"
        )
    from ray import tune

    return getattr(tune, kind)(*args) if bounds else tune.choice(args)


def describe(value):
    """A space entry as plain data for sweep.json and the report (the inverse of `domain`)."""
    from ray.tune.search import sample

    if isinstance(value, sample.Categorical):
        return {"choice": list(value.categories)}
    if isinstance(value, (sample.Float, sample.Integer)):
        sampler = type(value.get_sampler()).__name__.lower()
        kind = (
            "randint"
            if isinstance(value, sample.Integer)
            else ("loguniform" if "log" in sampler else "uniform")
        )
        return {kind: [value.lower, value.upper]}
    return value


def describe_space(space: dict) -> dict:
    return {k: describe(v) for k, v in space.items()}


def largest(value) -> float:
    """The largest value a space entry can take: a fixed value, a choice, or a range's top."""
    described = describe(value)
    if not isinstance(described, dict):
        return float(described or 0)
    values = next(iter(described.values()))
    return float(max(v or 0 for v in values))


def read_space_file(path: str) -> dict:
    import yaml

    try:
        loaded = yaml.safe_load(open(path).read())
    except OSError as exc:
        raise UserError(f"--space {path}: {exc.strerror}: pass a readable YAML file") from None
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0]
        raise UserError(f"--space {path} is not valid YAML ({first}): fix the file") from None
    if not isinstance(loaded, dict):
        raise UserError(f"--space {path} must map keys to values or distributions, e.g. lr: 0.001")
    return loaded


def check_type(key: str, value, like, where: str) -> None:
    """A fixed value of the kind the key's default has (an int for an int, a number for a float,
    true/false for a flag), so a typo fails here and not in every trial."""
    if like is None or value is None:
        return
    numbers = (int, float) if isinstance(like, float) else (int,)
    ok = (
        isinstance(value, bool)
        if isinstance(like, bool)
        else (isinstance(value, numbers) and not isinstance(value, bool))
    )
    if not ok:
        kind = "true or false" if isinstance(like, bool) else type(like).__name__
        raise UserError(f"{where}: {key} takes {kind} (like {like!r}), got {value!r}")


def apply_user_space(space: dict, known: dict, file: str | None, sets: list[str]) -> dict:
    """The preset's space with the --space file's entries, then each --set KEY=VALUE, over it;
    a key the trial does not take is refused, naming the ones it does. `known`: each key the
    trial reads, with a value of its kind (None: any)."""
    layers = [(read_space_file(file), f"--space {file}")] if file else []
    fixed = {}
    for item in sets or []:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise UserError(f"--set {item!r}: write KEY=VALUE, e.g. --set hidden_size=128")
        fixed[key.strip()] = parse_value(text.strip())
    layers.append((fixed, "--set"))
    space = dict(space)
    for entries, where in layers:
        for key, spec in entries.items():
            if key not in known:
                raise UserError(
                    f"{where}: unknown key {key!r}: this sweep's trials take "
                    f"{', '.join(sorted(known))}"
                )
            space[key] = domain(key, spec, where)
            if not isinstance(spec, dict):
                check_type(key, spec, known[key], where)
            elif "choice" in spec:
                for value in spec["choice"]:
                    check_type(key, value, known[key], where)
    return space
