"""The FastAPI application of the inference service; ``create_app`` in ``main`` is the entry point."""
