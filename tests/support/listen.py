#!/usr/bin/env python3
"""A real listener for autofw's namespace tests.

Usage: listen.py [--name COMM] SPEC...
SPEC is PROTO:ADDR:PORT, PROTO one of tcp, udp; ADDR an IPv4 address or an
IPv6 one in brackets ([::], [2001:db8::1]). IPv6 sockets are v6only unless
the spec ends with ':dual'.

--name sets the process name the kernel reports (/proc/PID/comm, what ss and
autofw show), as a daemon of that name would have.
TCP: accepts, writes "hello\n", closes. UDP: answers a DNS query with its
header's QR bit set (dig takes that as an answer), echoes anything else.
Prints "ready" once every socket is bound, then serves until killed.
"""
import ctypes, selectors, socket, sys


def set_comm(name):
    libc = ctypes.CDLL(None)
    PR_SET_NAME = 15
    libc.prctl(PR_SET_NAME, name.encode()[:15], 0, 0, 0)


def bind(spec):
    parts = spec.split(":")
    dual = parts[-1] == "dual"
    if dual:
        parts = parts[:-1]
    proto, port = parts[0], int(parts[-1])
    addr = ":".join(parts[1:-1])
    v6 = addr.startswith("[")
    addr = addr.strip("[]")
    family = socket.AF_INET6 if v6 else socket.AF_INET
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    s = socket.socket(family, kind)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if v6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0 if dual else 1)
    s.bind((addr, port))
    if proto == "tcp":
        s.listen(64)
    s.setblocking(False)
    return s, proto


def main():
    args = sys.argv[1:]
    if len(args) >= 2 and args[0] == "--name":
        set_comm(args[1])
        args = args[2:]
    sel = selectors.DefaultSelector()
    for spec in args:
        s, proto = bind(spec)
        sel.register(s, selectors.EVENT_READ, proto)
    print("ready", flush=True)
    while True:
        for key, _ in sel.select():
            s = key.fileobj
            try:
                if key.data == "tcp":
                    conn, _ = s.accept()
                    conn.setblocking(True)
                    conn.sendall(b"hello\n")
                    conn.close()
                else:
                    data, peer = s.recvfrom(4096)
                    if len(data) >= 12:
                        data = data[:2] + bytes([data[2] | 0x80]) + data[3:]
                    s.sendto(data, peer)
            except OSError:
                pass


if __name__ == "__main__":
    main()
