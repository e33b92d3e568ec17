"""Connectors to the systems leads live in, one module each, behind the protocols in `base`."""
