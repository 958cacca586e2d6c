"""The HTTP layer: routes, middlewares and handlers."""
