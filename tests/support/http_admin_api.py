#!/usr/bin/env python3
# http_admin_api.py — a small, real admin API for the http provisioner's tests.
#
# Usage: http_admin_api.py --port N --token-file F --accounts F [--cert F --key F]
#                          [--ready-file F]
#
# Listens on 127.0.0.1:N (TLS when --cert/--key are given). POST (any path) with a JSON
# body {"user", "local", "domain", "password", "hash"} and `Authorization: Bearer <token>`:
#   401  missing or wrong token
#   400  not JSON, or a field missing or not a string
#   500  when the user starts with "fail500@" (the body echoes the password, so tests can
#        check that the provisioner redacts it)
#   409  the user is already recorded
#   201  recorded: the accounts file (JSON, rewritten atomically) maps the user to its
#        local part, domain, hash and the SHA-256 of the password — never the password
#        itself — plus the Content-Type it was sent with.
# A user starting with "slow@" makes it wait 30 s before answering (timeout tests); the
# path /redirect answers 307 to /accounts (the provisioner must not follow it).
# Standard library only (Debian's python3). Stopped by the test with SIGTERM.
#
# NOTE: Python, not C++ — keep clang-format away from this file.
import argparse
import hashlib
import http.server
import json
import os
import ssl
import sys
import threading
import time

LOCK = threading.Lock()


def load(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return {}


def save(path, accounts):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(accounts, f, indent=1, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class Handler(http.server.BaseHTTPRequestHandler):
    server_version = "mailferry-test-admin-api/1"

    def log_message(self, fmt, *args):  # quiet: tests read results, not access logs
        pass

    def answer(self, status, text):
        body = (text + "\n").encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.answer(405, "POST only")

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        if self.path == "/redirect":
            self.send_response(307)
            self.send_header("Location", "/accounts")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.headers.get("Authorization", "") != "Bearer " + self.server.token:
            self.answer(401, "bad or missing bearer token")
            return
        try:
            req = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            self.answer(400, "body is not JSON: %s" % e)
            return
        fields = ("user", "local", "domain", "password", "hash")
        if not isinstance(req, dict) or any(not isinstance(req.get(k), str) for k in fields):
            self.answer(400, "expected string fields: " + ", ".join(fields))
            return
        user = req["user"]
        if user.startswith("slow@"):
            time.sleep(30)
        if user.startswith("fail500@"):
            self.answer(500, "internal error while creating %s with password %s"
                        % (user, req["password"]))
            return
        with LOCK:
            accounts = load(self.server.accounts)
            if user in accounts:
                self.answer(409, "account %s exists" % user)
                return
            accounts[user] = {
                "local": req["local"],
                "domain": req["domain"],
                "hash": req["hash"],
                "password_sha256": hashlib.sha256(req["password"].encode("utf-8")).hexdigest(),
                "content_type": self.headers.get("Content-Type", ""),
            }
            save(self.server.accounts, accounts)
        self.answer(201, "created %s" % user)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--token-file", required=True)
    ap.add_argument("--accounts", required=True)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--ready-file", help="written once the socket listens")
    args = ap.parse_args()

    with open(args.token_file, encoding="utf-8") as f:
        token = f.read().rstrip("\r\n")
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    httpd.daemon_threads = True
    httpd.token = token
    httpd.accounts = args.accounts
    if args.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.cert, args.key)
        httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    if args.ready_file:
        with open(args.ready_file, "w", encoding="utf-8") as f:
            f.write(str(os.getpid()))
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
