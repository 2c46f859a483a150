from occcore.cli import main

raise SystemExit(main())
