"""A local web page (and its JSON API) for the energy estimate and the bounds: ``energy-complexity serve``.

``create_app()`` builds the FastAPI application; docs/web.md describes the page and the API.
"""

from __future__ import annotations

__all__ = ["create_app"]


def create_app(*args, **kwargs):
    """The FastAPI application (imported lazily: fastapi is the optional ``web`` extra)."""
    from energy_complexity.web.app import create_app as _create
    return _create(*args, **kwargs)
