"""Options declared once: a dataclass field carries its flag, help, default and check.

    @dataclass
    class Options:
        epochs: int = option(20, "maximum epochs", type=positive_int)

`add_options(parser, Options)` generates the argparse arguments and `from_args(Options, args)`
turns the parsed namespace back into the dataclass, so a command's options, their defaults and
their help live in one place. Checks that involve several options belong to the dataclass's
`validate()`.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import MISSING, field, fields
from typing import Any

from musictune.errors import EXIT_USAGE, UserError

# --------------------------------------------------------------------------- value checks


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 0, got {text}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number (> 0), got {text}")
    return value


def non_negative_float(text: str) -> float:
    value = float(text)
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text}")
    return value


def fraction(text: str) -> float:
    value = float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must lie in [0, 1), got {text}")
    return value


# --------------------------------------------------------------------------- declaring


def option(
    default: Any = None,
    help: str | None = None,  # noqa: A002 - argparse's name
    *,
    flag: str | None = None,
    positional: bool = False,
    **argparse_kwargs: Any,
) -> Any:
    """A dataclass field that is also a command-line option.

    The flag is `--<name-with-dashes>` unless `flag` says otherwise; a bool defaulting to False
    is a switch, one defaulting to True is a `--no-...` switch that clears it. `choices` may be
    a callable, evaluated when the parser is built (e.g. the registered models).
    """
    meta = {"flag": flag, "positional": positional, "help": help, "kwargs": argparse_kwargs}
    if isinstance(default, (list, dict, set)):
        return field(default_factory=lambda: type(default)(default), metadata={"cli": meta})
    return field(default=default, metadata={"cli": meta})


def add_options(parser: argparse.ArgumentParser, cls: type, skip: tuple[str, ...] = ()) -> None:
    """Add every option field of dataclass `cls` (except `skip`) to `parser`, under the argument
    groups of `cls.OPTION_GROUPS` ({title: field names}) where it has them, so a long --help
    reads by topic."""
    where = _groups(parser, cls)
    for f in fields(cls):
        meta = f.metadata.get("cli")
        if meta is None or f.name in skip:
            continue
        target = where.get(f.name, parser)
        kwargs = dict(meta["kwargs"])
        if callable(kwargs.get("choices")):
            kwargs["choices"] = kwargs["choices"]()
        default = f.default if f.default is not MISSING else f.default_factory()
        if meta["positional"]:
            target.add_argument(f.name, help=meta["help"], **kwargs)
            continue
        flag = meta["flag"] or "--" + f.name.replace("_", "-")
        if isinstance(default, bool) and "type" not in kwargs:
            kwargs["action"] = "store_false" if default else "store_true"
        else:
            kwargs["default"] = default
        target.add_argument(flag, dest=f.name, help=meta["help"], **kwargs)


def _groups(parser: argparse.ArgumentParser, cls: type) -> dict[str, Any]:
    """Field name -> its argument group; a name that is no option of `cls` is a typo here."""
    groups: dict[str, tuple[str, ...]] = getattr(cls, "OPTION_GROUPS", {})
    options = {f.name for f in fields(cls) if "cli" in f.metadata}
    where = {}
    for title, names in groups.items():
        unknown = set(names) - options
        if unknown:
            raise ValueError(f"{cls.__name__}.OPTION_GROUPS names no option {sorted(unknown)}")
        group = parser.add_argument_group(title)
        where |= dict.fromkeys(names, group)
    return where


def from_args(cls: type, args: argparse.Namespace, *, check: bool = True, **values: Any):
    """The dataclass of a parsed command line (`values` fill fields that are not options);
    `check=False` leaves `validate()` to whoever runs them (a sweep checks once, in its plan)."""
    names = {f.name for f in fields(cls) if "cli" in f.metadata and hasattr(args, f.name)}
    options = cls(**{n: getattr(args, n) for n in names}, **values)
    if check and hasattr(options, "validate"):
        options.validate()
    return options


def first_problem(problems: list[tuple[bool, str]]) -> None:
    """Raise the first message whose condition holds: one line that names problem and fix."""
    for bad, message in problems:
        if bad:
            raise UserError(message)


def shown_default(value: Any) -> str:
    """A default as --help shows it: floats short (1e-04, not 0.0001000000000000001)."""
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return " ".join(shown_default(v) for v in value)
    return str(value)


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """--help names every default that is a value: `(default: X)` after the help, unless the
    help already says it ("default X"). Switches and options whose default is "none given"
    (None, an empty list) are left alone; their help says what happens without them."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if default is None or default is False or default is argparse.SUPPRESS:
            return text
        if isinstance(default, (list, tuple)) and not default:  # none given, like None
            return text
        if action.nargs == 0 or "%(default)" in text:  # a switch, or help that shows it
            return text
        if not action.option_strings and action.nargs not in (argparse.OPTIONAL, "*"):
            return text  # a required positional has no default to show
        shown = shown_default(default)
        if re.search(rf"\bdefault:? {re.escape(shown)}(?![\w.])", text):
            return text  # the help says it already, e.g. "(default 3)"
        return f"{text} (default: {shown.replace('%', '%%')})".lstrip()  # help is %-formatted


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports a usage error in one line (and still exits 2), that takes no
    abbreviations (a typo such as `--sample 3` is an error, not silently `--samples 3`) and
    whose --help shows every default."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("formatter_class", DefaultsHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):  # noqa: D401 - argparse API
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def run_main(prog: str, handler, args: argparse.Namespace, interrupted: str) -> int:
    """Run a command: bad input is one line on stderr naming problem and fix, exit status 2;
    Ctrl-C says what was kept (the exception's message, else `interrupted`), exit 130."""
    import sys

    try:
        handler(args)
    except UserError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        # A path the checks did not foresee (disk full, permissions): still one line.
        where = f" ({exc.filename}): check the path, its permissions and the free space"
        message = f"{exc.strerror or exc}" + (where if exc.filename else "")
        print(f"{prog}: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt as exc:
        print(f"{prog}: interrupted: {str(exc) or interrupted}", file=sys.stderr)
        return 130
    return 0


def parser_for(cls: type, prog: str, description: str) -> ArgumentParser:
    parser = ArgumentParser(prog=prog, description=description)
    add_options(parser, cls)
    return parser
