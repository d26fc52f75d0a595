"""The HTTP layer: FastAPI routers, wire models, error mapping and middleware."""
