// A small oidc-provider adapter that keeps its records in one JSON file, so grants survive a restart of the
// demo provider (the test suite stops and restarts it to simulate an outage). Writes are synchronous and
// whole-file: fine for a demo with a handful of records, not for production.
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';

export function fileAdapter(path) {
  const records = existsSync(path) ? new Map(Object.entries(JSON.parse(readFileSync(path, 'utf8')))) : new Map();
  const save = () => {
    writeFileSync(`${path}.tmp`, JSON.stringify(Object.fromEntries(records)));
    renameSync(`${path}.tmp`, path);
  };
  const now = () => Math.floor(Date.now() / 1000);
  const live = (entry) => entry && (!entry.expiresAt || entry.expiresAt > now()) ? entry : undefined;

  return class FileAdapter {
    constructor(model) {
      this.model = model;
    }

    key(id) {
      return `${this.model}:${id}`;
    }

    async upsert(id, payload, expiresIn) {
      records.set(this.key(id), { payload, expiresAt: expiresIn ? now() + expiresIn : undefined });
      save();
    }

    async find(id) {
      return live(records.get(this.key(id)))?.payload;
    }

    async findByUid(uid) {
      for (const [key, entry] of records) {
        if (key.startsWith(`${this.model}:`) && entry.payload.uid === uid && live(entry)) return entry.payload;
      }
      return undefined;
    }

    async findByUserCode(userCode) {
      for (const [key, entry] of records) {
        if (key.startsWith(`${this.model}:`) && entry.payload.userCode === userCode && live(entry)) return entry.payload;
      }
      return undefined;
    }

    async consume(id) {
      const entry = records.get(this.key(id));
      if (entry) {
        entry.payload.consumed = now();
        save();
      }
    }

    async destroy(id) {
      records.delete(this.key(id));
      save();
    }

    async revokeByGrantId(grantId) {
      for (const [key, entry] of records) {
        if (entry.payload.grantId === grantId) records.delete(key);
      }
      save();
    }
  };
}
