"""`python -m musictune` runs the `musictune` command."""

from musictune.commands.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
