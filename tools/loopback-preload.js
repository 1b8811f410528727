'use strict';
// Node preload (`node --require tools/loopback-preload.js ...`): every TCP server this process opens
// listens on 127.0.0.1, whatever host it asked for. Alto 0.0.20 has no host flag and binds 0.0.0.0;
// tests and `smartkeys node` must not expose a bundler (holding funded keys) beyond this machine.
//
// Covered call shapes of net.Server#listen (http, https and fastify servers are net.Servers):
//   listen(), listen(port[, host][, backlog][, callback]), listen(options[, callback]).
// Left alone: unix-socket paths and inherited handles / file descriptors (they open no TCP port).
const net = require('net');

const LOOPBACK = '127.0.0.1';
const originalListen = net.Server.prototype.listen;

function isHandle(value) {
  return value !== null && typeof value === 'object' && (value._handle !== undefined || value.fd !== undefined);
}

function loopbackArgs(args) {
  const first = args[0];
  if (typeof first === 'string' && !/^\d+$/.test(first)) return args; // a unix socket path
  if (isHandle(first)) return args;
  if (first !== null && typeof first === 'object') {
    if (first.path) return args; // options for a unix socket
    if (isHandle(first.handle)) return args;
    return [{ ...first, host: LOOPBACK, ipv6Only: false }, ...args.slice(1)];
  }
  // listen(port[, host][, backlog][, callback]) or listen() / listen(callback)
  const options = { host: LOOPBACK, port: 0 };
  let rest = args;
  if (typeof first === 'number' || typeof first === 'string') {
    options.port = Number(first);
    rest = args.slice(1);
  } else if (first === undefined || first === null) {
    rest = args.slice(1);
  }
  if (typeof rest[0] === 'string' || rest[0] === undefined || rest[0] === null) {
    if (rest.length > 0 && typeof rest[0] !== 'function') rest = rest.slice(1); // the requested host: ignored
  }
  if (typeof rest[0] === 'number') {
    options.backlog = rest[0];
    rest = rest.slice(1);
  }
  const callback = rest.find((arg) => typeof arg === 'function');
  return callback ? [options, callback] : [options];
}

net.Server.prototype.listen = function listenOnLoopback(...args) {
  return originalListen.apply(this, loopbackArgs(args));
};
