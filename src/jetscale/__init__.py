"""jetscale: autoscale JetStream-style LLM model servers the way Kubernetes does.

The package is three pure cores (``hpa``, ``engine``, ``load.workload``) and the shells that give them a
clock and I/O (server, fleet, simulator, tuner, CLI). See README.md for the picture.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
