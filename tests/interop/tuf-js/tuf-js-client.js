// Runs the tuf-js client against a TUF repository directory served over loopback HTTP, and
// checks the downloaded target's bytes.
//
//   node tuf-js-client.js REPO_DIR TRUSTED_ROOT EXPECTED_FILE TARGET_PATH...
//
// REPO_DIR holds metadata/ and targets/ (the layout `pylon tuf-repo` writes). Exit status 0 when
// refresh, and lookup and download of every TARGET_PATH succeed and each one's bytes equal
// EXPECTED_FILE's; 1 otherwise.
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const { Updater } = require('tuf-js');
const { startServer } = require('./serve');

async function main() {
  const [repoDir, trustedRoot, expectedFile, ...targetPaths] = process.argv.slice(2);
  if (targetPaths.length === 0) {
    throw new Error(
      'usage: node tuf-js-client.js REPO_DIR TRUSTED_ROOT EXPECTED_FILE TARGET_PATH...');
  }
  const server = await startServer(repoDir);
  const base = `http://127.0.0.1:${server.address().port}`;
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'tuf-js-client-'));
  try {
    const metadataDir = path.join(work, 'metadata');
    const targetDir = path.join(work, 'targets');
    fs.mkdirSync(metadataDir);
    fs.mkdirSync(targetDir);
    fs.copyFileSync(trustedRoot, path.join(metadataDir, 'root.json'));
    const updater = new Updater({
      metadataDir, metadataBaseUrl: `${base}/metadata`,
      targetDir, targetBaseUrl: `${base}/targets`,
      config: { fetchRetries: 0 },
    });
    await updater.refresh();
    const want = fs.readFileSync(expectedFile);
    for (const [i, targetPath] of targetPaths.entries()) {
      const info = await updater.getTargetInfo(targetPath);
      if (!info) throw new Error(`tuf-js found no target ${targetPath}`);
      const file = await updater.downloadTarget(info, path.join(targetDir, `download-${i}`));
      if (!fs.readFileSync(file).equals(want)) {
        throw new Error(`downloaded bytes of ${targetPath} differ`);
      }
    }
    // A second updater over the same directory starts from the metadata the first one stored.
    const again = new Updater({ metadataDir, metadataBaseUrl: `${base}/metadata`,
                                config: { fetchRetries: 0 } });
    await again.refresh();
    const root = JSON.parse(fs.readFileSync(path.join(metadataDir, 'root.json')));
    console.log(`tuf-js-client.js: root version ${root.signed.version}; downloaded ` +
                `${targetPaths.join(', ')} from ${base}`);
  } finally {
    server.close();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(`tuf-js-client.js: error: ${err.stack || err}`);
  process.exit(1);
});
