"""Power collectors: SNMP UPS, NUT and Modbus TCP, each returning :class:`PowerReadings`.

A collector talks to one device and returns canonical readings (NUT's names, values in the units
of ``readings.CANONICAL``) with the problems it met; it never touches the database and never
raises for device trouble (timeouts, refusals, ``ERR`` replies, garbage, sentinels). Vendor
differences are data: ``power/oids.yaml`` for SNMP, ``power/maps/*.yaml`` for Modbus.

Every collector is one module behind one contract (:mod:`.base`): it parses the URLs of its
scheme and its session class implements :class:`~.base.DeviceSession`; the table
:data:`~.base.COLLECTORS` finds it by URL scheme. The modules are imported on first use so that
importing this package costs nothing (and does not need pymodbus) until a protocol is used.
"""
