"""SSH: configuration backup (collector, masking, versions, compliance) and CLI discovery."""
