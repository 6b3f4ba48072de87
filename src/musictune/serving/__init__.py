"""A tuned model out and applied: `export` (a sweep's best model -> a self-contained folder;
`export_sources` finds it) and `predict` (that folder on new recordings; `predict_audio`)."""
