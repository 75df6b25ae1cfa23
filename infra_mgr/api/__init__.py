"""REST API: the app factory, shared dependencies and conventions every domain router follows."""
