from bincount.cli import main

raise SystemExit(main())
