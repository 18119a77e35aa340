"""``jetscale profile``: black-box measurement of a running server and the fit of a replica's timing to it.

``client`` (one timed streamed request), ``measure`` (prefill points, decode waves, closed loops),
``runner`` (the sweep, its bounds, resuming), ``points`` (what is measured), ``fit`` (robust least
squares to ``jetscale.engine.timing.MeasuredTiming``), ``predict`` (the engine's view of the same
measurements) and ``output`` (profile.yaml, report.html).
"""
