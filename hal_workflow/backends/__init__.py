"""Backend adapters and the registry that builds them from specs."""

from hal_workflow.backends.registry import (
    BUILTIN_BACKENDS,
    ENTRY_POINT_GROUP,
    BackendSpec,
    available_backends,
    get_backend,
    normalize_spec,
    register_backend,
)

__all__ = [
    "BUILTIN_BACKENDS",
    "ENTRY_POINT_GROUP",
    "BackendSpec",
    "available_backends",
    "get_backend",
    "normalize_spec",
    "register_backend",
]
