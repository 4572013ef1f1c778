"""One registry type for everything chosen by name: methods, metrics, metric profiles, degradation presets,
degradation ops and face backends.

::

    from celebref.registry import Registry
    METHODS = Registry("method", group="celebref.methods")
    METHODS.register("dmdnet", "baselines.dmdnet.method:DMDNetGeneric",
                     description="DMDNet, generic dictionary", aliases=("dmd",), tags=("network",))
    METHODS.get("DMD")            # the class, imported on first use (lazy target)
    METHODS.names("dmd*")         # ['dmdnet', 'dmdnet-specific']
    METHODS.get("dmdnte")         # UnknownNameError: unknown method 'dmdnte'; did you mean 'dmdnet'? ...

Conventions:

* a *target* is ``"module:attr"`` (imported on first :meth:`Registry.get`) or the object itself;
* names are matched case-insensitively with ``_`` read as ``-``; aliases resolve to their canonical name;
* metadata beside each entry: a one-line ``description``, ``aliases``, ``params`` (a frozen dataclass type, or
  its ``"module:attr"``, whose fields are the entry's ``NAME:key=value`` parameters, see
  :mod:`celebref.params`), ``weights`` (weight-store names the entry needs) and free ``tags`` for filtering;
* another distribution adds entries without editing celebref by declaring entry points in the registry's
  ``group`` (e.g. ``[project.entry-points."celebref.metrics"] mymetric = "mypkg.metric:MyMetric"``). The target
  may carry the same metadata as class attributes (``description`` or its docstring's first line, ``aliases``,
  ``Params``, ``weights``, ``tags``). Entry points are read once, on the first lookup; a name already
  registered by celebref wins and the clash is logged.
"""

from __future__ import annotations

import fnmatch
import importlib
import logging
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from typing import Any, Callable, Iterable, Iterator

from .errors import ConfigError, UnknownNameError

__all__ = ["Entry", "Registry", "all_registries", "load_target"]

log = logging.getLogger("celebref.registry")

_REGISTRIES: dict[str, "Registry"] = {}


def normalize_name(name: str) -> str:
    """The lookup key of a name: stripped, lower case, ``_`` read as ``-``."""
    return str(name).strip().lower().replace("_", "-")


def load_target(target: Any) -> Any:
    """Import ``"module:attr"`` (``attr`` may be dotted) and return the object; other values are returned as is."""
    if not isinstance(target, str):
        return target
    module, sep, attr = target.partition(":")
    if not sep or not module or not attr:
        raise ConfigError(f"a registry target is written 'module:attr', got {target!r}")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


@dataclass(frozen=True)
class Entry:
    """One registered name and what stands beside it."""

    name: str
    target: Any
    description: str = ""
    aliases: tuple[str, ...] = ()
    params: Any = None
    weights: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    source: str = "celebref"
    extra: dict[str, Any] = field(default_factory=dict)

    def load(self) -> Any:
        """The target object (imported now if it was given as ``"module:attr"``)."""
        return load_target(self.target)

    def params_type(self) -> type | None:
        """The entry's parameter dataclass (``None``: the entry takes no ``key=value`` parameters)."""
        return load_target(self.params) if self.params is not None else None


def _names(obj: Any, attr: str) -> tuple[str, ...]:
    """A plugin's ``aliases`` / ``weights`` / ``tags``: a string or a list of strings; anything else is a
    :class:`ConfigError` naming the attribute and what it holds."""
    value = getattr(obj, attr, ()) or ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, (list, tuple, set, frozenset)) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ConfigError(f"its {attr!r} must be a string or a list of strings, got {value!r}")


def _one_line(value: Any, limit: int = 200) -> str:
    """The first non-blank line of ``str(value)``, cut to ``limit`` characters."""
    text = _first_line(str(value))
    return text[:limit] + ("..." if len(text) > limit else "")


def _first_line(text: str | None) -> str:
    for line in (text or "").strip().splitlines():
        if line.strip():
            return line.strip()
    return ""


class Registry:
    """Names -> lazy targets, with aliases, "did you mean", pattern listing, metadata and entry points.

    ``kind`` names the things in messages ("method", "metric", ...); ``group`` is the entry-point group other
    distributions use to add entries (``None``: closed registry).
    """

    def __init__(self, kind: str, group: str | None = None, *, extra_known: Iterable[str] = ()):
        self.kind = kind
        self.group = group
        self.extra_known = tuple(extra_known)  # shown in "known:" lists (e.g. "external:LABEL=<folder>")
        self._entries: dict[str, Entry] = {}
        self._aliases: dict[str, str] = {}
        self._plugins_loaded = group is None
        self._plugin_errors: dict[str, str] = {}
        _REGISTRIES[kind] = self

    # -- registration ---------------------------------------------------------------------------------
    def register(self, name: str, target: Any, *, description: str = "", aliases: Iterable[str] = (),
                 params: Any = None, weights: Iterable[str] = (), tags: Iterable[str] = (),
                 source: str = "celebref", **extra: Any) -> Entry:
        """Add ``name`` (canonical, kept as given) -> ``target``. A second registration of a name or alias
        is a :class:`ConfigError` (no silent replacement)."""
        key = normalize_name(name)
        alias_keys = tuple(normalize_name(a) for a in aliases)
        for k in (key, *alias_keys):
            if k in self._entries or k in self._aliases:
                raise ConfigError(f"{self.kind} {k!r} is registered twice")
        entry = Entry(name=key, target=target, description=description, aliases=alias_keys, params=params,
                      weights=tuple(weights), tags=tuple(tags), source=source, extra=dict(extra))
        self._entries[key] = entry
        for a in alias_keys:
            self._aliases[a] = key
        return entry

    def add(self, name: str, **meta: Any) -> Callable[[Any], Any]:
        """Decorator form of :meth:`register` for objects defined next to their registry."""

        def deco(obj: Any) -> Any:
            self.register(name, obj, **meta)
            return obj

        return deco

    # -- entry points -----------------------------------------------------------------------------------
    def _load_plugins(self) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        try:
            eps = importlib_metadata.entry_points(group=self.group)
        except Exception as exc:  # noqa: BLE001 - a broken environment must not break our own names
            log.warning("cannot read entry points %s: %s", self.group, exc)
            return
        for ep in eps:
            key = normalize_name(ep.name)
            dist = getattr(getattr(ep, "dist", None), "name", None) or "plugin"
            if key in self._entries or key in self._aliases:
                log.warning("%s %r from %s ignored: the name is already registered", self.kind, ep.name, dist)
                continue
            try:
                self._register_plugin(key, ep, dist)
            except (Exception, SystemExit) as exc:  # noqa: BLE001 - one broken plugin is named and skipped
                self._plugin_errors[key] = f"{dist}: cannot load {ep.value}: {type(exc).__name__}: {_one_line(exc)}"
                log.warning("%s %r: %s (skipped)", self.kind, ep.name, self._plugin_errors[key])

    def _register_plugin(self, key: str, ep: Any, dist: str) -> None:
        """Import one entry point and register it; anything wrong (an import error, ``SystemExit`` from argparse at
        import time, metadata of the wrong type) raises, and :meth:`_load_plugins` records it. What the plugin
        prints while it is imported is captured, so it cannot pass for celebref's own output."""
        import contextlib
        import io

        printed = io.StringIO()
        try:
            with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
                obj = ep.load()
        except SystemExit as exc:
            said = _one_line(printed.getvalue())
            raise ConfigError(f"the module exited while being imported (SystemExit({exc.code!r}))"
                              + (f"; it printed {said!r}" if said else "")) from None
        description = getattr(obj, "description", None)
        if not isinstance(description, str):
            description = _first_line(getattr(obj, "__doc__", ""))
        meta = {k: _names(obj, k) for k in ("aliases", "weights", "tags")}
        aliases = [a for a in meta["aliases"] if normalize_name(a) not in self._aliases
                   and normalize_name(a) not in self._entries]
        self.register(key, obj, description=description, aliases=aliases, params=getattr(obj, "Params", None),
                      weights=meta["weights"], tags=meta["tags"], source=dist)

    # -- lookup -----------------------------------------------------------------------------------------
    def _key(self, name: str) -> str | None:
        key = normalize_name(name)
        key = self._aliases.get(key, key)
        if key in self._entries:
            return key
        self._load_plugins()
        key = self._aliases.get(key, key)
        return key if key in self._entries else None

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._key(name) is not None

    def resolve(self, name: str) -> str:
        """The canonical name of ``name`` (alias, case and ``_``/``-`` insensitive); unknown names raise
        :class:`~celebref.errors.UnknownNameError` with "did you mean" suggestions."""
        key = self._key(name)
        if key is None:
            known = list(self._entries) + list(self._aliases) + list(self.extra_known)
            err = self._plugin_errors.get(normalize_name(name))
            if err:
                raise ConfigError(f"{self.kind} {name!r} is declared by a plugin that failed to load: {err}")
            raise UnknownNameError(self.kind, str(name), known)
        return key

    def entry(self, name: str) -> Entry:
        return self._entries[self.resolve(name)]

    def get(self, name: str) -> Any:
        """The target of ``name``, imported on first use."""
        return self.entry(name).load()

    def names(self, pattern: str | None = None, **filters: Any) -> list[str]:
        """Canonical names (sorted) matching the shell-style ``pattern`` (matched against names and aliases)
        and every ``filters`` item: ``tag=...`` keeps entries carrying that tag, ``source=...`` those from one
        distribution, any other key is compared with the entry's ``extra`` metadata."""
        return [e.name for e in self.entries(pattern, **filters)]

    def entries(self, pattern: str | None = None, **filters: Any) -> list[Entry]:
        self._load_plugins()
        out = []
        for e in sorted(self._entries.values(), key=lambda e: e.name):
            if pattern and not any(fnmatch.fnmatch(n, normalize_name(pattern)) for n in (e.name, *e.aliases)):
                continue
            if "tag" in filters and filters["tag"] not in e.tags:
                continue
            if "source" in filters and filters["source"] != e.source:
                continue
            if any(e.extra.get(k) != v for k, v in filters.items() if k not in ("tag", "source")):
                continue
            out.append(e)
        return out

    @property
    def plugin_errors(self) -> dict[str, str]:
        self._load_plugins()
        return dict(self._plugin_errors)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        self._load_plugins()
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self._entries)} entries, group={self.group!r})"


def all_registries() -> dict[str, Registry]:
    """Every registry created so far, by kind (a registry exists once its defining module is imported)."""
    return dict(_REGISTRIES)
