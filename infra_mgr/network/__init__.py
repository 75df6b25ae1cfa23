"""Network: SNMP polling and discovery of devices, interfaces and links; traps."""
