"""The ways in: the gRPC service, the HTTP API and its OpenAPI document."""
