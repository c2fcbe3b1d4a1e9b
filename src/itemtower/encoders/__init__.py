"""Pretrained encoders used beside the tower: MiniLM / multilingual-e5 text encoders and their on-disk vector
cache (text.py: the distillation teacher, the text baselines, reinforce --encoder). Photos: itemtower.images."""
