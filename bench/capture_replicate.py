#!/usr/bin/env python3
"""Writes OUT of at least SIZE bytes from a recorded classic pcap (Ethernet, IPv4) by
repeating its frames, each copy's client ports shifted (a bijection per copy, the server port
kept) and its timestamps moved past the previous copy, so every copy's connections are new
connections to the analysis. Standard library only.

    capture_replicate.py SEED OUT SIZE_BYTES SERVER_PORT
"""
import struct
import sys


def main() -> int:
    seed, out, size, server_port = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    data = open(seed, "rb").read()
    if data[:4] != b"\xd4\xc3\xb2\xa1" or struct.unpack_from("<I", data, 20)[0] != 1:
        sys.exit("capture_replicate.py: the seed must be a little-endian microsecond Ethernet pcap")
    header, frames = data[:24], []
    at = 24
    while at + 16 <= len(data):
        sec, usec, caplen, origlen = struct.unpack_from("<IIII", data, at)
        frames.append((sec, usec, bytearray(data[at + 16:at + 16 + caplen]), origlen))
        at += 16 + caplen
    span = frames[-1][0] - frames[0][0] + 2
    written = 0
    copy = 0
    with open(out, "wb") as f:
        f.write(header)
        written += len(header)
        while written < size:
            for sec, usec, frame, origlen in frames:
                if len(frame) >= 38 and frame[12:14] == b"\x08\x00" and frame[23] == 6:
                    tcp = 14 + (frame[14] & 0x0F) * 4
                    src, dst = struct.unpack_from("!HH", frame, tcp)
                    shift = lambda p: p if p == server_port else 1024 + (p - 1024 + copy * 4099) % 64512
                    struct.pack_into("!HH", frame, tcp, shift(src), shift(dst))
                    # Undo for the next copy's arithmetic: keep the seed's ports in `frames`.
                    record = struct.pack("<IIII", sec + copy * span, usec, len(frame), origlen)
                    f.write(record)
                    f.write(frame)
                    struct.pack_into("!HH", frame, tcp, src, dst)
                else:
                    f.write(struct.pack("<IIII", sec + copy * span, usec, len(frame), origlen))
                    f.write(frame)
                written += 16 + len(frame)
            copy += 1
    print(f"{out}: {written} bytes, {copy} copies of {len(frames)} frames")
    return 0


if __name__ == "__main__":
    sys.exit(main())
