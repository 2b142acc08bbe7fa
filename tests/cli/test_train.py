"""``train``'s configuration edge: a stage's TOML and its ``--set`` overrides fill the
stage's typed dataclass once, and a bad model size or sampler name is refused there
with the key, the allowed values and where it was written; never a KeyError later."""

import pytest

from neural_engine.cli.main import main
from neural_engine.cli.train import CONFIGS, stage_config
from neural_engine.errors import EngineError
from neural_engine.model.config import MODEL_SIZES
from neural_engine.sampler.stream import SAMPLERS

SIZES = ", ".join(repr(s) for s in MODEL_SIZES)
SAMPLER_NAMES = ", ".join(repr(s) for s in SAMPLERS)


def test_good_choices_fill_the_stage_configurations():
    assert stage_config("teacher", None, []).size == "small"        # the packaged recipe
    assert stage_config("teacher", None, ["size=tiny"]).size == "tiny"
    assert stage_config("teacher", None, ['size="base"']).size == "base"
    assert stage_config("teacher", None, []).patch == 0               # the size's own
    assert stage_config("teacher", None, ["patch=1"]).patch == 1
    assert stage_config("rolling", None, []).sampler == "rolling"
    assert stage_config("rolling", None, ["sampler=causal"]).sampler == "causal"
    assert stage_config("ae", None, ["size=tiny"]).size == "tiny"


@pytest.mark.parametrize("stage, item, message", [
    ("teacher", "size=huge", f"--set size=huge: size: 'huge' is not one of {SIZES}"),
    ("teacher", "size=3", f"--set size=3: size: 3 is not one of {SIZES}"),
    ("ae", "size=Small", f"--set size=Small: size: 'Small' is not one of {SIZES} "
                         "(did you mean 'small'?)"),
    ("rolling", "sampler=rollin", f"--set sampler=rollin: sampler: 'rollin' is not one of "
                                  f"{SAMPLER_NAMES} (did you mean 'rolling'?)"),
    ("rolling", "sampler=nosink", f"--set sampler=nosink: sampler: 'nosink' is not one of "
                                  f"{SAMPLER_NAMES} (did you mean 'rolling-nosink'?)"),
])
def test_a_bad_choice_in_set_is_refused_naming_the_set_the_key_and_the_choices(
        stage, item, message):
    with pytest.raises(EngineError) as refused:
        stage_config(stage, None, [item])
    assert str(refused.value) == message


def test_a_bad_choice_in_a_toml_is_refused_at_its_line(tmp_path):
    for stage, key, bad, allowed in (("teacher", "size", "huge", SIZES),
                                     ("rolling", "sampler", "stream", SAMPLER_NAMES)):
        lines = (CONFIGS / f"{stage}.toml").read_text().splitlines()
        at = next(i for i, line in enumerate(lines) if line.startswith(f"{key} ="))
        lines[at] = f'{key} = "{bad}"'
        path = tmp_path / f"{stage}.toml"
        path.write_text("\n".join(lines) + "\n")
        with pytest.raises(EngineError) as refused:
            stage_config(stage, str(path), [])
        assert str(refused.value) == f"{path}:{at + 1}: {key}: '{bad}' is not one of {allowed}"
        # the same file with the key set right on the command line: --set wins
        good = "tiny" if key == "size" else "causal"
        assert getattr(stage_config(stage, str(path), [f"{key}={good}"]), key) == good


def test_the_train_command_refuses_a_bad_sampler_in_one_line(tmp_path, capsys):
    code = main(["train", "rolling", "--run", str(tmp_path / "r"), "--device", "cpu",
                 "--teacher", str(tmp_path / "none.safetensors"), "--set", "sampler=fast"])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err and "KeyError" not in err
    assert err.splitlines() == [f"error: --set sampler=fast: sampler: 'fast' is not one of "
                                f"{SAMPLER_NAMES}"]
    assert not (tmp_path / "r").exists()
