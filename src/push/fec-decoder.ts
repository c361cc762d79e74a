/**
 * The receiving side of forward error correction (docs/multicast.md, "Forward error correction"): in
 * front of a {@link MulticastReassembler}, it takes the session's packets and its repair packets
 * (src/wire/fec.ts) in any order and hands on every packet of the session at once, then each lost one
 * it recovers.
 *
 * ```ts
 * const fec = new FecDecoder({ sessionId, output: (d) => reassembler.enqueuePacket(d) });
 * sessionSocket.on('message', (d) => fec.enqueue(d));
 * repairSocket.on('message', (d) => fec.enqueue(d)); // or both on one gateway WebSocket
 * ```
 *
 * - A packet of the session (anything that is not a repair packet, even malformed: the reassembler counts
 *   those) goes to `output` unchanged and at once; the newest `maxPackets` of them are kept by packet
 *   number for the blocks whose repair packets have not arrived.
 * - A block becomes known with its first repair packet (its first packet number, k and m). Once it holds
 *   k symbols, sources and repairs together, the sources it lacks are recovered and handed on; a source
 *   that was only late arrives again later (counted in `recoveredLate`) and the reassembler keeps the
 *   first copy. A block whose own sources all arrived is settled without work.
 * - A block is given up (`unrecoverable`) when its packets leave the window of kept packets before it has
 *   k symbols, or when it is pushed out by newer blocks (`maxBlocks`) or by the byte bound (`maxBytes`).
 * - What does not fit is refused, never thrown: repair packets that do not decode or contradict their
 *   block's earlier ones, and blocks whose symbols disagree on recovery (a damaged or forged repair
 *   packet), are counted as `malformed`. A recovered packet must carry the session ID and its expected
 *   packet number, or nothing of its block is handed on. Recovered packets go through the same
 *   verification as received ones: FEC adds no way to forge a push.
 *
 * Isomorphic: no Node API, no timer (Service Worker and Node alike).
 */
import {
  WireError,
  decodeRepairPacket,
  isRepairPacket,
  recoverBlock,
  shortHeaderPacketNumber,
  type RepairPacket,
} from '../wire/index.js';

export interface FecDecoderOptions {
  /** The session ID (the packets' Destination Connection ID), 0 to 20 bytes. */
  sessionId: Uint8Array;
  /** Every packet of the session as it comes, then each recovered one. */
  output: (datagram: Uint8Array) => void;
  /** Packets of the session kept for blocks still to be repaired: the newest, default 1024. */
  maxPackets?: number;
  /** Blocks known from a repair packet and not settled; default 64. */
  maxBlocks?: number;
  /** Bytes of kept packets and repair symbols together; default 4 MiB. */
  maxBytes?: number;
}

export interface FecDecoderStats {
  /** Packets of the session handed on as they came (repair packets not counted). */
  sourcePackets: number;
  /** Repair packets of the session taken. */
  repairPackets: number;
  /** Packets recovered and handed on. */
  recovered: number;
  /**
   * Of those, the ones whose own copy arrived afterwards: not lost but overtaken by their block's repair
   * packets (two sockets, or a gateway merging two flows, reorder them). Lost packets recovered =
   * recovered − recoveredLate.
   */
  recoveredLate: number;
  /** Blocks given up with packets missing and too few symbols to recover them. */
  unrecoverable: number;
  /** Repair packets that do not decode or contradict their block; blocks whose symbols disagree. */
  malformed: number;
  /** Repair packets of another session. */
  wrongSession: number;
  /** Blocks waiting for symbols now. */
  blocks: number;
  /** Bytes held now: kept packets and repair symbols. */
  bufferedBytes: number;
}

interface Block {
  readonly first: number;
  readonly k: number;
  readonly m: number;
  readonly symbolLength: number;
  readonly repairs: (Uint8Array | undefined)[];
  have: number;
}

/**
 * How long a reassembler behind a FecDecoder should let a hole in a progressive push wait before it
 * repairs it by unicast (its `reorderMs`): a block lasts at most the sender's `flushMs` (50 ms) and its
 * repair packets follow it at the session's pace.
 */
export const FEC_REORDER_MS = 150;

/** Settled blocks remembered, so that their late repair packets are not taken for new blocks. */
const SETTLED_MEMORY = 256;

export class FecDecoder {
  private readonly sessionId: Uint8Array;
  private readonly output: (datagram: Uint8Array) => void;
  private readonly maxPackets: number;
  private readonly maxBlocks: number;
  private readonly maxBytes: number;
  /** Kept packets by packet number, oldest first. */
  private readonly packets = new Map<number, Uint8Array>();
  /** Blocks by first packet number, oldest first. */
  private readonly blocks = new Map<number, Block>();
  private readonly settled = new Set<number>();
  /** Packet numbers recovered lately, oldest first (at most maxPackets), to tell a late copy from a loss. */
  private readonly recoveredNumbers = new Set<number>();
  private largest: number | undefined;
  /** Bytes of kept packets and repair symbols; of kept packets alone. */
  private bytes = 0;
  private packetBytes = 0;
  private readonly counters = {
    sourcePackets: 0,
    repairPackets: 0,
    recovered: 0,
    recoveredLate: 0,
    unrecoverable: 0,
    malformed: 0,
    wrongSession: 0,
  };

  constructor(o: FecDecoderOptions) {
    if (o.sessionId.length > 20) throw new RangeError('a session ID is at most 20 bytes (RFC 9000 §17.2)');
    this.sessionId = o.sessionId.slice();
    this.output = o.output;
    this.maxPackets = o.maxPackets ?? 1024;
    this.maxBlocks = o.maxBlocks ?? 64;
    this.maxBytes = o.maxBytes ?? 4 * 1024 * 1024;
    for (const [name, value] of Object.entries({
      maxPackets: this.maxPackets,
      maxBlocks: this.maxBlocks,
      maxBytes: this.maxBytes,
    }))
      if (!Number.isInteger(value) || value < 1) throw new RangeError(`${name} ${value} is not a positive integer`);
  }

  get stats(): FecDecoderStats {
    return { ...this.counters, blocks: this.blocks.size, bufferedBytes: this.bytes };
  }

  /** One datagram of the session's flow or of its repair flow. Never throws for what it holds. */
  enqueue(datagram: Uint8Array): void {
    if (isRepairPacket(datagram)) this.onRepair(datagram);
    else this.onSource(datagram);
  }

  // -------------------------------------------------------------------------------------------------

  private onSource(datagram: Uint8Array): void {
    this.counters.sourcePackets++;
    this.output(datagram);
    const packetNumber = this.packetNumberOf(datagram, this.largest);
    if (packetNumber === undefined || this.packets.has(packetNumber)) return;
    if (this.recoveredNumbers.delete(packetNumber)) {
      this.counters.recoveredLate++;
      return;
    }
    this.largest = Math.max(this.largest ?? 0, packetNumber);
    // Held by its own bytes: a view into a larger buffer would hold all of it past the byte bound.
    const own = datagram.byteLength === datagram.buffer.byteLength ? datagram : datagram.slice();
    this.packets.set(packetNumber, own);
    this.bytes += datagram.length;
    this.packetBytes += datagram.length;
    this.enforceBounds();
    for (const block of [...this.blocks.values()])
      if (packetNumber >= block.first && packetNumber < block.first + block.k) this.tryRecover(block);
  }

  private onRepair(datagram: Uint8Array): void {
    let repair: RepairPacket;
    try {
      repair = decodeRepairPacket(datagram, this.sessionId.length);
    } catch (error) {
      if (!(error instanceof WireError)) throw error;
      this.counters.malformed++;
      return;
    }
    for (let i = 0; i < this.sessionId.length; i++) {
      if (repair.sessionId[i] !== this.sessionId[i]) {
        this.counters.wrongSession++;
        return;
      }
    }
    this.counters.repairPackets++;
    const { firstPacketNumber: first, k, m, index, symbol } = repair;
    if (this.settled.has(first)) return;
    let block = this.blocks.get(first);
    if (!block) {
      block = { first, k, m, symbolLength: symbol.length, repairs: new Array(m).fill(undefined), have: 0 };
      this.blocks.set(first, block);
    } else if (block.k !== k || block.m !== m || block.symbolLength !== symbol.length) {
      this.counters.malformed++;
      return;
    }
    if (block.repairs[index] !== undefined) return; // a duplicate
    block.repairs[index] = symbol.slice(); // not the whole datagram's buffer
    block.have++;
    this.bytes += symbol.length;
    this.tryRecover(block);
    this.enforceBounds();
  }

  /** Recovers what the block lacks once it holds k symbols; settles it when nothing is lacking. */
  private tryRecover(block: Block): void {
    if (!this.blocks.has(block.first)) return;
    const sources: (Uint8Array | undefined)[] = [];
    let missing = 0;
    for (let j = 0; j < block.k; j++) {
      const packet = this.packets.get(block.first + j);
      if (packet === undefined) missing++;
      sources.push(packet);
    }
    if (missing === 0) return this.settle(block);
    if (block.have < missing) return;
    let recovered: Uint8Array[];
    try {
      recovered = recoverBlock(sources, block.repairs);
    } catch (error) {
      if (!(error instanceof WireError)) throw error;
      this.counters.malformed++;
      return this.settle(block);
    }
    const found: Uint8Array[] = [];
    const missingAt: number[] = [];
    for (let j = 0; j < block.k; j++) {
      if (sources[j] !== undefined) continue;
      missingAt.push(j);
      const packet = recovered[j]!;
      const expected = block.first + j;
      // The number as the session's packet would have it: the reassembler reads it again.
      if (this.packetNumberOf(packet, expected === 0 ? undefined : expected - 1) !== expected) {
        this.counters.malformed++;
        return this.settle(block);
      }
      found.push(packet);
    }
    this.settle(block);
    for (const [i, packet] of found.entries()) {
      this.counters.recovered++;
      this.recoveredNumbers.add(block.first + missingAt[i]!);
      if (this.recoveredNumbers.size > this.maxPackets)
        this.recoveredNumbers.delete(this.recoveredNumbers.values().next().value!);
      this.output(packet);
    }
  }

  /** The packet number of a packet of this session, or undefined when it is not one. */
  private packetNumberOf(datagram: Uint8Array, largest: number | undefined): number | undefined {
    try {
      const packetNumber = shortHeaderPacketNumber(datagram, {
        dcidLength: this.sessionId.length,
        largestPacketNumber: largest,
      });
      for (let i = 0; i < this.sessionId.length; i++) if (datagram[1 + i] !== this.sessionId[i]) return undefined;
      return packetNumber;
    } catch (error) {
      if (error instanceof WireError) return undefined;
      throw error;
    }
  }

  private settle(block: Block): void {
    this.dropBlock(block);
    this.settled.add(block.first);
    if (this.settled.size > SETTLED_MEMORY) this.settled.delete(this.settled.values().next().value!);
  }

  private dropBlock(block: Block): void {
    if (!this.blocks.delete(block.first)) return;
    for (const r of block.repairs) if (r !== undefined) this.bytes -= r.length;
  }

  /** Gives up a block that can no longer be completed. */
  private giveUp(block: Block): void {
    this.counters.unrecoverable++;
    this.settle(block);
  }

  private enforceBounds(): void {
    while (this.packets.size > this.maxPackets) this.dropOldestPacket();
    while (this.blocks.size > this.maxBlocks) this.giveUp(this.blocks.values().next().value!);
    // Past the byte bound, the older of the two kinds goes first: kept packets while they hold half the
    // bytes or more, then blocks (whose repair symbols are the rest).
    while (this.bytes > this.maxBytes) {
      if (this.packetBytes * 2 >= this.bytes && this.packets.size > 0) this.dropOldestPacket();
      else if (this.blocks.size > 0) this.giveUp(this.blocks.values().next().value!);
      else this.dropOldestPacket();
    }
    // A block whose packets left the window gets none of them back: its sources are gone.
    if (this.largest === undefined) return;
    for (const block of [...this.blocks.values()])
      if (block.first + block.k + this.maxPackets <= this.largest) this.giveUp(block);
  }

  private dropOldestPacket(): void {
    const [oldest, packet] = this.packets.entries().next().value!;
    this.packets.delete(oldest);
    this.bytes -= packet.length;
    this.packetBytes -= packet.length;
  }
}
