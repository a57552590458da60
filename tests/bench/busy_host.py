#!/usr/bin/env python3
"""The busy host of the scan benchmark, built in the current network namespace.

Usage: busy_host.py CONNECTIONS FILLERS LISTENERS

- LISTENERS listening sockets (four in five TCP on 127.0.0.1 and [::1],
  the rest UDP), shared out over 4 server processes;
- CONNECTIONS established TCP connections on loopback, made by 4 client
  processes to those listeners and accepted by the servers (both ends live
  here, so /proc/net/tcp holds 2 x CONNECTIONS lines);
- FILLERS more processes (`sleep`, each holding 16 open files) that a
  process walk must go through.

Prints "ready" once everything is up, then waits. The caller removes
everything by the namespace's pids (`ip netns pids`): all of it lives there.
Traffic stays on loopback inside the namespace.
"""
import os, resource, selectors, signal, socket, sys, time

SERVERS = 4
CLIENTS = 4
FILES_PER_FILLER = 16


def raise_fd_limit(n):
    """Raise the soft limit towards n, and the hard one where allowed."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(n, soft), max(n, hard)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(min(n, hard), soft), hard))


def server(listen_specs, done):
    raise_fd_limit(65536)
    sel = selectors.DefaultSelector()
    udp = []  # bound, never read: they only need to exist
    for proto, family, addr, port in listen_specs:
        kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
        s = socket.socket(family, kind)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((addr, port))
        if proto == "tcp":
            s.listen(4096)
            sel.register(s, selectors.EVENT_READ)
        else:
            udp.append(s)
    os.write(done, b"s")
    held = []
    while True:
        for key, _ in sel.select():
            try:
                conn, _ = key.fileobj.accept()
                held.append(conn)
            except OSError:
                pass


def client(targets, count, done):
    raise_fd_limit(count + 1024)
    held = []
    for i in range(count):
        family, addr, port = targets[i % len(targets)]
        s = socket.socket(family, socket.SOCK_STREAM)
        s.connect((addr, port))
        held.append(s)
    os.write(done, b"c")
    signal.pause()


def filler(done):
    files = ["/etc/hostname", "/etc/passwd", "/etc/hosts", "/dev/null"]
    for i in range(FILES_PER_FILLER):
        fd = os.open(files[i % len(files)], os.O_RDONLY)
        os.set_inheritable(fd, True)
    os.write(done, b"f")
    os.execv("/bin/sleep", ["sleep", "infinity"])


def main():
    connections, fillers, listeners = (int(a) for a in sys.argv[1:4])
    tcp_count = listeners * 4 // 5
    specs = []
    for i in range(listeners):
        port = 10000 + i
        v6 = i % 2 == 1
        family = socket.AF_INET6 if v6 else socket.AF_INET
        addr = "::1" if v6 else "127.0.0.1"
        specs.append(("tcp" if i < tcp_count else "udp", family, addr, port))
    read_end, write_end = os.pipe()

    def spawn(work, *args):
        if os.fork() == 0:
            os.close(read_end)
            try:
                work(*args, write_end)
            finally:
                os._exit(0)

    def wait_for(n):
        got = 0
        while got < n:
            got += len(os.read(read_end, n - got))

    for k in range(SERVERS):
        spawn(server, specs[k::SERVERS])
    wait_for(SERVERS)
    targets = [(f, a, p) for proto, f, a, p in specs if proto == "tcp"]
    per_client = connections // CLIENTS
    for k in range(CLIENTS):
        count = per_client + (connections % CLIENTS if k == 0 else 0)
        spawn(client, targets, count)
    wait_for(CLIENTS)
    for _ in range(fillers):
        spawn(filler)
    wait_for(fillers)
    time.sleep(0.5)  # let the servers accept the last connections
    print("ready", flush=True)
    signal.pause()


if __name__ == "__main__":
    main()
