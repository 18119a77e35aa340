"""``jetscale load``: a load generator for JetStream (HTTP, gRPC) and OpenAI-compatible inference servers.

The pure parts (no clock, no I/O, seeded) are ``workload`` (request sizes), ``arrivals`` (open-loop
Poisson shapes, closed loop), ``trace`` (replayed arrivals) and ``stats`` (percentiles, throughput, SLOs).
``launch.run_load`` checks a config, runs the locust-based generator in its own process (``runner``,
``users``: locust patches its process with gevent, so only that process imports it) and writes the
reports (``report``, ``plots``). docs/load.md describes the whole tool.
"""

from jetscale.load.arrivals import (
    ClosedLoop,
    RateShape,
    ShapeKind,
    ThinkKind,
    parse_shape,
    poisson_arrivals,
)
from jetscale.load.config import LoadConfig, Mode, Plan, build_plan, parse_options
from jetscale.load.protocol import Api, Target
from jetscale.load.records import Outcome, RecordBuffer, Records
from jetscale.load.stats import Dist, Metric, Slo, Summary, parse_slos, summarize
from jetscale.load.trace import Trace, parse_trace
from jetscale.load.workload import DatasetWorkload, DistributionWorkload, LengthDist, Sizes, Workload, parse_workload

__all__ = [
    "Api",
    "ClosedLoop",
    "DatasetWorkload",
    "Dist",
    "DistributionWorkload",
    "LengthDist",
    "LoadConfig",
    "Metric",
    "Mode",
    "Outcome",
    "Plan",
    "RateShape",
    "RecordBuffer",
    "Records",
    "ShapeKind",
    "Sizes",
    "Slo",
    "Summary",
    "Target",
    "ThinkKind",
    "Trace",
    "Workload",
    "build_plan",
    "parse_options",
    "parse_shape",
    "parse_slos",
    "parse_trace",
    "parse_workload",
    "poisson_arrivals",
    "summarize",
]
