"""A pool of Ray actors running one job's tasks: Ray Data streams the tasks (a dataset with one row
per task) through ``map_batches`` to an actor pool; each actor loads the net once and makes the job
(``make_job(net, **settings)``, a function of the offline module) once; the driver gets each task's
result as it ends, in any order. Ray Data restarts a lost actor and retries its task.

Sizing: GPU actors (``num_gpus``) when the cluster has GPUs and CUDA works (app.net.providers), else
CPU actors with fractional ``num_cpus`` so that Ray Data's own tasks still find room on a small
machine (on 2 cores, two actors at 1 CPU each and one more task wait for each other forever).
"""
import logging
import pickle
from dataclasses import dataclass

import numpy as np
import onnx

from app.errors import DeepVisError
from app.net import Net, providers

LOCAL = "local"
KEPT_FOR_RAY = 0.5   # CPUs no actor takes, for Ray Data's own tasks


@dataclass(frozen=True)
class Resources:
    """What each actor of a pool asks Ray for, and which ONNX Runtime provider it runs."""
    actors: int
    num_cpus: float
    num_gpus: float
    provider: str   # "cuda" or "cpu"


def actor_resources(cluster: dict, node_cpus: list, preference: str = "auto", actors: int = 0, available=None,
                    device_count=None) -> Resources:
    """The pool for a cluster's resources (ray.available_resources(), and the CPUs of each node).

    GPU actors, one per GPU, when the cluster has GPUs and CUDA works here (``preference``,
    ``available`` and ``device_count`` as providers.choose_providers takes them). Else CPU actors,
    one per node: ONNX Runtime runs a session on every core of its machine, so two actors on one
    machine share its cores and each runs at half speed, or less. Each asks for 3/4 of the smallest
    node's CPUs, so no two land on one node and Ray Data's own tasks find room. ``actors`` > 0
    chooses the count; CPU actors then share the CPUs, all but KEPT_FOR_RAY."""
    if actors < 0:
        raise DeepVisError(f"--actors {actors}: give a count of at least 1 (0: one per GPU, else one per node)")
    cpus, gpus = float(cluster.get("CPU", 0)), float(cluster.get("GPU", 0))
    smallest = min((count for count in node_cpus if count > 0), default=cpus)
    shared = max(cpus - KEPT_FOR_RAY, 0.1)
    if gpus >= 1 and providers.CUDA in providers.choose_providers(preference, available, device_count):
        count = actors or int(gpus)
        return Resources(count, round(min(1.0, shared / count), 3), round(min(1.0, gpus / count), 3), "cuda")
    count = actors or max(1, len([count for count in node_cpus if count > 0]))
    return Resources(count, round(min(0.75 * smallest, shared / count), 3), 0.0, "cpu")


def connect(address: str = LOCAL) -> None:
    """Join Ray: "local" (or None) starts a Ray instance sized to this machine, any other address
    ("auto", "ray://host:10001", "host:6379") joins that cluster; a process already joined stays."""
    import ray

    if ray.is_initialized():
        return
    try:
        if address in (None, LOCAL):
            ray.init(include_dashboard=False, logging_level=logging.WARNING)
        else:
            ray.init(address=address, logging_level=logging.WARNING)
    except (ConnectionError, RuntimeError, ValueError) as error:
        raise DeepVisError(f"--ray {address}: cannot join Ray ({str(error).splitlines()[0]})") from None


class _Worker:
    """One actor of the pool: the net, once, and the job made on it; ``__call__`` runs a batch of tasks."""

    def __init__(self, net_payload, provider: str, make_job, settings: dict):
        import ray

        if net_payload is None:
            self.job = make_job(**settings)
        else:
            model, spec = ray.get(net_payload)   # put once by the driver, shared by the actors
            self.job = make_job(Net(onnx.load_from_string(model), spec, provider), **settings)

    def __call__(self, batch: dict) -> dict:
        outputs = [pickle.dumps(self.job(pickle.loads(task)), protocol=pickle.HIGHEST_PROTOCOL)
                   for task in batch["task"]]
        return {"index": batch["index"], "output": np.array(outputs, dtype=object)}


class Pool:
    """Actors on a Ray cluster for the offline jobs; ``map`` runs one job's tasks on them."""

    def __init__(self, address: str = LOCAL, actors: int = 0, provider: str = "auto"):
        import ray
        import ray.data

        connect(address)
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False   # the job's own bar counts images or units
        context.print_on_execution_start = False
        context.raise_original_map_exception = True   # a worker's DeepVisError, not "UDF failed"
        logging.getLogger("ray.data").setLevel(logging.ERROR)   # not its notes on the bars turned off
        nodes = [node["Resources"].get("CPU", 0.0) for node in ray.nodes() if node["Alive"]]
        self.resources = actor_resources(ray.available_resources(), nodes, provider, actors)

    def map(self, make_job, settings: dict, tasks: list, net=None):
        """(task index, result) of every task, in the order they end: ``make_job(net, **settings)``
        (without ``net`` when None) is made once per actor, then called on each task."""
        import ray
        import ray.data

        if not tasks:
            return
        payload = None if net is None else ray.put((net.model.SerializeToString(), net.spec))
        rows = [{"index": index, "task": pickle.dumps(task, protocol=pickle.HIGHEST_PROTOCOL)}
                for index, task in enumerate(tasks)]
        resources = self.resources
        # one task per block: tasks spread over the actors, and each result comes back on its own
        results = ray.data.from_items(rows, override_num_blocks=len(rows)).map_batches(
            _Worker, batch_size=1, fn_constructor_args=(payload, resources.provider, make_job, settings),
            compute=ray.data.ActorPoolStrategy(size=min(resources.actors, len(rows))),
            num_cpus=resources.num_cpus, num_gpus=resources.num_gpus or None)
        try:
            for row in results.iter_rows():
                yield int(row["index"]), pickle.loads(row["output"])
        except Exception as error:  # Ray wraps a worker's error in its own exception types
            raise _one_line(error) from None


def _one_line(error: BaseException) -> DeepVisError:
    """The DeepVisError a worker raised (Ray wraps it, in a RayTaskError that is also one), else the
    first line of Ray's error."""
    from ray.exceptions import RayTaskError

    seen, visited = error, set()
    while seen is not None and id(seen) not in visited:
        visited.add(id(seen))
        if isinstance(seen, DeepVisError) and not isinstance(seen, RayTaskError):
            return DeepVisError(str(seen).strip().splitlines()[0])   # Ray appends lines on its retries
        seen = getattr(seen, "cause", None) or seen.__cause__ or seen.__context__
    lines = str(error).strip().splitlines()
    return DeepVisError(f"Ray: {lines[0] if lines else type(error).__name__}")
