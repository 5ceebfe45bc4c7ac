from embedbench.gate.cli import main

raise SystemExit(main())
