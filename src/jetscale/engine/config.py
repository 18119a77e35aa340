"""One replica's shape: what runs on what (chip, model, serving stack), with how many decode slots, how
long its requests may be, how its cache is laid out and read, and how long it takes to start.

A ``ReplicaConfig`` is validated once, when it is made: every field error names the field and the
value, and a batch whose KV cache cannot fit next to the weights is refused with the numbers
(weights GiB + KV GiB + reserve GiB > HBM GiB), as JetStream/MaxText would fail at
``init_decode_state``. Its ``roofline()`` is the timing the engine runs on: the measured one of a
profile when there is one, else the roofline of ``jetscale.engine.accelerator`` with the calibrated
efficiency (``jetscale.engine.calibration``). Presets and the replica YAML live in
``jetscale.engine.presets``. Pure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from jetscale.engine.accelerator import GIB, Accelerator, Efficiency, Model, Roofline, roofline
from jetscale.engine.calibration import ServingStack, efficiency_for
from jetscale.engine.timing import MeasuredTiming
from jetscale.errors import ConfigError

__all__ = ["HbmMode", "KvRead", "ReplicaConfig", "ServerKind", "ServingStack", "VllmSettings", "vllm_default_budget"]


class HbmMode(StrEnum):
    """What the HBM gauge counts as used."""

    PAGED = "paged"  # weights + KV of live tokens (grows with load): a server that reports its cache in use
    PREALLOCATED = "preallocated"  # weights + the whole KV cache of every slot (JetStream MaxText: flat)


class KvRead(StrEnum):
    """What a decode step's attention reads of the KV cache."""

    CACHE = "cache"  # every slot's whole preallocated cache, masked (MaxText, jetstream-pytorch)
    ACTIVE = "active"  # the active tokens only (a paged cache: vLLM)


class ServerKind(StrEnum):
    """Which server's scheduler runs the replica (``ServingStack`` picks it)."""

    JETSTREAM = "jetstream"  # prefill one prompt at a time into a static batch of decode slots
    VLLM = "vllm"  # continuous batching under a token budget, chunked prefill, a paged cache


@dataclass(frozen=True, slots=True, kw_only=True)
class VllmSettings:
    """vLLM's scheduler and cache settings (its engine arguments; defaults as vLLM's for online serving)."""

    # tokens one step may schedule (decodes first, then prefill chunks); None: vLLM's default for the
    # hardware (``vllm_default_budget``)
    max_num_batched_tokens: int | None = None
    block_size: int = 16  # tokens per KV cache block (vLLM's --block-size for CUDA attention backends)
    gpu_memory_utilization: float = 0.9  # share of HBM vLLM takes: weights, activations and the KV pool
    enable_chunked_prefill: bool = True  # off: a prompt is prefilled whole, in one step
    enable_prefix_caching: bool = False  # modeled as a hit rate on prompt tokens when on
    prefix_hit_rate: float = 0.0  # share of a prompt's tokens found in the prefix cache (with caching on)

    def __post_init__(self) -> None:
        budget = self.max_num_batched_tokens
        if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int) or budget < 1):
            raise ConfigError(f"'vllm.max_num_batched_tokens' must be an integer >= 1 (got {budget!r})")
        if isinstance(self.block_size, bool) or not isinstance(self.block_size, int) or self.block_size < 1:
            raise ConfigError(f"'vllm.block_size' must be an integer >= 1 (got {self.block_size!r})")
        share = self.gpu_memory_utilization
        if isinstance(share, bool) or not isinstance(share, int | float) or not 0.0 < share <= 1.0:
            raise ConfigError(f"'vllm.gpu_memory_utilization' must be in (0, 1] (got {share!r})")
        if not isinstance(self.enable_chunked_prefill, bool):
            raise ConfigError(
                f"'vllm.enable_chunked_prefill' must be true or false (got {self.enable_chunked_prefill!r})"
            )
        if not isinstance(self.enable_prefix_caching, bool):
            raise ConfigError(
                f"'vllm.enable_prefix_caching' must be true or false (got {self.enable_prefix_caching!r})"
            )
        hit = self.prefix_hit_rate
        if isinstance(hit, bool) or not isinstance(hit, int | float) or not 0.0 <= hit < 1.0:
            raise ConfigError(f"'vllm.prefix_hit_rate' must be in [0, 1) (got {hit!r})")


def vllm_default_budget(accelerator: Accelerator) -> int:
    """vLLM's default ``max_num_batched_tokens`` for online serving on this hardware (vllm engine args'
    usage-context defaults): 8192 on H100-class GPUs, 2048 on smaller GPUs, 1024 on TPU v6e, 512 on v5e."""
    family = accelerator.family
    if family.startswith("tpu-"):
        return 1024 if family == "tpu-v6e" else 512 if family == "tpu-v5e" else 256
    return 8192 if accelerator.hbm_bytes_per_chip >= 70 * GIB and family not in ("a100",) else 2048


# --- The replica config --------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class ReplicaConfig:
    """One replica: what runs on what, with how many decode slots, and how long it takes to start."""

    accelerator: Accelerator
    model: Model
    decode_slots: int  # max_concurrent_decodes = per_device_batch_size x chips in MaxText
    max_prefill_length: int = 1024  # longer prompts keep their last tokens (JetStream pad_tokens)
    max_target_length: int = 2048  # the longest request: prompt + output
    # KV cache per slot in tokens; None: max_target_length. Shorter: a rolling window over the last
    # cache_length tokens (jetstream-pytorch's rolling window attention)
    cache_length: int | None = None
    kv_read: KvRead | None = None  # what the attention reads each step; None: the kind's (cache / active)
    data_parallel: int = 1  # groups of chips each holding all the weights (jetstream-pytorch shard_on_batch)
    stack: ServingStack = ServingStack.MAXTEXT  # the server software: picks the scheduler and the efficiency
    vllm: VllmSettings | None = None  # vLLM's scheduler settings (stack vllm only); None: its defaults
    # submit() refuses beyond this. JetStream itself is unbounded; 1,024 prompts bound the server's memory
    # (each waits with its text) while staying far above any backlog an HPA targets (3-10 per replica).
    prefill_backlog_limit: int = 1024
    # submit() also refuses a request whose expected wait for its prefill (the engine's own estimate,
    # ``ReplicaEngine.expected_wait_s``) exceeds this many seconds; None: no bound by time, as in JetStream.
    max_queue_wait_s: float | None = None
    model_load_s: float = 60.0  # from start() until the replica is ready
    hbm_mode: HbmMode = HbmMode.PREALLOCATED  # MaxText allocates every slot's cache at start
    runtime_reserve_bytes: int | None = None  # None: the accelerator's reserve per chip x chips
    interleaved: bool = True  # prefill and decode share the chips (the only mode modeled)
    efficiency: Efficiency | None = None  # None: the calibrated one (``efficiency_for``)
    # measured step and prefill times (a ``jetscale profile``): when set, they replace the roofline's
    timing: MeasuredTiming | None = None
    name: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.accelerator, Accelerator):
            raise ConfigError(
                f"'accelerator' must be an accelerator name or a mapping of its data sheet (got {self.accelerator!r})"
            )
        if not isinstance(self.model, Model):
            raise ConfigError(f"'model' must be a model name or a mapping of its architecture (got {self.model!r})")
        if self.efficiency is not None and not isinstance(self.efficiency, Efficiency):
            raise ConfigError(f"'efficiency' must be a mapping of efficiency fields (got {self.efficiency!r})")
        if self.timing is not None and not isinstance(self.timing, MeasuredTiming):
            raise ConfigError(f"'timing' must be a mapping of measured timing fields (got {self.timing!r})")
        if not isinstance(self.name, str):
            raise ConfigError(f"'name' must be a string (got {self.name!r})")
        for field in ("decode_slots", "max_prefill_length", "prefill_backlog_limit", "data_parallel"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"'{field}' must be an integer >= 1 (got {value!r})")
        if isinstance(self.max_target_length, bool) or not isinstance(self.max_target_length, int):
            raise ConfigError(f"'max_target_length' must be an integer (got {self.max_target_length!r})")
        if self.max_target_length <= self.max_prefill_length:
            raise ConfigError(
                f"'max_target_length' must be > max_prefill_length ({self.max_prefill_length}) "
                f"(got {self.max_target_length})"
            )
        self._check_cache_and_groups()
        if self.max_queue_wait_s is not None and not (
            isinstance(self.max_queue_wait_s, int | float)
            and self.max_queue_wait_s > 0.0
            and math.isfinite(self.max_queue_wait_s)
        ):
            raise ConfigError(f"'max_queue_wait_s' must be a number of seconds > 0 (got {self.max_queue_wait_s!r})")
        load_s = self.model_load_s
        if isinstance(load_s, bool) or not isinstance(load_s, int | float) or not 0.0 <= load_s < math.inf:
            raise ConfigError(f"'model_load_s' must be >= 0 (got {self.model_load_s!r})")
        reserve = self.runtime_reserve_bytes
        if reserve is not None and (isinstance(reserve, bool) or not isinstance(reserve, int) or reserve < 0):
            raise ConfigError(f"'runtime_reserve_bytes' must be >= 0 (got {self.runtime_reserve_bytes!r})")
        if not isinstance(self.hbm_mode, HbmMode):
            if self.hbm_mode not in tuple(HbmMode):
                raise ConfigError(f"'hbm_mode' must be one of paged, preallocated (got {self.hbm_mode!r})")
            object.__setattr__(self, "hbm_mode", HbmMode(self.hbm_mode))
        if self.interleaved is not True:
            raise ConfigError(
                f"'interleaved' must be true: disaggregated serving is not modeled (got {self.interleaved!r})"
            )
        if self.kind is ServerKind.VLLM:
            self._check_vllm()
            return
        needed = self.weight_bytes + self.kv_cache_bytes + self.reserve_bytes
        if needed > self.hbm_total_bytes:
            raise ConfigError(
                f"'decode_slots' must fit in HBM: weights {_gib(self.weight_bytes)} GiB + KV "
                f"{_gib(self.kv_cache_bytes)} GiB ({self.decode_slots} slots x {self.cache_tokens} tokens x "
                f"{self.model.kv_bytes_per_token} B) + reserve {_gib(self.reserve_bytes)} GiB = {_gib(needed)} GiB "
                f"> HBM {_gib(self.hbm_total_bytes)} GiB on {self.accelerator.name} (got {self.decode_slots})"
            )

    def _check_cache_and_groups(self) -> None:
        cache = self.cache_length
        if cache is not None and (
            isinstance(cache, bool)
            or not isinstance(cache, int)
            or not self.max_prefill_length <= cache
            or cache > self.max_target_length
        ):
            raise ConfigError(
                f"'cache_length' must be a whole number of tokens from max_prefill_length ({self.max_prefill_length}) "
                f"to max_target_length ({self.max_target_length}) (got {cache!r})"
            )
        if not isinstance(self.stack, ServingStack):
            if self.stack not in tuple(ServingStack):
                choices = ", ".join(m.value for m in ServingStack)
                raise ConfigError(f"'stack' must be one of {choices} (got {self.stack!r})")
            object.__setattr__(self, "stack", ServingStack(self.stack))
        if self.kv_read is None:
            object.__setattr__(self, "kv_read", KvRead.ACTIVE if self.stack is ServingStack.VLLM else KvRead.CACHE)
        if not isinstance(self.kv_read, KvRead):
            if self.kv_read not in tuple(KvRead):
                raise ConfigError(f"'kv_read' must be one of cache, active (got {self.kv_read!r})")
            object.__setattr__(self, "kv_read", KvRead(str(self.kv_read)))
        if self.vllm is not None and self.stack is not ServingStack.VLLM:
            raise ConfigError(f"'vllm' settings need stack vllm (got stack {self.stack.value})")
        if self.kv_read is KvRead.ACTIVE and self.cache_tokens < self.max_target_length:
            raise ConfigError(
                f"'cache_length' must be max_target_length ({self.max_target_length}) with kv_read active: a "
                f"rolling window is a preallocated cache (got {cache})"
            )
        chips = self.accelerator.chips
        if chips % self.data_parallel or self.decode_slots % self.data_parallel:
            raise ConfigError(
                f"'data_parallel' must divide the chips ({chips}) and decode_slots ({self.decode_slots}): each group "
                f"holds an equal share (got {self.data_parallel})"
            )

    def _check_vllm(self) -> None:
        """vLLM: a paged cache read by active tokens; its pool must hold one sequence of max_model_len."""
        if self.vllm is not None and not isinstance(self.vllm, VllmSettings):
            raise ConfigError(f"'vllm' must be a mapping of vLLM settings (got {self.vllm!r})")
        for field, value, allowed in (
            ("kv_read", self.kv_read, KvRead.ACTIVE),
            ("cache_length", self.cache_length, None),
            ("data_parallel", self.data_parallel, 1),
        ):
            if value != allowed:
                raise ConfigError(f"'{field}' must be {allowed} with stack vllm (a paged cache) (got {value!r})")
        if not self.vllm_settings.enable_chunked_prefill and self.max_num_batched_tokens < self.max_target_length:
            raise ConfigError(
                f"'vllm.max_num_batched_tokens' must be >= max_model_len ({self.max_target_length}) without chunked "
                f"prefill: a prompt is prefilled whole, in one step (got {self.max_num_batched_tokens})"
            )
        blocks = self.kv_blocks
        block = self.vllm_settings.block_size
        if blocks * block < self.max_target_length:
            raise ConfigError(
                f"'max_target_length' (vLLM's max_model_len) must fit in the KV cache: {blocks} blocks of {block} "
                f"tokens after weights {_gib(self.weight_bytes)} GiB and reserve {_gib(self.reserve_bytes)} GiB in "
                f"{self.vllm_settings.gpu_memory_utilization:g} of HBM {_gib(self.hbm_total_bytes)} GiB "
                f"(got {self.max_target_length})"
            )

    @property
    def kv_read_mode(self) -> KvRead:
        """``kv_read`` as resolved for the kind (the field is never None once the config is made)."""
        return self.kv_read if isinstance(self.kv_read, KvRead) else KvRead.CACHE

    @property
    def kind(self) -> ServerKind:
        return ServerKind.VLLM if self.stack is ServingStack.VLLM else ServerKind.JETSTREAM

    @property
    def vllm_settings(self) -> VllmSettings:
        """vLLM's settings, its defaults where none are given."""
        return self.vllm if self.vllm is not None else VllmSettings()

    @property
    def max_num_batched_tokens(self) -> int:
        """vLLM's per-step token budget (given, or its default for the hardware)."""
        budget = self.vllm_settings.max_num_batched_tokens
        return budget if budget is not None else vllm_default_budget(self.accelerator)

    @property
    def kv_blocks(self) -> int:
        """vLLM's KV cache blocks: what ``gpu_memory_utilization`` of HBM leaves after weights and reserve."""
        settings = self.vllm_settings
        pool = int(self.hbm_total_bytes * settings.gpu_memory_utilization) - self.weight_bytes - self.reserve_bytes
        return max(0, pool // (settings.block_size * self.model.kv_bytes_per_token))

    @property
    def cache_tokens(self) -> int:
        """KV cache length per slot in tokens."""
        return self.cache_length if self.cache_length is not None else self.max_target_length

    @property
    def reserve_bytes(self) -> int:
        if self.runtime_reserve_bytes is not None:
            return self.runtime_reserve_bytes
        return self.accelerator.chips * self.accelerator.runtime_reserve_bytes_per_chip

    @property
    def weight_bytes(self) -> int:
        """The weights in HBM: one copy per data-parallel group."""
        return self.model.weight_bytes * self.data_parallel

    @property
    def kv_cache_bytes(self) -> int:
        """The KV cache allocated at start: every slot's at ``cache_tokens`` (MaxText), or vLLM's block pool."""
        if self.kind is ServerKind.VLLM:
            return self.kv_blocks * self.vllm_settings.block_size * self.model.kv_bytes_per_token
        return self.decode_slots * self.cache_tokens * self.model.kv_bytes_per_token

    @property
    def hbm_total_bytes(self) -> int:
        return self.accelerator.hbm_total_bytes

    @property
    def resolved_efficiency(self) -> Efficiency:
        if self.efficiency is not None:
            return self.efficiency
        return efficiency_for(self.accelerator, self.model, self.stack)

    def roofline(self) -> Roofline:
        if self.timing is not None:
            return self.timing.roofline(self.max_prefill_length)
        return roofline(
            self.accelerator,
            self.model,
            self.resolved_efficiency,
            decode_slots=self.decode_slots,
            max_prefill_length=self.max_prefill_length,
            cache_length=self.cache_tokens if self.kv_read is KvRead.CACHE else None,
            data_parallel=self.data_parallel,
        )


def _gib(n: int) -> str:
    return f"{n / GIB:.1f}"
