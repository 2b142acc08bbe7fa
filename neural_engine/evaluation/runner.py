"""The evaluation: every named sampler of one world model, against the simulator.

The work is built once (``score.build_workload``: held-out fidelity cases, long realism
rollouts, one-step points and scripted control tests, all replayed in the simulator).
The simulator's own frames are scored first, as the reference value of every measure;
then, before any sampler runs, what bounds the one-step gates (``ceilings.py``: the
autoencoder's reconstruction and the denoiser's posterior mean); then each sampler's
frames are scored the same way, its playability gates judged (``gates.py``), and two
measures only a streaming sampler has are added:

- response latency: ticks from an input change to the first *shown* frame that
  visibly differs from a stream without the change, with and without late binding;
- throughput: ticks per second and milliseconds per tick of the fidelity rollouts, on
  the machine used.
"""

from __future__ import annotations

import platform
import time
from dataclasses import asdict, replace

import torch

from neural_engine.evaluation.cases import Replay
from neural_engine.evaluation.ceilings import ceilings
from neural_engine.evaluation.gates import judge
from neural_engine.evaluation.probe import MotionProbe
from neural_engine.evaluation.realism import frechet_to_bank
from neural_engine.evaluation.rollout import rollout
from neural_engine.evaluation.score import VISIBLE_LEVELS, build_workload, score, truth_dreamer
from neural_engine.evaluation.settings import EvalSettings
from neural_engine.games import Game
from neural_engine.model.world import WorldModel
from neural_engine.runtime.world import WorldSession
from neural_engine.sampler.stream import SamplerConfig, named_sampler


class ModelDreamer:
    """The world model under one sampler, as a ``score.Dreamer``: rollouts of at most
    ``max_streams`` rows at a time; the first call's speed is kept as its throughput."""

    def __init__(self, model: WorldModel, cfg: SamplerConfig, seed: int, max_streams: int):
        self.model, self.cfg, self.seed, self.max_streams = model, cfg, seed, max_streams
        self.device = next(model.parameters()).device
        self.first_call: tuple[int, int, float] | None = None     # (streams, ticks, seconds)

    def __call__(self, replay: Replay, frames: int | None = None) -> torch.Tensor:
        b, t = replay.actions.shape[:2]
        wanted = t if frames is None else min(frames, t)
        start = time.perf_counter()
        out = []
        for lo in range(0, b, self.max_streams):
            rows = slice(lo, lo + self.max_streams)
            out.append(rollout(self.model, self.cfg, replay.context[rows],
                               replay.context_actions[rows], replay.actions[rows],
                               seed=self.seed * 100_003 + lo,
                               cuda_graphs=self.device.type == "cuda", frames=frames).cpu())
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        if self.first_call is None:
            ticks = wanted + self.cfg.window - 1
            self.first_call = (b, ticks, time.perf_counter() - start)
        return torch.cat(out)


@torch.no_grad()
def response_latency(model: WorldModel, cfg: SamplerConfig, context: torch.Tensor,
                     context_actions: torch.Tensor, change: torch.Tensor, ticks: int,
                     change_at: int = 8, seed: int = 0) -> int | None:
    """Shown-frame ticks from switching idle → ``change`` (A,) until a visible difference."""
    streams = []
    for variant in (0, 1):
        world = WorldSession(model, cfg, 1, cuda_graphs=False)
        world.reset_frames(context, context_actions, seed=seed)
        shown, last = [], None
        for tick in range(ticks):
            action = torch.zeros(1, change.shape[0], device=world.device, dtype=world.dtype)
            if variant and tick >= change_at:
                action[0] = change.to(world.device, world.dtype)
            frames, ready = world.step(action, input_changed=bool(variant) and tick == change_at)
            if ready[0]:
                last = frames[0].float()
            shown.append(last)
        streams.append(shown)
    for tick in range(change_at, ticks):
        a, b = streams[0][tick], streams[1][tick]
        if a is not None and (a - b).abs().mean().item() >= VISIBLE_LEVELS:
            return tick - change_at
    return None


def _public(scores: dict) -> dict:
    return {k: v for k, v in scores.items() if not k.startswith("_")}


def evaluate(game: Game, model: WorldModel, settings: EvalSettings,
             probe: MotionProbe | None = None, progress=print, profile: str = "custom",
             work=None, partial=None) -> dict:
    """Run every sampler; return a JSON-able report (see ``report.py`` for the page).

    ``work``: a workload built earlier for these settings (training validation keeps
    one), else built here. ``partial(report)`` is called with the report so far after
    each sampler, so a run cut short keeps what it measured. Keys starting with ``_``
    hold frames, not numbers.
    """
    device = next(model.parameters()).device
    progress(f"eval: replaying the held-out work in the simulator ({profile} profile)")
    work = work or build_workload(game, settings)
    truth = score(work, truth_dreamer, probe)
    truth["realism"]["frechet_to_bank_per_minute"] = frechet_to_bank(work.long.truth, work.bank,
                                                                     work.rate)
    progress("eval: ceilings")
    bounds = ceilings(model, work.one_step, settings.seed, settings.max_streams)
    space = game.spec.actions
    change = torch.zeros(space.dim)
    for name in settings.latency_buttons or game.spec.control.latency:
        if name in space.buttons:
            change[space.buttons.index(name)] = 1.0
    max_frames = model.config.denoiser.max_frames
    everyone, configs, extra = {}, {}, {}
    for name in settings.samplers:
        cfg = named_sampler(name, max_frames, settings.teacher_steps)
        dreamer = ModelDreamer(model, cfg, settings.seed, settings.max_streams)
        everyone[name] = score(work, dreamer, probe,
                               progress=lambda m, n=name: progress(f"eval {n}: {m}"))
        streams, ticks, seconds = dreamer.first_call
        progress(f"eval {name}: response latency")
        ctx, ctx_actions = work.fidelity.context[:1], work.fidelity.context_actions[:1]
        extra[name] = {
            "ms_per_tick": seconds * 1e3 / ticks, "ticks_per_s": ticks / seconds,
            "streams": streams,
            "latency_ticks": response_latency(model, cfg, ctx, ctx_actions, change,
                                              settings.latency_ticks),
            "latency_ticks_late_binding": response_latency(
                model, replace(cfg, late_binding=True), ctx, ctx_actions, change,
                settings.latency_ticks)}
        configs[name] = asdict(cfg)
        if partial is not None:
            partial(_assemble(game, device, model, settings, profile, work, truth, bounds,
                              everyone, configs, extra))
    return _assemble(game, device, model, settings, profile, work, truth, bounds, everyone,
                     configs, extra)


def _assemble(game, device, model, settings, profile, work, truth, bounds, everyone, configs,
              extra) -> dict:
    """The report of the samplers scored so far."""
    scored = game.spec.control.scored
    results = []
    for name, scores in everyone.items():
        results.append({"sampler": name, "config": configs[name], **_public(scores),
                        **extra[name], "gates": judge(scores, name, everyone, scored)})
    machine = (torch.cuda.get_device_name(device) if device.type == "cuda"
               else f"CPU ({platform.machine()}, {torch.get_num_threads()} threads)")
    return {
        "game": game.spec.name, "machine": machine, "device": str(device),
        "dtype": str(next(model.parameters()).dtype).replace("torch.", ""),
        "torch": torch.__version__, "profile": profile, "settings": asdict(settings),
        "cases": work.fidelity.names, "drift_cases": work.long.names,
        "controls": [test.name for test, _ in work.controls],
        "axes": list(scored),
        "simulator": _public(truth) | {"gates": judge(truth, "simulator", {}, scored)},
        "ceilings": bounds,
        "results": results,
        "_samples": {name: s["_fidelity"] for name, s in everyone.items()},
        "_truth": work.fidelity.truth,
        "_contact": {name: s["_contact"] for name, s in everyone.items()},
    }
