"""Tests of the owner-configuration package (controller/config)."""
