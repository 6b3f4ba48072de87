"""Audio in, features out: `features` (the librosa mel and chroma views), `extract` (a folder
of recordings -> the course layout; `extract_sources`, `extract_audio`, `extract_index`),
`synth` (synthesized music for the demo set) and `pool` (worker processes)."""
