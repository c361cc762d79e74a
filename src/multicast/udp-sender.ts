/**
 * Sends a multicast session's datagrams to a group:port through node:dgram (Node only), paced by a
 * {@link TokenBucket}, from a bounded queue.
 *
 * ```ts
 * const sender = await MulticastUdpSender.open({ group: '232.1.2.3', port: 5000, rateBitsPerSecond: 5e6 });
 * await sender.send(await packetizer.push(resource)); // resolves once every datagram left the socket
 * await sender.close();
 * ```
 *
 * - IPv4 or IPv6, from the group address. TTL (IPv4) / hop limit (IPv6) via `setMulticastTTL`
 *   (default 1: the local network only), the outgoing interface via `setMulticastInterface` (IPv4: an
 *   interface address; IPv6: `::%ifname`), loopback of our own datagrams to local members via
 *   `setMulticastLoopback` (default false).
 * - A `send` call is admitted whole or not at all: if the bytes already queued plus its bytes exceed
 *   `maxQueuedBytes`, it rejects with {@link QueueFullError} at once and its datagrams are counted as
 *   dropped (a push half sent would be useless to receivers). The queue never grows past the bound.
 * - Pacing: each datagram takes its bytes from the bucket; the sender waits the delay the bucket gives
 *   before handing the datagram to the socket. Datagrams whose delay is 0 go out back to back.
 * - Forward error correction (`fec`): a {@link FecEncoder} sees each datagram once it has left, and the
 *   repair packets of each block go to `fec.port` on the same group from a second socket bound to the same
 *   address (the same source for a source-specific join). A block closes when it is full, when the queue
 *   runs empty (the end of a push or of a chunk), or `flushMs` after its first packet. Its repair packets go out next, before the rest of the queue,
 *   take their bytes from the same bucket (the session's rate covers both flows) and count toward
 *   `maxQueuedBytes`; `flush` sends the repair packets of the block being filled too.
 */
import dgram from 'node:dgram';
import { isIP } from 'node:net';
import { FecEncoder, checkFecOptions, type FecOptions } from './fec-encoder.js';
import { TokenBucket } from './token-bucket.js';

export interface MulticastUdpSenderOptions {
  /** Multicast group address, IPv4 (224.0.0.0/4) or IPv6 (ff00::/8). */
  group: string;
  port: number;
  /** Pacing rate, bit/s. */
  rateBitsPerSecond: number;
  /** Token bucket depth, bytes; default 10 × 1470. */
  burstBytes?: number;
  /** Bytes that may wait in the queue; default 4 MiB. */
  maxQueuedBytes?: number;
  /** Multicast TTL (IPv4) or hop limit (IPv6), 0 to 255; default 1. */
  ttl?: number;
  /** Outgoing interface (`socket.setMulticastInterface`): an IPv4 address, or `::%ifname` for IPv6. */
  multicastInterface?: string;
  /** Deliver our datagrams to members on this host too (`setMulticastLoopback`); default false. */
  loopback?: boolean;
  /** Local address to bind (default any); the source address receivers see with SSM. */
  bindAddress?: string;
  /** Local port (default 0: any). */
  bindPort?: number;
  /** Clock for the bucket, ms; default performance.now. */
  now?: () => number;
  /** Repair packets of the datagrams sent (`port` required: the repair flow's UDP port). */
  fec?: FecOptions & { port: number; sessionId: Uint8Array };
}

export interface MulticastUdpSenderStats {
  /** Datagrams and bytes handed to the socket. */
  packets: number;
  bytes: number;
  /** Datagrams and bytes refused because the queue was full. */
  drops: number;
  droppedBytes: number;
  /** `send` calls refused. */
  rejectedSends: number;
  /** Socket send errors. */
  errors: number;
  /** Datagrams and bytes waiting, repair packets included. */
  queuedPackets: number;
  queuedBytes: number;
  /** FEC repair packets and bytes handed to the repair socket (also in the bucket's count, not in `packets`). */
  repairPackets: number;
  repairBytes: number;
  /** Repair packets dropped: the queue was full. */
  repairDrops: number;
}

/** A `send` past `maxQueuedBytes`. */
export class QueueFullError extends Error {
  override name = 'QueueFullError';
  constructor(
    readonly queuedBytes: number,
    readonly requestedBytes: number,
    readonly maxQueuedBytes: number,
  ) {
    super(
      `multicast send queue full: ${queuedBytes} bytes queued + ${requestedBytes} requested > ${maxQueuedBytes} (maxQueuedBytes); the datagrams were dropped`,
    );
  }
}

/** A `send` after `close`, or pending when the sender closed. */
export class SenderClosedError extends Error {
  override name = 'SenderClosedError';
}

interface Batch {
  datagrams: Uint8Array[];
  next: number;
  bytes: number;
  resolve: () => void;
  reject: (error: Error) => void;
}

const MIN_SLEEP_MS = 4;

export class MulticastUdpSender {
  private readonly socket: dgram.Socket;
  private readonly repairSocket: dgram.Socket | undefined;
  private readonly fec: FecEncoder | undefined;
  private readonly bucket: TokenBucket;
  private readonly maxQueuedBytes: number;
  private readonly queue: Batch[] = [];
  /** Repair packets, sent before the next datagram of the queue. */
  private readonly repairQueue: Uint8Array[] = [];
  private queuedBytes = 0;
  private queuedPackets = 0;
  private draining = false;
  private closed = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private wake: (() => void) | undefined;
  private readonly counters = {
    packets: 0,
    bytes: 0,
    drops: 0,
    droppedBytes: 0,
    rejectedSends: 0,
    errors: 0,
    repairPackets: 0,
    repairBytes: 0,
    repairDrops: 0,
  };

  private constructor(
    socket: dgram.Socket,
    repairSocket: dgram.Socket | undefined,
    readonly group: string,
    readonly port: number,
    options: MulticastUdpSenderOptions,
  ) {
    this.socket = socket;
    this.repairSocket = repairSocket;
    this.bucket = new TokenBucket({
      rateBitsPerSecond: options.rateBitsPerSecond,
      burstBytes: options.burstBytes,
      now: options.now,
    });
    this.maxQueuedBytes = options.maxQueuedBytes ?? 4 * 1024 * 1024;
    if (options.fec) this.fec = new FecEncoder({ ...options.fec, output: (repairs) => this.queueRepairs(repairs) });
  }

  /** Creates, binds and configures the socket. */
  static async open(options: MulticastUdpSenderOptions): Promise<MulticastUdpSender> {
    const family = isIP(options.group);
    if (family === 0) throw new TypeError(`group ${JSON.stringify(options.group)} is not an IP address`);
    const multicast = family === 4 ? /^(22[4-9]|23[0-9])\./.test(options.group) : /^ff/i.test(options.group);
    if (!multicast) throw new TypeError(`group ${options.group} is not a multicast address`);
    if (!Number.isInteger(options.port) || options.port < 1 || options.port > 65535)
      throw new RangeError(`port ${options.port} is not 1 to 65535`);
    const ttl = options.ttl ?? 1;
    if (!Number.isInteger(ttl) || ttl < 0 || ttl > 255) throw new RangeError(`ttl ${ttl} is not 0 to 255`);
    const maxQueued = options.maxQueuedBytes ?? 4 * 1024 * 1024;
    if (!(Number.isFinite(maxQueued) && maxQueued > 0))
      throw new RangeError(`maxQueuedBytes ${maxQueued} is not positive`);
    new TokenBucket({ rateBitsPerSecond: options.rateBitsPerSecond, burstBytes: options.burstBytes, now: () => 0 }); // validates
    if (options.fec) {
      checkFecOptions(options.fec);
      if (options.fec.port === options.port) throw new RangeError(`FEC port ${options.fec.port} is the session's port`);
    }

    const open = async (port: number, bindPort: number) => {
      const socket = dgram.createSocket({ type: family === 4 ? 'udp4' : 'udp6' });
      try {
        await new Promise<void>((resolve, reject) => {
          socket.once('error', reject);
          socket.bind({ port: bindPort, address: options.bindAddress, exclusive: true }, () => {
            socket.off('error', reject);
            resolve();
          });
        });
        socket.setMulticastTTL(ttl);
        socket.setMulticastLoopback(options.loopback ?? false);
        if (options.multicastInterface !== undefined) socket.setMulticastInterface(options.multicastInterface);
        // A connected socket: no address lookup in Node nor route lookup in the kernel per datagram.
        await new Promise<void>((resolve, reject) => {
          socket.once('error', reject);
          socket.connect(port, options.group, () => {
            socket.off('error', reject);
            resolve();
          });
        });
        return socket;
      } catch (error) {
        socket.close();
        throw error;
      }
    };
    const socket = await open(options.port, options.bindPort ?? 0);
    let repairSocket: dgram.Socket | undefined;
    try {
      if (options.fec) repairSocket = await open(options.fec.port, 0);
    } catch (error) {
      socket.close();
      throw error;
    }
    const sender = new MulticastUdpSender(socket, repairSocket, options.group, options.port, options);
    socket.on('error', () => sender.counters.errors++);
    repairSocket?.on('error', () => sender.counters.errors++);
    return sender;
  }

  get stats(): MulticastUdpSenderStats {
    return { ...this.counters, queuedPackets: this.queuedPackets, queuedBytes: this.queuedBytes };
  }

  /** The FEC encoder's counts (blocks, protected and repair packets); undefined without FEC. */
  get fecStats() {
    return this.fec?.stats;
  }

  /** The bound local address (the source of the session). */
  address(): { address: string; port: number } {
    const { address, port } = this.socket.address();
    return { address, port };
  }

  /**
   * Queues datagrams (one push, typically) for paced sending. Resolves once all left the socket;
   * rejects with QueueFullError at once when they do not fit the queue, SenderClosedError on close.
   */
  send(datagrams: Uint8Array | readonly Uint8Array[]): Promise<void> {
    const list = datagrams instanceof Uint8Array ? [datagrams] : [...datagrams];
    if (this.closed) return Promise.reject(new SenderClosedError('send after close'));
    const bytes = list.reduce((sum, d) => sum + d.length, 0);
    if (this.queuedBytes + bytes > this.maxQueuedBytes) {
      this.counters.rejectedSends++;
      this.counters.drops += list.length;
      this.counters.droppedBytes += bytes;
      return Promise.reject(new QueueFullError(this.queuedBytes, bytes, this.maxQueuedBytes));
    }
    if (list.length === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ datagrams: list, next: 0, bytes, resolve, reject });
      this.queuedBytes += bytes;
      this.queuedPackets += list.length;
      void this.drain();
    });
  }

  /** Resolves when the queue is empty, and with FEC once the repair packets of the last block are sent too. */
  async flush(): Promise<void> {
    const idle = async () => {
      while (!this.closed && (this.queue.length > 0 || this.repairQueue.length > 0 || this.draining))
        await new Promise((r) => setTimeout(r, 1));
    };
    await idle();
    if (this.fec && !this.closed) {
      this.fec.flush();
      await idle();
    }
  }

  /** Stops at once: pending sends reject with SenderClosedError; the socket closes. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.fec?.close();
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.wake?.();
    for (const batch of this.queue.splice(0))
      batch.reject(new SenderClosedError('sender closed before these datagrams were sent'));
    this.repairQueue.length = 0;
    this.queuedBytes = 0;
    this.queuedPackets = 0;
    await Promise.all(
      [this.socket, this.repairSocket].map((s) => s && new Promise<void>((resolve) => s.close(() => resolve()))),
    );
  }

  /** The repair packets of a block: sent next, or dropped and counted when the queue has no room. */
  private queueRepairs(repairs: Uint8Array[]): void {
    if (this.closed) return;
    const bytes = repairs.reduce((sum, d) => sum + d.length, 0);
    if (this.queuedBytes + bytes > this.maxQueuedBytes) {
      this.counters.repairDrops += repairs.length;
      return;
    }
    this.repairQueue.push(...repairs);
    this.queuedBytes += bytes;
    this.queuedPackets += repairs.length;
    void this.drain();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.wake = resolve;
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.wake = undefined;
        resolve();
      }, ms);
    });
  }

  private sendOne(datagram: Uint8Array, socket = this.socket): Promise<void> {
    return new Promise((resolve, reject) => {
      socket.send(datagram, (error) => (error ? reject(error) : resolve()));
    });
  }

  /** Waits for the bucket's tokens for `bytes`; false if the sender closed meanwhile. */
  private async pace(bytes: number): Promise<boolean> {
    const delay = this.bucket.delayFor(bytes);
    // Waking costs tens of µs; sleeping at least MIN_SLEEP_MS lets the bucket refill for several
    // datagrams, which then leave back to back (within the burst the bucket allows).
    if (delay > 0) await this.sleep(Math.max(delay, MIN_SLEEP_MS));
    return !this.closed;
  }

  private async sendRepair(): Promise<void> {
    const datagram = this.repairQueue[0]!;
    if (!(await this.pace(datagram.length))) return;
    try {
      await this.sendOne(datagram, this.repairSocket);
      this.counters.repairPackets++;
      this.counters.repairBytes += datagram.length;
    } catch {
      this.counters.errors++;
    }
    if (this.closed) return;
    this.repairQueue.shift();
    this.queuedPackets--;
    this.queuedBytes -= datagram.length;
  }

  private async drain(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    try {
      while (!this.closed) {
        if (this.repairQueue.length > 0) {
          await this.sendRepair();
          continue;
        }
        const batch = this.queue[0];
        if (!batch) break;
        const datagram = batch.datagrams[batch.next]!; // a batch leaves the queue when its last datagram is sent
        if (!(await this.pace(datagram.length))) return;
        try {
          await this.sendOne(datagram);
          this.counters.packets++;
          this.counters.bytes += datagram.length;
        } catch (error) {
          // The batch fails; its remaining datagrams leave the queue.
          this.counters.errors++;
          this.queue.shift();
          const rest = batch.datagrams.slice(batch.next);
          this.queuedPackets -= rest.length;
          this.queuedBytes -= rest.reduce((sum, d) => sum + d.length, 0);
          batch.reject(error instanceof Error ? error : new Error(String(error)));
          continue;
        }
        if (this.closed) return;
        batch.next++;
        this.queuedPackets--;
        this.queuedBytes -= datagram.length;
        if (batch.next === batch.datagrams.length) {
          this.queue.shift();
          batch.resolve();
        }
        if (this.fec) {
          this.fec.add(datagram); // a block it fills queues its repair packets, sent next
          // Nothing more to send now (the end of a push, or of a chunk of a progressive one): the block
          // would only wait for the next, so its repair packets go at once.
          if (this.queue.length === 0) this.fec.flush();
        }
      }
    } finally {
      this.draining = false;
    }
  }
}
