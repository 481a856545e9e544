"""What every command-line tool shares: --model, --cpu / --gpu, --settings, the net they name, one-line
errors, the exit status (EXIT_STATUS, shown by --help), and --ray for the offline jobs.

Settings are read as the app reads them: settings.py, then settings_local.py, then --settings FILE;
--cpu / --gpu set the provider over all three, and --model wins over the settings' model.
"""
import argparse
import contextlib
import sys
import types

from app.errors import DeepVisError, exit_with_message
from app.net import Net, heap, image_file
from app.settings import load_settings

MODEL_HELP = "model_zoo name, .onnx, model.yaml or Caffe .prototxt"
EXIT_STATUS = ("exit status: 0 when every input asked for was done; 1 when some input failed (one line "
               "each on stderr, the others still done); 2 when the tool cannot run at all (model, "
               "settings or options: one line on stderr)")
SOME_INPUTS_FAILED = 1


def parser(prog: str, doc: str, model_default: str = "settings.py's model",
           random_weights: str = None) -> argparse.ArgumentParser:
    """A tool's parser holding the shared options; ``doc``'s first line describes the tool.
    random_weights: the help of --random-weights SEED, for the tools that take it."""
    tool = argparse.ArgumentParser(prog=prog, description=doc.splitlines()[0], epilog=EXIT_STATUS)
    tool.add_argument("--model", default=None, help=f"{MODEL_HELP} (default: {model_default})")
    _add_device(tool)
    add_settings_file(tool)
    if random_weights:
        tool.add_argument("--random-weights", type=int, default=None, metavar="SEED", help=random_weights)
    return tool


def settings(argv=None) -> types.SimpleNamespace:
    """The settings for these arguments, read before the tool's parser is built (its defaults come from them)."""
    early = argparse.ArgumentParser(add_help=False)   # the tool's own parser reports wrong arguments
    for option in ("--cpu", "--gpu"):
        early.add_argument(option, action="store_true")
    early.add_argument("--settings", nargs="?", default=None)
    known, _ = early.parse_known_args(argv)
    loaded = load_settings(known.settings, **_provider(known))
    image_file.use_settings(loaded)
    return loaded


def read_one_image(path):
    """The one image a tool was given (H x W x 3 uint8 BGR); when it cannot be read, its line on
    stderr and exit status 1: the input failed, and nothing else was asked for."""
    try:
        return image_file.read_image(path)
    except DeepVisError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(SOME_INPUTS_FAILED) from None


def load_net(args: argparse.Namespace, settings: types.SimpleNamespace, model=None,
             random_weights: int = None) -> Net:
    """The net of --model, else ``model``, else the settings' model, on the settings' provider.

    Every tool runs batches of big arrays through it, so glibc keeps their freed memory (heap.py)."""
    heap.keep_freed_memory()
    net = Net.load(args.model or model or settings.model, provider=settings.provider,
                   input=settings.model_input or None, random_weights=random_weights)
    net.backward_engine = settings.backward_engine
    net.forward_sessions = settings.forward_sessions
    if net.provider_note:
        print(f"{net.where}: {net.provider_note}", file=sys.stderr)
    return net


def add_settings_file(parser: argparse.ArgumentParser) -> None:
    """--settings FILE, for a tool that reads settings but loads no net."""
    parser.add_argument("--settings", default=None, metavar="FILE",
                        help="a settings file overriding settings.py and settings_local.py")


def add_ray(parser: argparse.ArgumentParser) -> None:
    """--ray [ADDRESS] and --actors N, for the offline jobs that run on Ray (docs/distributed.md)."""
    parser.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                        help="run on Ray: alone or 'local' starts Ray on this machine; 'auto', ray://HOST:10001 "
                             "or HOST:6379 joins a running cluster (needs the ray extra)")
    parser.add_argument("--actors", type=int, default=0,
                        help="with --ray: actors in the pool, each holding the net (0: one per GPU, else one per node)")


def ray_pool(args: argparse.Namespace, settings: types.SimpleNamespace):
    """The Ray pool --ray asks for, or None without it; Ray is imported only then."""
    if args.ray is None:
        return None
    try:
        import ray  # noqa: F401  (only to say what is missing)
    except ImportError:
        raise DeepVisError("--ray: Ray is not installed (pip install -e \".[ray]\")") from None
    from app.offline.on_ray import Pool

    return Pool(args.ray, args.actors, settings.provider)


@contextlib.contextmanager
def one_line_errors():
    """A DeepVisError or an OSError (the file and the system's reason) ends the tool with one line
    on stderr and exit status 2."""
    try:
        yield
    except DeepVisError as error:
        exit_with_message(error)
    except OSError as error:   # a full disk, a read-only or vanished folder: the file and the reason
        exit_with_message(DeepVisError(f"{error.filename or 'a file'}: {error.strerror or error}"))


def _add_device(parser: argparse.ArgumentParser) -> None:
    device = parser.add_mutually_exclusive_group()
    device.add_argument("--cpu", action="store_true", help="run on the CPU even when a GPU works")
    device.add_argument("--gpu", action="store_true", help="run on the GPU (CUDA), falling back to the CPU")


def _provider(args: argparse.Namespace) -> dict:
    return {"provider": "cpu"} if args.cpu else {"provider": "cuda"} if args.gpu else {}
