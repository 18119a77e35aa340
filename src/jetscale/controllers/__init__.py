"""Autoscalers as policies over one interface (``api``): KEDA over the exact HPA (``keda``), Knative's KPA
(``kpa``) and a queueing-model controller (``queueing``). Pure: no clock, no I/O.
"""
