"""YAML read as ``yaml.safe_load`` reads it, by libyaml when PyYAML was built with it.

The rule sets are read each time the service that keeps the deadlines is built (every start,
every test platform), a unit directory file when it is loaded: PyYAML's pure-Python parser
took 42 ms for the two shipped rule sets, its C parser 5 ms, with the same safe constructor and
resolver. A text the C parser refuses is parsed again by the pure-Python one, so a file that
fails still fails with the message (line, column, wording) it always had.
"""

from __future__ import annotations

from typing import Any

import yaml

#: A PyYAML built without libyaml has no C loader: it then parses as it always did.
_LIBYAML = bool(getattr(yaml, "__with_libyaml__", False))


def safe_load(text: str) -> Any:
    """The document in ``text``: what ``yaml.safe_load`` returns, or the error it raises."""
    if _LIBYAML:
        try:
            return yaml.load(text, Loader=yaml.CSafeLoader)
        except yaml.YAMLError:
            pass
    return yaml.safe_load(text)
