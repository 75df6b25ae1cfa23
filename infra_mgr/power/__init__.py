"""Power: UPS, diesel rotary UPS and generator telemetry, the power chain, outages, autonomy and PUE."""
