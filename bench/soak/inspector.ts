/**
 * A small client of the V8 inspector protocol (Chrome DevTools Protocol over WebSocket), to look into the
 * server under soak when it runs with `--inspect=127.0.0.1:0`: a full garbage collection, the process's
 * own `process.memoryUsage()`, and heap snapshots summarised as live objects per constructor, so that
 * two snapshots say which kinds of object grew between them.
 */
import { WebSocket } from 'ws';

export interface MemoryUsage {
  rss: number;
  heapTotal: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
}

/** Live objects of one kind in a heap snapshot: `type:name` (e.g. `object:QuicStream`, `closure:onData`). */
export interface HeapKind {
  kind: string;
  count: number;
  /** Sum of the objects' own sizes, bytes. */
  selfBytes: number;
}

export interface HeapSummary {
  nodes: number;
  totalSelfBytes: number;
  kinds: Map<string, HeapKind>;
}

export class Inspector {
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (r: unknown) => void; reject: (e: Error) => void }>();
  private readonly listeners = new Map<string, (params: unknown) => void>();

  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (data: Buffer) => {
      const m = JSON.parse(data.toString('utf8')) as {
        id?: number;
        result?: unknown;
        error?: { message: string };
        method?: string;
        params?: unknown;
      };
      if (m.id !== undefined) {
        const w = this.waiting.get(m.id);
        this.waiting.delete(m.id);
        if (m.error) w?.reject(new Error(m.error.message));
        else w?.resolve(m.result);
      } else if (m.method) this.listeners.get(m.method)?.(m.params);
    });
    ws.on('close', () => {
      for (const w of this.waiting.values()) w.reject(new Error('inspector: the connection closed'));
      this.waiting.clear();
    });
  }

  /** Connects to the URL a process prints as `Debugger listening on ws://…`. */
  static connect(url: string): Promise<Inspector> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 1 << 30 });
      ws.once('open', () => resolve(new Inspector(ws)));
      ws.once('error', reject);
    });
  }

  send<T>(method: string, params: object = {}, timeoutMs = 120_000): Promise<T> {
    const id = this.nextId++;
    this.ws.send(JSON.stringify({ id, method, params }));
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`inspector: ${method} unanswered after ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(id, {
        resolve: (r) => (clearTimeout(timer), resolve(r as T)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
    });
  }

  /** A full, compacting collection (as `global.gc()` would do), without `--expose-gc`. */
  async collectGarbage(): Promise<void> {
    await this.send('HeapProfiler.collectGarbage');
  }

  async memoryUsage(): Promise<MemoryUsage> {
    const r = await this.send<{ result: { value: string } }>('Runtime.evaluate', {
      expression: 'JSON.stringify(process.memoryUsage())',
      returnByValue: true,
    });
    return JSON.parse(r.result.value) as MemoryUsage;
  }

  /** A heap snapshot (after a full collection, as V8 takes it), summarised by kind of object. */
  async heapSummary(): Promise<HeapSummary> {
    const chunks: string[] = [];
    this.listeners.set('HeapProfiler.addHeapSnapshotChunk', (p) => chunks.push((p as { chunk: string }).chunk));
    await this.send('HeapProfiler.enable');
    await this.send('HeapProfiler.takeHeapSnapshot', { reportProgress: false }, 600_000);
    this.listeners.delete('HeapProfiler.addHeapSnapshotChunk');
    await this.send('HeapProfiler.disable');
    return summarise(chunks.join(''));
  }

  close(): void {
    this.ws.close();
  }
}

/** Counts a snapshot's nodes by `type:name` (V8's heap snapshot format: a flat `nodes` array, see meta.node_fields). */
export function summarise(json: string): HeapSummary {
  const snapshot = JSON.parse(json) as {
    snapshot: { meta: { node_fields: string[]; node_types: [string[]] } };
    nodes: number[];
    strings: string[];
  };
  const fields = snapshot.snapshot.meta.node_fields;
  const types = snapshot.snapshot.meta.node_types[0];
  const width = fields.length;
  const typeAt = fields.indexOf('type');
  const nameAt = fields.indexOf('name');
  const sizeAt = fields.indexOf('self_size');
  const kinds = new Map<string, HeapKind>();
  let total = 0;
  const { nodes, strings } = snapshot;
  for (let i = 0; i < nodes.length; i += width) {
    const type = types[nodes[i + typeAt]!]!;
    // Strings and code are named by their contents: one kind each, not one per value.
    const name =
      type === 'object' || type === 'closure' || type === 'native' || type === 'hidden'
        ? strings[nodes[i + nameAt]!]!.slice(0, 80)
        : '';
    const kind = `${type}:${name}`;
    const size = nodes[i + sizeAt]!;
    total += size;
    const k = kinds.get(kind);
    if (k) {
      k.count++;
      k.selfBytes += size;
    } else kinds.set(kind, { kind, count: 1, selfBytes: size });
  }
  return { nodes: nodes.length / width, totalSelfBytes: total, kinds };
}

/** The kinds that grew most in bytes from `a` to `b`. */
export function growth(a: HeapSummary, b: HeapSummary, top = 15): { kind: string; count: number; bytes: number }[] {
  const out: { kind: string; count: number; bytes: number }[] = [];
  for (const [kind, k] of b.kinds) {
    const before = a.kinds.get(kind);
    out.push({ kind, count: k.count - (before?.count ?? 0), bytes: k.selfBytes - (before?.selfBytes ?? 0) });
  }
  return out.sort((x, y) => y.bytes - x.bytes).slice(0, top);
}
