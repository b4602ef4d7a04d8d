"""Tests of the pure reconcilers (controller/reconcilers): table and golden tests, fake clock, no I/O."""
