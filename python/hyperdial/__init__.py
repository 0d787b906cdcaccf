"""hyperdial Python client (being written)."""
