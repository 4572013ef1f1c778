"""Typed errors. Every error a user can cause by bad input derives from :class:`CelebrefError`;
the CLI prints its message (no traceback) and exits with status 2."""

from __future__ import annotations


class CelebrefError(Exception):
    """Base class for expected, user-facing errors."""


class ImageReadError(CelebrefError):
    """A file could not be decoded as an image. ``path`` and ``reason`` are kept as attributes."""

    def __init__(self, path: object, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"cannot read image {self.path!r}: {reason}")


class WeightError(CelebrefError):
    """A model-weight file is missing, corrupt, or cannot be fetched."""


class ConfigError(CelebrefError):
    """Invalid option, unknown name, inconsistent inputs."""


class UnknownNameError(ConfigError):
    """An unknown registry name; the message carries 'did you mean' suggestions."""

    def __init__(self, kind: str, name: str, known: list[str]):
        import difflib

        self.kind, self.name, self.known = kind, name, sorted(known)
        close = difflib.get_close_matches(name, self.known, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        super().__init__(f"unknown {kind} {name!r}{hint} (known: {', '.join(self.known)})")
