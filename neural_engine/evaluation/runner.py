"""The evaluation: every named sampler of one world model, against the simulator.

For each sampler, on the held-out cases of ``games/<game>/eval/cases.toml``:

- fidelity: the model streams from the cases' real context under their actions; each
  frame is compared with the simulator's frame under the same actions (PSNR, SSIM),
  averaged over the second that ends at each horizon (1, 2, 5, 10, 30 s) and over the
  whole first 2 s;
- drift: a long rollout (5 minutes by default) is measured without reference, by the
  distance of every frame to the nearest real frame of the game in a fixed feature
  space (``features.py``); reported per second and per minute, with
  ΔDrift = |mean of the last 5 s − mean of the first 5 s| as in the Rolling Forcing
  paper, and the same for every minute; the simulator's own frames under the same
  actions give the level a healthy world sits at;
- action control: the motion probe reads each consecutive pair of generated frames;
  its turn and move classes are compared with the true motion the same actions caused
  in the simulator (and, as the probe's own ceiling, with its reading of true frames);
- response latency: ticks from an input change to the first *shown* frame that
  visibly differs from a stream without the change, with and without late binding;
- throughput: ticks per second and milliseconds per tick of the rollouts, on the
  machine used.
"""

from __future__ import annotations

import platform
import time
from dataclasses import asdict, dataclass, field, replace

import torch

from neural_engine.evaluation.cases import load_cases, materialize
from neural_engine.evaluation.features import RealFrameBank
from neural_engine.evaluation.metrics import psnr, ssim
from neural_engine.evaluation.probe import MotionProbe, classes, motion_targets
from neural_engine.evaluation.rollout import decode_latents, encode_frames, rollout
from neural_engine.games import Game
from neural_engine.model.world import WorldModel
from neural_engine.sampler.stream import SamplerConfig, StreamSampler, named_sampler

HORIZONS = (1, 2, 5, 10, 30)
VISIBLE_LEVELS = 1.0          # mean absolute difference (of 255) that counts as visible


@dataclass(frozen=True)
class EvalSettings:
    samplers: tuple[str, ...] = ("rolling", "causal", "teacher", "rolling-nosink")
    seconds: float = 30.0
    drift_seconds: float = 300.0
    drift_cases: int = 2
    cases: int | None = None
    teacher_steps: int = 32
    latency_buttons: tuple[str, ...] = ("turn_right",)
    latency_ticks: int = 24
    seed: int = 1


@dataclass
class SamplerResult:
    sampler: str
    config: dict
    psnr: dict[str, float] = field(default_factory=dict)       # horizon → dB
    ssim: dict[str, float] = field(default_factory=dict)
    psnr_first_2s: float = 0.0
    ssim_first_2s: float = 0.0
    psnr_curve: list[float] = field(default_factory=list)      # per second
    drift_per_second: list[float] = field(default_factory=list)
    drift_per_minute: list[float] = field(default_factory=list)
    delta_drift: float = 0.0
    delta_drift_per_minute: list[float] = field(default_factory=list)
    drift_ratio_last_vs_first_minute: float | None = None   # None under two minutes
    turn_accuracy: float | None = None
    move_accuracy: float | None = None
    latency_ticks: int | None = None
    latency_ticks_late_binding: int | None = None
    ms_per_tick: float = 0.0
    ticks_per_s: float = 0.0
    streams: int = 0


def _per_second(values: torch.Tensor, rate: int) -> list[float]:
    """(B, T) per-frame values → mean per second of the stream."""
    seconds = values.shape[1] // rate
    return [values[:, s * rate:(s + 1) * rate].mean().item() for s in range(seconds)]


def drift_summary(distance: torch.Tensor, rate: int) -> dict:
    """(B, T) nearest-real-frame distances → per second/minute means and ΔDrift."""
    per_second = _per_second(distance, rate)
    five = 5 * rate
    delta = abs(distance[:, -five:].mean().item() - distance[:, :five].mean().item())
    minute = 60 * rate
    per_minute, delta_minute = [], []
    for m in range(max(1, distance.shape[1] // minute)):
        chunk = distance[:, m * minute:(m + 1) * minute]
        per_minute.append(chunk.mean().item())
        delta_minute.append(abs(chunk[:, -five:].mean().item() - chunk[:, :five].mean().item()))
    return {"drift_per_second": per_second, "drift_per_minute": per_minute,
            "delta_drift": delta, "delta_drift_per_minute": delta_minute,
            "drift_ratio_last_vs_first_minute":
                per_minute[-1] / max(per_minute[0], 1e-9) if len(per_minute) > 1 else None}


def control_accuracy(probe: MotionProbe, frames: torch.Tensor, states: torch.Tensor,
                     names: tuple[str, ...]) -> tuple[float, float]:
    """Probe's classes on consecutive frames (B, T, ...) vs the true motion classes."""
    truth_turn, truth_move = classes(motion_targets(states, names))           # (B, T − 1)
    with torch.no_grad():
        b, t = frames.shape[:2]
        before = frames[:, :-1].flatten(0, 1).to(next(probe.parameters()).device)
        after = frames[:, 1:].flatten(0, 1).to(before.device)
        read = torch.cat([probe(x, y) for x, y in zip(before.split(256), after.split(256))])
    turn, move = classes(read.view(b, t - 1, 3).cpu())
    return ((turn == truth_turn.cpu()).float().mean().item(),
            (move == truth_move.cpu()).float().mean().item())


@torch.no_grad()
def response_latency(model: WorldModel, cfg: SamplerConfig, context: torch.Tensor,
                     context_actions: torch.Tensor, change: torch.Tensor, ticks: int,
                     change_at: int = 8, seed: int = 0) -> int | None:
    """Shown-frame ticks from switching idle → ``change`` (A,) until a visible difference."""
    param = next(model.parameters())
    streams = []
    for variant in (0, 1):
        sampler = StreamSampler(model.denoiser, model.schedule, cfg, 1, param.device, param.dtype)
        sampler.reset(encode_frames(model, context.to(param.device), param.dtype),
                      context_actions.to(param.device, param.dtype), seed=seed)
        shown, last = [], None
        for tick in range(ticks):
            action = torch.zeros(1, change.shape[0], device=param.device, dtype=param.dtype)
            if variant and tick >= change_at:
                action[0] = change.to(param.device, param.dtype)
            out = sampler.step(action, input_changed=bool(variant) and tick == change_at)
            if out is not None:
                last = decode_latents(model, out[:, None])[0, 0].float()
            shown.append(last)
        streams.append(shown)
    for tick in range(change_at, ticks):
        a, b = streams[0][tick], streams[1][tick]
        if a is not None and (a - b).abs().mean().item() >= VISIBLE_LEVELS:
            return tick - change_at
    return None


def evaluate(game: Game, model: WorldModel, settings: EvalSettings,
             probe: MotionProbe | None = None, progress=print) -> dict:
    """Run every sampler; return a JSON-able report (see ``report.py`` for the page)."""
    device = next(model.parameters()).device
    rate = game.spec.tick_rate
    cases, folder = load_cases(game)
    ticks = round(settings.seconds * rate)
    replay = materialize(game, cases, folder, ticks, device="cpu", only=settings.cases)
    drift_ticks = round(settings.drift_seconds * rate)
    long = materialize(game, cases, folder, drift_ticks, device="cpu",
                       only=min(settings.drift_cases, len(cases.case)))
    bank = RealFrameBank(game)
    truth_drift = drift_summary(bank.distance(long.truth.flatten(0, 1)).view(
        long.truth.shape[:2]), rate)
    space = game.spec.actions
    change = torch.zeros(space.dim)
    for name in settings.latency_buttons:
        if name in space.buttons:
            change[space.buttons.index(name)] = 1.0
    results, samples = [], {}
    max_frames = model.config.denoiser.max_frames
    graphs = device.type == "cuda"     # a captured pass: same frames, bit for bit, faster
    for name in settings.samplers:
        cfg = named_sampler(name, max_frames, settings.teacher_steps)
        res = SamplerResult(sampler=name, config=asdict(cfg), streams=len(replay.names))
        progress(f"eval {name}: fidelity over {len(replay.names)} cases × {settings.seconds:g} s")
        start = time.perf_counter()
        gen = rollout(model, cfg, replay.context, replay.context_actions, replay.actions,
                      seed=settings.seed, cuda_graphs=graphs).cpu()
        if device.type == "cuda":
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - start
        res.ms_per_tick = elapsed * 1e3 / (ticks + cfg.window - 1)
        res.ticks_per_s = 1e3 / res.ms_per_tick
        p, s = psnr(gen, replay.truth), ssim(gen, replay.truth)                 # (B, T)
        res.psnr_curve = _per_second(p, rate)
        for h in HORIZONS:
            if h * rate <= p.shape[1]:
                window = slice((h - 1) * rate, h * rate)
                res.psnr[f"{h}s"] = p[:, window].mean().item()
                res.ssim[f"{h}s"] = s[:, window].mean().item()
        res.psnr_first_2s = p[:, :2 * rate].mean().item()
        res.ssim_first_2s = s[:, :2 * rate].mean().item()
        if probe is not None:
            res.turn_accuracy, res.move_accuracy = control_accuracy(
                probe, gen, replay.states, replay.state_names)
        samples[name] = gen
        progress(f"eval {name}: drift over {settings.drift_seconds:g} s")
        long_gen = rollout(model, cfg, long.context, long.context_actions, long.actions,
                           seed=settings.seed, cuda_graphs=graphs).cpu()
        distance = bank.distance(long_gen.flatten(0, 1)).view(long_gen.shape[:2])
        for key, value in drift_summary(distance, rate).items():
            setattr(res, key, value)
        del long_gen
        progress(f"eval {name}: response latency")
        res.latency_ticks = response_latency(model, cfg, replay.context[:1],
                                             replay.context_actions[:1], change,
                                             settings.latency_ticks)
        res.latency_ticks_late_binding = response_latency(
            model, replace(cfg, late_binding=True), replay.context[:1],
            replay.context_actions[:1], change, settings.latency_ticks)
        results.append(res)
    truth_control = None
    if probe is not None:
        truth_control = control_accuracy(probe, replay.truth, replay.states, replay.state_names)
    machine = (torch.cuda.get_device_name(device) if device.type == "cuda"
               else f"CPU ({platform.machine()}, {torch.get_num_threads()} threads)")
    return {
        "game": game.spec.name, "machine": machine, "device": str(device),
        "dtype": str(next(model.parameters()).dtype).replace("torch.", ""),
        "torch": torch.__version__, "settings": asdict(settings), "cases": replay.names,
        "drift_cases": long.names, "truth_drift": truth_drift,
        "truth_probe_accuracy": None if truth_control is None else
        {"turn": truth_control[0], "move": truth_control[1]},
        "results": [asdict(r) for r in results],
        "_samples": samples, "_truth": replay.truth,
    }

