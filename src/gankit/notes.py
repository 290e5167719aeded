"""What the library tells a user about their input and its own choices, one line each
(`note: ...` from the CLI): images converted or skipped, labels remapped, the autotuner's pick.

Notes go to the `gankit.note` logger at INFO; the CLI prints them to stderr. In a notebook,
`logging.getLogger("gankit.note").addHandler(logging.StreamHandler())` shows them."""

from __future__ import annotations

import logging

_log = logging.getLogger("gankit.note")


def note(message: str) -> None:
    _log.info(message)
