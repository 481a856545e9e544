// The DeepVis Toolbox in a browser tab: shows the server's pictures, sends keys, clicks, the camera
// and dropped images (app/web/server.py describes the messages).
"use strict";
(() => {
  const query = window.location.search;   // ?token=...: every request carries it
  const FRAME = 1, DOWNLOAD = 2;           // first byte of a binary message from the server
  const CAMERA_WIDTH = 640, CAMERA_QUALITY = 0.8, CAMERA_POLL_MS = 15;
  // keys the browser keeps: lone modifiers, focus moves, function keys (reload, full screen)
  const BROWSER_KEYS = /^(Shift|Control|Alt|AltGraph|Meta|OS|CapsLock|NumLock|Fn|Dead|Unidentified|Tab|F\d+)$/;

  const canvas = document.getElementById("view");
  const context = canvas.getContext("2d");
  const note = document.getElementById("note");
  const video = document.getElementById("camera");
  const picker = document.getElementById("picker");
  const grab = document.createElement("canvas");
  let socket = null, tab = null, downloadName = "view.png", ended = "";
  let camera = null, cameraBusy = false;   // the camera's stream; a frame sent and not yet acknowledged
  let framesShown = 0;

  function say(text, isError) {
    note.textContent = text;
    note.className = isError ? "error" : "";
    note.title = text;
  }

  function send(message) {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
  }

  function pressKey(key) { send({type: "key", key: key}); }

  function connect() {
    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    const folder = window.location.pathname.replace(/[^/]*$/, "");
    socket = new WebSocket(scheme + "//" + window.location.host + folder + "ws" + query);
    socket.binaryType = "arraybuffer";
    socket.onclose = (event) => {
      stopCamera();
      say(ended || "disconnected" + (event.reason ? ": " + event.reason : "") + " (reload the page to connect again)", true);
    };
    socket.onmessage = (event) => {
      if (typeof event.data === "string") onText(JSON.parse(event.data)); else onBinary(event.data);
    };
  }

  function onText(message) {
    if (message.type === "hello") { tab = message.tab; say("connected: " + message.model); }
    else if (message.type === "error") say(message.message, true);
    else if (message.type === "ended") { ended = message.message; say(ended, true); }
    else if (message.type === "download") downloadName = message.name;
    else if (message.type === "open") openPage(message.url);
    else if (message.type === "camera") { if (message.on) startCamera(); else stopCamera(); }
    else if (message.type === "camera_ack") cameraBusy = false;
  }

  // A page of this server (the atlas) in a new tab; where the browser blocks it, a link to click.
  function openPage(url) {
    const opened = window.open(url, "_blank");
    if (opened) { opened.opener = null; return; }
    const link = document.createElement("a");
    link.href = url;
    link.target = "_blank";
    link.rel = "noopener";
    link.textContent = "open the atlas page (the browser blocked a new tab)";
    note.replaceChildren(link);
    note.className = "";
  }

  async function onBinary(buffer) {
    const kind = new Uint8Array(buffer, 0, 1)[0];
    const blob = new Blob([new Uint8Array(buffer, 1)], {type: kind === FRAME ? "image/jpeg" : "image/png"});
    if (kind === FRAME) {
      const bitmap = await createImageBitmap(blob);
      if (canvas.width !== bitmap.width || canvas.height !== bitmap.height) {
        canvas.width = bitmap.width;
        canvas.height = bitmap.height;
      }
      context.drawImage(bitmap, 0, 0);
      bitmap.close();
      framesShown += 1;
      canvas.dataset.frames = String(framesShown);
      send({type: "shown"});   // the server sends the next frame only after this
    } else if (kind === DOWNLOAD) {
      const link = document.createElement("a");
      link.href = URL.createObjectURL(blob);
      link.download = downloadName;
      document.body.appendChild(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(link.href), 60000);
    }
  }

  async function startCamera() {
    if (camera) return;
    try {
      camera = await navigator.mediaDevices.getUserMedia({video: true, audio: false});
    } catch (error) {
      say("camera: " + error.message + " (allow the camera for this page, then press C again)", true);
      return;
    }
    video.srcObject = camera;
    await video.play();
    cameraBusy = false;
    sendCameraFrames();
  }

  function stopCamera() {
    if (!camera) return;
    camera.getTracks().forEach((track) => track.stop());
    camera = null;
    video.srcObject = null;
  }

  function sendCameraFrames() {   // at most one frame in flight: the next goes once the server acknowledged it
    if (!camera) return;
    if (!cameraBusy && video.videoWidth && socket.readyState === WebSocket.OPEN) {
      const scale = Math.min(1, CAMERA_WIDTH / video.videoWidth);
      grab.width = Math.round(video.videoWidth * scale);
      grab.height = Math.round(video.videoHeight * scale);
      grab.getContext("2d").drawImage(video, 0, 0, grab.width, grab.height);
      cameraBusy = true;
      grab.toBlob(async (blob) => {
        if (blob && socket.readyState === WebSocket.OPEN) socket.send(await blob.arrayBuffer());
        else cameraBusy = false;
      }, "image/jpeg", CAMERA_QUALITY);
    }
    setTimeout(sendCameraFrames, CAMERA_POLL_MS);
  }

  async function upload(files) {
    for (const file of files) {
      const address = "upload" + query + "&tab=" + encodeURIComponent(tab || "") +
                      "&name=" + encodeURIComponent(file.name);
      let answer;
      try {
        const response = await fetch(address, {method: "POST", body: file});
        answer = await response.json();
      } catch (error) {
        answer = {error: file.name + ": upload failed (" + error.message + ")"};
      }
      if (answer.error) say(answer.error, true); else say("added " + file.name + " to the file list");
    }
  }

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || BROWSER_KEYS.test(event.key)) return;
    event.preventDefault();
    pressKey(event.key);
  });
  canvas.addEventListener("mousedown", (event) => {
    if (event.button !== 0) return;
    const box = canvas.getBoundingClientRect();
    send({type: "click", x: Math.floor((event.clientX - box.left) * canvas.width / box.width),
          y: Math.floor((event.clientY - box.top) * canvas.height / box.height)});
  });
  document.getElementById("camera-button").addEventListener("click", () => pressKey("C"));
  document.getElementById("save-button").addEventListener("click", () => pressKey("W"));
  document.getElementById("help-button").addEventListener("click", () => pressKey("h"));
  picker.addEventListener("change", () => { upload(Array.from(picker.files)); picker.value = ""; });
  document.addEventListener("dragover", (event) => { event.preventDefault(); document.body.classList.add("dragging"); });
  document.addEventListener("dragleave", () => document.body.classList.remove("dragging"));
  document.addEventListener("drop", (event) => {
    event.preventDefault();
    document.body.classList.remove("dragging");
    upload(Array.from(event.dataTransfer.files));
  });
  connect();
})();
