"""The offline jobs on Ray: the same per-shard and per-group functions as a single process, run by an
actor pool that holds the net once per actor; the driver merges and writes (see docs/distributed.md).
Imported only for --ray: Ray is an optional dependency (pip install -e ".[ray]")."""
from app.offline.on_ray.pool import Pool, Resources, actor_resources, connect

__all__ = ["Pool", "Resources", "actor_resources", "connect"]
