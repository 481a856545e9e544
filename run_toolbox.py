"""The DeepVis Toolbox desktop app.

    python run_toolbox.py [--model NAME|PATH] [--input DIR|LIST|VIDEO|IMAGE|camera[:N]]
                          [--cpu|--gpu] [--settings FILE] [--random-weights SEED]
    python run_toolbox.py --screenshot OUT.png [--keys "oo<Right>bn"]   # no window: render, save, exit
    python run_toolbox.py --test-keys                                   # print the codes your keys send
    python run_toolbox.py --web [--host 127.0.0.1] [--port 8600]        # no window: serve it to a browser

Press h in the window (or the browser tab) for the key map. docs/web.md: the app in a browser.
"""
import argparse
import sys

from tools import cli


def parse_args(argv=None) -> argparse.Namespace:
    parser = cli.parser("run_toolbox.py", __doc__, random_weights=(
        "a Caffe deploy prototxt without a caffemodel: seeded random weights (the window says so in red)"))
    parser.epilog = ("Keys: press h in the window. --keys takes characters and "
                     "<Left> <Right> <Up> <Down> <PgUp> <PgDn> <Esc>. " + cli.EXIT_STATUS)
    parser.add_argument("--input", default=None,
                        help="folder, image list .txt, video, image, camera or camera:N (default: sample photos)")
    parser.add_argument("--screenshot", default=None, metavar="OUT.png",
                        help="render the window without opening it, write this PNG and exit")
    parser.add_argument("--keys", default="", help="with --screenshot: keys to press first, e.g. 'oob<Right>n'")
    parser.add_argument("--test-keys", action="store_true",
                        help="open a window and print the code and meaning of every key pressed (q quits)")
    parser.add_argument("--web", action="store_true",
                        help="no window: serve the app to a web browser and print the URL to open (Ctrl-C stops)")
    parser.add_argument("--host", default=None,
                        help="with --web: address to listen on (default: web_host, 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=None, help="with --web: port (default: web_port, 8600)")
    parser.add_argument("--token", default=None,
                        help="with --web: the token every request needs (default: a random one for each run)")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    try:
        with cli.one_line_errors():
            _run(args, argv)
    except KeyboardInterrupt:
        sys.exit(130)


def _run(args: argparse.Namespace, argv) -> None:
    if not args.screenshot and not args.web:
        from app.ui.window import check_display

        check_display()
    if args.test_keys:
        from app.ui.window import test_keys

        test_keys()
        return
    from app.inputs import open_source

    settings = cli.settings(argv)
    net = cli.load_net(args, settings, random_weights=args.random_weights)
    source = open_source(args.input, settings)
    if args.screenshot:
        from app.ui.app import screenshot

        print(screenshot(net, settings, source, args.screenshot, args.keys))
        return
    if args.web:
        from app.web.server import WebServer

        source.close()   # each browser tab opens its own
        host = args.host or settings.web_host
        port = settings.web_port if args.port is None else args.port
        WebServer(net, settings, lambda: open_source(args.input, settings), host, port, args.token).run()
        return
    from app.ui.window import run_window

    run_window(net, settings, source)


if __name__ == "__main__":
    main()
