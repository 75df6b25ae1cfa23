"""Inventory: the source of truth (sites, devices, interfaces, links, IPAM, credentials)."""
