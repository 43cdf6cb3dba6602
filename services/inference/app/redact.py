"""Keep server paths out of answers: messages about models and data name the setting, not the folder.

A checkpoint or data set that fails to load produces a message that often carries its path (``CheckpointError``
starts with it, torchvision and the OS quote it). Those messages reach clients through /metrics and /samples, and
an absolute path tells a caller how the server is laid out. ``redact`` replaces each configured folder with the name
of its setting (``/app/artifacts/models/x.pt`` -> ``ARTIFACTS_DIR/models/x.pt``) and any other absolute path with its
last component, so the message still says which file and which setting to look at. The log keeps the full paths.
"""

import re
from pathlib import Path

# An absolute path of at least two components that is not part of a URL or a media type ("application/json").
_OTHER_ABSOLUTE_PATH = re.compile(r"(?<![\w:/.~-])/(?:[^\s'\"`:,;()\[\]/]+/)+([^\s'\"`:,;()\[\]/]*)")


def redact(text: str, folders: dict[str, Path]) -> str:
    """``text`` with every folder in ``folders`` (setting name -> path) and any other absolute path hidden."""
    for name, folder in folders.items():
        for form in _absolute_forms(folder):
            text = re.sub(re.escape(form) + r"(?=/|\b|$)", name, text)
    return _OTHER_ABSOLUTE_PATH.sub(lambda match: f".../{match.group(1)}", text)


def _absolute_forms(folder: Path) -> list[str]:
    """The folder as the process may print it (as configured, absolute, with links resolved), longest first."""
    forms = {str(folder.absolute()), str(folder.resolve())}
    if folder.is_absolute():
        forms.add(str(folder))
    return sorted((form.rstrip("/") for form in forms if form not in ("/", "")), key=len, reverse=True)
