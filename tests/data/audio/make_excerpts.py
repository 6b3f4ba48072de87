"""Make the test recordings in this folder: a short excerpt of each of five licensed recordings.

    python tests/data/audio/make_excerpts.py [SOURCE]   # SOURCE: default ../shared/audio

SOURCE holds the whole recordings (mono Ogg Vorbis, 22 050 Hz), each with a licence `.txt`.
For each one this writes, under the recording's own file name, the middle EXCERPT seconds
re-encoded as Ogg Vorbis (a recording no longer than that is copied unchanged), copies its
licence file, and writes README.md with the offsets. The tests take the middle 5 s of a file
(`SECONDS` in tests/test_extract.py), so 6 s leave half a second either side: the middle is
then a real cut, and it is the same stretch of music as the middle 5 s of the whole recording.
A rerun writes the same decoded audio; the bytes differ only in the Ogg stream's serial number
(random) and the page checksums that cover it.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import soundfile as sf

HERE = Path(__file__).resolve().parent
DEFAULT_SOURCE = HERE.parents[2].parent / "shared" / "audio"  # beside the repository
EXCERPT = 6.0  # seconds

# file name (without .ogg) -> what it is and its licence, for the README.
RECORDINGS = {
    "Hungarian_Dance_number_5_-_Allegro_in_F_sharp_minor_(string_orchestra)": (
        "Brahms, Hungarian Dance no. 5, US Army Strings (classical; Musopen)",
        "public domain",
    ),
    "Kevin_MacLeod_-_P_I_Tchaikovsky_Dance_of_the_Sugar_Plum_Fairy": (
        "Kevin MacLeod, Tchaikovsky's Dance of the Sugar Plum Fairy (classical; FMA)",
        "CC-BY 3.0",
    ),
    "Kevin_MacLeod_-_Vibe_Ace": ("Kevin MacLeod, Vibe Ace (vibraphone jazz; FMA)", "CC-BY 3.0"),
    "Karissa_Hobbs_-_Lets_Go_Fishin": ("Karissa Hobbs, Let's Go Fishin' (folk; FMA)", "CC-BY 3.0"),
    "sorohanro_-_solo-trumpet-06": (
        "Mihai Sorohan, solo trumpet 06, Jazz Trumpet Loops Pack (Freesound)",
        "CC-BY 3.0",
    ),
}

README = """\
# Test recordings: excerpts of five licensed recordings

`tests/test_extract.py` runs `musictune extract` on these files. They are **excerpts**, not
the whole recordings: the middle {excerpt:g} s of each, re-encoded as mono Ogg Vorbis at
22 050 Hz (the tests use the middle 5 s of a file); a recording no longer than {excerpt:g} s is
the whole, unchanged file. Each keeps its original file name, and the `.txt` of the same name is
the original's licence and source, copied unchanged.

`make_excerpts.py` (beside this file) made them from the whole recordings, which librosa's
example registry also names (`brahms`, `nutcracker`, `vibeace`, `fishin`, `trumpet`):

    python tests/data/audio/make_excerpts.py /path/to/the/whole/recordings

| file (`.ogg`) | what | original length | excerpt: from, seconds | licence |
| --- | --- | --- | --- | --- |
{rows}

**Licences.** The Brahms recording is in the public domain (Public Domain Mark 1.0). The other
four are licensed under Creative Commons Attribution 3.0
(https://creativecommons.org/licenses/by/3.0/): they may be shared and adapted, including these
excerpts, only with attribution to their authors: Kevin MacLeod (two recordings), Karissa Hobbs
and Mihai Sorohan (sorohanro), as given in each `.txt`. Keep the `.txt` files and this notice
with the excerpts; the excerpts are cut and re-encoded (changed) from the originals.
"""


def excerpt(source: Path, dest: Path, seconds: float) -> tuple[float, float, float]:
    """Write the middle `seconds` of `source` to `dest`: (original length, start, length) in s."""
    info = sf.info(str(source))
    rate, frames = info.samplerate, info.frames
    n = int(round(seconds * rate))
    if frames <= n:
        shutil.copyfile(source, dest)
        return frames / rate, 0.0, frames / rate
    start = (frames - n) // 2
    y, _ = sf.read(str(source), start=start, frames=n, dtype="float32", always_2d=False)
    sf.write(str(dest), y, rate, format="OGG", subtype="VORBIS")
    return frames / rate, start / rate, n / rate


def main(argv: list[str]) -> int:
    source = Path(argv[0]) if argv else DEFAULT_SOURCE
    if not source.is_dir():
        print(f"make_excerpts: {source} is not a folder of the whole recordings", file=sys.stderr)
        return 2
    rows = []
    for name, (what, licence) in RECORDINGS.items():
        length, start, kept = excerpt(source / f"{name}.ogg", HERE / f"{name}.ogg", EXCERPT)
        shutil.copyfile(source / f"{name}.txt", HERE / f"{name}.txt")
        cut = "whole file" if start == 0 and kept == length else f"from {start:.2f} s, {kept:g} s"
        rows.append(f"| `{name}` | {what} | {length:.1f} s | {cut} | {licence} |")
        print(f"{name}.ogg: {cut} of {length:.1f} s, {(HERE / f'{name}.ogg').stat().st_size} B")
    (HERE / "README.md").write_text(README.format(excerpt=EXCERPT, rows="\n".join(rows)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
