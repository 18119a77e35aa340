"""A vLLM replica on a cluster: its image, its arguments from the replica config, its node pool, its metrics.

A replica config with ``stack: vllm`` (``config.kind`` is ``ServerKind.VLLM``) renders a vLLM
OpenAI-compatible server instead of JetStream. ``vllm_deploy`` completes the deploy config from it:

- the image: ``vllm/vllm-openai`` on GPUs, ``vllm/vllm-tpu`` on TPUs (vLLM's TPU build, the plugin
  ``tpu-inference``), unless the deploy config names one;
- the arguments, every one from the replica config: ``--model`` (the model's Hugging Face repository),
  ``--tensor-parallel-size`` (the replica's chips), ``--max-model-len`` (``max_target_length``),
  ``--max-num-seqs`` (``decode_slots``), ``--max-num-batched-tokens``, ``--block-size``,
  ``--gpu-memory-utilization`` and ``--enable-prefix-caching`` / ``--no-enable-prefix-caching``
  (``config.vllm_settings``). The deploy config's own ``args`` follow them; one that sets a flag the
  replica config already sets is refused, except ``--model`` (a local or GCS path to the same weights);
- the node pool: a ``gpu`` section (GKE's ``cloud.google.com/gke-accelerator`` label, ``nvidia.com/gpu``
  count) or a ``tpu`` section (``gke-tpu-accelerator``, ``gke-tpu-topology``, ``google.com/tpu``) derived
  from the replica's accelerator, or checked against it when the deploy config gives one.

Sources (facts collected in research/vllm.md): GKE's vLLM samples run
``python3 -m vllm.entrypoints.openai.api_server`` on port 8000 with ``/health`` for readiness
(kubernetes-engine-samples ``ai-ml/llm-serving-gemma/vllm``; accelerated-platforms online-inference-gpu);
GKE's GPU node labels (``nvidia-l4``, ``nvidia-tesla-a100``, ``nvidia-a100-80gb``, ``nvidia-h100-80gb``,
``nvidia-h200-141gb``) and TPU labels (``tpu-v5-lite-podslice``, ``tpu-v6e-slice``, ``tpu-v5p-slice``)
are GKE's documented node labels. The metric names are vLLM's (``vllm/v1/metrics/loggers.py``, v0.11.0 and
v0.34.0): ``vllm:kv_cache_usage_perc`` replaced ``vllm:gpu_cache_usage_perc`` in 0.9.2. Pure.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping

from jetscale.engine.accelerator import Precision
from jetscale.engine.config import ReplicaConfig, ServerKind
from jetscale.errors import ConfigError
from jetscale.k8s.config import DeployConfig, GPUConfig, TPUConfig
from jetscale.k8s.tuned import GKE_TPU_FAMILIES

__all__ = [
    "E2E",
    "GENERATION_TOKENS",
    "GKE_GPU_LABELS",
    "GKE_TPU_LABELS",
    "ITL",
    "KV_CACHE_USAGE",
    "PREEMPTIONS",
    "PROMPT_TOKENS",
    "QUEUE_TIME",
    "REQUESTS_RUNNING",
    "REQUESTS_WAITING",
    "REQUEST_SUCCESS",
    "TTFT",
    "VLLM_COMMAND",
    "VLLM_GPU_IMAGE",
    "VLLM_TPU_IMAGE",
    "hugging_face_id",
    "vllm_args",
    "vllm_deploy",
]

# vLLM's Prometheus names (gauges; counters as exposed, with _total; histograms without their suffixes)
REQUESTS_WAITING = "vllm:num_requests_waiting"  # queue size: GKE's throughput signal
REQUESTS_RUNNING = "vllm:num_requests_running"  # batch size: GKE's latency signal
KV_CACHE_USAGE = "vllm:kv_cache_usage_perc"  # share of KV blocks in use, 0..1 (not 0..100)
PREEMPTIONS = "vllm:num_preemptions_total"
PROMPT_TOKENS = "vllm:prompt_tokens_total"
GENERATION_TOKENS = "vllm:generation_tokens_total"
REQUEST_SUCCESS = "vllm:request_success_total"  # label finished_reason: stop, length, abort (, error)
TTFT = "vllm:time_to_first_token_seconds"
ITL = "vllm:inter_token_latency_seconds"
E2E = "vllm:e2e_request_latency_seconds"
QUEUE_TIME = "vllm:request_queue_time_seconds"

# Pinned to a release whose metrics carry the names above; vllm/vllm-tpu is published as :latest, :nightly
# and commit tags: pin it to the commit you test with (the deploy config's ``image``)
VLLM_GPU_IMAGE = "vllm/vllm-openai:v0.11.0"
VLLM_TPU_IMAGE = "vllm/vllm-tpu:latest"
VLLM_COMMAND = ("python3", "-m", "vllm.entrypoints.openai.api_server")

# jetscale's GPU family -> GKE's cloud.google.com/gke-accelerator value; A100 by its memory (40 / 80 GB)
GKE_GPU_LABELS: Mapping[str, str] = {
    "l4": "nvidia-l4",
    "t4": "nvidia-tesla-t4",
    "a100": "nvidia-tesla-a100",
    "a100-80gb": "nvidia-a100-80gb",
    "h100": "nvidia-h100-80gb",
    "h200": "nvidia-h200-141gb",
    "b200": "nvidia-b200",
}
# jetscale's TPU family -> GKE's cloud.google.com/gke-tpu-accelerator value
GKE_TPU_LABELS: Mapping[str, str] = {
    "tpu-v4": "tpu-v4-podslice",
    "tpu-v5e": "tpu-v5-lite-podslice",
    "tpu-v5p": "tpu-v5p-slice",
    "tpu-v6e": "tpu-v6e-slice",
}
# single-host slice topologies by chip count: 2D chips (v5e, v6e) and 3D chips (v4, v5p)
_TOPOLOGY_2D = {1: "1x1", 4: "2x2", 8: "2x4"}
_TOPOLOGY_3D = {4: "2x2x1", 8: "2x2x2"}
_HF_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_GIB = 2**30


def hugging_face_id(config: ReplicaConfig) -> str | None:
    """The model's Hugging Face repository, as its catalog source names it first (None if it names none)."""
    words = config.model.source.split()
    first = words[0].rstrip(":,;") if words else ""
    return first if _HF_ID.match(first) else None


def _number(value: float) -> str:
    return f"{value:g}"


def vllm_args(config: ReplicaConfig, *, port: int, model: str) -> tuple[str, ...]:
    """vLLM's server arguments for the replica ``config``, serving ``model`` on ``port``."""
    settings = config.vllm_settings
    caching = "--enable-prefix-caching" if settings.enable_prefix_caching else "--no-enable-prefix-caching"
    # chunked prefill is vLLM's default: written only when the replica turns it off
    chunked = () if settings.enable_chunked_prefill else ("--no-enable-chunked-prefill",)
    return (
        f"--model={model}",
        "--host=0.0.0.0",
        f"--port={port}",
        f"--tensor-parallel-size={config.accelerator.chips}",
        f"--max-model-len={config.max_target_length}",
        f"--max-num-seqs={config.decode_slots}",
        f"--max-num-batched-tokens={config.max_num_batched_tokens}",
        f"--block-size={settings.block_size}",
        f"--gpu-memory-utilization={_number(settings.gpu_memory_utilization)}",
        caching,
        *chunked,
    )


def _flag_name(arg: str) -> str:
    return arg.split("=", 1)[0]


def _merged_args(config: ReplicaConfig, deploy: DeployConfig) -> tuple[str, ...]:
    given = {_flag_name(arg): arg for arg in deploy.args if arg.startswith("--")}
    model = given.get("--model")
    if model is not None and "=" not in model:
        raise ConfigError(f"'args' must write --model as --model=PATH, one argument (got {model!r})")
    if model is None:
        found = hugging_face_id(config)
        if found is None:
            raise ConfigError(
                f"'args' must give --model=<Hugging Face id or path> for model {config.model.name}: its catalog "
                f"source names no Hugging Face repository (got {config.model.source!r})"
            )
        model_id = found
    else:
        model_id = model.split("=", 1)[1]
    ours = vllm_args(config, port=deploy.ports.http, model=model_id)
    owned = {_flag_name(arg) for arg in ours} | {
        "--enable-prefix-caching",
        "--no-enable-prefix-caching",
        "--enable-chunked-prefill",
        "--no-enable-chunked-prefill",
    }
    for arg in deploy.args:
        name = _flag_name(arg)
        if name in owned and name != "--model":
            raise ConfigError(
                f"'args' must not set {name}: the replica config sets it for the vLLM server (got {arg!r})"
            )
    rest = tuple(arg for arg in deploy.args if _flag_name(arg) != "--model")
    return ours + rest


def _gpu(config: ReplicaConfig, given: GPUConfig | None) -> GPUConfig:
    accelerator = config.accelerator
    family = accelerator.family
    if given is not None:
        if given.count != accelerator.chips:
            raise ConfigError(
                f"'gpu.count' must be the replica's {accelerator.chips} GPUs ({accelerator.name}) (got {given.count})"
            )
        if family not in given.accelerator:
            raise ConfigError(
                f"'gpu.accelerator' must be a {family} node pool, for {accelerator.name} (got {given.accelerator!r})"
            )
        return given
    key = "a100-80gb" if family == "a100" and accelerator.hbm_bytes_per_chip >= 80 * _GIB else family
    label = GKE_GPU_LABELS.get(key)
    if label is None:
        raise ConfigError(
            f"'gpu' must be set in the deploy config for a {family} replica: GKE's label for it is not known (got None)"
        )
    return GPUConfig(accelerator=label, count=accelerator.chips)


def _tpu(config: ReplicaConfig, given: TPUConfig | None) -> TPUConfig | None:
    """The deploy config's ``tpu`` checked against the replica; None when it must be derived."""
    accelerator = config.accelerator
    if given is None:
        return None
    if given.chips != accelerator.chips:
        raise ConfigError(
            f"'tpu.chips' must be the replica's {accelerator.chips} chips ({accelerator.name}) (got {given.chips})"
        )
    family = GKE_TPU_FAMILIES.get(given.accelerator)
    if family is not None and family != accelerator.family:
        raise ConfigError(
            f"'tpu.accelerator' must be a {accelerator.family} node pool, for {accelerator.name} "
            f"(got {given.accelerator!r})"
        )
    return given


def _derived_tpu(config: ReplicaConfig, hbm_bytes_per_chip: int) -> TPUConfig:
    accelerator = config.accelerator
    label = GKE_TPU_LABELS.get(accelerator.family)
    topologies = _TOPOLOGY_3D if accelerator.family in ("tpu-v4", "tpu-v5p") else _TOPOLOGY_2D
    topology = topologies.get(accelerator.chips)
    if label is None or topology is None:
        raise ConfigError(
            f"'tpu' must be set in the deploy config for {accelerator.name}: no single-host GKE slice of "
            f"{accelerator.chips} {accelerator.family} chips is known (got None)"
        )
    return TPUConfig(
        accelerator=label, topology=topology, chips=accelerator.chips, hbm_bytes_per_chip=hbm_bytes_per_chip
    )


def vllm_deploy(config: ReplicaConfig, deploy: DeployConfig) -> DeployConfig:
    """``deploy`` completed for the vLLM replica ``config`` (image, command, args, node pool); ``ConfigError``
    naming the deploy field that contradicts the replica config."""
    if config.kind is not ServerKind.VLLM:
        raise ConfigError(f"'stack' must be vllm to render a vLLM server (got {config.stack.value})")
    if config.model.precision is not Precision.BF16:
        raise ConfigError(
            f"'model' must be a bf16 model for the vLLM server: jetscale does not render vLLM's quantization "
            f"flags (got {config.model.name})"
        )
    on_tpu = config.accelerator.family.startswith("tpu-")
    if on_tpu and deploy.gpu is not None:
        raise ConfigError(
            f"'gpu' must not be set for the TPU replica {config.accelerator.name} (got {deploy.gpu.accelerator!r})"
        )
    if not on_tpu and deploy.tpu is not None:
        raise ConfigError(
            f"'tpu' must not be set for the GPU replica {config.accelerator.name} (got {deploy.tpu.accelerator!r})"
        )
    tpu = gpu = None
    if on_tpu:
        tpu = _tpu(config, deploy.tpu) or _derived_tpu(config, config.accelerator.hbm_bytes_per_chip)
    else:
        gpu = _gpu(config, deploy.gpu)
    return dataclasses.replace(
        deploy,
        image=deploy.image or (VLLM_TPU_IMAGE if on_tpu else VLLM_GPU_IMAGE),
        command=deploy.command or VLLM_COMMAND,
        args=_merged_args(config, deploy),
        tpu=tpu,
        gpu=gpu,
    )
