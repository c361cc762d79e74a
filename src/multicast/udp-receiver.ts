/**
 * Joins a multicast group (source-specific where the source is known, RFC 4607) and hands each datagram
 * to a callback (Node only, node:dgram).
 *
 * - The socket binds the group's port with SO_REUSEADDR, so several receivers on one host can join;
 *   IPv4 sockets bind the group address itself, so that datagrams of other groups on the same port
 *   (which Linux delivers to any socket bound to the wildcard address) never reach this one.
 * - The kernel receive buffer is raised (`receiveBufferBytes`, default 4 MiB; the kernel caps it at
 *   net.core.rmem_max): a paced sender never overflows it, a burst might.
 * - Datagrams longer than `maxDatagramBytes` are dropped and counted: the profile's are at most 1470.
 */
import dgram from 'node:dgram';
import { isIP } from 'node:net';

export interface MulticastUdpReceiverOptions {
  group: string;
  port: number;
  /** Sender address for a source-specific join; absent: any-source join. */
  source?: string;
  /** Interface to join on: an IPv4 address, or `::%ifname` for IPv6; default the system's choice. */
  interfaceAddress?: string;
  receiveBufferBytes?: number;
  maxDatagramBytes?: number;
  onDatagram: (datagram: Uint8Array) => void;
}

export interface MulticastUdpReceiverStats {
  datagrams: number;
  bytes: number;
  oversized: number;
  errors: number;
}

export class MulticastUdpReceiver {
  private readonly counters: MulticastUdpReceiverStats = { datagrams: 0, bytes: 0, oversized: 0, errors: 0 };
  private closed = false;

  private constructor(
    private readonly socket: dgram.Socket,
    private readonly o: MulticastUdpReceiverOptions,
  ) {}

  static async open(o: MulticastUdpReceiverOptions): Promise<MulticastUdpReceiver> {
    const family = isIP(o.group);
    if (family === 0) throw new TypeError(`group ${JSON.stringify(o.group)} is not an IP address`);
    if (o.source !== undefined && isIP(o.source) !== family)
      throw new TypeError(`source ${o.source} is not an IPv${family} address like the group`);
    if (!Number.isInteger(o.port) || o.port < 1 || o.port > 65535)
      throw new RangeError(`port ${o.port} is not 1 to 65535`);
    const socket = dgram.createSocket({ type: family === 4 ? 'udp4' : 'udp6', reuseAddr: true });
    const receiver = new MulticastUdpReceiver(socket, o);
    const max = o.maxDatagramBytes ?? 65_535;
    socket.on('message', (msg) => {
      if (msg.length > max) {
        receiver.counters.oversized++;
        return;
      }
      receiver.counters.datagrams++;
      receiver.counters.bytes += msg.length;
      o.onDatagram(new Uint8Array(msg.buffer, msg.byteOffset, msg.length));
    });
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        socket.bind({ port: o.port, address: family === 4 ? o.group : undefined }, () => {
          socket.off('error', reject);
          resolve();
        });
      });
      socket.on('error', () => receiver.counters.errors++);
      try {
        socket.setRecvBufferSize(o.receiveBufferBytes ?? 4 * 1024 * 1024);
      } catch {
        // a smaller buffer than asked for: the kernel's limit
      }
      if (o.source !== undefined) socket.addSourceSpecificMembership(o.source, o.group, o.interfaceAddress);
      else socket.addMembership(o.group, o.interfaceAddress);
    } catch (error) {
      socket.close();
      throw new Error(
        `cannot join ${o.source ? `(${o.source}, ${o.group})` : o.group} port ${o.port}${o.interfaceAddress ? ` on ${o.interfaceAddress}` : ''}: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
    return receiver;
  }

  get stats(): MulticastUdpReceiverStats {
    return { ...this.counters };
  }

  get description(): string {
    return `${this.o.source ? `(${this.o.source}, ${this.o.group})` : this.o.group}:${this.o.port}`;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await new Promise<void>((resolve) => this.socket.close(() => resolve()));
  }
}
