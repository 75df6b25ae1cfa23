"""The simulated city: real peer programs (snmpsim, PostgreSQL, …) started on loopback."""
