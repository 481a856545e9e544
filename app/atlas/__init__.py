"""The per-unit atlas: a static web site of every unit, from what the offline jobs wrote (tools/atlas.py)."""
