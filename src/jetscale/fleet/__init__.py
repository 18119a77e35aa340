"""``jetscale up`` / ``jetscale demo``: a local autoscaled fleet of JetStream-compatible replicas.

Replicas are ``jetscale serve`` processes, like pods (``replicas``); a router in front of the ready ones,
like a Service (``router``); metrics scraped directly (``scrape``) or through a real Prometheus
(``prometheus``); the HPA of ``jetscale.hpa`` run every sync period over them (``controller``); all of
it wired by ``fleet``, on a clock that can run faster than the wall (``clock``). ``view`` draws the live
terminal view and ``demo`` drives the demo scenario. docs/fleet.md describes the whole.
"""

from jetscale.fleet.clock import FleetClock
from jetscale.fleet.controller import FleetController, SyncRecord
from jetscale.fleet.fleet import Fleet, FleetConfig
from jetscale.fleet.replicas import ReplicaCommand, ReplicaSet, ReplicaState, ReplicaTiming, ReplicaView, ServeCommand
from jetscale.fleet.router import Router, RoutingPolicy

__all__ = [
    "Fleet",
    "FleetClock",
    "FleetConfig",
    "FleetController",
    "ReplicaCommand",
    "ReplicaSet",
    "ReplicaState",
    "ReplicaTiming",
    "ReplicaView",
    "Router",
    "RoutingPolicy",
    "ServeCommand",
    "SyncRecord",
]
