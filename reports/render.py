"""Jinja2 rendering with autoescaping always on (file and folder names come from crawls: untrusted)."""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

import jinja2

from celebref import __version__


def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("reports", "templates"),
        autoescape=True,  # every template, whatever its extension
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["celebref_version"] = __version__
    return env


def render(template: str, **context) -> str:
    return _env().get_template(template).render(**context)


def copy_static(dst: Path) -> None:
    """Copy the report's CSS/JS (shipped in the package; no CDN) into ``dst``."""
    dst.mkdir(parents=True, exist_ok=True)
    for f in resources.files("reports").joinpath("static").iterdir():
        if f.is_file():
            with resources.as_file(f) as p:
                shutil.copyfile(p, dst / f.name)
