"""sla-bot: makes sure no sales lead sits untouched."""

__version__ = "0.1.0"
