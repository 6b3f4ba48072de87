"""The data set in memory: `files` (the course layout on disk, cached per split), `dataset`
(splits, folds and crops), `batches` (padded batches, windows) and `demo` (the demo data set,
generated on first use)."""
