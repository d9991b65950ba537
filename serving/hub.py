"""Files of a Hugging Face dataset, downloaded once and cached: what ``--prompts hub`` reads.

Plain httpx rather than huggingface_hub (not a dependency): the same ``resolve`` URL pattern, ``$HF_ENDPOINT``
for mirrors and ``$HF_TOKEN`` for gated datasets, ``$HF_HUB_OFFLINE=1`` to never touch the network, so a local
mirror or test server works unchanged. Where the hub cannot be reached, every error says how to pass a local
file instead.
"""

from __future__ import annotations

import os
from pathlib import Path

HUB_REPO = "CSJianYang/CodeArena"
HUB_FILE = "CodeArena.jsonl"  # the dataset card's only data file (config "default", split "test")
DEFAULT_ENDPOINT = "https://huggingface.co"


class HubError(ValueError):
    """A hub file that cannot be had; the message says what to do instead."""


def parse_hub_ref(text: str) -> tuple[str, str]:
    """(repo, file) of ``hub`` (CodeArena's own file) or ``hf:OWNER/NAME[/FILE]``."""
    if text == "hub":
        return HUB_REPO, HUB_FILE
    parts = text[3:].strip("/").split("/")
    if len(parts) < 2 or not all(parts[:2]):
        raise HubError(f"bad hub reference {text!r}; expected hf:OWNER/NAME or hf:OWNER/NAME/FILE.jsonl")
    repo = "/".join(parts[:2])
    filename = "/".join(parts[2:]) or HUB_FILE
    return repo, filename


def hub_cache_dir() -> Path:
    """Where hub downloads are kept: ``$CODEARENA_CACHE``, else under ``$HF_HOME``, else ~/.cache."""
    if os.environ.get("CODEARENA_CACHE"):
        return Path(os.environ["CODEARENA_CACHE"]) / "hub"
    hf_home = os.environ.get("HF_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "huggingface")
    return Path(hf_home) / "codearena"


def download_hub_file(repo: str, filename: str, *, revision: str = "main", timeout_s: float = 60.0) -> Path:
    """A dataset file from the hub's ``resolve`` URL, cached; a cached copy is used without the network."""
    import httpx

    target = hub_cache_dir() / repo.replace("/", "--") / revision / filename
    if target.exists() and target.stat().st_size > 0:
        return target
    endpoint = os.environ.get("HF_ENDPOINT", DEFAULT_ENDPOINT).rstrip("/")
    url = f"{endpoint}/datasets/{repo}/resolve/{revision}/{filename}"
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        raise HubError(f"{url}: not in the cache {target} and HF_HUB_OFFLINE=1; "
                           f"download {filename} yourself and pass its path")
    headers = {"Authorization": f"Bearer {os.environ['HF_TOKEN']}"} if os.environ.get("HF_TOKEN") else {}
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    try:
        with httpx.stream("GET", url, headers=headers, follow_redirects=True, timeout=timeout_s) as resp:
            if resp.status_code != 200:
                raise HubError(f"{url}: HTTP {resp.status_code}; download {filename} from the dataset page "
                                   f"yourself and pass its path (codearena prompts ./{Path(filename).name})")
            with open(partial, "wb") as fh:
                for chunk in resp.iter_bytes():
                    fh.write(chunk)
    except httpx.HTTPError as exc:
        partial.unlink(missing_ok=True)
        raise HubError(f"{url}: cannot download ({exc}); the hub may be unreachable from here: download "
                           f"{filename} yourself and pass its path, or set HF_ENDPOINT to a mirror") from exc
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    # Rename only a complete download, so an interrupted one is never mistaken for the cached file.
    partial.replace(target)
    return target
