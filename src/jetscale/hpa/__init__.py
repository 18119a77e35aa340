"""The Kubernetes HorizontalPodAutoscaler (autoscaling/v2) as a pure core: no clock, no I/O.

Mirrors ``pkg/controller/podautoscaler``: ``spec`` (the API types, defaults and validation),
``replicas`` (replica_calculator.go), ``behavior`` (the normalization of horizontal.go) and
``controller`` (one reconcile: observation in, decision and new history out).
"""
