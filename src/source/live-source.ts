import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import type { Readable } from 'node:stream';
import { ffmpegArguments, type EncoderOutput, type EncoderSettings } from './ffmpeg-args.js';

/** Where an encoder output's bytes go: the packager of that track. */
export interface MediaSink {
  push(bytes: Uint8Array): void;
  endOfInput(): void;
}

export interface EncoderProgress {
  frame: number;
  fps: number;
  /** Encoding speed relative to real time (1 = keeping up). */
  speed: number;
  outTimeSeconds: number;
}

export interface LiveSourceEvents {
  started: [run: number, pid: number | undefined];
  /** The run's first output bytes: for an ingest input, an encoder is connected and sending. */
  media: [run: number];
  progress: [EncoderProgress];
  /** ffmpeg stopped; `restartIn` is undefined when it will not be restarted. */
  exited: [
    info: {
      run: number;
      code: number | null;
      signal: NodeJS.Signals | null;
      lastError: string;
      restartIn?: number;
      requested: boolean;
      /** Whether the run wrote any output (an ingest run: whether an encoder had been sending). */
      hadMedia: boolean;
    },
  ];
  'sink-error': [trackId: string, error: Error];
  log: [line: string];
}

export interface LiveSourceOptions extends EncoderSettings {
  ffmpegPath?: string;
  /** Delay before the first restart; doubles per quick failure up to `maxRestartDelay`. */
  restartDelay?: number;
  maxRestartDelay?: number;
  /** Standard input to hand to ffmpeg for the `stdin` input. */
  stdin?: Readable;
  /** Delay before listening again after an SRT encoder that sent media went away. */
  reconnectDelay?: number;
}

const STDERR_LINES_KEPT = 20;

/** The encoder's counts since it started, for metrics. */
export interface LiveSourceStats {
  /** Times ffmpeg died and a restart was scheduled. */
  restarts: number;
  /** Malformed encoder output rejected by a track's sink (its packager), by track. */
  sinkErrorsByTrack: Record<string, number>;
}

/**
 * Runs the live encoder and keeps it running: one ffmpeg process writes each rendition as fragmented MP4
 * to its own pipe; if ffmpeg dies, the sinks are told the input ended (what they published stays) and a
 * new run starts after a back-off.
 */
export class LiveSource extends EventEmitter<LiveSourceEvents> {
  readonly outputs: EncoderOutput[];
  private readonly args: string[];
  private child?: ChildProcess;
  private stopping = false;
  private runs = 0;
  private restarts = 0;
  private readonly sinkErrors = new Map<string, number>();
  private restartTimer?: NodeJS.Timeout;
  private currentDelay: number;
  private readonly stderrTail: string[] = [];

  constructor(
    private readonly options: LiveSourceOptions,
    private readonly sinks: ReadonlyMap<string, MediaSink>,
  ) {
    super();
    const { args, outputs } = ffmpegArguments(options);
    this.args = args;
    this.outputs = outputs;
    for (const o of outputs) if (!sinks.has(o.trackId)) throw new Error(`no sink for encoder output ${o.trackId}`);
    this.currentDelay = options.restartDelay ?? 1000;
  }

  stats(): LiveSourceStats {
    return { restarts: this.restarts, sinkErrorsByTrack: Object.fromEntries(this.sinkErrors) };
  }

  get commandLine(): string {
    return ['ffmpeg', ...this.args].map((a) => (/[\s'"();]/.test(a) ? `'${a}'` : a)).join(' ');
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Whether an ffmpeg run is under way. */
  get running(): boolean {
    return this.child !== undefined;
  }

  /**
   * Starts an ffmpeg run. `input` is its standard input for this run alone (an RTMP publisher's FLV);
   * otherwise the `stdin` option, for the `stdin` input.
   */
  start(input?: Readable): void {
    if (this.child || this.stopping) return;
    const run = ++this.runs;
    const fdCount = 3 + this.outputs.length;
    const stdio: ('pipe' | 'ignore')[] = Array.from({ length: fdCount }, () => 'pipe');
    const kind = this.options.input.kind;
    const stdin = kind === 'rtmp' || kind === 'moq' ? input : kind === 'stdin' ? this.options.stdin : undefined;
    if (kind !== 'stdin' && kind !== 'rtmp' && kind !== 'moq') stdio[0] = 'ignore';
    const child = spawn(this.options.ffmpegPath ?? 'ffmpeg', this.args, { stdio });
    this.child = child;
    const startedAt = Date.now();
    let hadMedia = false;

    child.on('error', (err) => {
      this.stderrTail.push(`cannot run ffmpeg: ${err.message}`);
    });
    if (stdin && child.stdin) {
      stdin.pipe(child.stdin);
      child.stdin.on('error', () => {}); // ffmpeg exiting closes the pipe; the exit handler reports it
    } else child.stdin?.end();
    this.readProgress(child.stdout!);
    this.readStderr(child.stderr!);
    for (const output of this.outputs) {
      const stream = child.stdio[output.fd] as Readable;
      const sink = this.sinks.get(output.trackId)!;
      stream.on('data', (chunk: Buffer) => {
        if (!hadMedia) {
          hadMedia = true;
          this.emit('media', run);
        }
        try {
          sink.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
        } catch (err) {
          // Malformed encoder output: report it and restart the encoder rather than publish anything broken.
          this.sinkErrors.set(output.trackId, (this.sinkErrors.get(output.trackId) ?? 0) + 1);
          this.emit('sink-error', output.trackId, err as Error);
          child.kill('SIGKILL');
        }
      });
      stream.on('error', () => {});
    }

    child.on('close', (code, signal) => {
      this.child = undefined;
      for (const sink of this.sinks.values()) sink.endOfInput();
      const lastError = this.stderrTail.join('\n');
      this.stderrTail.length = 0;
      // Restarting makes no sense when the input itself is gone (standard input at its end, an RTMP
      // publisher gone: the next publisher starts the next run).
      const inputEnded = kind === 'stdin' || kind === 'rtmp' || kind === 'moq';
      if (this.stopping || inputEnded) {
        this.emit('exited', { run, code, signal, lastError, requested: this.stopping, hadMedia });
        return;
      }
      if (kind === 'srt' && hadMedia) {
        // The encoder went away: listen again at once for its reconnection, as a fresh back-off.
        this.currentDelay = this.options.restartDelay ?? 1000;
        const restartIn = this.options.reconnectDelay ?? 200;
        this.emit('exited', { run, code, signal, lastError, restartIn, requested: false, hadMedia });
        this.restartTimer = setTimeout(() => this.start(), restartIn);
        return;
      }
      // Quick failures back off exponentially; a run that lasted a while restarts promptly.
      const ranFor = Date.now() - startedAt;
      const base = this.options.restartDelay ?? 1000;
      this.currentDelay =
        ranFor > 30_000 ? base : Math.min(this.currentDelay * 2, this.options.maxRestartDelay ?? 30_000);
      const restartIn = ranFor > 30_000 ? base : this.currentDelay;
      this.restarts++;
      this.emit('exited', { run, code, signal, lastError, restartIn, requested: false, hadMedia });
      this.restartTimer = setTimeout(() => this.start(), restartIn);
    });
    this.emit('started', run, child.pid);
  }

  private readProgress(stdout: Readable): void {
    let pending = '';
    let current: Partial<Record<string, string>> = {};
    stdout.setEncoding('utf8');
    stdout.on('data', (text: string) => {
      pending += text;
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      if (pending.length > 4096) pending = '';
      for (const line of lines) {
        const eq = line.indexOf('=');
        if (eq < 0) continue;
        const key = line.slice(0, eq).trim();
        const value = line.slice(eq + 1).trim();
        if (key === 'progress') {
          this.emit('progress', {
            frame: Number(current.frame ?? 0),
            fps: Number(current.fps ?? 0),
            speed: Number.parseFloat(current.speed ?? '0') || 0,
            outTimeSeconds: Number(current.out_time_us ?? current.out_time_ms ?? 0) / 1e6,
          });
          current = {};
        } else {
          current[key] = value;
        }
      }
    });
  }

  private readStderr(stderr: Readable): void {
    let pending = '';
    stderr.setEncoding('utf8');
    stderr.on('data', (text: string) => {
      pending += text;
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      if (pending.length > 4096) pending = pending.slice(-4096);
      for (const line of lines) {
        if (!line.trim()) continue;
        this.stderrTail.push(line);
        if (this.stderrTail.length > STDERR_LINES_KEPT) this.stderrTail.shift();
        this.emit('log', line);
      }
    });
  }

  /** Stops the encoder for good; resolves when ffmpeg has exited. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.restartTimer);
    const child = this.child;
    if (!child) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
      child.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      child.kill('SIGTERM');
    });
  }

  /** Kills the running encoder as a crash would (for operators testing resilience, and for tests). */
  crash(): void {
    this.child?.kill('SIGKILL');
  }
}
