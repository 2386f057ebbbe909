// Preloaded into the official Capgo CLI by the end-to-end tests (NODE_OPTIONS=--require):
// every TCP connection to anything but the loopback is refused before any DNS lookup, and its
// target is appended to $CAPGO_GUARD_LOG, so a test proves nothing reached Capgo's cloud.
"use strict";
const fs = require("node:fs");
const net = require("node:net");

const LOG = process.env.CAPGO_GUARD_LOG;
const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|::1|\[::1\]|::ffff:127(\.\d{1,3}){3})$/i;

// connect() is called as (options[, cb]), (port[, host][, cb]), (path[, cb]), or, from
// net.connect and tls.connect, with Node's already normalized [options, cb] array.
function targetOf(args) {
  let first = args[0];
  if (Array.isArray(first)) first = first[0];
  if (first && typeof first === "object") return { host: first.host, port: first.port, path: first.path };
  if (typeof first === "string" && Number.isNaN(Number(first))) return { path: first };
  return { port: first, host: typeof args[1] === "string" ? args[1] : undefined };
}

const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function guardedConnect(...args) {
  const { host, port, path } = targetOf(args);
  // A truthy path is a local (Unix) socket, as net.Socket itself decides.
  if (path || LOOPBACK.test(host === undefined ? "localhost" : String(host))) {
    return connect.apply(this, args);
  }
  if (LOG) fs.appendFileSync(LOG, `${host}:${port}\n`);
  process.nextTick(() => this.destroy(new Error(`capgo e2e guard: no connection to ${host}:${port}`)));
  return this;
};
