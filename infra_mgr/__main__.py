"""``python -m infra_mgr`` is the same as the ``infra-mgr`` command."""

from infra_mgr.cli import main

main()
