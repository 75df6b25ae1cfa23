"""Time series for any domain: raw samples, min/avg/max roll-ups, retention (power first)."""
