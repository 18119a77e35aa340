"""One JetStream replica as a pure state machine on a simulated accelerator."""
