// A static file server on 127.0.0.1 and an ephemeral port, for the interop tests.
//
//   node serve.js ROOT [REQUEST_LOG]   prints "PORT" on the first line of stdout, serves ROOT
//                                      until killed, appends each request path to REQUEST_LOG
//
// Paths are percent-decoded; anything that leaves ROOT, and anything missing, is a 404.
'use strict';

const fs = require('fs');
const http = require('http');
const path = require('path');

function startServer(root, requestLog) {
  const base = path.resolve(root);
  const server = http.createServer((req, res) => {
    const urlPath = req.url.split('?')[0];
    if (requestLog) fs.appendFileSync(requestLog, urlPath + '\n');
    let file;
    try {
      file = path.resolve(base, '.' + decodeURIComponent(urlPath));
    } catch {
      file = null;
    }
    if (!file || !file.startsWith(base + path.sep) || !fs.existsSync(file) ||
        !fs.statSync(file).isFile()) {
      res.writeHead(404, { 'Content-Type': 'text/plain' });
      res.end('not found\n');
      return;
    }
    const data = fs.readFileSync(file);
    res.writeHead(200, { 'Content-Length': data.length,
                         'Content-Type': 'application/octet-stream' });
    res.end(data);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

module.exports = { startServer };

if (require.main === module) {
  const [root, requestLog] = process.argv.slice(2);
  if (!root) {
    console.error('usage: node serve.js ROOT [REQUEST_LOG]');
    process.exit(2);
  }
  startServer(root, requestLog).then((server) => {
    process.stdout.write(`${server.address().port}\n`);
  }, (err) => {
    console.error(`serve.js: ${err.message}`);
    process.exit(1);
  });
}
