"""The bedside sleep appliance: on-device pipeline, daemon and CLI."""

__version__ = "0.1.0"
__all__ = ["__version__"]
