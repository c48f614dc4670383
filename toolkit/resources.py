"""Files rtcgate ships inside its package, found the same way from a checkout and an installed wheel.

Everything the toolkit reads at run time (seed corpora, fuzzing dictionaries, committed
reproducers, the speech sample, interop scripts and pages) is package data under `toolkit/`,
reached through `importlib.resources` so that nothing depends on where the repository was
cloned. These paths are read-only: a run writes under the current directory or the folder its
user names, never into the installed package.
"""
from __future__ import annotations

from importlib.resources import files
from pathlib import Path


class MissingResource(FileNotFoundError):
    """A file that should ship with rtcgate is not there: a broken or partial install."""


def shipped(*parts: str) -> Path:
    """The path of a shipped file or folder. Wheels install as plain files, so the package's
    resources are real paths; a zipped install is refused with a clear message."""
    root = files("toolkit")
    if not isinstance(root, Path):
        raise MissingResource(f"rtcgate's package data is not on the file system ({root}); install it unzipped")
    return root.joinpath(*parts)


def corpora() -> Path:
    """The shipped seed corpora, dictionaries and regression reproducers (`corpora/<target>/`,
    `corpora/<target>.dict`, `corpora/regressions/<target>/`)."""
    return shipped("corpora")


def speech_sample() -> Path:
    """The shipped speech recording (see corpora/audio/README.md); raises if it is missing."""
    path = shipped("corpora", "audio", "speech_en.ogg")
    if not path.is_file():
        raise MissingResource(f"the speech sample {path.name} is missing from rtcgate's package data "
                              "(corpora/audio/): reinstall rtcgate")
    return path
