"""leadflow: lead-flow automation for revenue-operations teams."""

__version__ = "0.1.0"
