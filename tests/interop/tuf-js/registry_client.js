// The tuf-js client against a running pylon-registry: trust on first use of its version-1 root,
// refresh through the registry's TUF metadata, find a published build file through the
// namespace's delegated role, download it and compare it with the file that was uploaded.
//
//   node registry_client.js REGISTRY_URL EXPECTED_FILE TARGET_PATH [--expect-download-failure]
//
// REGISTRY_URL: http://127.0.0.1:PORT. TARGET_PATH: <ns>/<model>/<version>/<build>/<file>.
// Checks: the target's length and sha256 equal EXPECTED_FILE's, its custom "pylon" fields name
// the namespace, model, version and build of TARGET_PATH, the downloaded bytes hash to the same
// sha256, and a path that was never published is not found. With --expect-download-failure
// (the served bytes were tampered with) metadata must still verify but the download must be
// refused. Exit status 0 when every check holds, 1 otherwise.
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const http = require('http');
const os = require('os');
const path = require('path');
const { Updater } = require('tuf-js');

function get(url) {
  return new Promise((resolve, reject) => {
    http.get(url, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        if (res.statusCode !== 200) {
          reject(new Error(`GET ${url}: HTTP ${res.statusCode}`));
        } else {
          resolve(Buffer.concat(chunks));
        }
      });
    }).on('error', reject);
  });
}

function sha256(buffer) {
  return crypto.createHash('sha256').update(buffer).digest('hex');
}

function check(condition, message) {
  if (!condition) throw new Error(message);
}

async function main() {
  const args = process.argv.slice(2);
  const expectFailure = args.includes('--expect-download-failure');
  const [registry, expectedFile, targetPath] = args.filter((a) => !a.startsWith('--'));
  if (!targetPath) {
    throw new Error('usage: node registry_client.js REGISTRY_URL EXPECTED_FILE TARGET_PATH ' +
                    '[--expect-download-failure]');
  }
  const want = fs.readFileSync(expectedFile);
  const wantHash = sha256(want);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'tuf-js-registry-'));
  try {
    const metadataDir = path.join(work, 'metadata');
    const targetDir = path.join(work, 'targets');
    fs.mkdirSync(metadataDir);
    fs.mkdirSync(targetDir);
    const root = await get(`${registry}/tuf/metadata/1.root.json`);
    check(JSON.parse(root).signed.version === 1, '1.root.json is not version 1');
    fs.writeFileSync(path.join(metadataDir, 'root.json'), root);

    const updater = new Updater({
      metadataDir,
      metadataBaseUrl: `${registry}/tuf/metadata/`,
      targetDir,
      targetBaseUrl: `${registry}/tuf/targets/`,
      config: { fetchRetries: 0 },
    });
    await updater.refresh();
    const info = await updater.getTargetInfo(targetPath);
    check(info, `tuf-js found no target ${targetPath}`);
    check(info.length === want.length,
          `target length ${info.length}, uploaded file has ${want.length} bytes`);
    check(info.hashes.sha256 === wantHash,
          `target sha256 ${info.hashes.sha256}, uploaded file has ${wantHash}`);
    const [ns, model, version, build] = targetPath.split('/');
    const custom = (info.custom || {}).pylon || {};
    check(custom.namespace === ns && custom.model === model && custom.version === version &&
          custom.build === build,
          `custom fields do not name ${targetPath}: ${JSON.stringify(info.custom)}`);
    const missing = `${ns}/${model}/999.0.0/${build}/none.bin`;
    check(!(await updater.getTargetInfo(missing)), `tuf-js found ${missing}, never published`);
    const nsRole = path.join(metadataDir, `${ns}.json`);
    check(fs.existsSync(nsRole), `no trusted ${ns}.json: the target was not found through ` +
                                 'the delegation');

    const out = path.join(targetDir, 'download');
    let file;
    try {
      file = await updater.downloadTarget(info, out);
    } catch (err) {
      if (!expectFailure) throw err;
      console.log(`registry_client.js: download refused as expected: ${err.message}`);
      return;
    }
    check(!expectFailure, 'tampered bytes were downloaded without an error');
    const gotHash = sha256(fs.readFileSync(file));
    check(gotHash === wantHash, `downloaded sha256 ${gotHash}, want ${wantHash}`);
    const trusted = JSON.parse(fs.readFileSync(path.join(metadataDir, 'root.json')));
    console.log(`registry_client.js: root version ${trusted.signed.version}; downloaded ` +
                `${targetPath} (${want.length} bytes, sha256 ${gotHash}) from ${registry}`);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(`registry_client.js: error: ${err.stack || err}`);
  process.exit(1);
});
