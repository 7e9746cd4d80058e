"""Ground truth for tests, computed from the dataset (never from served HTTP bodies)."""

from __future__ import annotations

import math
from collections import defaultdict
from decimal import Decimal

from .catalog import (
    ANTHROPIC,
    ANTHROPIC_STREAMS,
    OPENAI,
    OPENAI_STREAMS,
    VECTOR_STORES,
    vector_store_bytes,
)
from .data import DAY, SyntheticData

Expected = dict[str, dict[tuple[str, ...], float]]


def _days(start: int, end: int, now: float) -> range:
    """UTC days whose start lies in ``[start, end)`` and before ``now``."""
    first = -(-start // DAY) * DAY
    return range(first, max(first, min(end, math.ceil(now))), DAY)


def expected_openai(data: SyntheticData, start: int, end: int, now: float) -> Expected:
    """OpenAI tokens/requests/images/audio over ``[start, min(end, now))``, cost per day.

    ``images`` are by (project, model), ``labelled_images`` also by size and source.
    """
    out: dict[str, defaultdict[tuple[str, ...], float]] = {
        name: defaultdict(float)
        for name in (
            "tokens",
            "requests",
            "cost",
            "images",
            "audio_speech_characters",
            "audio_transcription_seconds",
            "tool_calls",
            "vector_store_bytes",
            "labelled_images",
        )
    }
    stop = min(end, now)
    totals = data.totals(OPENAI, start, stop) if stop > start else [None] * len(OPENAI_STREAMS)
    tokens, requests = out["tokens"], out["requests"]
    for stream, values in zip(OPENAI_STREAMS, totals, strict=True):
        if values is None:
            continue
        dims = stream.dims
        project, model = str(dims["project_id"]), str(dims["model"])
        tier = "default"
        if stream.kind == "completions":
            tier = "batch" if dims["batch"] else str(dims["service_tier"] or "default")
            _, ut, ua, ui, ct, ca, ci, cw, ot, oa, oi = values
            for token_type, modality, value in (
                ("input", "text", ut),
                ("input", "audio", ua),
                ("input", "image", ui),
                ("input_cache_read", "text", ct),
                ("input_cache_read", "audio", ca),
                ("input_cache_read", "image", ci),
                ("input_cache_write", "text", cw),
                ("output", "text", ot),
                ("output", "audio", oa),
                ("output", "image", oi),
            ):
                if value:
                    tokens[(project, model, token_type, modality, tier)] += value
        elif stream.kind in ("embeddings", "moderations"):
            tokens[(project, model, "input", "text", tier)] += values[1]
        elif stream.kind in _TOOLS:
            # (project, model, tool): only web search calls are grouped by model.
            tool = _TOOLS[stream.kind]
            by_model = model if tool == "web_search" else ""
            out["tool_calls"][(project, by_model, tool)] += values[1]
            continue  # no model requests of their own: those are in completions
        else:
            if stream.kind == "images":  # as the exporter labels them: by size and source
                key = (project, model, str(dims["size"]), str(dims["source"]))
                out["labelled_images"][key] += values[1]
            family = {
                "images": "images",
                "audio_speeches": "audio_speech_characters",
                "audio_transcriptions": "audio_transcription_seconds",
            }[stream.kind]
            out[family][(project, model)] += values[1]
        requests[(project, model, tier)] += values[0]
    cost: defaultdict[tuple[str, ...], Decimal] = defaultdict(Decimal)
    for day in _days(start, end, now):
        for line in data.cost_lines(OPENAI, day, now):
            line_item = str(line.fields["line_item"])
            model = line_item.split(", ", 1)[0]  # "<model>, <name>": the model this simulator put
            cost[(str(line.fields["project_id"]), model, line_item)] += line.amount
    out["cost"].update({key: float(amount) for key, amount in cost.items()})
    days = _days(start, end, now)
    if days:  # the gauge shows the latest day's storage
        for project in VECTOR_STORES:
            out["vector_store_bytes"][(project,)] = vector_store_bytes(project, days[-1])
    return {name: dict(values) for name, values in out.items()}


_TOOLS = {
    "code_interpreter_sessions": "code_interpreter",
    "file_search_calls": "file_search",
    "web_search_calls": "web_search",
}


_ANTHROPIC_TOKENS = (
    (1, "input"),
    (2, "input_cache_read"),
    (3, "input_cache_write"),
    (4, "input_cache_write_1h"),
    (5, "output"),
)


def expected_anthropic(data: SyntheticData, start: int, end: int, now: float) -> Expected:
    """Anthropic tokens over ``[start, min(end, now))`` and cost (dollars) per day.

    ``tokens``: by (workspace, model, token_type, modality, tier); ``labelled_tokens`` adds
    the speed and inference geo as the exporter labels them ("" for standard and global);
    ``tool_calls``: web searches by (workspace, model, "web_search"); ``cost``: by
    (workspace, model, description); ``labelled_cost`` adds cost_type, token_type,
    service_tier, context_window and inference_geo ("" where null).
    """
    tokens: defaultdict[tuple[str, ...], float] = defaultdict(float)
    labelled: defaultdict[tuple[str, ...], float] = defaultdict(float)
    tools: defaultdict[tuple[str, ...], float] = defaultdict(float)
    stop = min(end, now)
    totals = (
        data.totals(ANTHROPIC, start, stop) if stop > start else [None] * len(ANTHROPIC_STREAMS)
    )
    for stream, values in zip(ANTHROPIC_STREAMS, totals, strict=True):
        if values is None:
            continue
        dims = stream.dims
        workspace = str(dims["workspace_id"] or "default")
        model, tier = str(dims["model"]), str(dims["service_tier"])
        speed = "" if dims["speed"] in (None, "standard") else str(dims["speed"])
        geo = "" if dims["inference_geo"] in (None, "global") else str(dims["inference_geo"])
        for index, token_type in _ANTHROPIC_TOKENS:
            if values[index]:
                tokens[(workspace, model, token_type, "text", tier)] += values[index]
                labelled[(workspace, model, token_type, "text", tier, speed, geo)] += values[index]
        if values[6]:
            tools[(workspace, model, "web_search")] += values[6]
    cents: defaultdict[tuple[str, ...], Decimal] = defaultdict(Decimal)
    labelled_cents: defaultdict[tuple[str, ...], Decimal] = defaultdict(Decimal)
    for day in _days(start, end, now):
        for line in data.cost_lines(ANTHROPIC, day, now):
            fields = line.fields
            key = (
                str(fields["workspace_id"] or "default"),
                str(fields["model"] or ""),
                str(fields["description"]),
            )
            cents[key] += line.amount
            extra = tuple(
                str(fields[name] or "")
                for name in (
                    "cost_type",
                    "token_type",
                    "service_tier",
                    "context_window",
                    "inference_geo",
                )
            )
            labelled_cents[(*key, *extra)] += line.amount
    return {
        "tokens": dict(tokens),
        "labelled_tokens": dict(labelled),
        "tool_calls": dict(tools),
        "cost": {key: float(amount / 100) for key, amount in cents.items()},
        "labelled_cost": {key: float(amount / 100) for key, amount in labelled_cents.items()},
    }
