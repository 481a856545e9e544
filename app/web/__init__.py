"""The app in a web browser: the window's picture, keys and clicks over HTTP and a WebSocket (run_toolbox.py --web).

    server.py         aiohttp: the token check, the page, the socket, uploads
    tab.py            one browser tab: its own LiveSession (app/ui/session.py) and what it sends
    browser_keys.py   the browser's key names -> the key table's
    camera.py         the browser's webcam as an input source
    uploads.py        dropped and picked images: limits, decoding, the temporary folder
"""
