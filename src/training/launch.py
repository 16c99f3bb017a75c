"""How the ranks of a training job start: Lightning DDP under Hydra, and SLURM's requeue.

DDP: ranks > 0 re-run exactly this job, in its folder, on its MLflow run.

Lightning's DDP launcher starts the other ranks of a node by re-running the script with `sys.argv`.
Inside a Hydra multirun that command still carries `-m` and the sweep (`sampling=xx,xy`), so every child
would run the whole sweep again; and it points the child at `hydra.run.dir`, which in a multirun is not
the job's folder. `HydraDDPStrategy` launches children with the job's own resolved overrides, its output
folder and no `-m`; it hands them the MLflow run id (they never open a run) and the checkpoint rank 0
resumes from (a re-run sweep resumes jobs by itself: the children's command must say so), and when the job
ends it tears down the process group and the rendezvous variables so the next job of the sweep starts afresh.
"""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch.distributed as dist
from lightning.pytorch.strategies import DDPStrategy
from lightning.pytorch.strategies.launchers import _SubprocessScriptLauncher

RUN_ID_ENV = "XLIR_MLFLOW_RUN_ID"  # set for child ranks: the MLflow run that rank 0 opened
# Rendezvous variables the launcher writes into its own environment; they must not leak into the next job.
_LAUNCH_ENV = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE", RUN_ID_ENV)
# Hydra flags that choose the config (kept for the children); everything else positional is an override.
_CONFIG_FLAGS = ("--config-path", "-cp", "--config-name", "-cn", "--config-dir", "-cd")


def config_flags(argv: Sequence[str]) -> list[str]:
    """The config-selecting flags of a Hydra command line (`-cn x`, `--config-name=x`), in order."""
    out: list[str] = []
    it = iter(argv)
    for arg in it:
        name = arg.split("=", 1)[0]
        if name in _CONFIG_FLAGS:
            out.append(arg)
            if "=" not in arg:
                out.append(next(it, ""))
    return out


def child_command(
    main: Sequence[str], argv: Sequence[str], job_overrides: Sequence[str], hydra_overrides: Sequence[str],
    output_dir: str, job_name: str, local_rank: int, checkpoint: str | None = None,
) -> list[str]:
    """Command line of a child rank: this job only (no `-m`, no sweep), writing into the job's folder.

    `main` is how the script was started (`[python, -m, src.run]`), `argv` its arguments, `job_overrides`
    the job's resolved task overrides (`sampling=xx` for one job of `sampling=xx,xy`). Of the Hydra
    overrides only `hydra.job.chdir` is kept: a launcher or sweeper override would submit jobs again.
    `checkpoint`: the file rank 0 resumes from, given to the child as `ckpt_path` (replacing ckpt_path/resume).
    """
    keep = [o for o in hydra_overrides if o.split("=", 1)[0].lstrip("+~") == "hydra.job.chdir"]
    if checkpoint:
        job_overrides = [*(o for o in job_overrides if o.split("=", 1)[0].lstrip("+~") not in ("ckpt_path", "resume")),
                         f'ckpt_path="{checkpoint}"']
    return [
        *main, *config_flags(argv), *job_overrides, *keep,
        f'hydra.run.dir="{output_dir}"',
        "hydra.output_subdir=null",  # rank 0 already wrote .hydra/; children must not overwrite it
        f"hydra.job.name={job_name}_rank{local_rank}",  # each rank logs to its own file in the folder
    ]


def main_command() -> list[str]:
    """How this process was started: `python -m module` or `python script.py`."""
    import __main__

    spec = getattr(__main__, "__spec__", None)
    if spec is None:
        return [sys.executable, os.path.abspath(sys.argv[0])]
    return [sys.executable, "-m", spec.name]


def fit_checkpoint(function: Callable, args: Sequence[Any], kwargs: Mapping[str, Any]) -> str | None:
    """The checkpoint file a trainer entry point (`trainer._fit_impl`) was called with, else None."""
    try:
        value = inspect.signature(function).bind_partial(*args, **kwargs).arguments.get("ckpt_path")
    except TypeError:
        return None
    return str(value) if value and Path(str(value)).is_file() else None  # not Lightning's "last"/"best" names


def inherited_run_id() -> str | None:
    """The MLflow run id handed down by rank 0, for a child rank; None on the launching process."""
    if os.environ.get("LOCAL_RANK", "0") == "0":
        return None  # also ignores a stale id left in a sweep's launching process
    return os.environ.get(RUN_ID_ENV) or None


class HydraSubprocessLauncher(_SubprocessScriptLauncher):
    """Lightning's subprocess launcher with Hydra-job-aware child commands and per-job clean-up."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._run_id: str | None = None
        self._checkpoint: str | None = None

    def launch(self, function: Callable, *args: Any, trainer: Any = None, **kwargs: Any) -> Any:
        """Start the children (rank 0 of a node), run `function`, then leave no distributed state behind."""
        saved = {k: os.environ.get(k) for k in _LAUNCH_ENV}
        spawns = not self.cluster_environment.creates_processes_externally  # decided before it sets LOCAL_RANK
        logger = getattr(trainer, "logger", None)
        self._run_id = getattr(logger, "run_id", None) if logger is not None else None
        self._checkpoint = fit_checkpoint(function, args, kwargs)
        try:
            return super().launch(function, *args, trainer=trainer, **kwargs)
        finally:
            # The next job of a multirun (same process) must spawn its own ranks on a fresh port.
            if dist.is_available() and dist.is_initialized():
                dist.destroy_process_group()
            if spawns:
                for key, value in saved.items():
                    if value is None:
                        os.environ.pop(key, None)
                    else:
                        os.environ[key] = value

    def _call_children_scripts(self) -> None:
        """Lightning's child start-up, with `child_command` instead of re-running `sys.argv`."""
        from hydra.core.hydra_config import HydraConfig

        if not HydraConfig.initialized():
            super()._call_children_scripts()
            return
        self._check_can_spawn_children()
        env = self.cluster_environment
        os.environ.update(MASTER_ADDR=env.main_address, MASTER_PORT=str(env.main_port),
                          NODE_RANK=str(env.node_rank()), LOCAL_RANK=str(env.local_rank()),
                          WORLD_SIZE=str(self.num_processes * self.num_nodes))
        hc = HydraConfig.get()
        from hydra.utils import get_original_cwd

        for local_rank in range(1, self.num_processes):
            child_env = {**os.environ, "LOCAL_RANK": str(local_rank)}
            if self._run_id:
                child_env[RUN_ID_ENV] = str(self._run_id)
            cmd = child_command(main_command(), sys.argv[1:], list(hc.overrides.task), list(hc.overrides.hydra),
                                hc.runtime.output_dir, hc.job.name, local_rank, self._checkpoint)
            self.procs.append(subprocess.Popen(cmd, env=child_env, cwd=get_original_cwd()))


class HydraDDPStrategy(DDPStrategy):
    """`strategy=ddp` whose launcher understands Hydra jobs; `timeout_s` bounds every collective.

    Rank 0 evaluates alone while the others wait at a barrier, so the timeout must exceed the longest
    evaluation (torch's default is 30 min).
    """

    def __init__(self, timeout_s: float = 7200.0, **kwargs: Any) -> None:
        super().__init__(timeout=timedelta(seconds=timeout_s), **kwargs)

    def _configure_launcher(self) -> None:
        """Popen launch (the default) goes through `HydraSubprocessLauncher`."""
        super()._configure_launcher()
        if isinstance(self._launcher, _SubprocessScriptLauncher):
            assert self.cluster_environment is not None
            self._launcher = HydraSubprocessLauncher(self.cluster_environment, self.num_processes, self.num_nodes)


def slurm_plugins(enabled: bool) -> dict[str, Any]:
    """`plugins=[SLURMEnvironment(auto_requeue=True)]` for the Trainer when running as a SLURM job.

    Under `hydra/launcher=submitit_slurm` the job is a SLURM task: on the requeue signal (SIGUSR1, see
    docs/reliability.md) Lightning saves `hpc_ckpt_N.ckpt` into the run folder and requeues the job; the requeued job
    (`SLURM_RESTART_COUNT` > 0, same folder) resumes from it and reopens its MLflow run (src/runs/record.py).
    """
    from lightning.pytorch.plugins.environments import SLURMEnvironment

    if not enabled or not SLURMEnvironment.detect():
        return {}
    return {"plugins": [SLURMEnvironment(auto_requeue=True)]}
