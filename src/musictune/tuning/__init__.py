"""Sweeps, in the order a sweep runs: `options` (the flags, declared once) -> `plan` (checked
against the preset: `presets`, `space`, `transfer`, `cluster`, `storage`) -> `runner` (data,
then `tuner`, the one place that builds and fits a Ray Tuner, with `progress`) -> `summary`;
`experiments` reads finished sweeps back, `rerun` retrains their best configs and `importance`
says what mattered in them (for reports and export)."""
