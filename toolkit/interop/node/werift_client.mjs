// werift (TypeScript WebRTC) in the interop matrix. werift has no Opus encoder, so its
// microphone sends the driver's pre-encoded 20 ms Opus packets with track.writeRtp (silence
// frames until the script starts), and its ear keeps the Opus payloads it receives for the
// judge to decode.
import {readFileSync} from "node:fs";
import {MediaStreamTrack, RTCPeerConnection, RTCRtpCodecParameters, RtpHeader, RtpPacket} from "werift";
import {base64} from "../js/scenario.mjs";
import {loadConfig, main, pace, readOpusPackets} from "./common.mjs";

const OPUS_SILENCE = Buffer.from([0xf8, 0xff, 0xfe]);  // one 20 ms Opus frame of silence
const config = loadConfig();
const version = JSON.parse(readFileSync(new URL("./node_modules/werift/package.json", import.meta.url))).version;
const counters = new WeakMap();

const client = {
  name: `werift ${version}`,
  createPeerConnection() {
    const pc = new RTCPeerConnection({
      iceServers: [], iceAdditionalHostAddresses: ["127.0.0.1"], iceUseIpv6: false,
      codecs: {audio: [new RTCRtpCodecParameters({mimeType: "audio/opus", clockRate: 48000, channels: 2})]},
    });
    counters.set(pc, {packetsSent: 0, packetsReceived: 0});
    return pc;
  },
  async addMicrophone(pc, phase) {
    const packets = readOpusPackets(config.opus[phase]);
    const track = new MediaStreamTrack({kind: "audio"});
    pc.addTransceiver(track, {direction: "sendrecv"});
    const count = counters.get(pc);
    let playing = false, index = 0;
    const ssrc = 0x1234abcd, firstSequence = 1000;
    const stop = pace(20, n => {
      if (pc.connectionState !== "connected") return;
      const payload = playing && index < packets.length ? packets[index++] : OPUS_SILENCE;
      const header = new RtpHeader({payloadType: 111, sequenceNumber: (firstSequence + n) % 65536,
                                    timestamp: (n * 960) >>> 0, ssrc, marker: n === 0});
      track.writeRtp(new RtpPacket(header, payload));
      count.packetsSent += 1;
    });
    return {start() { playing = true; }, stop};
  },
  listen(pc) {
    const payloads = [];
    let listening = false;
    const count = counters.get(pc);
    pc.ontrack = ({track}) => {
      track.onReceiveRtp.subscribe(rtp => {
        count.packetsReceived += 1;
        if (listening) payloads.push(base64(rtp.payload));
      });
    };
    return {
      start() { listening = true; },
      async stop() { listening = false; return {opus: payloads}; },
    };
  },
  rtpStats: async pc => ({...counters.get(pc)}),
  async transportStats(pc) {
    const transport = pc.dtlsTransports[0];
    const out = {dtlsState: transport && transport.state, iceState: pc.iceConnectionState};
    const srtp = transport && transport.dtls && transport.dtls.srtp;
    if (srtp && srtp.srtpProfile !== undefined) out.srtpProfileId = srtp.srtpProfile;
    return out;
  },
  restartIce: pc => pc.restartIce(),
};

await main(client, config);
