"""find_maxes on a two-node Ray cluster (two raylets on this machine, one CPU each, so the pool's two
actors land on different nodes) writes the same files as in one process."""
import pytest

from app.net import Net
from app.offline import maxes as find
from tests.ray_support import random_net_file, sample_images, time_bound
from tests.test_ray_jobs import assert_same_files

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402

from app.offline.on_ray import Pool  # noqa: E402


@pytest.fixture(scope="module")
def two_nodes():
    with time_bound(90):
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
        cluster.add_node(num_cpus=1)
        ray.init(address=cluster.address, logging_level="warning")
        cluster.wait_for_nodes()
    yield cluster
    ray.shutdown()
    cluster.shutdown()


def test_find_maxes_on_two_nodes_writes_the_same_files(two_nodes, tmp_path):
    model = random_net_file()
    net = Net.load(str(model), provider="cpu")
    paths = sample_images(tmp_path / "images")
    layers = find.choose_layers(net)
    options = dict(model=str(model), top=3, minima=True, batch=2, checkpoint_every=2)
    find.FindMaxes(net, paths, layers, tmp_path / "here", **options).run(progress=False)
    with time_bound(120):
        pool = Pool(provider="cpu")
        assert len([node for node in ray.nodes() if node["Alive"]]) == 2
        assert pool.resources.actors == 2 and pool.resources.num_cpus <= 1.0   # one actor on each node
        summary = find.FindMaxes(net, paths, layers, tmp_path / "ray", **options).run(progress=False, pool=pool)
    assert summary["skipped_count"] == 1
    assert_same_files(tmp_path / "here", tmp_path / "ray")
