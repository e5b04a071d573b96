"""TensorFlow's C++ log lines, kept off the terminal unless the user asks for them.

TensorFlow prints notes at import (oneDNN, "Could not find cuda drivers", ``cuInit`` errors on a
machine without a GPU, the absl "All log messages before absl::InitializeLog()" banner) and during
the first fit ("NodeDef mentions attribute ..."). They read like failures and are none. The ones
after start-up obey ``TF_CPP_MIN_LOG_LEVEL``; the ones written while TensorFlow's shared libraries
load come before absl reads it, so the first ``import tensorflow`` runs with file descriptor 2
pointed at a temporary file, which is replayed only if the import fails.

``vigil --verbose`` (or ``--log-level debug``) shows everything.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys
import tempfile
from contextlib import contextmanager
from typing import Iterator

_QUIET_LEVEL = "3"  # TF_CPP_MIN_LOG_LEVEL: 3 hides INFO, WARNING and ERROR lines of the C++ runtime


@contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Whatever native code writes to fd 2 meanwhile is dropped, unless the block raises."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            sink.seek(0)
            sys.stderr.write(sink.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


class _QuietTensorflowImport(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` as usual, but runs its first import under :func:`native_stderr_silenced`."""

    def find_spec(self, name, path, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)  # only the first import; the finder must not find itself again
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_quietly(module) -> None:
            with native_stderr_silenced():
                exec_module(module)

        spec.loader.exec_module = exec_quietly
        return spec


_finder = _QuietTensorflowImport()


def quiet(enabled: bool = True) -> None:
    """Hide (or, ``enabled=False``, show) TensorFlow's C++ lines. Call before TensorFlow loads."""
    if enabled:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", _QUIET_LEVEL)
        if "tensorflow" not in sys.modules and _finder not in sys.meta_path:
            sys.meta_path.insert(0, _finder)
    else:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
        if _finder in sys.meta_path:
            sys.meta_path.remove(_finder)
