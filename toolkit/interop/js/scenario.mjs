// The interop scenario every JavaScript client runs (Chromium and Firefox pages, werift and
// @roamhq/wrtc in node): one echo session, one voice session, each over WHIP. The stack-specific
// parts (how audio goes in and is heard, what the stats say) come from `client`:
//
//   client.name
//   client.createPeerConnection() -> RTCPeerConnection-like
//   client.addMicrophone(pc, phase) -> {start(), stop()}   phase "echo": a tone that starts at
//       start(); phase "voice": silence until start(), then the voice script. Adds a sendrecv
//       audio transceiver before the offer.
//   client.listen(pc) -> {start(), stop() -> {pcm: base64 s16le, sampleRate, channels} | {opus: [base64]}}
//   client.rtpStats(pc) -> {packetsSent, packetsReceived}
//   client.transportStats(pc) -> {dtlsCipher, srtpCipher, tlsVersion, localUfrag, ...} (what it knows)
//   client.restartIce(pc) -> makes the next offer an ICE restart; absent when the stack cannot
//   client.restartReason: why not, when restartIce is absent
//
// Times are epoch milliseconds (Date.now() / performance.timeOrigin + now()), so the judge can
// line them up with a packet capture. Every wait is bounded; the first failure ends the phase
// and is reported with what was seen up to then.
"use strict";

export const DATACHANNEL_MESSAGES = ["hello from the interop matrix", "é€😀 unicode", "x".repeat(16384)];
const BINARY_MESSAGE = Uint8Array.from({length: 1024}, (_, i) => i % 256);

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));

// Progress on the console: the page's goes to the browser's log, node's to the client's log.
function note(message) {
  console.log(`[interop ${new Date().toISOString()}] ${message}`);
}

function within(ms, what, promise) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function until(ms, what, predicate, every = 10) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await predicate();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(every);
  }
}

export function iceCredentials(sdp) {
  const ufrag = /^a=ice-ufrag:(.+?)\s*$/m.exec(sdp);
  const pwd = /^a=ice-pwd:(.+?)\s*$/m.exec(sdp);
  return {ufrag: ufrag && ufrag[1], pwd: pwd && pwd[1]};
}

function candidates(sdp) {
  return sdp.split(/\r?\n/).filter(line => line.startsWith("a=candidate:"));
}

// RFC 9725 §4.3.1: the PATCH body for an ICE restart, from the restart offer.
export function restartFragment(offerSdp) {
  const {ufrag, pwd} = iceCredentials(offerSdp);
  const mid = /^a=mid:(.+?)\s*$/m.exec(offerSdp);
  const lines = [`a=ice-ufrag:${ufrag}`, `a=ice-pwd:${pwd}`, "m=audio 9 RTP/AVP 0"];
  if (mid) lines.push(`a=mid:${mid[1]}`);
  lines.push(...candidates(offerSdp), "a=end-of-candidates");
  return lines.join("\r\n") + "\r\n";
}

// The answer to a restart offer: the session's answer with the server's new credentials and candidates.
export function restartedAnswer(answerSdp, fragment) {
  const {ufrag, pwd} = iceCredentials(fragment);
  const fresh = candidates(fragment);
  const lines = [];
  let inCandidates = false;
  for (const line of answerSdp.split(/\r?\n/)) {
    const isCandidate = line.startsWith("a=candidate:");
    if (isCandidate && !inCandidates) lines.push(...fresh);  // each block of candidates becomes the new ones
    inCandidates = isCandidate;
    if (isCandidate) continue;
    if (line.startsWith("a=ice-ufrag:")) lines.push(`a=ice-ufrag:${ufrag}`);
    else if (line.startsWith("a=ice-pwd:")) lines.push(`a=ice-pwd:${pwd}`);
    else lines.push(line);
  }
  return lines.join("\r\n");
}

function gatheringComplete(pc) {
  return until(5000, "ICE gathering", () => pc.iceGatheringState === "complete");
}

// Watches the states every 10 ms and keeps the first time each value was seen.
function watchStates(pc, record) {
  record.states = {ice: [], connection: []};
  const seen = (list, value) => {
    if (value && (!list.length || list[list.length - 1].state !== value)) list.push({state: value, t: Date.now()});
  };
  const timer = setInterval(() => {
    seen(record.states.ice, pc.iceConnectionState);
    seen(record.states.connection, pc.connectionState);
  }, 10);
  return () => clearInterval(timer);
}

// The first line of an HTTP error body that says something, HTML tags dropped, at most 200
// characters: toolkit/peer/shell/whip.py's body_excerpt (an error page's first line is <!DOCTYPE html>).
export function bodyExcerpt(body) {
  for (const line of body.replace(/<[^>]*>/g, " ").split(/\r?\n/)) {
    const text = line.split(/\s+/).filter(Boolean).join(" ");
    if (text) return text.length <= 200 ? text : text.slice(0, 199) + "…";
  }
  return "";
}

async function post(url, sdp, record) {
  record.posted = Date.now();
  const response = await within(10000, "WHIP POST", fetch(url, {
    method: "POST", headers: {"Content-Type": "application/sdp"}, body: sdp}));
  const body = await response.text();
  record.answered = Date.now();
  record.whipStatus = response.status;
  if (response.status !== 201) throw new Error(`WHIP POST answered ${response.status}: ${bodyExcerpt(body)}`);
  record.answer = body;
  return new URL(response.headers.get("Location"), url).href;
}

async function connect(pc, url, record) {
  const offer = await pc.createOffer();
  await pc.setLocalDescription(offer);
  await gatheringComplete(pc);
  record.offerReady = Date.now();
  record.offer = pc.localDescription.sdp;
  note("offer ready");
  const resource = await post(url, record.offer, record);
  await pc.setRemoteDescription({type: "answer", sdp: record.answer});
  record.answerApplied = Date.now();
  note(`answer applied (WHIP ${record.whipStatus})`);
  const connectMs = 15000;
  await until(connectMs, "ICE connected", () => ["connected", "completed"].includes(pc.iceConnectionState));
  record.iceConnected = Date.now();
  note("ICE connected");
  await until(connectMs, "DTLS connected (connectionState connected)", () => pc.connectionState === "connected");
  record.dtlsConnected = Date.now();
  note("DTLS connected");
  return resource;
}

function openChannel(channel, record) {
  if (channel.readyState === "open") {
    record.dcOpen = Date.now();
    return Promise.resolve();
  }
  return new Promise(resolve => {
    channel.onopen = () => { record.dcOpen = Date.now(); resolve(); };
  });
}

// A message as the report keeps it: its type, length, first characters and a checksum.
export function describeMessage(data) {
  if (typeof data === "string") {
    let sum = 0;
    for (let i = 0; i < data.length; i++) sum = (sum * 31 + data.charCodeAt(i)) % 1000000007;
    return {type: "text", length: data.length, head: data.slice(0, 32), sum};
  }
  const bytes = ArrayBuffer.isView(data) ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : new Uint8Array(data);
  return {type: "binary", length: bytes.length, sum: bytes.reduce((a, b) => (a * 31 + b) % 1000000007, 0)};
}

async function deleteSession(resource, record) {
  try {
    record.deleteStatus = (await within(5000, "WHIP DELETE", fetch(resource, {method: "DELETE"}))).status;
  } catch (error) {
    record.deleteError = String(error);
  }
}

async function echoPhase(client, config) {
  note("echo phase");
  const record = {t0: Date.now()};
  const pc = client.createPeerConnection();
  const stopWatching = watchStates(pc, record);
  let resource;
  try {
    const mic = await client.addMicrophone(pc, "echo");
    const channel = pc.createDataChannel("rtcgate-echo");
    channel.binaryType = "arraybuffer";
    const received = [];
    channel.onmessage = event => {
      received.push(describeMessage(event.data));
      if (received.length === 1) record.dcFirstEcho = Date.now();
    };
    const ear = client.listen(pc);
    resource = await connect(pc, config.echoUrl, record);
    mic.start();
    record.micStarted = Date.now();
    await within(10000, "data channel open", openChannel(channel, record));
    record.datachannel = {sent: [...DATACHANNEL_MESSAGES.map(describeMessage), describeMessage(BINARY_MESSAGE)], received};
    for (const message of DATACHANNEL_MESSAGES) channel.send(message);
    channel.send(BINARY_MESSAGE);
    await until(5000, "data channel echo", () => received.length >= record.datachannel.sent.length)
      .catch(error => { record.datachannel.error = String(error); });

    try {
      await until(5000, "first audio packet back", async () => (await client.rtpStats(pc)).packetsReceived > 0);
      record.firstAudio = Date.now();
    } catch (error) {
      record.audioError = String(error);  // judged as audio back; the restart still runs
    }
    await sleep(config.warmupMs);
    ear.start();
    await sleep(config.listenMs);
    record.audio = {...await ear.stop(), ...await client.rtpStats(pc)};
    record.transport = await client.transportStats(pc);

    if (client.restartIce) await restartPhase(client, pc, resource, record, config);
    else record.restart = {supported: false, reason: client.restartReason};
    mic.stop();
  } catch (error) {
    record.error = String(error && error.stack || error);
    note(`echo phase failed: ${record.error}`);
    record.transport = record.transport || await client.transportStats(pc).catch(() => ({}));
  } finally {
    stopWatching();
    record.finalStates = {ice: pc.iceConnectionState, connection: pc.connectionState};
    if (resource) await deleteSession(resource, record);
    pc.close();
  }
  return record;
}

async function restartPhase(client, pc, resource, record, config) {
  const restart = record.restart = {supported: true};
  restart.before = await client.rtpStats(pc);
  restart.oldLocal = iceCredentials(pc.localDescription.sdp);
  restart.oldRemote = iceCredentials(pc.remoteDescription.sdp);
  client.restartIce(pc);
  const offer = await pc.createOffer();
  await pc.setLocalDescription(offer);
  await gatheringComplete(pc);
  restart.offer = pc.localDescription.sdp;
  restart.newLocal = iceCredentials(restart.offer);
  restart.patched = Date.now();
  const response = await within(10000, "WHIP PATCH", fetch(resource, {
    method: "PATCH", headers: {"Content-Type": "application/trickle-ice-sdpfrag"}, body: restartFragment(restart.offer)}));
  restart.patchStatus = response.status;
  restart.fragment = await response.text();
  restart.answered = Date.now();
  if (response.status !== 200) throw new Error(`WHIP PATCH answered ${response.status}: ${restart.fragment.slice(0, 300)}`);
  restart.newRemote = iceCredentials(restart.fragment);
  await pc.setRemoteDescription({type: "answer", sdp: restartedAnswer(pc.remoteDescription.sdp, restart.fragment)});
  restart.applied = Date.now();
  await sleep(config.restartListenMs);
  restart.after = await client.rtpStats(pc);
  restart.transport = await client.transportStats(pc);
  restart.states = {ice: pc.iceConnectionState, connection: pc.connectionState};
  restart.ended = Date.now();
}

async function voicePhase(client, config) {
  note("voice phase");
  const record = {t0: Date.now(), events: []};
  const pc = client.createPeerConnection();
  const stopWatching = watchStates(pc, record);
  let resource;
  try {
    const mic = await client.addMicrophone(pc, "voice");
    const channel = pc.createDataChannel("oai-events");
    const ear = client.listen(pc);
    let listening = false;
    const seen = type => record.events.some(e => e.type === type);
    channel.onmessage = event => {
      let parsed;
      try { parsed = JSON.parse(event.data); } catch { parsed = {type: "(not JSON)"}; }
      const entry = {t: Date.now(), type: parsed.type};
      if (parsed.response) entry.status = parsed.response.status;
      if (parsed.error) entry.error = parsed.error;
      record.events.push(entry);
      if (parsed.type === "response.created" && !listening) {
        listening = true;
        ear.start();
      }
    };
    resource = await connect(pc, config.voiceUrl, record);
    await until(10000, "session.created", () => seen("session.created"));
    mic.start();
    record.micStarted = Date.now();
    await until(config.voiceTurnMs, "response.done", () => seen("response.done"), 20);
    await sleep(config.lingerMs);
    record.responseAudio = {...await ear.stop(), ...await client.rtpStats(pc)};
    mic.stop();
  } catch (error) {
    record.error = String(error && error.stack || error);
    note(`voice phase failed: ${record.error}`);
  } finally {
    stopWatching();
    if (resource) await deleteSession(resource, record);
    pc.close();
  }
  return record;
}

export async function runScenario(client, config) {
  const report = {client: client.name, started: Date.now()};
  if (config.echoUrl) report.echo = await echoPhase(client, config);
  if (config.voiceUrl) report.voice = await voicePhase(client, config);
  report.ended = Date.now();
  return report;
}

export function base64(bytes) {
  if (typeof Buffer !== "undefined") return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
  const view = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let out = "";
  for (let i = 0; i < view.length; i += 0x8000) out += String.fromCharCode.apply(null, view.subarray(i, i + 0x8000));
  return btoa(out);
}

// Int16 chunks joined into one little-endian byte array.
export function joinSamples(chunks) {
  const total = chunks.reduce((n, c) => n + c.length, 0);
  const all = new Int16Array(total);
  let offset = 0;
  for (const chunk of chunks) { all.set(chunk, offset); offset += chunk.length; }
  return all;
}
