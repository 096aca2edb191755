// Writes a TUF repository with the @tufjs/models metadata API, for Pylon's client to read.
//
//   node make-repo.js OUT_DIR TARGET_PATH TARGET_CONTENT
//
// Consistent snapshots, fresh ed25519 keys, threshold 1, expiry in a week:
// - OUT_DIR/trusted_root.json (= metadata/1.root.json): the root a client starts from;
// - metadata/2.root.json (= root.json): the root key rotated, signed by the old and the new key;
// - metadata/1.targets.json: TARGET_PATH, and a delegation of "acme/*" to the role "acme";
// - metadata/1.acme.json: the target "acme/delegated.txt" (the same content);
// - metadata/1.snapshot.json, timestamp.json;
// - targets/<dir>/<sha256>.<basename> for both targets.
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const { canonicalize } = require('@tufjs/canonical-json');
const {
  Key, Metadata, MetaFile, Root, Signature, Snapshot, TargetFile, Targets, Timestamp,
} = require('@tufjs/models');

const [outDir, targetPath, targetContent] = process.argv.slice(2);
if (!outDir || !targetPath || targetContent === undefined) {
  console.error('usage: node make-repo.js OUT_DIR TARGET_PATH TARGET_CONTENT');
  process.exit(2);
}

const expires = new Date(Date.now() + 7 * 24 * 3600 * 1000).toISOString().replace(/\.\d+Z$/, 'Z');
const sha256 = (data) => crypto.createHash('sha256').update(data).digest('hex');

// An ed25519 TUF key; its keyid is the SHA-256 of the canonical JSON of the public key.
function newKey() {
  const { publicKey, privateKey } = crypto.generateKeyPairSync('ed25519');
  const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x, 'base64url');
  const body = { keytype: 'ed25519', scheme: 'ed25519', keyval: { public: raw.toString('hex') } };
  const keyID = sha256(canonicalize(body));
  const key = new Key({ keyID, keyType: 'ed25519', scheme: 'ed25519',
                        keyVal: { public: raw.toString('hex') } });
  const signer = (data) => new Signature({
    keyID, sig: crypto.sign(null, data, privateKey).toString('hex'),
  });
  return { key, signer };
}

const keys = {
  root: newKey(), root2: newKey(), timestamp: newKey(), snapshot: newKey(), targets: newKey(),
  acme: newKey(),
};
const delegatedPath = 'acme/delegated.txt';

const metadataDir = path.join(outDir, 'metadata');
fs.mkdirSync(metadataDir, { recursive: true });

function write(md, signers, ...names) {
  signers.forEach((signer, i) => md.sign(signer, i > 0));
  const text = JSON.stringify(md.toJSON(), null, 1);
  for (const name of names) fs.writeFileSync(path.join(metadataDir, name), text);
  return Buffer.from(text);
}

// The targets, stored under their hash-prefixed names (consistent snapshots).
const content = Buffer.from(targetContent);
const digest = sha256(content);
for (const p of [targetPath, delegatedPath]) {
  const file = path.join(outDir, 'targets', path.dirname(p), `${digest}.${path.basename(p)}`);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, content);
}
const targetEntry = (p) => new TargetFile({ path: p, length: content.length,
                                           hashes: { sha256: digest } });
const metaEntry = (bytes) => new MetaFile({ version: 1, length: bytes.length,
                                            hashes: { sha256: sha256(bytes) } });

function makeRoot(version, rootKey) {
  const root = new Root({ version, specVersion: '1.0.31', expires, consistentSnapshot: true });
  root.addKey(rootKey.key, 'root');
  for (const role of ['timestamp', 'snapshot', 'targets']) root.addKey(keys[role].key, role);
  return new Metadata(root);
}
const rootBytes = write(makeRoot(1, keys.root), [keys.root.signer], '1.root.json');
fs.writeFileSync(path.join(outDir, 'trusted_root.json'), rootBytes);
write(makeRoot(2, keys.root2), [keys.root.signer, keys.root2.signer], '2.root.json', 'root.json');

// Delegations are built through fromJSON: the models package does not export their classes.
const targets = Targets.fromJSON({
  _type: 'targets', spec_version: '1.0.31', version: 1, expires, targets: {},
  delegations: {
    keys: { [keys.acme.key.keyID]: keys.acme.key.toJSON() },
    roles: [{ name: 'acme', keyids: [keys.acme.key.keyID], threshold: 1, terminating: true,
              paths: ['acme/*'] }],
  },
});
targets.addTarget(targetEntry(targetPath));
const targetsBytes = write(new Metadata(targets), [keys.targets.signer], '1.targets.json');

const acme = new Targets({ version: 1, specVersion: '1.0.31', expires });
acme.addTarget(targetEntry(delegatedPath));
const acmeBytes = write(new Metadata(acme), [keys.acme.signer], '1.acme.json');

const snapshot = new Snapshot({
  version: 1, specVersion: '1.0.31', expires,
  meta: { 'targets.json': metaEntry(targetsBytes), 'acme.json': metaEntry(acmeBytes) },
});
const snapshotBytes = write(new Metadata(snapshot), [keys.snapshot.signer], '1.snapshot.json');

const timestamp = new Timestamp({
  version: 1, specVersion: '1.0.31', expires,
  snapshotMeta: metaEntry(snapshotBytes),
});
write(new Metadata(timestamp), [keys.timestamp.signer], 'timestamp.json');
console.log(`make-repo.js: wrote ${outDir} (target ${targetPath}, sha256 ${digest})`);
