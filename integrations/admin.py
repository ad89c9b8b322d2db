import integrations.outbound.admin  # noqa: F401
