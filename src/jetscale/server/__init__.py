"""``jetscale serve``: a JetStream-compatible model server around the engine model."""
