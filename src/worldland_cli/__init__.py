"""Worldland provider, renter and support toolkit."""

__version__ = "0.1.0"
