"""SNMP collectors: the poll engine (gufo-snmp), OID tables as data, NAPALM-style getters."""
