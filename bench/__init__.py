"""`make bench`: side-by-side performance measurements of embedbench (not part of the test suite or CI)."""
