"""Generate a dataset of play: the game's simulator driven by its exploring agent.

Episodes run in batches on the chosen device (the simulator is batched torch code),
are grouped into shards, and each shard is written atomically. Every episode's world
seed and the agent's seed derive from the dataset seed, so a shard can be regenerated
exactly: an interrupted run resumes by skipping the shards already complete. At the
end the coverage (fraction of the world visited) and the action histogram are
summarised from the per-shard statistics.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import torch

from neural_engine.data.shards import (DatasetInfo, episode_seed, read_info, read_shard_stats,
                                       shard_path, write_info, write_shard)
from neural_engine.errors import EngineError
from neural_engine.games import Game
from neural_engine.progress import Progress


@dataclass
class Summary:
    """What a dataset covers: coverage per episode and how often each input was used."""

    episodes: int
    ticks: int
    coverage_mean: float
    coverage_min: float
    button_fraction: dict[str, float]
    mouse_fraction: float

    def table(self) -> str:
        lines = [f"episodes {self.episodes}, ticks {self.ticks}",
                 f"coverage (fraction of world visited): mean {self.coverage_mean:.3f}, "
                 f"min {self.coverage_min:.3f}",
                 "action histogram (fraction of ticks held):"]
        for name, frac in self.button_fraction.items():
            lines.append(f"  {name:<14} {frac:6.3f} {'#' * round(frac * 40)}")
        lines.append(f"  {'mouse moving':<14} {self.mouse_fraction:6.3f} "
                     f"{'#' * round(self.mouse_fraction * 40)}")
        return "\n".join(lines)


def _prepare(game: Game, out: Path, info: DatasetInfo) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EngineError(f"cannot create the output folder: {exc.strerror}",
                          where=str(out)) from None
    if (out / "dataset.json").exists():
        existing = read_info(out)
        if existing != info:
            raise EngineError("this folder holds a dataset made with other settings; "
                              "choose another --out or remove it", where=str(out))
        return
    if any(out.glob("shard-*.safetensors")):
        raise EngineError("folder holds shards but no dataset.json; choose another --out",
                          where=str(out))
    try:
        write_info(out, info)
    except OSError as exc:
        raise EngineError(f"cannot write to the output folder: {exc.strerror}",
                          where=str(out)) from None


def _run_shard(game: Game, info: DatasetInfo, shard: int, device: torch.device,
               progress: Progress) -> tuple[dict[str, torch.Tensor], dict]:
    episodes = info.shard_episodes(shard)
    frames, actions, states, seeds, coverage = [], [], [], [], []
    nb = len(info.buttons)
    for start in range(episodes.start, episodes.stop, info.batch):
        ids = list(range(start, min(start + info.batch, episodes.stop)))
        world_seeds = [episode_seed(info.seed, i, game.spec.seeds.held_out) for i in ids]
        sim = game.simulator(batch=len(ids), device=device)
        agent = game.agent(batch=len(ids), device=device, seed=episode_seed(info.seed + 1, start))
        first = sim.reset(world_seeds)
        agent.reset(sim)
        clip_frames = [first]
        clip_actions = [torch.zeros(len(ids), game.spec.actions.dim, device=device)]
        clip_states = [sim.state()]
        for _ in range(1, info.frames):
            action = agent.act(sim)
            clip_frames.append(sim.step(action))
            clip_actions.append(action)
            clip_states.append(sim.state())
            progress.update(len(ids))
        progress.update(len(ids))
        frames.append(torch.stack(clip_frames, 1).cpu())     # (b, T, H, W, 3)
        actions.append(torch.stack(clip_actions, 1).cpu())   # (b, T, A)
        states.append(torch.stack(clip_states, 1).cpu())     # (b, T, S)
        seeds.extend(world_seeds)
        coverage.extend(sim.visited_fraction().cpu().tolist())
    act = torch.cat(actions)
    stats = {
        "episodes": len(episodes),
        "ticks": int(act.shape[0] * act.shape[1]),
        "coverage": coverage,
        "button_ticks": (act[..., :nb] > 0.5).sum((0, 1)).tolist(),
        "mouse_ticks": int((act[..., nb:].abs() > 0.02).any(-1).sum()) if act.shape[-1] > nb else 0,
    }
    tensors = {"frames": torch.cat(frames), "actions": act, "state": torch.cat(states),
               "seeds": torch.tensor(seeds, dtype=torch.int64)}
    return tensors, stats


def generate(game: Game, out: str | Path, episodes: int, frames: int, seed: int = 0,
             episodes_per_shard: int = 64, batch: int = 16,
             device: str | torch.device = "cpu", quiet: bool = False) -> Summary:
    """Write (or finish writing) a dataset; return its summary."""
    out = Path(out)
    if episodes < 1 or frames < 2:
        raise EngineError("need at least 1 episode of at least 2 frames")
    sim_probe = game.simulator(batch=1, device="cpu")
    info = DatasetInfo(
        game=game.spec.name, episodes=episodes, frames=frames,
        episodes_per_shard=min(episodes_per_shard, episodes), batch=batch, seed=seed,
        width=game.spec.width, height=game.spec.height, tick_rate=game.spec.tick_rate,
        buttons=game.spec.actions.buttons, mouse_axes=game.spec.actions.mouse_axes,
        state_names=tuple(sim_probe.state_names))
    _prepare(game, out, info)
    all_stats = {s: read_shard_stats(shard_path(out, s)) for s in range(info.shards)}
    todo = [s for s, st in all_stats.items() if st is None]
    done_frames = sum(len(info.shard_episodes(s)) for s in all_stats if s not in todo) * frames
    progress = Progress(episodes * frames, "datagen", unit="frames", initial=done_frames,
                        stream=io.StringIO() if quiet else None)
    device = torch.device(device)
    for shard in todo:
        tensors, stats = _run_shard(game, info, shard, device, progress)
        write_shard(shard_path(out, shard), tensors, stats)
        all_stats[shard] = stats
    progress.close()
    return summarise(info, [all_stats[s] for s in range(info.shards)])


def summarise(info: DatasetInfo, stats: list[dict]) -> Summary:
    ticks = sum(s["ticks"] for s in stats)
    coverage = [c for s in stats for c in s["coverage"]]
    button_ticks = [sum(s["button_ticks"][i] for s in stats) for i in range(len(info.buttons))]
    return Summary(
        episodes=len(coverage), ticks=ticks,
        coverage_mean=sum(coverage) / len(coverage), coverage_min=min(coverage),
        button_fraction={b: n / ticks for b, n in zip(info.buttons, button_ticks)},
        mouse_fraction=sum(s["mouse_ticks"] for s in stats) / ticks)
