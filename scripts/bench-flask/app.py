"""Reference proxy for scripts/bench.sh: the approach of the product the portal replaces.

Benchmark only, never shipped. The old product was a Flask app served by gevent's WSGIServer
with gevent-websocket's WebSocketHandler, relaying the desktop's WebSocket frame by frame with
one greenlet per direction and fetching the desktop's other files with `requests`. This file
rebuilds just that relay, under the portal's URL contract, so the benchmark can show it as a
labelled reference next to the portal and nginx.

There is NO session, Origin or owner check here (unlike the portal): it proxies anyone to the
one desktop, like the benchmark's nginx. Never expose it.

Configuration (environment):
  FLASK_REF_PORT      port to listen on (127.0.0.1 only)
  FLASK_REF_UPSTREAM  the desktop, e.g. https://127.0.0.1:6901 (certificate not verified)
  FLASK_REF_BASIC     the desktop's Basic Auth credentials, user:password
"""

from gevent import monkey

monkey.patch_all()  # before anything opens sockets: websocket-client and requests must yield

import base64  # noqa: E402
import os  # noqa: E402
import socket  # noqa: E402
import ssl  # noqa: E402

import gevent  # noqa: E402
import requests  # noqa: E402
import urllib3  # noqa: E402
import websocket  # noqa: E402  (websocket-client)
from flask import Flask, Response, abort, request  # noqa: E402
from gevent.pywsgi import WSGIServer  # noqa: E402
from geventwebsocket.exceptions import WebSocketError  # noqa: E402
from geventwebsocket.handler import WebSocketHandler  # noqa: E402

PORT = int(os.environ["FLASK_REF_PORT"])
UPSTREAM = os.environ["FLASK_REF_UPSTREAM"].rstrip("/")
AUTH = "Basic " + base64.b64encode(os.environ["FLASK_REF_BASIC"].encode()).decode()
WS_UPSTREAM = "ws" + UPSTREAM[len("http"):]  # https://… → wss://…, http://… → ws://…

urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)  # verify=False below

# The desktop's certificate is not verified (verify=False), yet urllib3 still loads the
# system's CA bundle for every new TLS connection unless it is handed an SSL context: ~45 ms
# of CPU per GET here, since the desktop closes the connection after every answer. One context
# made once avoids that, so the reference measures the relay rather than the CA loading.
NO_VERIFY = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
NO_VERIFY.check_hostname = False
NO_VERIFY.verify_mode = ssl.CERT_NONE


class NoVerifyAdapter(requests.adapters.HTTPAdapter):
    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, ssl_context=NO_VERIFY, **kwargs)


http = requests.Session()
http.mount("https://", NoVerifyAdapter())

app = Flask(__name__)
# gevent-websocket answers the browser's Sec-WebSocket-Protocol only if the app names one;
# noVNC asks for "binary".
app.app_protocol = lambda path: "binary"


@app.route("/desktop/lab/websockify", websocket=True)
def websockify():
    client = request.environ.get("wsgi.websocket")
    if client is None:
        abort(400)
    upstream = websocket.create_connection(
        WS_UPSTREAM + "/websockify",
        header=["Authorization: " + AUTH],
        subprotocols=["binary"],
        sslopt={"cert_reqs": ssl.CERT_NONE},
        enable_multithread=True,
    )

    def client_to_upstream():
        while True:
            message = client.receive()  # None once the browser closed or the socket broke
            if message is None:
                return
            if isinstance(message, str):
                upstream.send(message)
            else:
                upstream.send_binary(bytes(message))

    def upstream_to_client():
        while True:
            opcode, data = upstream.recv_data()  # answers pings itself
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                return
            if opcode == websocket.ABNF.OPCODE_TEXT:
                client.send(data.decode("utf-8"), binary=False)
            else:
                client.send(data, binary=True)

    def relay(direction):
        try:
            direction()
        except (WebSocketError, websocket.WebSocketException, OSError):
            pass  # one side went away: the normal end of a session

    relays = [gevent.spawn(relay, client_to_upstream), gevent.spawn(relay, upstream_to_client)]
    gevent.joinall(relays, count=1)  # the first direction to end ends both
    gevent.killall(relays)
    upstream.close()
    if not client.closed:
        client.close()
    return ""


@app.route("/desktop/lab/<path:rest>")
def desktop_file(rest):
    url = UPSTREAM + "/" + rest
    if request.query_string:
        url += "?" + request.query_string.decode("latin-1")
    answer = http.get(url, headers={"Authorization": AUTH}, verify=False, timeout=30)
    return Response(
        answer.content,
        status=answer.status_code,
        content_type=answer.headers.get("Content-Type"),
    )


class Handler(WebSocketHandler):
    def handle(self):
        # tcp_nodelay, as the benchmark's nginx has: without it, writes that Nagle holds back
        # meet the client's delayed ACK (40 ms stalls).
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().handle()


if __name__ == "__main__":
    # log=None: no access log (the benchmark's nginx has `access_log off` too); errors still go
    # to stderr.
    WSGIServer(("127.0.0.1", PORT), app, handler_class=Handler, log=None).serve_forever()
