"""The one event log every domain writes to and the dashboard and alerts read."""
