// What the interop pages share (served beside them, loaded before their own script): the page's
// parameters, bounded waits, ICE gathering, the WHIP exchange, and the report POSTed to ?report=URL.
"use strict";
const params = new URLSearchParams(location.search);
const whipUrl = params.get("whip");
const reportUrl = params.get("report");

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));

function within(ms, what, promise) {
  return Promise.race([promise, sleep(ms).then(() => { throw new Error(`${what} took over ${ms} ms`); })]);
}

function gatheringComplete(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise(resolve => pc.addEventListener("icegatheringstatechange", () => {
    if (pc.iceGatheringState === "complete") resolve();
  }));
}

// Offers (after ICE gathering: WHIP without trickle), POSTs the offer, applies the answer;
// result.whipStatus gets the POST's status. Returns the URL of the session's WHIP resource.
async function publish(pc, result) {
  await pc.setLocalDescription(await pc.createOffer());
  await within(5000, "ICE gathering", gatheringComplete(pc));
  const response = await fetch(whipUrl, {method: "POST", headers: {"Content-Type": "application/sdp"},
                                         body: pc.localDescription.sdp});
  const answer = await response.text();
  result.whipStatus = response.status;
  if (response.status !== 201) throw new Error(`WHIP POST answered ${response.status}: ${answer}`);
  const resource = new URL(response.headers.get("Location"), whipUrl).href;
  await pc.setRemoteDescription({type: "answer", sdp: answer});
  return resource;
}

function report(body) {
  return fetch(reportUrl, {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
}

// Runs the page's scenario and reports its result, or what it had when it failed and why.
function runAndReport(run, result) {
  run().then(() => report(result),
             error => report({...result, error: String(error && error.stack || error)}));
}
