"""hydra/launcher=slurm: hydra-submitit-launcher's Slurm launcher, waiting for its jobs without sacct and
never for ever (bench.slurm.launch). Hydra loads launchers only from the hydra_plugins package, and imports
every module here on each run: this one imports nothing of bench until a sweep launches."""

from __future__ import annotations

from typing import Any, Sequence

from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher


class BenchSlurmLauncher(SlurmLauncher):
    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[Any]:
        from bench.slurm import launch

        return launch(self, job_overrides, initial_job_idx)
