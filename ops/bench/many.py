#!/usr/bin/env python3
"""Sets up one side of the many-projects comparison against a running
identity, and writes the files the wrk scripts read.

    many.py ADMIN_URL PUBLIC_URL OPERATOR_TOKEN PROJECTS USERS_PER_PROJECT SESSIONS PHC OUT_DIR

Creates PROJECTS projects, imports USERS_PER_PROJECT users into each (with
the PHC string PHC, so the setup costs no hashing), then signs in SESSIONS
users spread over as many projects as possible (session k in project
k mod PROJECTS). Writes OUT_DIR/sessions.txt ("publishable-key access-token"
per line) and OUT_DIR/logins.txt ("publishable-key email" per line), and
prints how long each step took.
"""

import http.client
import json
import sys
import threading
import time
import urllib.parse

PASSWORD = "correct horse battery staple"
THREADS = 16


class Client(threading.local):
    """One keep-alive connection per thread and base URL."""

    def conn(self, base):
        conns = self.__dict__.setdefault("conns", {})
        if base not in conns:
            u = urllib.parse.urlsplit(base)
            conns[base] = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
        return conns[base]

    def call(self, base, method, path, headers, body=None):
        for attempt in range(3):
            c = self.conn(base)
            try:
                c.request(method, path, body=json.dumps(body) if body is not None else None,
                          headers={"Content-Type": "application/json", **headers})
                r = c.getresponse()
                data = r.read()
                return r.status, (json.loads(data) if data else None)
            except (http.client.HTTPException, OSError):
                c.close()
                self.__dict__["conns"].pop(base, None)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


CLIENT = Client()


def parallel(n, work):
    """Runs work(i) for i in 0..n on THREADS threads; the first failure aborts."""
    lock = threading.Lock()
    state = {"next": 0, "error": None}

    def run():
        while True:
            with lock:
                i = state["next"]
                if i >= n or state["error"]:
                    return
                state["next"] += 1
            try:
                work(i)
            except Exception as e:  # noqa: BLE001 - reported below
                with lock:
                    state["error"] = state["error"] or e

    threads = [threading.Thread(target=run) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if state["error"]:
        raise state["error"]


def main():
    admin, public, op, projects, users, sessions, phc, out = sys.argv[1:9]
    projects, users, sessions = int(projects), int(users), int(sessions)
    auth = {"Authorization": f"Bearer {op}"}
    keys = [None] * projects

    started = time.time()

    def create(i):
        s, b = CLIENT.call(admin, "POST", "/v1/projects", auth, {"name": f"bench-{i}"})
        assert s == 201, (s, b)
        keys[i] = (b["project"]["id"], b["keys"]["publishable"], b["keys"]["secret"])
        if i < sessions:
            # The projects that are measured take the load generator's rate.
            limits = {"register_per_minute": 0, "login_per_minute": 0, "refresh_per_minute": 0}
            s, b = CLIENT.call(admin, "PATCH", f"/v1/projects/{keys[i][0]}", auth,
                               {"settings": {"rate_limits": limits}})
            assert s == 200, (s, b)

    parallel(projects, create)
    print(f"created {projects} projects in {time.time() - started:.1f}s", file=sys.stderr)

    started = time.time()

    def import_user(k):
        p, u = divmod(k, users)
        s, b = CLIENT.call(public, "POST", "/v1/users", {"X-Project-Key": keys[p][2]},
                           {"email": f"bench{u}@example.com", "password_hash": phc})
        assert s == 201, (s, b)

    parallel(projects * users, import_user)
    print(f"imported {projects * users} users in {time.time() - started:.1f}s", file=sys.stderr)

    started = time.time()
    signed = [None] * sessions

    def sign_in(k):
        p, u = k % projects, (k // projects) % users
        pk = keys[p][1]
        s, b = CLIENT.call(public, "POST", "/v1/auth/login", {"X-Project-Key": pk},
                           {"email": f"bench{u}@example.com", "password": PASSWORD})
        assert s == 200, (s, b)
        signed[k] = (pk, f"bench{u}@example.com", b["access_token"])

    parallel(sessions, sign_in)
    print(f"signed in {sessions} sessions in {time.time() - started:.1f}s", file=sys.stderr)

    with open(f"{out}/sessions.txt", "w") as f:
        for pk, _, token in signed:
            f.write(f"{pk} {token}\n")
    with open(f"{out}/logins.txt", "w") as f:
        for pk, email, _ in signed:
            f.write(f"{pk} {email}\n")


if __name__ == "__main__":
    main()
