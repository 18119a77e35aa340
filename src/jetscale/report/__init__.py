"""Reports: the fleet/simulator timeline (plots and an HTML page) shared by ``demo``, ``up`` and ``simulate``."""
