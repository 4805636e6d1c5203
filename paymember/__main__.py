from paymember.cli import main

raise SystemExit(main())
