"""Entry parameters as frozen dataclasses, and the ``NAME:key=value[,key=value]`` spec strings that set them.

::

    @dataclass(frozen=True)
    class CodeFormerParams:
        w: float = 0.5
        "fidelity weight in [0, 1] (0 = quality, 1 = fidelity)"

    name, raw = parse_spec("codeformer:w=0.7")           # ('codeformer', {'w': '0.7'})
    p = build_params(CodeFormerParams, raw, owner="method 'codeformer'")   # CodeFormerParams(w=0.7)
    describe_params(CodeFormerParams)                    # [{'name': 'w', 'type': 'float', 'default': 0.5, ...}]

Values given as strings are converted by the field's type: ``int``, ``float``, ``bool`` (true/false/1/0/yes/no/
on/off), ``str``, ``Literal[...]`` (one of the listed values), ``X | None`` (``none``/``null`` or an ``X``) and
``tuple[X, ...]`` (``a;b;c``). A bad value is a :class:`~celebref.errors.ConfigError` naming the owner, the
parameter and its type; an unknown parameter names the known ones. A field's help text is the string literal
that follows it in the class body (read from the source, if available) or ``metadata={"help": ...}``.
"""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from typing import Any, Literal, Mapping, Union

from .errors import ConfigError

__all__ = ["build_params", "describe_params", "params_dict", "params_from_defaults", "parse_spec", "split_spec_list"]

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def parse_spec(spec: str) -> tuple[str, dict[str, str]]:
    """``"NAME:k=v,k2=v2"`` -> ``("NAME", {"k": "v", "k2": "v2"})`` (values kept as strings)."""
    spec = str(spec).strip()
    name, _, rest = spec.partition(":")
    raw: dict[str, str] = {}
    if rest:
        for part in rest.split(","):
            k, eq, v = part.partition("=")
            if not eq or not k.strip():
                raise ConfigError(f"bad parameter {part!r} in {spec!r} (write NAME:key=value[,key=value])")
            if k.strip() in raw:
                raise ConfigError(f"parameter {k.strip()!r} is given twice in {spec!r}")
            raw[k.strip()] = v.strip()
    return name.strip(), raw


def split_spec_list(text: str) -> list[str]:
    """Split a comma list of specs: a part that is ``key=value`` without a ``NAME:`` continues the previous spec
    (``"codeformer:w=0.5,lq"`` -> two specs; ``"gfpgan:seed=1,weight=0.5"`` -> one)."""
    specs: list[str] = []
    for part in [p.strip() for p in str(text).split(",") if p.strip()]:
        if specs and "=" in part and ":" not in part.split("=", 1)[0]:
            specs[-1] += "," + part
        else:
            specs.append(part)
    return specs


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " | ".join("None" if a is type(None) else _type_name(a) for a in typing.get_args(tp))
    if origin is tuple:
        return f"tuple[{_type_name(typing.get_args(tp)[0])}, ...]"
    return getattr(tp, "__name__", str(tp))


def _convert(value: Any, tp: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin is Literal:
        allowed = typing.get_args(tp)
        for a in allowed:
            if value == a or (isinstance(value, str) and str(a) == value):
                return a
        raise ValueError(f"expected one of {', '.join(repr(a) for a in allowed)}")
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if type(None) in args and (value is None or (isinstance(value, str) and value.lower() in ("none", "null"))):
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _convert(value, a)
            except (ValueError, TypeError) as exc:
                errors.append(str(exc))
        raise ValueError("; ".join(errors))
    if origin is tuple:
        inner = typing.get_args(tp)[0]
        items = value.split(";") if isinstance(value, str) else list(value)
        return tuple(_convert(v.strip() if isinstance(v, str) else v, inner) for v in items if v != "")
    if tp is bool:
        if isinstance(value, bool):
            return value
        s = str(value).strip().lower()
        if s in _TRUE:
            return True
        if s in _FALSE:
            return False
        raise ValueError("expected true or false")
    if tp is int:
        if isinstance(value, bool):
            raise ValueError("expected an integer")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return int(str(value).strip())
    if tp is float:
        if isinstance(value, bool):
            raise ValueError("expected a number")
        return float(value) if not isinstance(value, str) else float(value.strip())
    if tp is str:
        return str(value)
    if tp is Any:
        return value
    if isinstance(value, tp):
        return value
    return tp(value)


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def build_params(cls: type, raw: Mapping[str, Any] | None = None, *, owner: str = "") -> Any:
    """An instance of the dataclass ``cls`` from ``raw`` (strings or values), typed and validated.
    A dataclass may define ``validate(self)`` raising ``ValueError`` for cross-field or range checks."""
    raw = dict(raw or {})
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    who = f"{owner}: " if owner else ""
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        known = ", ".join(f"{n} ({_type_name(hints[n])})" for n in fields) or "none"
        raise ConfigError(f"{who}unknown parameter {', '.join(repr(u) for u in unknown)} (parameters: {known})")
    values = {}
    for name, value in raw.items():
        try:
            values[name] = _convert(value, hints[name])
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{who}parameter {name!r} must be {_type_name(hints[name])}, got {value!r} ({exc})") from None
    obj = cls(**values)
    check = getattr(obj, "validate", None)
    if callable(check):
        try:
            check()
        except ValueError as exc:
            raise ConfigError(f"{who}{exc}") from None
    return obj


def _field_docs(cls: type) -> dict[str, str]:
    """Help strings written as a string literal right after a field in the class body."""
    try:
        import ast
        import textwrap

        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError, SyntaxError):
        return {}
    docs: dict[str, str] = {}
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    for stmt, nxt in zip(body, body[1:]):
        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and isinstance(nxt, ast.Expr) \
                and isinstance(getattr(nxt, "value", None), ast.Constant) and isinstance(nxt.value.value, str):
            docs[stmt.target.id] = " ".join(nxt.value.value.split())
    return docs


def describe_params(cls: type | None) -> list[dict[str, Any]]:
    """``[{"name", "type", "default", "help"}]`` for each init field of ``cls`` (``[]`` for ``None``)."""
    if cls is None:
        return []
    hints = _hints(cls)
    docs = _field_docs(cls)
    out = []
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        if f.default is not dataclasses.MISSING:
            default: Any = f.default
        elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            default = f.default_factory()  # type: ignore[misc]
        else:
            default = None
        out.append({"name": f.name, "type": _type_name(hints[f.name]), "default": default,
                    "help": f.metadata.get("help") or docs.get(f.name, "")})
    return out


def params_from_defaults(owner: type, defaults: Mapping[str, Any]) -> type | None:
    """The frozen dataclass ``<Owner>Params`` whose fields are ``defaults`` (name -> default value), each typed by
    its default's type (``Any`` for a ``None`` default): the shorthand ``{"offset": 0}`` for a parameter class.
    Made once per ``owner`` class (cached on it); ``None`` when ``defaults`` is empty."""
    if not defaults:
        return None
    made = owner.__dict__.get("_params_from_defaults")
    if made is None:
        fields = [(k, type(v) if v is not None else Any, dataclasses.field(default=v)) for k, v in defaults.items()]
        made = dataclasses.make_dataclass(f"{owner.__name__}Params", fields, frozen=True)
        setattr(owner, "_params_from_defaults", made)
    return made


def params_dict(obj: Any) -> dict[str, Any]:
    """The parameter values of a params dataclass instance as a plain dict (``{}`` for ``None``)."""
    return dataclasses.asdict(obj) if obj is not None and dataclasses.is_dataclass(obj) else {}
