"""`python -m vla_ros ...` is the same as the `vla-ros` command."""

from vla_ros.commands.main import main

raise SystemExit(main())
