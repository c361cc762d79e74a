#!/usr/bin/python3
"""
A wire with a fixed one-way delay between two network namespaces, for kernels without sch_netem.

Two TUN devices (layer 3, no packet-info header) are created in the caller's namespace; the caller then
moves each into its namespace (`ip link set <dev> netns <ns>`; the open file descriptors stay attached).
Every packet read from one device is written to the other once `delay` milliseconds have passed, in
order (a constant delay keeps FIFO order, so a deque per direction is enough). TCP in the namespaces
therefore sees a real round-trip time: handshakes, ACK clocking and slow start all pay it.

stdin, one command per line:  `delay <one-way ms>`  (applies to packets read from then on)  |  `quit`
stdout: `ready` once both devices exist, `ok` after each command.
Usage: delay-line.py <device-a> <device-b>
"""
import collections, fcntl, os, select, struct, sys, time

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000


def open_tun(name: str) -> int:
    fd = os.open('/dev/net/tun', os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack('16sH', name.encode(), IFF_TUN | IFF_NO_PI))
    return fd


def main() -> None:
    a, b = open_tun(sys.argv[1]), open_tun(sys.argv[2])
    peer = {a: b, b: a}
    queues = {a: collections.deque(), b: collections.deque()}  # packets read from fd, waiting for their time
    delay = 0.0
    stdin = sys.stdin.fileno()
    print('ready', flush=True)
    while True:
        now = time.monotonic()
        due = [q[0][0] for q in queues.values() if q]
        timeout = max(0.0, min(due) - now) if due else None
        readable, _, _ = select.select([a, b, stdin], [], [], timeout)
        for fd in readable:
            if fd == stdin:
                line = sys.stdin.readline()
                if not line or line.strip() == 'quit':
                    return
                cmd = line.split()
                if cmd and cmd[0] == 'delay':
                    delay = float(cmd[1]) / 1000
                print('ok', flush=True)
                continue
            # Drain everything waiting: one select per packet would cap the packet rate.
            while True:
                try:
                    packet = os.read(fd, 65536)
                except BlockingIOError:
                    break
                except OSError:
                    return  # the device is gone (its namespace was deleted): the bench has ended
                queues[fd].append((time.monotonic() + delay, packet))
        now = time.monotonic()
        for fd, q in queues.items():
            while q and q[0][0] <= now:
                try:
                    os.write(peer[fd], q.popleft()[1])
                except (BlockingIOError, OSError):
                    pass  # the receiving side is full or down: the packet is lost, as on a wire; TCP recovers


if __name__ == '__main__':
    try:
        main()
    except KeyboardInterrupt:
        pass
