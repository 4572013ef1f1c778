"""The method registry: ``--methods dmdnet,dfdnet`` is data, not an if-chain.

:data:`METHODS` is a :class:`celebref.registry.Registry` (entry-point group ``celebref.methods``): each name maps
lazily to its ``module:Class`` (importing the registry imports no torch model) with a one-line description,
aliases, the weight-store files it reads (``weights``) and the frozen dataclass of its parameters (``params``,
from :mod:`baselines.params`). A method spec is ``NAME`` or ``NAME:key=value[,key=value]`` (e.g.
``codeformer:w=0.7``; values are typed and checked against the dataclass), or ``external:LABEL=<folder>`` for
results produced elsewhere (paired by image id). Another distribution adds a method by declaring
``[project.entry-points."celebref.methods"] NAME = "pkg.module:Class"`` (a :class:`RestorationMethod` subclass
whose ``Params``, ``weights`` and ``description`` attributes stand in for this metadata).
"""

from __future__ import annotations

from typing import Any

from celebref.errors import ConfigError
from celebref.params import build_params, parse_spec
from celebref.registry import Registry

from .base import RestorationMethod

__all__ = ["EXTERNAL", "EXTERNAL_FORM", "METHODS", "create_method", "method_class", "method_names",
           "parse_method_spec"]

EXTERNAL = "baselines.external:ExternalMethod"
EXTERNAL_FORM = "external:LABEL=<folder>"

METHODS = Registry("method", group="celebref.methods", extra_known=(EXTERNAL_FORM,))
METHODS.register("dmdnet", "baselines.dmdnet.method:DMDNetGeneric",
                 description="DMDNet (Li et al., TPAMI 2022), generic restoration",
                 aliases=("dmdnet-generic", "dmd"), params="baselines.params:DMDNetParams", weights=("dmdnet",),
                 tags=("network", "landmarks"))
METHODS.register("dmdnet-specific", "baselines.dmdnet.method:DMDNetSpecific",
                 description="DMDNet (Li et al., TPAMI 2022), specific restoration with identity references",
                 aliases=("dmd-specific",), params="baselines.params:DMDNetSpecificParams", weights=("dmdnet",),
                 tags=("network", "landmarks", "references"))
METHODS.register("asffnet", "baselines.asffnet.method:ASFFNetMethod",
                 description="ASFFNet-512 (Li et al., CVPR 2020), specific restoration guided by the best-matching reference",
                 params="baselines.asffnet.params:ASFFNetParams", weights=("asffnet",),
                 tags=("network", "landmarks", "references"))
METHODS.register("dfdnet", "baselines.dfdnet.method:DFDNetMethod",
                 description="DFDNet (Li et al., ECCV 2020), multi-scale component dictionaries",
                 params="baselines.params:DFDNetParams", weights=("dfdnet-generator", "dfdnet-dictionary"),
                 tags=("network", "landmarks"))
METHODS.register("gfpgan", "baselines.gfpgan.method:GFPGANMethod",
                 description="GFPGAN v1.4 (TencentARC), deterministic: stored noise maps unless seed= is given",
                 aliases=("gfpgan-v1.4",), params="baselines.params:GFPGANParams", weights=("gfpgan-v1.4",),
                 tags=("network",))
METHODS.register("codeformer", "baselines.codeformer.method:CodeFormerMethod",
                 description="CodeFormer (sczhou), fidelity weight w in [0, 1] (0: codebook only, 1: most faithful)",
                 params="baselines.params:CodeFormerParams", weights=("codeformer",), tags=("network",))
METHODS.register("restoreformer", "baselines.restoreformer.method:RestoreFormerMethod",
                 description="RestoreFormer (Wang et al., CVPR 2022), the checkpoint released with GFPGAN",
                 aliases=("rf",), weights=("restoreformer",), tags=("network",))
METHODS.register("restoreformer++", "baselines.restoreformer.method:RestoreFormerPPMethod",
                 description="RestoreFormer++ (Wang et al., TPAMI 2023), multi-scale cross-attention",
                 aliases=("restoreformerpp", "rf++"), weights=("restoreformer++",), tags=("network",))
METHODS.register("lq", "baselines.classical:LQMethod",
                 description="the degraded input as given (no restoration)",
                 tags=("classical",))
METHODS.register("bicubic", "baselines.classical:BicubicMethod",
                 description=("native-resolution LQ upsampled with OpenCV bicubic (INTER_CUBIC); "
                              "the LQ itself where there is no native LQ (recorded)"),
                 tags=("classical",))


def method_names() -> list[str]:
    """Canonical names of every registered method (plugins included; ``external:`` is a spec form, not a name)."""
    return METHODS.names()


def method_class(name: str) -> type[RestorationMethod]:
    """The class of ``name`` (alias, case and ``_``/``-`` insensitive; unknown names get "did you mean")."""
    return METHODS.get(name)


def _external_spec(spec: str) -> dict[str, str]:
    rest = spec.partition(":")[2]
    label, eq, folder = rest.partition("=")
    if not eq or not label.strip() or not folder.strip():
        raise ConfigError(f"external methods are written {EXTERNAL_FORM}, got {spec!r}")
    return {"label": label.strip(), "folder": folder.strip()}


def _is_external(name: str) -> bool:
    return name.strip().lower() == "external"


def parse_method_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """``'codeformer:w=0.7'`` -> ``('codeformer', {'w': 0.7})`` (canonical name, given parameters typed by the
    method's params dataclass); ``'external:x=/p'`` -> ``('external', {'label': 'x', 'folder': '/p'})``.
    Unknown names, unknown parameters and badly typed values are :class:`~celebref.errors.ConfigError`\\ s."""
    spec = str(spec).strip()
    if _is_external(spec.partition(":")[0]):
        return "external", _external_spec(spec)
    name, raw = parse_spec(spec)
    entry = METHODS.entry(name)
    ptype = entry.params_type() or getattr(entry.load(), "params_type", lambda: None)()
    if ptype is None:
        if raw:
            raise ConfigError(f"method {entry.name!r} takes no parameters, got {', '.join(sorted(raw))} in {spec!r}")
        return entry.name, {}
    params = build_params(ptype, raw, owner=f"method {entry.name!r}")
    return entry.name, {k: getattr(params, k) for k in raw}


def create_method(spec: str, **common: Any) -> RestorationMethod:
    """Instantiate a method from its spec. ``common`` = device, precision, landmark_policy."""
    name, params = parse_method_spec(spec)
    cls = METHODS.get(name) if name != "external" else _load_external()
    return cls(**common, **params)


def _load_external() -> type[RestorationMethod]:
    from celebref.registry import load_target

    return load_target(EXTERNAL)
