"""--primary-outage: the failed region, as the functions see it."""

import re
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class RegionOutage:
    """A pass-through HTTP proxy in front of one emulator that, once `down` is set, lets every request signed for
    `region` hang without an answer (until the caller gives up), as calls into a failed region do. The region
    comes from the SigV4 credential scope, as the emulators themselves read it. Runs in this process (threads),
    on an ephemeral 127.0.0.1 port; the functions are pointed at it instead of the emulator."""

    def __init__(self, upstream, region):
        self.upstream, self.region, self.down, self.blocked = upstream.rstrip("/"), region, False, 0
        outage = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def relay(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                scope = re.search(r"Credential=[^/]+/\d{8}/([a-z0-9-]+)/", self.headers.get("Authorization", ""))
                if outage.down and scope and scope.group(1) == outage.region:
                    outage.blocked += 1
                    time.sleep(60)  # never answers in time; the caller's timeout ends it
                    self.close_connection = True
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                req = urllib.request.Request(outage.upstream + self.path, data=body or None, headers=headers,
                                             method=self.command)
                try:
                    with urllib.request.urlopen(req, timeout=60) as r:
                        status, rheaders, data = r.status, r.headers.items(), r.read()
                except urllib.error.HTTPError as e:
                    status, rheaders, data = e.code, e.headers.items(), e.read()
                self.send_response(status)
                for k, v in rheaders:
                    if k.lower() not in ("content-length", "transfer-encoding", "connection", "server", "date"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = relay

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
