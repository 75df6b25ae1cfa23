"""infra-mgr: one service for a city's network, power and private cloud."""

__version__ = "0.1.0"
