from codearena.cli import main

raise SystemExit(main())
