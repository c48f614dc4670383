// @roamhq/wrtc (libwebrtc M106 in node) in the interop matrix. Its microphone is the
// nonstandard RTCAudioSource fed 10 ms of the driver's PCM at a time; its ear the nonstandard
// RTCAudioSink, whose samples (it fires with silence before any packet) are judged by their
// content, and getStats() counts the packets.
import {createRequire} from "node:module";
import {base64, joinSamples} from "../js/scenario.mjs";
import {loadConfig, main, pace, readPcm} from "./common.mjs";

const require = createRequire(import.meta.url);
const wrtc = require("@roamhq/wrtc");
const {RTCAudioSource, RTCAudioSink} = wrtc.nonstandard;
const version = require("@roamhq/wrtc/package.json").version;
const FRAME = 480;  // 10 ms at 48 kHz, what RTCAudioSource takes
const config = loadConfig();

const client = {
  name: `@roamhq/wrtc ${version}`,
  createPeerConnection: () => new wrtc.RTCPeerConnection({iceServers: []}),
  async addMicrophone(pc, phase) {
    const pcm = readPcm(config.pcm[phase]);
    const source = new RTCAudioSource();
    const track = source.createTrack();
    pc.addTransceiver(track, {direction: "sendrecv"});
    let playing = false, offset = 0;
    const silence = new Int16Array(FRAME);
    const stop = pace(10, () => {
      let samples = silence;
      if (playing && offset + FRAME <= pcm.length) {
        samples = pcm.slice(offset, offset + FRAME);
        offset += FRAME;
      }
      source.onData({samples, sampleRate: 48000, bitsPerSample: 16, channelCount: 1, numberOfFrames: FRAME});
    });
    return {start() { playing = true; }, stop() { stop(); track.stop(); }};
  },
  listen(pc) {
    let sink = null, listening = false, sampleRate = 48000, channels = 1;
    const chunks = [];
    pc.ontrack = ({track}) => {
      sink = new RTCAudioSink(track);
      sink.ondata = data => {
        if (!listening) return;
        sampleRate = data.sampleRate;
        channels = data.channelCount;
        chunks.push(Int16Array.from(data.samples));
      };
    };
    return {
      start() { listening = true; },
      async stop() {
        listening = false;
        return {pcm: base64(joinSamples(chunks)), sampleRate, channels, heardTrack: !!sink};
      },
    };
  },
  async rtpStats(pc) {
    const out = {packetsSent: 0, packetsReceived: 0};
    (await pc.getStats()).forEach(s => {
      if (s.type === "inbound-rtp" && s.kind === "audio") out.packetsReceived = s.packetsReceived;
      if (s.type === "outbound-rtp" && s.kind === "audio") out.packetsSent = s.packetsSent;
    });
    return out;
  },
  async transportStats(pc) {
    const out = {};
    (await pc.getStats()).forEach(s => {
      if (s.type === "transport") {
        Object.assign(out, {dtlsState: s.dtlsState, dtlsCipher: s.dtlsCipher, srtpCipher: s.srtpCipher,
                            tlsVersion: s.tlsVersion, localUfrag: s.iceLocalUsernameFragment});
      }
    });
    return out;
  },
  restartIce: pc => pc.restartIce(),
};

await main(client, config);
