"""Cluster and resource checks: a bad --address or an impossible resource request fails in
seconds, before any data is loaded or trial queued."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from musictune.errors import UserError


@dataclass(frozen=True)
class Resources:
    """What each trial asks of the cluster, and which cluster (None: a local one)."""

    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    max_concurrent: int | None = None
    address: str | None = None

    @property
    def threads(self) -> int:
        return max(1, int(self.cpus_per_trial))

    def for_tune(self) -> dict:
        return {"cpu": self.cpus_per_trial, "gpu": self.gpus_per_trial}

    def slots(self) -> int:
        """Trials the connected cluster runs at once: --max-concurrent, else as many as its CPUs
        (and GPUs, for GPU trials) hold now. An autoscaling cluster's later nodes are not
        counted: give --max-concurrent there."""
        if self.max_concurrent:
            return self.max_concurrent
        import ray

        total = ray.cluster_resources()
        fits = [total.get("CPU", 1.0) / self.cpus_per_trial]
        if self.gpus_per_trial:
            fits.append(total.get("GPU", 0.0) / self.gpus_per_trial)
        return max(1, int(min(fits) + 1e-9))


# `ray up` leaves the autoscaler's config (node types with their resources) here on the head node.
AUTOSCALER_CONFIG = "~/ray_bootstrap_config.yaml"


def check_address(address: str, timeout: float = 3.0) -> None:
    """Fail in seconds, not a hang, when a cluster address does not answer as Ray.

    `ray.init` retries for minutes an address where nothing listens, where a listener stays
    silent, or where something other than Ray answers; one gRPC call to the head's GCS
    (or, for a `ray://` client address, a gRPC handshake) settles it within `timeout`.
    """
    if address in ("auto", "local"):
        return
    target = address.removeprefix("ray://")
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise UserError(f"--address {address!r} is not host:port (e.g. 10.0.0.5:6379) or auto")
    import grpc
    from ray.core.generated import gcs_service_pb2, gcs_service_pb2_grpc

    channel = grpc.insecure_channel(target)
    try:
        if address.startswith("ray://"):
            grpc.channel_ready_future(channel).result(timeout=timeout)
        else:
            stub = gcs_service_pb2_grpc.NodeInfoGcsServiceStub(channel)
            stub.GetClusterId(gcs_service_pb2.GetClusterIdRequest(), timeout=timeout)
        return
    except grpc.FutureTimeoutError:
        problem = "nothing answers there"
    except grpc.RpcError as exc:
        if exc.code() == grpc.StatusCode.UNAUTHENTICATED:
            return  # a Ray head with token authentication: ray.init brings the token
        problem = {
            grpc.StatusCode.UNAVAILABLE: "unknown host, or nothing listens on that port",
            grpc.StatusCode.DEADLINE_EXCEEDED: f"no answer within {timeout:g} s",
        }.get(exc.code(), "what answers there is not a Ray head")
    finally:
        channel.close()
    raise UserError(
        f"no Ray cluster answers at {address} ({problem}): start one with `ray start --head` "
        "or `ray up cluster.yaml`, or fix --address / RAY_ADDRESS"
    )


def connect(options: Resources) -> None:
    import ray

    if ray.is_initialized():
        return
    if options.address:
        check_address(options.address)
        try:
            ray.init(
                address=options.address,
                logging_level=logging.WARNING,
                logging_config=ray.LoggingConfig(log_level="WARNING"),
            )
        except (ConnectionError, RuntimeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UserError(f"cannot join the Ray cluster at {options.address}: {first}") from None
    else:
        # A local cluster we start ourselves: its token-auth notice is noise to the user.
        logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(
            logging.ERROR
        )
        ray.init(
            address="local",
            logging_level=logging.WARNING,
            # Workers log every checkpoint at INFO: the progress bar already says enough.
            logging_config=ray.LoggingConfig(log_level="WARNING"),
            include_dashboard=False,
        )


def autoscaler_node_types(config_file: str | os.PathLike = AUTOSCALER_CONFIG) -> dict[str, dict]:
    """Resources of each node type the autoscaler may still start: {type: {"GPU": 1, ...}}.

    Empty off an autoscaling cluster (no config file: a laptop, `ray start`, a test cluster).
    """
    import yaml

    path = Path(config_file).expanduser()
    try:
        config = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return {}
    types = config.get("available_node_types") or {}
    head = config.get("head_node_type")
    return {
        name: dict(spec.get("resources") or {})
        for name, spec in types.items()
        if isinstance(spec, dict) and name != head and spec.get("max_workers", 1) > 0
    }


def check_resources(
    options: Resources, autoscaler_config: str | os.PathLike = AUTOSCALER_CONFIG
) -> None:
    """A trial that no node can ever hold would wait forever: refuse it up front.

    On an autoscaling cluster a GPU type with min_workers 0 has no live node yet, so node
    types the autoscaler can add count as well as live nodes.
    """
    import ray

    live = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
    addable = autoscaler_node_types(autoscaler_config)
    nodes = live + list(addable.values())
    most_gpus = max((n.get("GPU", 0) for n in nodes), default=0)
    most_cpus = max((n.get("CPU", 0) for n in nodes), default=0)
    where = "no node of the cluster" + (" (nor any node type it can add)" if addable else "")
    if options.gpus_per_trial > most_gpus:
        raise UserError(
            f"--gpus-per-trial {options.gpus_per_trial:g} but {where} has more than "
            f"{most_gpus:g} GPU(s): lower it (0 trains on CPUs)"
        )
    if options.cpus_per_trial > most_cpus:
        raise UserError(
            f"--cpus-per-trial {options.cpus_per_trial:g} but {where} has more than "
            f"{most_cpus:g} CPUs: lower it"
        )
    live_gpus = max((n.get("GPU", 0) for n in live), default=0)
    if options.gpus_per_trial > live_gpus:
        print(
            f"no live node has {options.gpus_per_trial:g} GPU(s) yet: trials wait until the "
            "autoscaler adds one (minutes)",
            flush=True,
        )
