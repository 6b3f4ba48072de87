"""The `musictune` command: `cli` (the parser and dispatch), `train`, `lab` and `report`."""
