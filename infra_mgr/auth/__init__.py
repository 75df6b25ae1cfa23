"""Users, roles and permissions, API tokens, dashboard sessions, secret encryption, audit log."""
