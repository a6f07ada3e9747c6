from sla_bot.cli import main

raise SystemExit(main())
