"""Generated gRPC/protobuf code for JetStream's ``jetstream_proto.Orchestrator`` service (see jetstream.proto)."""
