"""Exit status of a command, from what it did (shared by every command; ``celebref.app.cli.main`` applies it).

* ``0`` — everything requested was done;
* ``3`` — the command finished, but some items failed or some requested methods/metrics were skipped
  (the summary on stderr says which; ``--fail-on`` chooses when this applies);
* ``2`` — usage or configuration error (nothing, or not everything, was attempted);
* ``130`` — interrupted (rerun the same command to resume).

A command's ``run(args)`` returns an :class:`Outcome` (or an int, used as is). ``--fail-on`` (every command):
``any`` (default) -> 3 when anything failed or was skipped; ``all`` -> 3 only when nothing requested was done
(every item failed, or every requested method/metric was skipped); ``none`` -> 0 whenever the command finished.
"""

from __future__ import annotations

from dataclasses import dataclass, field

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_PARTIAL = 3
EXIT_INTERRUPTED = 130
FAIL_ON = ("any", "all", "none")
DEFAULT_FAIL_ON = "any"

EXIT_CODES_HELP = """\
exit status:
  0    everything requested was done
  3    finished, but some items failed or requested methods/metrics were skipped (see the summary);
       --fail-on none|any|all chooses when (default any; all: only when nothing was done)
  2    usage or configuration error
  130  interrupted (rerun the same command to resume)"""


@dataclass
class Outcome:
    """What a command did: ``items`` attempted (e.g. images x methods), ``failed`` of them, ``skipped`` requested
    things not run at all (e.g. ``"method gfpgan: missing weights"``), ``details``: one line per failure group.
    ``all_skipped``: every requested method (or metric...) of some kind was skipped, so nothing requested was done
    even if every item of what remained succeeded."""

    items: int = 0
    failed: int = 0
    skipped: list[str] = field(default_factory=list)
    details: list[str] = field(default_factory=list)
    all_skipped: bool = False

    @property
    def complete(self) -> bool:
        return self.failed == 0 and not self.skipped

    @property
    def nothing_done(self) -> bool:
        return self.all_skipped or (self.items > 0 and self.failed >= self.items)

    def exit_code(self, fail_on: str = DEFAULT_FAIL_ON) -> int:
        if fail_on not in FAIL_ON:
            raise ValueError(f"fail_on must be one of {', '.join(FAIL_ON)}, got {fail_on!r}")
        if fail_on == "none" or self.complete:
            return EXIT_OK
        if fail_on == "all" and not self.nothing_done:
            return EXIT_OK
        return EXIT_PARTIAL

    def summary(self) -> str:
        """One line (plus the details) saying what was not done; "" when everything was."""
        if self.complete:
            return ""
        parts = []
        if self.failed:
            parts.append(f"{self.failed} of {self.items} item(s) failed")
        if self.skipped:
            parts.append(f"{len(self.skipped)} skipped ({'; '.join(self.skipped)})")
        return "not everything was done: " + ", ".join(parts) + "".join(f"\n  {d}" for d in self.details)
