"""`python -m device.service` is `python -m device serve`."""

from device.service.cli import main

raise SystemExit(main())
