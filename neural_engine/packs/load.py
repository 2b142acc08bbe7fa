"""Loading a scenario pack: every problem found, with file, line and key, before anything runs.

``load_pack(path)`` reads ``pack.toml`` (and the timeline file it may name), fills the
schema (``neural_engine.packs.spec``), then checks what needs the game and the files:
button and key names against the game's action space, start poses against the game's
simulator, start images (PNG, the game's frame size), weights (safetensors for this
game, every tensor read), the timeline's start names and length, and every path
(``neural_engine.packs.files``). All problems are gathered and raised together as one
``SchemaError``, one line each; a pack that loads is safe to play.

The loaded ``ScenarioPack`` hands deep code typed objects: start states, merged
bindings, the sampler configuration, the compiled timeline, kiosk settings.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neural_engine import schema
from neural_engine.errors import EngineError
from neural_engine.games import Game, GameSpec, available, load_spec
from neural_engine.input.keys import check_key_name
from neural_engine.input.mapper import RESERVED_KEYS
from neural_engine.packs.files import PackFolder, read_text
from neural_engine.packs.png import read_png
from neural_engine.packs.spec import KioskSettings, PackSpec, StartSpec
from neural_engine.packs.start import ImageStart, StartState
from neural_engine.packs.timeline import MAX_SECONDS, CompiledTimeline, PackScript, compile_timeline
from neural_engine.sampler.stream import SAMPLERS, SamplerConfig

DEFAULT_START = StartSpec(name="default")


@dataclass(frozen=True)
class ScenarioPack:
    """A checked pack: its folder, what pack.toml says, the game, and the files it names."""

    folder: Path
    spec: PackSpec
    game: GameSpec
    script: PackScript | None = None
    weights: Path | None = None
    images: Mapping[str, Path] = field(default_factory=dict)   # start name → PNG

    @classmethod
    def bare(cls, game: GameSpec) -> ScenarioPack:
        """No pack: the game's defaults (for a kiosk run without ``--pack``)."""
        return cls(Path("."), PackSpec(game=game.name), game)

    @property
    def title(self) -> str:
        return self.spec.title or self.folder.name

    @property
    def starts(self) -> tuple[StartSpec, ...]:
        return self.spec.start or (DEFAULT_START,)

    @property
    def kiosk(self) -> KioskSettings:
        return self.spec.kiosk or KioskSettings()

    @property
    def sampler(self) -> SamplerConfig | None:
        return self.spec.sampler

    def start_state(self, name: str | None = None) -> StartState:
        """The named start state (default: the first); an image start carries its PNG."""
        spec = self.starts[0] if name is None else next(s for s in self.starts
                                                        if s.name == name)
        pose = tuple(spec.pose) if spec.pose is not None else None
        if spec.name in self.images:
            return ImageStart(seed=spec.seed, pose=pose, image=str(self.images[spec.name]))
        return StartState(seed=spec.seed, pose=pose)

    @property
    def kiosk_start(self) -> StartState:
        return self.start_state(self.kiosk.start)

    def bindings(self) -> dict[str, tuple[str, ...]]:
        """The game's bindings with the pack's whole-button overrides."""
        return {**self.game.bindings, **self.spec.controls.bindings}

    def timeline(self, loop: bool | None = None) -> CompiledTimeline | None:
        """The timeline compiled to ticks (``loop`` overrides the pack's choice)."""
        if self.script is None:
            return None
        timeline = self.spec.timeline
        return compile_timeline(self.script, self.game.actions, self.game.tick_rate,
                                loop=timeline.loop if loop is None else loop,
                                start=timeline.start)

    def summary(self) -> str:
        parts = [f"game {self.game.name}", f"{len(self.starts)} start state"
                 + ("s" if len(self.starts) != 1 else "")]
        if self.script is not None:
            parts.append(f"timeline {self.script.length:g} s"
                         + (" (loops)" if self.spec.timeline.loop else ""))
        if self.weights is not None:
            parts.append(f"weights {self.weights.name}")
        if self.spec.kiosk is not None:
            parts.append("kiosk settings")
        return f"{self.title}: " + ", ".join(parts)


class _Problems:
    def __init__(self):
        self.lines: list[str] = []

    def add(self, where: str, message: str) -> None:
        self.lines.append(f"{where}: {message}")

    def extend(self, error: EngineError) -> None:
        self.lines += error.problems if isinstance(error, schema.SchemaError) else [str(error)]


def _close(name: str, names: list[str]) -> str:
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _parse(path: Path, problems: _Problems) -> schema.TomlSource | None:
    try:
        return schema.TomlSource(read_text(path), str(path))
    except EngineError as exc:
        problems.extend(exc)
    except RecursionError:
        problems.add(str(path), "not valid TOML: nested too deeply")
    return None


def _expand_sampler(data: dict[str, Any], source: schema.TomlSource,
                    problems: _Problems) -> dict[str, Any]:
    """``[sampler] preset = NAME`` plus overrides → a full SamplerConfig table."""
    raw = data.get("sampler")
    if not isinstance(raw, dict):
        return data
    raw = dict(raw)
    preset = raw.pop("preset", "rolling")
    if not isinstance(preset, str) or preset not in SAMPLERS:
        problems.add(source.where(("sampler", "preset")), f"unknown sampler preset {preset!r}"
                     f"{_close(str(preset), list(SAMPLERS))} (presets: {', '.join(SAMPLERS)})")
        preset = "rolling"
    return {**data, "sampler": {**schema.to_dict(SAMPLERS[preset]), **raw}}


def load_pack(path: str | Path) -> ScenarioPack:
    """Read and check the pack at ``path`` (its folder or its pack.toml)."""
    folder = PackFolder(path)
    problems = _Problems()
    problems.lines += folder.stray_files()
    source = _parse(folder.toml, problems)
    spec = None
    if source is not None:
        data = _expand_sampler(source.data, source, problems)
        try:
            spec = schema.fill(PackSpec, data, source=source)
        except schema.SchemaError as exc:
            problems.extend(exc)
    if spec is None:
        raise schema.SchemaError(problems.lines)
    pack = _Checker(folder, source, spec, problems).check()
    if problems.lines:
        raise schema.SchemaError(problems.lines)
    return pack


class _Checker:
    """The checks that need the game and the pack's files."""

    def __init__(self, folder: PackFolder, source: schema.TomlSource, spec: PackSpec,
                 problems: _Problems):
        self.folder, self.source, self.spec, self.problems = folder, source, spec, problems

    def at(self, key: tuple, message: str) -> None:
        self.problems.add(self.source.where(key), message)

    def file(self, key: tuple, written: str, suffix: str) -> Path | None:
        try:
            return self.folder.file(written, suffix)
        except EngineError as exc:
            self.at(key, exc.message)
            return None

    def check(self) -> ScenarioPack | None:
        spec = self.spec
        if spec.game not in available():
            self.at(("game",), f"unknown game {spec.game!r}{_close(spec.game, available())} "
                    f"(games: {', '.join(available()) or 'none'})")
            return None
        try:
            game = load_spec(spec.game)
        except EngineError as exc:
            self.problems.extend(exc)
            return None
        self.names = [s.name for s in (spec.start or (DEFAULT_START,))]
        self.bindings(game)
        images = self.starts(game)
        weights = self.weights(game)
        script = self.timeline(game)
        if spec.kiosk is not None:
            self.start_name(("kiosk", "start"), spec.kiosk.start)
        return ScenarioPack(self.folder.folder, spec, game, script, weights, images)

    def start_name(self, key: tuple, name: str | None) -> None:
        if name is not None and name not in self.names:
            self.at(key, f"no start state named {name!r}{_close(name, self.names)} "
                    f"(start states: {', '.join(self.names)})")

    def bindings(self, game: GameSpec) -> None:
        buttons = list(game.actions.buttons)
        for button, keys in self.spec.controls.bindings.items():
            key = ("controls", "bindings", button)
            if button not in buttons:
                self.at(key, f"not a button of {game.name}{_close(button, buttons)} "
                        f"(buttons: {', '.join(buttons)})")
            for i, name in enumerate(keys):
                if (problem := check_key_name(name)) is not None:
                    self.at((*key, i), problem)
                elif name.lower() in RESERVED_KEYS:
                    self.at((*key, i), f"key {name!r} is reserved for the engine's controls "
                            f"({', '.join(sorted(RESERVED_KEYS))})")

    def starts(self, game: GameSpec) -> dict[str, Path]:
        images: dict[str, Path] = {}
        sim = None
        for i, start in enumerate(self.spec.start):
            if start.image is not None:
                path = self.file(("start", i, "image"), start.image, ".png")
                if path is not None:
                    try:
                        read_png(path, (game.width, game.height))
                        images[start.name] = path
                    except EngineError as exc:
                        self.at(("start", i, "image"), exc.message)
            if start.pose is not None and len(start.pose) != len(game.pose):
                self.at(("start", i, "pose"), f"{len(start.pose)} values; a pose of "
                        f"{game.name} is [{', '.join(game.pose)}]")
            elif start.pose is not None:
                sim = sim or Game(game, f"games.{game.name}").simulator(batch=1)
                self.pose(sim, i, start)
        return images

    def pose(self, sim, index: int, start: StartSpec) -> None:
        import torch

        try:
            sim.reset([start.seed], torch.tensor([start.pose], dtype=torch.float32))
        except EngineError as exc:
            self.at(("start", index, "pose"), f"the game refuses this pose: {exc.message}")

    def weights(self, game: GameSpec) -> Path | None:
        """The pack's weights, checked as play will check them (header first, then every
        tensor); and the sampler against the weights play will run (the pack's, else the
        game's shipped ones, unless the pack plays the simulator)."""
        from neural_engine.model.weights import check_weights, load_world_model, shipped_weights

        if self.spec.weights is None:
            if self.spec.engine == "sim":
                return None
            try:
                shipped = shipped_weights(game.name)
                if shipped is None and self.spec.engine == "neural":
                    self.at(("engine",), f"engine 'neural', but {game.name} has no shipped "
                            "weights: name some with weights = ...")
                if shipped is not None:
                    self.sampler_fits(check_weights(shipped)[0], ("sampler",))
            except EngineError as exc:
                self.at(("engine",), f"the shipped weights it would play: {exc}")
            return None
        path = self.file(("weights",), self.spec.weights, ".safetensors")
        if path is None:
            return None
        try:
            config, _ = check_weights(path)
        except EngineError as exc:
            self.at(("weights",), exc.message)
            return None
        if (config.game, config.height, config.width, config.action_dim) != (
                game.name, game.height, game.width, game.actions.dim):
            self.at(("weights",), f"weights are for {config.game} at {config.width}×"
                    f"{config.height} with {config.action_dim} actions, not this game")
            return None
        try:
            load_world_model(path)                       # every tensor read, NaN refused
        except EngineError as exc:
            self.at(("weights",), exc.message)
            return None
        self.sampler_fits(config, ("sampler",))
        return path

    def sampler_fits(self, config, key: tuple) -> None:
        from neural_engine.sampler.stream import fit_problem

        sampler = self.spec.sampler or SamplerConfig()
        if (problem := fit_problem(sampler, config.denoiser.max_frames)) is not None:
            self.at(key, problem)

    def timeline(self, game: GameSpec) -> PackScript | None:
        spec = self.spec.timeline
        if spec is None:
            return None
        source, prefix = self.source, ("timeline",)
        if spec.file is not None:
            path = self.file(("timeline", "file"), spec.file, ".toml")
            if path is None:
                return None
            source = _parse(path, self.problems)
            if source is None:
                return None
            prefix = ()
            try:
                script = schema.fill(PackScript, source.data, source=source)
            except schema.SchemaError as exc:
                self.problems.extend(exc)
                return None
            if spec.seconds is not None:
                script = PackScript(cue=script.cue, game=script.game, seconds=spec.seconds)
        else:
            script = PackScript(cue=spec.cue, seconds=spec.seconds)
            for key, message in script.check():
                self.at((*prefix, *key), message)
        where = lambda key: source.where((*prefix, *key))
        buttons = list(game.actions.buttons)
        for i, cue in enumerate(script.cue):
            for kind in ("hold", "press", "release"):
                for j, name in enumerate(getattr(cue, kind) or ()):
                    if name not in buttons:
                        self.problems.add(where(("cue", i, kind, j)), f"unknown button "
                                          f"{name!r}{_close(name, buttons)} (buttons: "
                                          f"{', '.join(buttons)})")
        if script.game is not None and script.game != game.name:
            self.problems.add(where(("game",)), f"timeline is for game {script.game!r}, "
                              f"not {game.name!r}")
        if script.length > MAX_SECONDS:
            self.problems.add(where(("seconds",) if script.seconds is not None else ("cue",)),
                              f"a timeline lasts at most {MAX_SECONDS:g} s, this one "
                              f"{script.length:g} s")
        for i, cue in enumerate(script.cue):
            if cue.start is not None and cue.start not in self.names:
                self.problems.add(where(("cue", i, "start")), f"no start state named "
                                  f"{cue.start!r}{_close(cue.start, self.names)}")
            if cue.t >= script.length:
                self.problems.add(where(("cue", i, "t")), f"cue at {cue.t:g} s is after the "
                                  f"end of the timeline ({script.length:g} s)")
        self.start_name(("timeline", "start"), spec.start)
        return script
