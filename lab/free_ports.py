#!/usr/bin/env python3
"""Prints N distinct TCP ports free on ADDR right now: lab/free_ports.py ADDR N

They come from below the kernel's ephemeral range, so the source port of some other test's
outgoing connection can never take one between this check and the server's bind (the kernel
hands those out only from the ephemeral range); a random choice keeps parallel lab instances
apart; a bind test proves each is free now. The e2e harness picks its ports by the same rule
(tests/harness/gateway.rs, free_port_on).
"""
import random
import socket
import sys


def main():
    addr, n = sys.argv[1], int(sys.argv[2])
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except OSError:
        low = 32768
    lo, hi = (10000, low - 1) if low > 12000 else (low, 65535)
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    rng = random.SystemRandom()
    ports = []
    for _ in range(10000):
        port = rng.randint(lo, hi)
        if port in ports:
            continue
        with socket.socket(family) as s:
            try:
                s.bind((addr, port))
            except OSError:
                continue
        ports.append(port)
        if len(ports) == n:
            print(" ".join(map(str, ports)))
            return
    sys.exit(f"no {n} free ports found on {addr}")


if __name__ == "__main__":
    main()
