"""Launchers of the bench project (Hydra finds them here: hydra/launcher=slurm)."""
