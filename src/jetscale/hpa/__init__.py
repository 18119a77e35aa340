"""The Kubernetes HorizontalPodAutoscaler (autoscaling/v2) as a pure core: no clock, no I/O.

Mirrors ``pkg/controller/podautoscaler``: ``spec`` (the API types, defaults and validation),
``versions`` (the feature-gate defaults of each supported Kubernetes release), ``replicas`` (one
metric's proposal; the calculators of replica_calculator.go are in ``pods`` and ``object_external``),
``proposals`` (computeReplicasForMetrics), ``behavior`` (the normalization of horizontal.go, over
``stabilization`` and ``ratelimits``), ``conditions`` and ``controller`` (one reconcile: observation
in, decision and new history out).
"""
