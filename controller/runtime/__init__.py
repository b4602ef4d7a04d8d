"""The controller's imperative shell: desired-state holder, sources, workers, status (DESIGN.md §2)."""
