"""The `musictune` command: `cli` (the parser and dispatch), `train`, `lab` (its checks in
`lab_checks`) and `report`."""
