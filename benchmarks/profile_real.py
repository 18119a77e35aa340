"""`jetscale profile` against a real server nobody here wrote, and the simulator's predictions checked on it.

The server is Hugging Face ``transformers serve --continuous-batching`` on CPU (docs/profile.md;
the recipe is /work/shared/notes/real-cpu-server.md), serving a tiny randomly initialised Llama with a
small byte-level BPE tokenizer, both built here (no download: ``HF_HUB_OFFLINE=1``). In order:

1. **Model**: a BPE of 2,048 tokens trained on the words ``jetscale load`` and ``jetscale profile`` send
   (so one word is one token) and a ``LlamaForCausalLM`` of hidden 256, 4 layers, 4 heads, 2 KV heads
   (about 4 M parameters), saved with ``save_pretrained``. Its end-of-sequence row of ``lm_head`` is
   zeroed, so under greedy decoding (``temperature: 0``) the random model never ends early and every
   request gets the ``max_tokens`` it asked for, as the simulator assumes (``transformers serve`` refuses
   vLLM's ``ignore_eos``).
2. **Server**: ``transformers serve`` on 127.0.0.1 and a free port, in its own process group, with one
   torch thread (``--threads``: the other core is the clients') and a bounded KV cache (``CACHE_FLAGS``);
   /health, then a warm-up: every prompt length and a burst of concurrent requests, in words the
   profile never sends.
3. **Profile**: a base replica YAML for this setup (the model's real architecture; a made-up ``cpu``
   accelerator with HBM to spare; prompts up to 256 tokens, caches of 512) and ``jetscale profile --api
   openai --replica BASE --out DIR/profile --budget ...``, as a subprocess.
4. **Held-out load**: a Poisson load at a share (``--load``, 0.35) of the closed-loop capacity the profile
   measured, of a fixed shape the profile never sent (80 tokens in, 40 out), for ``--duration`` (90 s),
   with ``jetscale load --api openai`` against the live server; then the same arrivals (same workload,
   rate, duration, seed) through ``jetscale simulate --replica DIR/profile/profile.yaml`` with an HPA
   pinned to one replica.
5. **Table**: TTFT p50/p95, E2E p50/p95 (from the summaries of both) and output tokens/s (every
   request's output tokens over the time to the last completion, from both runs' requests.csv),
   measured, predicted and the error; the goal is every error within 15%.

Everything is bounded: the server's start (``--start-timeout``), the profile (``--budget`` plus time to
fit), the load (``--duration`` plus its drain) and the simulation each have a deadline; the server and
every child are killed on exit, on an error and on Ctrl-C. The reports stay in ``--out``. Takes 4 to 7
minutes on 2 cores. Prints a table; asserts nothing unless ``--check`` (exit 1 on a miss). Run:
``python benchmarks/profile_real.py [--out DIR] [--budget 5m] [--duration 90] [--load 0.35]``.
Needs the ``profile-real`` extra: ``pip install -e '.[profile-real]'``.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import math
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
GOAL = 0.15  # the largest relative error that counts as a good prediction
PROFILE_WORDS = "sea wind ship salt wave tide gull reef"  # the words jetscale.profile.client's prompts use
MAX_PREFILL_TOKENS = 256
MAX_TARGET_TOKENS = 512
# On the CPU, continuous batching sizes its paged KV cache from free RAM (about 1,450 blocks of 256 tokens on
# a 24 GB machine) and preallocates a dense attention mask of max_batch_tokens x (cache + batch) tokens: the
# model's process reached 14 GB and the kernel killed it. 160 blocks hold 80 requests of 512 tokens; 2,048
# batch tokens (prefills chunked beyond) keep the mask near 0.35 GB and the process near 1 GB.
CACHE_FLAGS = ["--cb-num-blocks", "160", "--cb-max-batch-tokens", "2048"]
console = Console()


# --- 1. the model -----------------------------------------------------------------------------------------
def build_model(path: Path, *, seed: int) -> None:
    """A byte-level BPE tokenizer and a randomly initialised Llama in ``path`` (seconds, offline)."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast
    from transformers.utils import logging as hf_logging

    from jetscale.load.workload import synthetic_prompt

    hf_logging.disable_progress_bar()
    path.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    pseudo = ["".join(rng.choice(letters) for _ in range(rng.randint(2, 7))) for _ in range(3000)]
    profile_words = PROFILE_WORDS.split()
    corpus = [synthetic_prompt(200, k * 997) for k in range(200)]  # the words `jetscale load` sends
    corpus += [" ".join(profile_words[(s + k) % 8] for k in range(64)) for s in range(8)]
    corpus += [" ".join(rng.choice(pseudo) for _ in range(40)) for _ in range(2000)]  # to fill the vocabulary
    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(corpus, trainers.BpeTrainer(
        vocab_size=2048, special_tokens=["<unk>", "<s>", "</s>"], show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    ))  # fmt: skip
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, unk_token="<unk>", bos_token="<s>", eos_token="</s>")
    tokenizer.chat_template = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}assistant:"
    tokenizer.save_pretrained(path)
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=256, intermediate_size=688, num_hidden_layers=4,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2 * MAX_TARGET_TOKENS,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, tie_word_embeddings=False,
    )  # fmt: skip
    model = LlamaForCausalLM(config)
    with torch.no_grad():  # logit 0 for </s>: below the greedy maximum of 2,047 random logits, so never chosen
        model.lm_head.weight[tokenizer.eos_token_id].zero_()
    model.save_pretrained(path)


def model_mapping(path: Path) -> dict[str, object]:
    """The replica YAML's ``model`` mapping, from the saved ``config.json`` and the weights' sizes."""
    from safetensors import safe_open

    config = json.loads((path / "config.json").read_text())
    params = 0
    for shard in sorted(path.glob("*.safetensors")):
        with safe_open(shard, framework="np") as weights:
            for name in weights.keys():  # noqa: SIM118 (safe_open is no mapping)
                params += math.prod(weights.get_slice(name).get_shape())
    heads = config["num_attention_heads"]
    return {
        "name": "tiny-llama", "params": params, "layers": config["num_hidden_layers"],
        "hidden_size": config["hidden_size"], "heads": heads, "kv_heads": config["num_key_value_heads"],
        "head_dim": config.get("head_dim") or config["hidden_size"] // heads, "vocab_size": config["vocab_size"],
        "source": f"{path}/config.json; {params:,} parameters (float32 on the CPU; bf16 here, for HBM only)",
    }  # fmt: skip


def base_replica(model_dir: Path, slots: int) -> dict[str, object]:
    """The replica YAML of this setup before profiling: what it runs, not how fast (the profile measures
    that). The ``cpu`` accelerator is made up: HBM to spare for any slot count the profile may find."""
    return {
        "name": "cpu/tiny-llama",
        "accelerator": {
            "name": "cpu", "chips": 1, "hbm_bytes_per_chip": "8Gi", "hbm_bandwidth_bytes_s": "20G",
            "peak_bf16_flops": "100G", "runtime_reserve_bytes_per_chip": "1Gi",
            "source": "made up: 2 CPU cores (the profile measures the timing; these size the KV cache only)",
        },
        "model": model_mapping(model_dir),
        "decode_slots": slots,  # replaced by the slot count the profile measures
        "max_prefill_length": MAX_PREFILL_TOKENS,
        "max_target_length": MAX_TARGET_TOKENS,
    }  # fmt: skip


PINNED_HPA = {
    "apiVersion": "autoscaling/v2",
    "kind": "HorizontalPodAutoscaler",
    "metadata": {"name": "one-replica"},
    "spec": {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "transformers-serve"},
        "minReplicas": 1,
        "maxReplicas": 1,
        "metrics": [{"type": "Pods", "pods": {"metric": {"name": "jetstream_prefill_backlog_size"},
                                              "target": {"type": "AverageValue", "averageValue": 10}}}],
    },
}  # fmt: skip


# --- 2. processes -------------------------------------------------------------------------------------------
class Children:
    """Every child process, each in its own process group, killed with its group on ``stop()``."""

    def __init__(self) -> None:
        self._procs: list[subprocess.Popen[bytes]] = []

    def start(self, args: list[str], *, log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        with log.open("wb") as out:
            proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env=env, start_new_session=True, cwd=ROOT)  # fmt: skip
        self._procs.append(proc)
        return proc

    def run(self, args: list[str], *, log: Path, timeout_s: float) -> str:
        """Run ``args`` to the end (at most ``timeout_s``): its stdout; its stderr goes to ``log``."""
        with log.open("wb") as err:
            proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL,
                                    start_new_session=True, cwd=ROOT)  # fmt: skip
            self._procs.append(proc)
            try:
                out, _ = proc.communicate(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                raise SystemExit(f"{Path(args[0]).name} {args[1]} ran past {timeout_s:.0f} s; see {log}") from None
            finally:  # also on Ctrl-C: the child is in a session of its own, so the terminal's signal missed it
                self._kill(proc)
                self._procs.remove(proc)
        if proc.returncode != 0:
            tail = log.read_text(errors="replace").strip().splitlines()[-5:]
            raise SystemExit(f"{Path(args[0]).name} {args[1]} exited {proc.returncode}: {' | '.join(tail)}")
        return out.decode()

    def stop(self) -> None:
        while self._procs:
            self._kill(self._procs.pop())

    @staticmethod
    def _kill(proc: subprocess.Popen[bytes]) -> None:
        """SIGTERM to the child's process group, SIGKILL to what is left after 10 s: the group too, for the
        model process ``transformers serve`` spawns."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(10.0)


@contextlib.contextmanager
def children() -> Iterator[Children]:
    """Children that die with this script: on return, on an error, on Ctrl-C, SIGTERM and SIGHUP (also when
    started in the background, where SIGINT comes ignored). A second Ctrl-C does not cut the cleanup short."""
    kids = Children()

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.signal(sig, interrupt) for sig in signals}
    try:
        yield kids
    finally:
        for sig in signals:
            signal.signal(sig, signal.SIG_IGN)
        kids.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str, timeout_s: float) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout_s) as response:
        return bytes(response.read())


def _complete(base: str, model: str, prompt: str, max_tokens: int) -> dict[str, object]:
    body = json.dumps({"model": model, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0.0}).encode()
    request = urllib.request.Request(f"{base}/v1/completions", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        return dict(json.loads(response.read()))


def start_server(kids: Children, model_dir: Path, out: Path, *, threads: int, timeout_s: float) -> tuple[str, str]:
    """Start ``transformers serve`` and wait for /health: (base URL, model id)."""
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": str(threads)}
    args = [str(BIN / "transformers"), "serve", str(model_dir), "--continuous-batching", "--device", "cpu",
            "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", *CACHE_FLAGS]  # fmt: skip
    proc = kids.start(args, log=out / "server.log", env=env)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"transformers serve exited {proc.returncode}; see {out / 'server.log'}")
        with contextlib.suppress(OSError):
            if json.loads(_get(f"{base}/health", 2)).get("status") == "ok":
                break
        if time.monotonic() > deadline:
            raise SystemExit(f"transformers serve did not answer /health in {timeout_s:.0f} s; see {out}/server.log")
        time.sleep(0.5)
    models = json.loads(_get(f"{base}/v1/models", 10))["data"]
    return base, str(models[0]["id"])


def warm_up(base: str, model: str) -> None:
    """The first request loads and traces the model; then every prompt length and a burst. Its prompts are
    none of the profile's (``transformers serve`` shares cached blocks of 256 tokens between prompts with
    the same start: a warm-up of the profile's own words made its 257-token prefill take 12 ms, not 40)."""
    from jetscale.load.workload import synthetic_prompt

    answer = _complete(base, model, synthetic_prompt(2, 40_000), 4)
    for k, length in enumerate((8, 32, 64, 128, MAX_PREFILL_TOKENS)):
        answer = _complete(base, model, synthetic_prompt(length, 41_000 + 997 * k), 8)
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda k: _complete(base, model, synthetic_prompt(48, 50_000 + 97 * k), 32), range(32)))
    usage = answer.get("usage")
    if not isinstance(usage, dict) or usage.get("completion_tokens") != 8:
        raise SystemExit(f"the server must answer all 8 tokens asked for (got usage {usage})")


# --- 3.-5. profile, load, simulate, compare -----------------------------------------------------------------
def jetscale(*args: str) -> list[str]:
    return [str(BIN / "jetscale"), *args]


def output_tokens_s(requests_csv: Path) -> float:
    """Every completed request's output tokens over the time from the start to the last completion."""
    tokens, last = 0, 0.0
    with requests_csv.open() as f:
        for row in csv.DictReader(f):
            if "end_s" in row:  # jetscale simulate
                if row["outcome"] != "completed":
                    continue
                end = float(row["end_s"])
            else:  # jetscale load
                if row["outcome"] != "ok":
                    continue
                end = float(row["sent_s"]) + float(row["e2e_s"])
            tokens += int(row["output_tokens"])
            last = max(last, end)
    return tokens / last if last > 0 else 0.0


def compare(live: dict[str, float], sim: dict[str, float]) -> list[tuple[str, float, float, float]]:
    return [(name, live[name], sim[name], sim[name] / live[name] - 1.0) for name in live]


def figures(summary: dict, tokens_s: float) -> dict[str, float]:
    return {
        "TTFT p50 (s)": summary["ttft"]["p50_s"], "TTFT p95 (s)": summary["ttft"]["p95_s"],
        "E2E p50 (s)": summary["e2e"]["p50_s"], "E2E p95 (s)": summary["e2e"]["p95_s"],
        "output tokens/s": tokens_s,
    }  # fmt: skip


def missing_extra() -> str | None:
    """What of the ``profile-real`` extra is not installed, or None."""
    import importlib.util

    absent = [m for m in ("torch", "transformers", "fastapi", "uvicorn") if importlib.util.find_spec(m) is None]
    return ", ".join(absent) if absent else None


class Phases:
    """How long each step took, printed as it ends."""

    def __init__(self) -> None:
        self.started = self._last = time.monotonic()
        self.seconds: dict[str, float] = {}

    def done(self, name: str) -> None:
        now = time.monotonic()
        self.seconds[name] = now - self._last
        self._last = now
        console.print(f"[dim]{name}: {self.seconds[name]:.0f} s[/]")

    def describe(self) -> str:
        parts = ", ".join(f"{k} {v:.0f}" for k, v in self.seconds.items())
        return f"{time.monotonic() - self.started:.0f} s ({parts})"


def profile(kids: Children, a: argparse.Namespace, base: str, model: str, model_dir: Path, out: Path) -> dict:
    """``jetscale profile`` of the server: its ``--json`` document. Where a measurement was lost (the
    profile drops a closed loop or a wave when one of its requests fails), a second run with the same
    ``--out`` resumes: it keeps every point measured and measures only what is missing."""
    from jetscale.units import parse_duration_s

    replica = out / "base-replica.yaml"
    replica.write_text(yaml.safe_dump(base_replica(model_dir, a.max_concurrency), sort_keys=False))
    shutil.rmtree(out / "profile", ignore_errors=True)  # an earlier run's points: another port, not resumable
    console.print(f"jetscale profile --budget {a.budget} (report: {out}/profile/report.html)")
    fit: dict = {}
    for attempt, budget in enumerate((a.budget, "2m")):
        if attempt:
            why = fit["stopped"] or (fit["errors"] or ["no closed loop"])[-1]
            console.print(f"the profile lost a measurement ({why}): resuming it with --budget {budget}")
        fit = dict(json.loads(kids.run(jetscale(
            "profile", "--api", "openai", "--target", base, "--model", model, "--replica", str(replica),
            "--out", str(out / "profile"), "--budget", budget, "--max-concurrency", str(a.max_concurrency),
            "--json", "--quiet",
        ), log=out / "profile.log", timeout_s=parse_duration_s(budget, "--budget") + 180)))  # fmt: skip
        fit["errors"] = json.loads((out / "profile" / "points.json").read_text())["errors"]
        if fit["capacity"] and not fit["stopped"] and not fit["errors"]:
            break
    return fit


def held_out(a: argparse.Namespace, fit: dict) -> list[str]:
    """The held-out load's flags, shared by ``jetscale load`` and ``jetscale simulate``."""
    capacity = max((row["measured_tokens_s"] for row in fit["capacity"]), default=None)
    if a.rate is None and capacity is None:
        raise SystemExit("the profile measured no closed loop (its budget ran out?): give --rate")
    rate = a.rate if a.rate is not None else round(a.load * capacity / a.output, 2)
    workload = f"fixed:input={a.input},output={a.output}"
    console.print(f"held-out load: Poisson {rate} requests/s of {workload} for {a.duration:g} s, seed {a.seed}")
    return ["--workload", workload, "--rate", str(rate), "--duration", f"{a.duration:g}", "--seed", str(a.seed)]


def report(out: Path, flags: list[str], fit: dict, load: dict, sim: dict, phases: Phases) -> list[str]:
    """Print the table and what lies behind it, write DIR/comparison.json: the metrics beyond the goal."""
    live = figures(load, output_tokens_s(out / "load" / "requests.csv"))
    predicted = figures(sim, output_tokens_s(out / "sim" / "requests.csv"))
    rows = compare(live, predicted)
    table = Table(title=f"transformers serve, CPU, {os.cpu_count()} cores: live vs simulate")
    for column in ("metric", "measured live", "predicted", "error"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for name, measured, guess, error in rows:
        color = "green" if abs(error) <= GOAL else "red"
        fmt = "{:.1f}" if "tokens" in name else "{:.3f}"
        table.add_row(name, fmt.format(measured), fmt.format(guess), f"[{color}]{error:+.1%}[/]")
    console.print(table)
    timing = fit["timing"]
    console.print(
        f"held-out load {' '.join(flags)}: {load['ok']} ok of {load['sent']} sent, {load['failed']} failed; "
        f"simulated {sim['counts']['done']} done of {sim['counts']['arrived']}\n"
        f"profile: slots {fit['slots']} ({fit['slots_source']}); decode step {timing['decode_step_fixed_s'] * 1e3:.2f}"
        f" ms + {timing['decode_step_per_token_s'] * 1e6:.2f} µs per context token; prefill "
        f"{timing['prefill_fixed_s'] * 1e3:.2f} ms + {timing['prefill_per_token_s'] * 1e6:.2f} µs per prompt token; "
        f"client overhead {fit['client_overhead_s'] * 1e3:.2f} ms"
    )
    for row in fit["capacity"]:
        console.print(f"profile's own check: closed loop x{row['concurrency']:.0f}: {row['measured_tokens_s']:.0f} "
                      f"tok/s measured, {row['predicted_tokens_s']:.0f} predicted ({row['error']:+.1%})")  # fmt: skip
    for note in fit["notes"]:
        console.print(f"note: {note}")
    misses = [name for name, _, _, error in rows if abs(error) > GOAL]
    verdict = f"beyond {GOAL:.0%}: {', '.join(misses)}" if misses else f"all within {GOAL:.0%}"
    console.print(f"{verdict}; took {phases.describe()}; reports in {out}")
    (out / "comparison.json").write_text(json.dumps({
        "flags": flags, "rows": [{"metric": n, "live": m, "predicted": p, "error": e} for n, m, p, e in rows],
        "profile": fit, "phases_s": phases.seconds, "total_s": time.monotonic() - phases.started,
    }, indent=1))  # fmt: skip
    return misses


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="Where the reports go (default: a new temporary folder, kept).")
    parser.add_argument("--model-dir", type=Path, help="Build (or reuse) the model here (default: a temporary one).")
    parser.add_argument("--budget", default="5m", help="jetscale profile --budget (default 5m).")
    parser.add_argument("--max-concurrency", type=int, default=64, help="jetscale profile's ceiling (default 64).")
    parser.add_argument("--duration", type=float, default=90.0, help="Seconds of held-out load (default 90).")
    parser.add_argument("--load", type=float, default=0.35, help="Its rate, a share of the measured capacity (0.35).")
    parser.add_argument("--rate", type=float, help="Its rate in requests/s (instead of --load).")
    parser.add_argument("--input", type=int, default=80, help="Its prompt words (tokens) per request (default 80).")
    parser.add_argument("--output", type=int, default=40, help="Its output tokens per request (default 40).")
    parser.add_argument("--seed", type=int, default=1, help="Seed of the arrivals, model and tokenizer (default 1).")
    parser.add_argument("--threads", type=int, default=1, help="The server's torch threads (default 1; 2 cores).")
    parser.add_argument("--start-timeout", type=float, default=240.0, help="Seconds for the server to start.")
    parser.add_argument("--check", action="store_true", help="Exit 1 when an error is beyond 15%%.")
    a = parser.parse_args()
    if (absent := missing_extra()) is not None:
        console.print(f"skipped: {absent} not installed; pip install -e '.[profile-real]'")
        return 0
    out = (a.out or Path(tempfile.mkdtemp(prefix="profile-real-"))).resolve()
    out.mkdir(parents=True, exist_ok=True)
    phases = Phases()
    with contextlib.ExitStack() as stack:
        model_dir = a.model_dir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tiny-llama-")))
        model_dir = model_dir.resolve()
        if not (model_dir / "config.json").is_file():
            console.print(f"building the tiny model in {model_dir}")
            build_model(model_dir, seed=a.seed)
        phases.done("model")
        kids = stack.enter_context(children())
        console.print("starting transformers serve --continuous-batching on the CPU")
        base, model = start_server(kids, model_dir, out, threads=a.threads, timeout_s=a.start_timeout)
        phases.done("server start")
        warm_up(base, model)
        phases.done("warm-up")
        fit = profile(kids, a, base, model, model_dir, out)
        phases.done("profile")
        flags = held_out(a, fit)
        load = json.loads(kids.run(jetscale(
            "load", "--api", "openai", "--target", base, "--model", model, *flags, "--timeout", "60s",
            "--drain", "30s", "--out", str(out / "load"), "--no-html", "--json", "--quiet",
        ), log=out / "load.log", timeout_s=a.duration + 150))["summary"]  # fmt: skip
        phases.done("load")
        kids.stop()  # done with the server: the simulation gets the cores
        hpa = out / "hpa-one-replica.yaml"
        hpa.write_text(yaml.safe_dump(PINNED_HPA, sort_keys=False))
        sim = json.loads(kids.run(jetscale(
            "simulate", "--hpa", str(hpa), "--replica", str(out / "profile" / "profile.yaml"), *flags,
            "--no-oracle", "--records", "--out", str(out / "sim"), "--json", "--quiet",
        ), log=out / "simulate.log", timeout_s=300))["runs"][0]  # fmt: skip
        phases.done("simulate")
    misses = report(out, flags, fit, load, sim, phases)
    return 1 if a.check and misses else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        console.print("interrupted: the server and every child were stopped")
        sys.exit(130)
