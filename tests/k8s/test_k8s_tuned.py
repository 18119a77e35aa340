"""The tuned replica shape against a deploy config: every contradiction named with both values, and the
tuned arguments written in where the config is silent (MaxText and jetscale serve spellings)."""

from __future__ import annotations

import dataclasses

import pytest

from jetscale.engine.presets import HbmMode, resolve_preset
from jetscale.errors import ConfigError
from jetscale.k8s.config import DeployConfig, TPUConfig
from jetscale.k8s.tuned import (
    ReplicaShape,
    ServerArgs,
    deploy_with_shape,
    replica_shape,
    server_args,
    shape_conflicts,
    with_shape,
)

SHAPE = replica_shape(resolve_preset("v5e-8/llama2-7b", per_device_batch_size=14))  # 112 slots on 8 chips
V5E = TPUConfig(accelerator="tpu-v5-lite-podslice", topology="2x4", chips=8, hbm_bytes_per_chip=16 * 2**30)
MAXTEXT = DeployConfig(image="maxengine-server", tpu=V5E, args=("model_name=llama2-7b", "prometheus_port=9100"))
SERVE = DeployConfig(image="jetscale", args=("serve", "--preset", "v5e-8/llama2-7b", "--port", "8000"))


def _with(config: DeployConfig, *args: str, **changes: object) -> DeployConfig:
    return dataclasses.replace(config, args=(*config.args, *args), **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("shape", "config", "expected"),
    [
        pytest.param(
            SHAPE,
            _with(MAXTEXT, "per_device_batch_size=4"),
            ["'args: per_device_batch_size' must be 14, as tuned: 112 slots on 8 chips (got 4)"],
            id="batch",
        ),
        pytest.param(SHAPE, _with(MAXTEXT, "per_device_batch_size=14.0"), [], id="batch-as-float-agrees"),
        pytest.param(
            SHAPE,
            _with(MAXTEXT, "max_prefill_predict_length=512"),
            ["'args: max_prefill_predict_length' must be 1024, as tuned: the longest prompt (got 512)"],
            id="prefill",
        ),
        pytest.param(
            SHAPE,
            _with(MAXTEXT, "max_target_length=4096"),
            ["'args: max_target_length' must be 2048, as tuned: the KV cache length per slot (got 4096)"],
            id="target",
        ),
        pytest.param(
            SHAPE,
            dataclasses.replace(MAXTEXT, args=("model_name=gemma-7b",)),
            ["'args: model_name' must be llama2-7b, as tuned: the HPA was tuned for llama2-7b (got gemma-7b)"],
            id="model",
        ),
        pytest.param(
            SHAPE,
            _with(MAXTEXT, "quantization=int8"),
            ["'args: quantization' must be unset (bf16), as tuned: the HPA was tuned for llama2-7b (got int8)"],
            id="quantized",
        ),
        pytest.param(
            SHAPE,
            _with(MAXTEXT, tpu=dataclasses.replace(V5E, chips=4, topology="2x2")),
            ["'tpu.chips' must be 8, as tuned: tpu-v5e-8 has 8 chips per replica (got 4)"],
            id="chips",
        ),
        pytest.param(
            SHAPE,
            _with(MAXTEXT, tpu=dataclasses.replace(V5E, accelerator="tpu-v6e-slice")),
            [
                "'tpu.accelerator' must be a tpu-v5e node pool, as tuned: the HPA was tuned on tpu-v5e-8 "
                "(got tpu-v6e-slice (tpu-v6e))"
            ],
            id="chip-family",
        ),
        pytest.param(
            dataclasses.replace(SHAPE, hbm_mode=HbmMode.PAGED),
            MAXTEXT,
            [
                "'args' must be a server that pages its KV cache, as tuned: the bundle was tuned with hbm_mode "
                "paged (got a MaxText server (it preallocates every slot's KV cache))"
            ],
            id="paged",
        ),
        pytest.param(
            SHAPE,
            _with(SERVE, "--batch-size", "32"),
            ["'args: --batch-size' must be 112, as tuned: decode slots, 14 per device x 8 chips (got 32)"],
            id="serve-batch",
        ),
        pytest.param(
            SHAPE,
            dataclasses.replace(SERVE, args=("serve", "--preset", "h100/llama3-8b")),
            ["'args: --preset' must be v5e-8/llama2-7b, as tuned (got h100/llama3-8b)"],
            id="serve-preset",
        ),
        pytest.param(
            dataclasses.replace(SHAPE, name="my-l4", accelerator="nvidia-l4"),
            SERVE,
            [
                "'args: --preset' must be a preset of llama2-7b on nvidia-l4, as tuned: jetscale serve takes "
                "presets only, and none has this chip and model (got v5e-8/llama2-7b)"
            ],
            id="serve-custom",
        ),
        pytest.param(
            dataclasses.replace(SHAPE, max_target_length=4096),
            SERVE,
            [
                "'args: --preset v5e-8/llama2-7b' must be max_target_length 4096, as tuned: jetscale serve has "
                "no flag for it (got max_target_length 2048)"
            ],
            id="serve-length",
        ),
        pytest.param(SHAPE, MAXTEXT, [], id="silent-maxtext"),
        pytest.param(SHAPE, SERVE, [], id="silent-serve"),
    ],
)
def test_conflicts_name_both_values(shape: ReplicaShape, config: DeployConfig, expected: list[str]) -> None:
    assert [c.describe() for c in shape_conflicts(shape, config)] == expected


def test_the_server_spelling_is_read_from_the_arguments() -> None:
    assert server_args(MAXTEXT) is ServerArgs.MAXTEXT
    assert server_args(DeployConfig(image="x")) is ServerArgs.MAXTEXT  # JetStream MaxText is the default server
    assert server_args(SERVE) is ServerArgs.JETSCALE
    assert server_args(DeployConfig(image="x", command=("jetscale",), args=())) is ServerArgs.JETSCALE


def test_silent_maxtext_arguments_get_the_tuned_shape() -> None:
    args = with_shape(SHAPE, MAXTEXT).args
    assert args == ("model_name=llama2-7b", "prometheus_port=9100", "per_device_batch_size=14",
                    "max_prefill_predict_length=1024", "max_target_length=2048")  # fmt: skip
    int8 = replica_shape(resolve_preset("v5e-8/gemma-7b-int8"))
    assert with_shape(int8, DeployConfig(image="x")).args[-1] == "quantization=int8"
    given = _with(MAXTEXT, "per_device_batch_size=14")
    assert with_shape(SHAPE, given).args.count("per_device_batch_size=14") == 1


def test_silent_serve_arguments_get_the_tuned_batch() -> None:
    assert with_shape(SHAPE, SERVE).args == (*SERVE.args, "--batch-size", "112")
    bare = DeployConfig(image="x", command=("jetscale",), args=("serve",))
    assert with_shape(SHAPE, bare).args == ("serve", "--preset", "v5e-8/llama2-7b", "--batch-size", "112")


def test_a_contradiction_is_one_refusal_unless_forced() -> None:
    config = _with(MAXTEXT, "per_device_batch_size=4", tpu=dataclasses.replace(V5E, chips=4, topology="2x2"))
    with pytest.raises(ConfigError) as error:
        deploy_with_shape(SHAPE, config, origin="deploy.yaml", bundle="tune-out")
    text = str(error.value)
    assert "\n" not in text
    assert text.startswith("deploy.yaml contradicts the tuned bundle tune-out (llama2-7b on tpu-v5e-8, 14 per device")
    assert "'tpu.chips' must be 8" in text and "(got 4); 'args: per_device_batch_size' must be 14" in text
    forced, conflicts = deploy_with_shape(SHAPE, config, origin="deploy.yaml", bundle="tune-out", force=True)
    assert len(conflicts) == 2 and "per_device_batch_size=4" in forced.args
    assert "per_device_batch_size=14" not in forced.args
