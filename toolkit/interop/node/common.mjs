// What both node clients share: the configuration and audio material the driver wrote, a
// real-time pacer, and writing the report where the driver looks for it.
import {readFileSync, writeFileSync} from "node:fs";

export function loadConfig() {
  return JSON.parse(readFileSync(process.argv[2], "utf8"));
}

// The driver's .opus file: 2-byte big-endian length, then that many bytes of one 20 ms packet.
export function readOpusPackets(path) {
  const data = readFileSync(path);
  const packets = [];
  for (let offset = 0; offset + 2 <= data.length;) {
    const length = data.readUInt16BE(offset);
    packets.push(data.subarray(offset + 2, offset + 2 + length));
    offset += 2 + length;
  }
  return packets;
}

// The driver's .s16 file: 48 kHz mono little-endian 16-bit PCM.
export function readPcm(path) {
  const data = readFileSync(path);
  return new Int16Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.length - data.length % 2));
}

// Calls tick(n) every `periodMs` on an absolute schedule (no drift), until stopped.
export function pace(periodMs, tick) {
  const start = performance.now();
  let n = 0;
  let timer = null;
  let stopped = false;
  const step = () => {
    if (stopped) return;
    tick(n++);
    timer = setTimeout(step, Math.max(0, start + n * periodMs - performance.now()));
  };
  step();
  return () => { stopped = true; clearTimeout(timer); };
}

export async function main(client, config) {
  const {runScenario} = await import("../js/scenario.mjs");
  let report;
  try {
    report = await runScenario(client, config);
  } catch (error) {
    report = {client: client.name, error: String(error && error.stack || error)};
  }
  writeFileSync(config.report, JSON.stringify(report));
  process.exit(0);  // native handles (sockets, timers of the stack) would keep node alive
}
