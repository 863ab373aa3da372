"""The one exception type users see (ARCHITECTURE §6).

Every failure a user can cause ends in a :class:`HwgenError` whose message is a
single line naming the node or layer, what was found and what is accepted.
"""


class HwgenError(Exception):
    """A user-facing error: one line, names the culprit, says what is accepted."""

    def __init__(self, message):
        message = " ".join(str(message).split())  # always one line
        super().__init__(message)


class FrontendError(HwgenError):
    """The model file cannot be read as QONNX."""


class UnsupportedError(HwgenError):
    """The graph contains something hwgen cannot lower exactly."""


class FoldingError(HwgenError):
    """A folding is impossible or a throughput target cannot be met."""


class VerifyError(HwgenError):
    """A build directory or input set cannot be verified."""


class ManifestError(HwgenError):
    """A directory is not a hwgen build directory, or its manifest.json is not what ``hwgen build`` writes."""
