"""The course's fixed folding of 20 FMA genres into 10 classes."""

from __future__ import annotations

# Every genre name that occurs in the FMA subset of the course data set.
FMA_GENRES: tuple[str, ...] = (
    "Rock",
    "Psych-Rock",
    "Post-Rock",
    "Psych-Folk",
    "Folk",
    "Metal",
    "Punk",
    "Electronic",
    "Chiptune",
    "Trip-Hop",
    "Pop",
    "Hip-Hop",
    "Classical",
    "Blues",
    "Jazz",
    "Indie-Rock",
    "Post-Punk",
    "Soundtrack",
    "International",
    "Old-Time",
)

# FMA genre -> class; None drops the clip (the course removed these genres).
FMA_CLASS_MAPPING: dict[str, str | None] = {
    "Rock": "Rock",
    "Psych-Rock": "Rock",
    "Post-Rock": "Rock",
    "Psych-Folk": "Folk",
    "Folk": "Folk",
    "Metal": "Metal",
    "Punk": "Metal",
    "Electronic": "Electronic",
    "Chiptune": "Electronic",
    "Trip-Hop": "Trip-Hop",
    "Pop": "Pop",
    "Hip-Hop": "Hip-Hop",
    "Classical": "Classical",
    "Blues": "Blues",
    "Jazz": "Jazz",
    "Indie-Rock": None,
    "Post-Punk": None,
    "Soundtrack": None,
    "International": None,
    "Old-Time": None,
}

FMA_CLASSES: tuple[str, ...] = tuple(sorted({c for c in FMA_CLASS_MAPPING.values() if c}))
