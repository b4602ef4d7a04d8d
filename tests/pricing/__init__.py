"""Tests of the cost engine (controller/pricing)."""
