/**
 * One multicast receiver of the bench, run in the receivers' namespace:
 *   ip netns exec <the receivers' namespace> taskset -c 1 node build/bench/multicast/receiver.js
 * Commands on stdin, one per line, each answered with one JSON line on stdout:
 *   `join`  → opens a socket on the bench's group and port, joins the group on the veth end (RX_IP), counts from zero;
 *             answers {"joined":true,"rcvbuf":<bytes granted>}
 *   `leave` → answers {"packets","bytes","cpuMicros"} since `join`, then leaves and closes the socket.
 * (A socket is only open while joined: Linux delivers a group's datagrams to every socket bound to the
 * port while any socket of the host has joined, IP_MULTICAST_ALL, which node:dgram cannot turn off.)
 * Prints {"ready":true} at start; exits when stdin closes.
 */
import dgram from 'node:dgram';
import { createInterface } from 'node:readline';
import { GROUP, PORT, RX_IP } from './common.js';

const RCVBUF = 2 * 1024 * 1024;

let socket: dgram.Socket | undefined;
let packets = 0;
let bytes = 0;
let cpu0 = process.cpuUsage();

function answer(message: object): void {
  process.stdout.write(`${JSON.stringify(message)}\n`);
}

async function join(): Promise<void> {
  const s = dgram.createSocket({ type: 'udp4', reuseAddr: true });
  s.on('message', (msg) => {
    packets++;
    bytes += msg.length;
  });
  await new Promise<void>((resolve) => s.bind({ port: PORT, address: GROUP }, resolve));
  s.setRecvBufferSize(RCVBUF);
  s.addMembership(GROUP, RX_IP);
  socket = s;
  packets = 0;
  bytes = 0;
  cpu0 = process.cpuUsage();
  answer({ joined: true, rcvbuf: s.getRecvBufferSize() });
}

async function leave(): Promise<void> {
  const cpu = process.cpuUsage(cpu0);
  answer({ packets, bytes, cpuMicros: cpu.user + cpu.system });
  const s = socket;
  socket = undefined;
  if (s) {
    s.dropMembership(GROUP, RX_IP);
    await new Promise<void>((resolve) => s.close(resolve));
  }
}

const lines = createInterface({ input: process.stdin });
let chain = Promise.resolve();
lines.on('line', (line) => {
  const command = line.trim();
  chain = chain.then(() => (command === 'join' ? join() : command === 'leave' ? leave() : undefined));
});
lines.on('close', () => void chain.then(() => process.exit(0)));
answer({ ready: true });
