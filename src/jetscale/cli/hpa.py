"""``jetscale hpa``: read, explain and run the autoscaling/v2 algorithm on a manifest."""

from __future__ import annotations

import typer

__all__ = ["app"]

app = typer.Typer(help="The Kubernetes HPA (autoscaling/v2) algorithm on your manifest.", no_args_is_help=True)
