"""Thin click layer: parse, call the library, render."""
