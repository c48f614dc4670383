// A WHIP answerer built on werift's RTCPeerConnection in ICE-lite mode (`iceLite: true`).
//
// rtcgate did not write this stack; the conformance gate measures it. The answerer stays as
// close to werift's defaults as an echo server can:
// - `iceLite: true`, `iceServers: []`, IPv4 only. `iceAdditionalHostAddresses` adds the
//   listening address (werift leaves loopback out otherwise); werift still gathers every other
//   interface too, so the answer keeps only the candidates on the listening address: the
//   gate's traffic stays on loopback and its selected pair does not depend on which candidate
//   answers first.
// - One Opus codec entry; received RTP is sent back packet by packet (`sender.sendRtp`:
//   werift puts its own SSRC and sequence numbers on it), payload unchanged.
// - Data-channel messages are sent back on the channel they came on.
// - `a=setup:passive` by default: the probe peer is a DTLS client only, while werift answers
//   `active` unless the answer says otherwise (werift takes the role from the local answer);
//   `--setup active` keeps werift's own choice.
// - No ICE restart or trickle: PATCH answers 405, as RFC 9725 §4.3.1 asks of such a server.
//
// Run: `node tests/answerers/werift_whip.mjs [--host 127.0.0.1] [--port 0]`; it prints
// `werift-whip listening whip=http://HOST:PORT/whip` once it accepts offers.

import { randomBytes } from "node:crypto";
import http from "node:http";
import { parseArgs } from "node:util";

import { RTCPeerConnection, RTCRtpCodecParameters } from "werift";

const MAX_OFFER_BYTES = 64 * 1024;
const GATHERING_TIMEOUT_MS = 5000;

const { values: options } = parseArgs({
  options: {
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "string", default: "0" },
    setup: { type: "string", default: "passive" },
  },
});
if (!["passive", "active"].includes(options.setup)) {
  console.error(`--setup must be passive or active, not ${options.setup}`);
  process.exit(2);
}

const sessions = new Map();

function peerConnection() {
  return new RTCPeerConnection({
    iceLite: true,
    iceServers: [],
    iceUseIpv6: false,
    iceAdditionalHostAddresses: [options.host],
    codecs: {
      audio: [new RTCRtpCodecParameters({ mimeType: "audio/opus", clockRate: 48000, channels: 2 })],
      video: [],
    },
  });
}

function echoMedia(pc) {
  pc.onRemoteTransceiverAdded.subscribe((transceiver) => {
    transceiver.setDirection("sendrecv");
    transceiver.onTrack.subscribe((track) => {
      track.onReceiveRtp.subscribe((rtp) => {
        transceiver.sender.sendRtp(rtp).catch(() => {}); // a packet that cannot leave is a lost packet
      });
    });
  });
  pc.onDataChannel.subscribe((channel) => {
    channel.onMessage.subscribe((message) => {
      if (channel.readyState === "open") channel.send(message);
    });
  });
}

async function gathered(pc) {
  if (pc.iceGatheringState === "complete") return;
  await Promise.race([
    pc.iceGatheringStateChange.watch((state) => state === "complete"),
    new Promise((resolve) => setTimeout(resolve, GATHERING_TIMEOUT_MS)),
  ]);
}

async function answer(offer) {
  const pc = peerConnection();
  echoMedia(pc);
  try {
    await pc.setRemoteDescription({ type: "offer", sdp: offer });
    const local = await pc.createAnswer();
    const sdp = options.setup === "passive"
      ? local.sdp.replace(/^a=setup:active(\r?)$/gm, "a=setup:passive$1")
      : local.sdp;
    await pc.setLocalDescription({ type: "answer", sdp });
    await gathered(pc);
  } catch (error) {
    await pc.close();
    throw error;
  }
  const id = randomBytes(8).toString("hex");
  sessions.set(id, pc);
  endWithTransport(id, pc);
  return { id, sdp: onlyCandidatesOn(pc.localDescription.sdp, options.host) };
}

// End the session when ICE fails or its DTLS transport closes (close_notify) or fails:
// werift's connection state stays "connected" after close_notify, as the W3C model has it.
function endWithTransport(id, pc) {
  const end = (state) => {
    if ((state === "failed" || state === "closed") && sessions.get(id) === pc) {
      sessions.delete(id);
      pc.close();
    }
  };
  pc.connectionStateChange.subscribe(end);
  for (const transport of pc.dtlsTransports) transport.onStateChange.subscribe(end);
}

function onlyCandidatesOn(sdp, host) {
  return sdp
    .split("\r\n")
    .filter((line) => !line.startsWith("a=candidate:") || line.split(" ")[4] === host)
    .join("\r\n");
}

function reply(response, status, body = "", headers = {}) {
  response.writeHead(status, { "Content-Type": "text/plain", ...headers });
  response.end(body);
}

async function readBody(request) {
  const chunks = [];
  let size = 0;
  for await (const chunk of request) {
    size += chunk.length;
    if (size > MAX_OFFER_BYTES) throw new Error(`offer larger than ${MAX_OFFER_BYTES} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString("utf8");
}

async function handle(request, response) {
  const url = new URL(request.url, "http://answerer");
  if (url.pathname === "/whip" && request.method === "POST") {
    const type = (request.headers["content-type"] ?? "").split(";")[0].trim();
    if (type !== "application/sdp") {
      return reply(response, 415, `Content-Type must be application/sdp, got ${type || "none"}\n`);
    }
    let session;
    try {
      session = await answer(await readBody(request));
    } catch (error) {
      return reply(response, 400, `cannot answer this offer: ${error.message}\n`);
    }
    return reply(response, 201, session.sdp, {
      "Content-Type": "application/sdp",
      Location: `/whip/${session.id}`,
      ETag: `"${session.id}"`,
    });
  }
  const match = url.pathname.match(/^\/whip\/([0-9a-f]+)$/);
  if (match && request.method === "DELETE") {
    const pc = sessions.get(match[1]);
    if (!pc) return reply(response, 404, "no such session\n");
    sessions.delete(match[1]);
    await pc.close();
    return reply(response, 200);
  }
  if (match && request.method === "PATCH") {
    return reply(response, 405, "no ICE restart or trickle ICE here\n", { Allow: "DELETE" });
  }
  return reply(response, 404, "not found\n");
}

const server = http.createServer((request, response) => {
  handle(request, response).catch((error) => {
    if (!response.headersSent) reply(response, 500, `${error.message}\n`);
  });
});

server.listen(Number(options.port), options.host, () => {
  const { port } = server.address();
  console.log(`werift-whip listening whip=http://${options.host}:${port}/whip`);
});

async function shutdown() {
  server.close();
  await Promise.all([...sessions.values()].map((pc) => pc.close()));
  process.exit(0);
}
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
