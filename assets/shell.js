// The browser side of a deckhand shell link: an xterm.js terminal wired to
// `<this page>/ws`. Keys go out as binary frames; the terminal's output comes back as
// binary frames; window sizes go out, and the shell's exit comes back, as JSON text frames
// (src/shell/protocol.rs).
(function () {
  "use strict";
  var statusEl = document.getElementById("status");
  function setStatus(state, text) {
    statusEl.dataset.state = state;
    statusEl.textContent = text;
  }

  var term = new Terminal({ cursorBlink: true, scrollback: 5000, fontSize: 14 });
  var fit = new FitAddon.FitAddon();
  term.loadAddon(fit);
  term.open(document.getElementById("terminal"));
  fit.fit();

  var path = location.pathname.replace(/\/+$/, "");
  var scheme = location.protocol === "https:" ? "wss://" : "ws://";
  var ws = new WebSocket(scheme + location.host + path + "/ws");
  ws.binaryType = "arraybuffer";
  var encoder = new TextEncoder();
  var ended = false;

  function sendSize() {
    if (ws.readyState === WebSocket.OPEN) {
      ws.send(JSON.stringify({ type: "resize", cols: term.cols, rows: term.rows }));
    }
  }

  ws.onopen = function () {
    setStatus("connected", "connected");
    sendSize();
    term.focus();
  };
  ws.onmessage = function (ev) {
    if (typeof ev.data !== "string") {
      term.write(new Uint8Array(ev.data));
      return;
    }
    var msg;
    try {
      msg = JSON.parse(ev.data);
    } catch (e) {
      return;
    }
    if (msg.type === "exit") {
      ended = true;
      setStatus("exited", "the shell exited with " + msg.code);
    } else if (msg.type === "error") {
      ended = true;
      setStatus("error", msg.message);
      term.write("\r\n\x1b[31m" + msg.message + "\x1b[0m\r\n");
    }
  };
  ws.onclose = function () {
    if (!ended) {
      // The handshake's answer (used, expired, pod unreachable) is not visible to scripts;
      // reloading the page shows it.
      setStatus("closed", "disconnected; reload the page to see why");
    }
  };

  term.onData(function (data) {
    if (ws.readyState === WebSocket.OPEN) {
      ws.send(encoder.encode(data));
    }
  });
  term.onResize(sendSize);
  window.addEventListener("resize", function () {
    fit.fit();
  });
})();
