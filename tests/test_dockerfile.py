"""The Dockerfile's baked image (docker cannot run in CI): the build args that choose what
`tarjama models download` bakes are settings the server knows, are declared where the bake's RUN sees
them, and the image then serves the models it baked."""

from __future__ import annotations

import re
from pathlib import Path

from tarjama.server.settings import Settings, parse_settings

DOCKERFILE = Path(__file__).resolve().parent.parent / "Dockerfile"
BAKE = "tarjama models download"
BOTH = "fast=Helsinki-NLP/opus-mt-ar-en,best=Helsinki-NLP/opus-mt-tc-big-ar-en"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined and comments left out."""
    lines = [line for line in DOCKERFILE.read_text().splitlines() if not line.lstrip().startswith("#")]
    text = re.sub(r"\\\n", " ", "\n".join(lines))
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in text.splitlines() if line.strip()]


def expand(value: str, env: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}", lambda m: env.get(m.group(1), ""), value)


def bake_environment(build_args: dict[str, str]) -> dict[str, str]:
    """The TARJAMA_* environment of the bake's RUN, as docker builds it after the FROM: ARG (default or
    --build-arg) and ENV (with ${VAR} expanded) both become variables of later RUN instructions."""
    env: dict[str, str] = {}
    for instruction, arguments in instructions():
        if instruction == "FROM":
            env = {}  # ARGs and ENVs before a FROM are not seen after it
        elif instruction == "ARG":
            name, _, default = arguments.partition("=")
            env[name] = build_args.get(name, default.strip('"'))
        elif instruction == "ENV":
            for name, value in re.findall(r'(\w+)=("[^"]*"|\S*)', arguments):
                env[name] = expand(value.strip('"'), env)
        elif instruction == "RUN" and BAKE in arguments:
            return {k: v for k, v in env.items() if k.startswith("TARJAMA_")}
    raise AssertionError(f"no RUN of `{BAKE}` in the Dockerfile")


def test_every_tarjama_build_arg_and_variable_is_a_setting() -> None:
    # Docker passes a misspelt --build-arg or ENV on silently, and the server ignores it: name them all here.
    known = {"TARJAMA_" + name.upper() for name in Settings.__dataclass_fields__}
    declared = {
        name
        for instruction, arguments in instructions()
        if instruction in ("ARG", "ENV")
        for name in re.findall(r"(?:^|\s)(TARJAMA_\w+)=", " " + arguments)
    }
    assert declared and declared <= known, declared - known


def test_the_bake_fetches_every_named_model_and_the_image_serves_them() -> None:
    environment = bake_environment({"TARJAMA_TRANSLATION_MODEL": BOTH, "TARJAMA_COMPUTE_TYPE": "float16"})
    baked = parse_settings([], environment)  # as `tarjama models download` reads it in the RUN
    assert [(m.name, m.ref) for m in baked.translation_models()] == [
        ("fast", "Helsinki-NLP/opus-mt-ar-en"),
        ("best", "Helsinki-NLP/opus-mt-tc-big-ar-en"),
    ]
    assert baked.compute_type == "float16", "a CUDA image built without a GPU converts for the GPU"
    # The translation models stay in the image's environment (ENV), so `tarjama serve` serves what was
    # baked; the compute type does not (only ARG), so a CPU run of that image is not told float16.
    image = {name: value for instruction, arguments in instructions() if instruction == "ENV"
             for name, value in re.findall(r"(\w+)=(\S*)", arguments)}  # fmt: skip
    assert image["TARJAMA_TRANSLATION_MODEL"] == "${TARJAMA_TRANSLATION_MODEL}"
    assert "TARJAMA_COMPUTE_TYPE" not in image


def test_without_build_args_the_image_bakes_and_serves_one_model_as_before() -> None:
    settings = parse_settings([], bake_environment({}))
    assert [(m.name, m.ref) for m in settings.translation_models()] == [("default", "Helsinki-NLP/opus-mt-ar-en")]
    assert settings.compute_type == "auto"


def test_the_image_can_keep_its_state_and_reach_postgresql() -> None:
    """The stored glossaries' SQLite lives in TARJAMA_STATE_DIR: the image makes it, gives it to the
    server's user (the root filesystem may be read-only) and declares it a volume; the default extras
    hold `postgres`, so TARJAMA_DATABASE_URL works without rebuilding."""
    import tomllib

    env = bake_environment({})
    state = env["TARJAMA_STATE_DIR"]
    assert parse_settings([], env).resolved_state_dir() == Path(state)
    runs = " ".join(arguments for instruction, arguments in instructions() if instruction == "RUN")
    assert re.search(rf"mkdir -p [^&]*{state}", runs) and re.search(rf"chown tarjama [^&]*{state}", runs)
    volumes = [arguments for instruction, arguments in instructions() if instruction == "VOLUME"]
    assert any(state in volume.split() for volume in volumes)
    extras_arg = next(a for i, a in instructions() if i == "ARG" and a.startswith("EXTRAS="))
    extras = extras_arg.partition("=")[2].strip('"').split(",")
    pyproject = tomllib.loads((DOCKERFILE.parent / "pyproject.toml").read_text())
    assert "postgres" in extras and set(extras) <= set(pyproject["project"]["optional-dependencies"])
