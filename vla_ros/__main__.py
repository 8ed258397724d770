"""`python -m vla_ros ...` is the same as the `vla-ros` command."""

from vla_ros.cli import main

raise SystemExit(main())
