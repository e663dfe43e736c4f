"""Which W&B mode a study runs in, importing wandb, and telling W&B's failures from ours."""

from __future__ import annotations

import logging
import os
import sys
import warnings

logger = logging.getLogger("orchestrator.tracking")


def stderr(line: str) -> None:
    print(f"ablator: {line}", file=sys.stderr, flush=True)


def import_wandb():
    """Import wandb for this driver. A WANDB_SERVICE inherited from a parent process is
    dropped first: runs of a driver that gets killed must die with its own wandb service,
    not stay "in use" in the parent's."""
    if "wandb" not in sys.modules:
        os.environ.pop("WANDB_SERVICE", None)
        os.environ.setdefault("WANDB_SILENT", "true")
    import wandb

    try:  # the first wandb.init imports this (launch inputs); do it here, not mid-study
        import wandb.sdk.launch.inputs.internal
    except Exception:  # moved in another wandb version: init imports what it needs
        logger.debug("wandb.sdk.launch.inputs.internal not found", exc_info=True)
    return wandb


def api_key() -> str | None:
    """The W&B API key configured for this machine (env, netrc, wandb settings), or None.

    Never printed or stored; the caller only learns whether one exists, and the
    tracker uses the value to scrub it from anything it sends.
    """
    key = os.environ.get("WANDB_API_KEY")
    if key:
        return key
    if os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return ""
    try:
        from wandb.sdk.lib import wbauth

        base_url = os.environ.get("WANDB_BASE_URL") or "https://api.wandb.ai"
        key = wbauth.read_netrc_auth(host=base_url)
        if key:
            return key
        from wandb.sdk import wandb_setup

        return wandb_setup.singleton().settings.api_key or None
    except Exception:  # wandb's internals moved: ask its public (deprecated) property
        try:
            import wandb

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return wandb.api.api_key or None
        except Exception:
            return None


def resolve_mode(setting: str) -> tuple[str, str | None]:
    """The mode to start in, and why when it differs from the setting.

    auto: online when an API key is configured, else offline; `WANDB_MODE=offline|disabled`
    in the environment is respected. online without any key goes offline at once.
    """
    if setting == "disabled":
        return "disabled", None
    if setting == "offline":
        return "offline", None
    env_mode = os.environ.get("WANDB_MODE", "").lower()
    if setting == "auto" and env_mode in ("disabled", "offline", "dryrun"):
        return ("disabled" if env_mode == "disabled" else "offline"), f"WANDB_MODE={env_mode}"
    if setting == "auto" and os.environ.get("WANDB_DISABLED", "").lower() in ("true", "1", "yes"):
        return "disabled", "WANDB_DISABLED"
    try:
        import_wandb()
    except Exception as exc:
        return "disabled", f"wandb cannot be imported ({type(exc).__name__}: {exc})"
    if api_key() is None:
        return "offline", "no W&B API key configured"
    return "online", None


def is_wandb_failure(exc: BaseException) -> bool:
    """Raised by wandb (its own error types, or anything raised inside its code), or by the
    system under it (disk, network, time); not a bug or an odd record on our side."""
    if isinstance(exc, (OSError, TimeoutError)):
        return True
    if any(cls.__module__.split(".")[0] == "wandb" for cls in type(exc).__mro__):
        return True
    tb = exc.__traceback__
    while tb is not None:
        if f"{os.sep}wandb{os.sep}" in tb.tb_frame.f_code.co_filename:
            return True
        tb = tb.tb_next
    return False
